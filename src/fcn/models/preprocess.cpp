#include "fcn/models/preprocess.h"

#include <torch/torch.h>

#include "fcn/formats/image.h"
#include "fcn/util/error.h"

namespace fcn {

torch::Tensor adapt_channels(const torch::Tensor& image, int64_t channels, const std::string& source) {
  const int64_t have = image.size(-3);
  // A TIFF's gray or RGB ahead of its extra samples, read from its header once, and only where it can matter: for a
  // net of 1 or 3 inputs given other than it takes, or 3 channels (gray + 2 alphas is no RGB).
  const int64_t colour = (channels == 1 || channels == 3) && (have != channels || have == 3) ? tiff_colour_channels(source) : 0;
  const bool past_colour = colour > 0 && colour < have;
  const bool data = past_colour && (have == channels || colour < channels) && channels_are_data(source);  // where it is asked
  if (have == channels && !(past_colour && !data)) return image;
  if (channels == 3 && have == 1) {
    auto shape = image.sizes().vec();
    shape[shape.size() - 3] = 3;
    return image.expand(shape).contiguous();
  }
  if (is_npy_path(source) && have != 1)  // no alpha, no colour
    fail(source, "has " + std::to_string(have) + " channels (a .npy array: each one data, none dropped or mixed), the model takes " +
                     std::to_string(channels));
  // A TIFF's gray or RGB ahead of its extra samples (alpha, or bands as GDAL writes them): the colour alone for a
  // net of 1 or 3 inputs, never a band mixed in as if colour. Bands are not copied to fill a net's inputs.
  if (past_colour) {
    if (colour < channels && data)
      fail(source, "has " + std::to_string(have) + " channels of data (gray and " + std::to_string(have - 1) +
                       " band(s), as the TIFF declares its samples), the model takes " + std::to_string(channels));
    return adapt_channels(image.narrow(-3, 0, colour), channels, source);
  }
  if (channels == 3 && have == 4) return image.narrow(-3, 0, 3);
  if (channels == 1 && (have == 3 || have == 4)) {
    const auto weights = torch::tensor({0.299f, 0.587f, 0.114f}, image.options()).view({3, 1, 1});
    return (image.narrow(-3, 0, 3) * weights).sum(-3, true);
  }
  if (have == 2 && (channels == 1 || channels == 3)) return adapt_channels(image.narrow(-3, 0, 1), channels, source);  // gray + alpha
  fail(source, "image has " + std::to_string(have) + " channel(s), the model expects " + std::to_string(channels));
}

torch::Tensor normalize(const torch::Tensor& image, const Normalization& normalization) {
  const int64_t channels = image.size(-3);
  TORCH_CHECK(static_cast<int64_t>(normalization.mean.size()) == channels &&
                  static_cast<int64_t>(normalization.std.size()) == channels,
              "normalize: ", channels, " channels vs ", normalization.mean.size(), " means");
  std::vector<int64_t> shape(image.dim(), 1);
  shape[image.dim() - 3] = channels;
  const auto options = torch::TensorOptions().dtype(image.scalar_type()).device(image.device());
  const auto mean = torch::tensor(normalization.mean, torch::kDouble).to(options).view(shape);
  const auto std = torch::tensor(normalization.std, torch::kDouble).to(options).view(shape);
  return (image - mean) / std;
}

torch::Tensor preprocess(const torch::Tensor& image, int64_t channels, const Normalization& normalization,
                         const std::string& source) {
  if (!image.defined() || (image.dim() != 3 && image.dim() != 4)) fail(source, "image must be C x H x W or N x C x H x W");
  if (image.size(-1) == 0 || image.size(-2) == 0) fail(source, "image is empty (0 pixels)");
  auto x = normalize(adapt_channels(image.to(torch::kFloat), channels, source), normalization);
  return image.dim() == 3 ? x.unsqueeze(0) : x;
}

}  // namespace fcn
