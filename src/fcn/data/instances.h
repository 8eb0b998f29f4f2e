// Object instances in label maps, for U-Net's border weights (data/weight_map.h) and the
// touching-objects separation score (eval/separation.h): connected components, instances from
// class labels where a dataset gives none, and the exact Euclidean distance transform.
#pragma once

#include <torch/types.h>

namespace fcn {

// Connected components of a boolean H x W mask, 4- or 8-connected: H x W int64 with 0 outside the
// mask and 1..K inside, numbered in raster order of each component's first pixel.
torch::Tensor connected_components(const torch::Tensor& mask, int connectivity = 4);

// Instances from class labels alone: the connected components (4-connected unless said) of each
// class other than background (0) and `ignore`, numbered 1..K over all classes (class by class, in
// raster order within each). Touching objects of one class become one instance, so their border
// gets no weight: give instance masks where objects touch. fcn predict --instances counts objects
// this way, 8-connected.
torch::Tensor instances_from_labels(const torch::Tensor& labels, int64_t ignore = 255, int connectivity = 4);

// For every pixel of an H x W boolean mask, the Euclidean distance to the nearest true pixel
// (0 on the mask): exact, in linear time (Felzenszwalb & Huttenlocher, "Distance Transforms of
// Sampled Functions", 2012). An empty mask gives +infinity everywhere. H x W float32.
torch::Tensor distance_transform(const torch::Tensor& mask);

}  // namespace fcn
