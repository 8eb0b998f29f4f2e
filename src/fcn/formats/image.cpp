#include "fcn/formats/image.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <torch/torch.h>

#include "fcn/formats/png.h"
#include "fcn/util/error.h"

#ifdef FCN_WITH_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace fcn {
namespace {

#ifdef FCN_WITH_OPENCV
torch::Tensor read_with_opencv(const std::string& path) {
  cv::Mat image;
  try {
    image = cv::imread(path, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    fail(path, "cannot decode image: " + e.msg);
  }
  if (image.empty()) fail(path, "cannot read image (missing, empty, unreadable or not an image format OpenCV knows)");
  if (image.depth() != CV_8U && image.depth() != CV_16U) fail(path, "only 8- and 16-bit images are supported");
  if (image.channels() == 3) cv::cvtColor(image, image, cv::COLOR_BGR2RGB);
  if (image.channels() == 4) cv::cvtColor(image, image, cv::COLOR_BGRA2RGBA);
  cv::Mat as_float;
  image.convertTo(as_float, CV_32F, image.depth() == CV_8U ? 1.0 / 255.0 : 1.0 / 65535.0);
  return torch::from_blob(as_float.data, {as_float.rows, as_float.cols, as_float.channels()}, torch::kFloat)
      .permute({2, 0, 1})
      .clone();
}
#endif

}  // namespace

torch::Tensor read_image(const std::string& path) {
  // Named here for every format (OpenCV would only log a warning and return nothing).
  if (!std::ifstream(path)) fail(path, "cannot open (missing or unreadable)");
  if (is_png(path)) {
    const auto png = read_png(path);
    if (png.indexed) {
      auto palette = torch::empty({static_cast<int64_t>(std::max<size_t>(png.palette.size(), 1)), 3}, torch::kByte).zero_();
      for (size_t i = 0; i < png.palette.size(); ++i)
        for (int c = 0; c < 3; ++c) palette[static_cast<int64_t>(i)][c] = png.palette[i][c];
      const auto indices = png.pixels.select(2, 0).to(torch::kLong).clamp_max(palette.size(0) - 1);
      return palette.index_select(0, indices.flatten()).view({indices.size(0), indices.size(1), 3}).permute({2, 0, 1}).to(torch::kFloat).div(255.0f);
    }
    const float max_value = png.pixels.scalar_type() == torch::kByte ? 255.0f : 65535.0f;
    return png.pixels.permute({2, 0, 1}).to(torch::kFloat).div(max_value).contiguous();
  }
#ifdef FCN_WITH_OPENCV
  return read_with_opencv(path);
#else
  fail(path, "not a PNG; other image formats need fcn built with OpenCV (FCN_WITH_OPENCV)");
#endif
}

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> known = {".jpg", ".png", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".webp"};
  return known;
}

bool has_image_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto& known = image_extensions();
  return std::find(known.begin(), known.end(), ext) != known.end();
}

std::vector<std::string> list_images(const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  std::vector<std::string> images;
  for (const auto& input : inputs) {
    std::error_code error;
    if (fs::is_directory(input, error)) {
      std::vector<std::string> found;
      for (const auto& entry : fs::directory_iterator(input, error))
        if (entry.is_regular_file() && has_image_extension(entry.path().string())) found.push_back(entry.path().string());
      if (found.empty()) fail(input, "folder holds no image files (.png, .jpg, ...)");
      std::sort(found.begin(), found.end());
      images.insert(images.end(), found.begin(), found.end());
    } else if (input.find_first_of("*?[") != std::string::npos && !fs::exists(input, error)) {
      glob_t matches{};
      const int status = glob(input.c_str(), 0, nullptr, &matches);
      for (size_t i = 0; status == 0 && i < matches.gl_pathc; ++i) images.emplace_back(matches.gl_pathv[i]);
      globfree(&matches);
      if (status != 0) fail(input, "pattern matches no file");
    } else {
      images.push_back(input);  // a missing or unreadable file is reported when it is read
    }
  }
  return images;
}

}  // namespace fcn
