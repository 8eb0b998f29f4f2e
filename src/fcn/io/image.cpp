#include "fcn/io/image.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "fcn/util/error.h"

namespace fcn {

torch::Tensor load_image(const std::string& path, int64_t channels, const Normalization& normalization) {
  cv::Mat image;
  try {
    image = cv::imread(path, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    fail(path, "cannot decode image: " + e.msg);
  }
  if (image.empty()) fail(path, "cannot read image (missing, unreadable or not an image format OpenCV knows)");
  if (image.depth() != CV_8U && image.depth() != CV_16U) fail(path, "only 8- and 16-bit images are supported");
  const double max_value = image.depth() == CV_8U ? 255.0 : 65535.0;
  if (channels == 3) {
    if (image.channels() == 1) cv::cvtColor(image, image, cv::COLOR_GRAY2RGB);
    else if (image.channels() == 4) cv::cvtColor(image, image, cv::COLOR_BGRA2RGB);
    else if (image.channels() == 3) cv::cvtColor(image, image, cv::COLOR_BGR2RGB);
  } else if (channels == 1) {
    if (image.channels() == 3) cv::cvtColor(image, image, cv::COLOR_BGR2GRAY);
    else if (image.channels() == 4) cv::cvtColor(image, image, cv::COLOR_BGRA2GRAY);
  }
  if (image.channels() != channels)
    fail(path, "image has " + std::to_string(image.channels()) + " channels, the model expects " + std::to_string(channels));
  cv::Mat as_float;
  image.convertTo(as_float, CV_32F, 1.0 / max_value);
  auto tensor = torch::from_blob(as_float.data, {as_float.rows, as_float.cols, channels}, torch::kFloat)
                    .permute({2, 0, 1})
                    .unsqueeze(0)
                    .clone();
  const auto mean = torch::tensor(normalization.mean, torch::kDouble).to(torch::kFloat).view({1, channels, 1, 1});
  const auto std = torch::tensor(normalization.std, torch::kDouble).to(torch::kFloat).view({1, channels, 1, 1});
  return (tensor - mean) / std;
}

}  // namespace fcn
