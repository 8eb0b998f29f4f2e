// Images in and out of the nets. PNG (8/16-bit gray, RGB, RGBA, palette) is read with libpng, so
// the core needs no OpenCV; JPEG and the other formats go through OpenCV when built with it.
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

#include "fcn/models/config.h"

namespace fcn {

// C x H x W float32 in [0, 1], as stored (palette PNGs expanded to RGB). Errors name the file.
torch::Tensor read_image(const std::string& path);
// Gray -> RGB by replication, RGBA -> RGB dropping alpha, colour -> gray by luminance (BT.601).
torch::Tensor adapt_channels(const torch::Tensor& image, int64_t channels, const std::string& path);
// (x - mean) / std per channel.
torch::Tensor normalize(const torch::Tensor& image, const Normalization& normalization);
// read + adapt + normalize: 1 x channels x H x W, ready for a net.
torch::Tensor load_image(const std::string& path, int64_t channels, const Normalization& normalization);

// Image files named by `inputs`: files as given, folders by their image files (by extension,
// sorted), glob patterns (*, ?, [...]) expanded. Throws fcn::Error naming an input that matches
// nothing.
std::vector<std::string> list_images(const std::vector<std::string>& inputs);

}  // namespace fcn
