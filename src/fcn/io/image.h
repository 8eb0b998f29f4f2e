// Images in and out of the nets (OpenCV; built only with FCN_WITH_OPENCV). Reads 8/16-bit
// grayscale, RGB and RGBA files into the float N x C x H x W tensors a model expects.
#pragma once

#include <string>

#include <torch/types.h>

#include "fcn/models/config.h"

namespace fcn {

// 1 x channels x H x W float32, (pixel/max - mean) / std. Channels are adapted: gray -> RGB by
// replication, RGBA -> RGB by dropping alpha, colour -> gray by luminance. Errors name the file.
torch::Tensor load_image(const std::string& path, int64_t channels, const Normalization& normalization);

}  // namespace fcn
