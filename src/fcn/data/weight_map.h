// U-Net's weight map (Ronneberger, Fischer, Brox 2015, section 3, eq. 2): a per-pixel loss weight
// that makes the net learn the thin background borders between touching objects,
//   w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2)),
// with w_c the class-balancing weight of x's class, d1 and d2 the distances to the nearest and the
// second-nearest object. The border term is applied on background pixels (instance 0), as the
// paper's borders are background; pixels of the void label get weight 0.
#pragma once

#include <torch/arg.h>
#include <torch/types.h>

namespace fcn {

struct WeightMapOptions {
  TORCH_ARG(double, w0) = 10.0;    // the paper: 10
  TORCH_ARG(double, sigma) = 5.0;  // the paper: "approximately 5 pixels"
};

// Throws fcn::Error naming WeightMapOptions unless w0 >= 0 and sigma > 0.
void validate(const WeightMapOptions& options);

// labels: H x W int64 classes (or `ignore`); instances: H x W int64 object ids (0: no object), e.g.
// from a SegmentationObject/ mask or instances_from_labels; class_weights: C floats (w_c; undefined:
// 1 for every class). d_i(x) is the Euclidean distance from x to the nearest pixel of object i
// (exact distance transforms: cost O(objects x pixels)). With fewer than two objects there is no
// border and w = w_c. Returns H x W float32.
torch::Tensor unet_weight_map(const torch::Tensor& labels, const torch::Tensor& instances, const WeightMapOptions& options = {},
                              const torch::Tensor& class_weights = {}, int64_t ignore = 255);

}  // namespace fcn
