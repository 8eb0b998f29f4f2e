// The convolutionalization picture (FCN paper, figure 2): a classifier made fully convolutional
// and run on an image larger than its training size gives, per position, the class scores of the
// window there: a coarse heat map of where a class is.
#pragma once

#include <string>

#include <torch/types.h>

#include "fcn/models/model.h"

namespace fcn {

struct Heatmap {
  torch::Tensor coarse;  // h x w probability of the class per window (stride 32)
  torch::Tensor full;    // H x W: `coarse` upsampled bilinearly to the image
};

// model: a classifier (convolutionalized here, same weights), a convolutionalized classifier, or a
// segmentation net. image: C x H x W in [0, 1]. Errors name `source`.
Heatmap class_heatmap(const Model& model, const torch::Tensor& image, int64_t class_index, const std::string& source);

// The heat map (colour mapped, 0 dark blue .. 1 yellow) blended over the image: H x W x 3 uint8.
torch::Tensor heatmap_picture(const torch::Tensor& image, const torch::Tensor& full, double alpha = 0.6);

// Index of a class given by name (or by number); fcn::Error listing the names otherwise.
int64_t class_index(const ModelMeta& meta, const std::string& name);

}  // namespace fcn
