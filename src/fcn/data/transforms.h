// Augmentations applied to an image and its mask together: random scale (bilinear for the image,
// nearest for the mask, always), random crop (padding the image with 0 and the mask with the
// ignore label), horizontal flip. Randomness comes from the caller's generator, so a run is
// reproducible from its seed.
#pragma once

#include <random>
#include <vector>

#include <torch/arg.h>

#include "fcn/data/dataset.h"

namespace fcn {

struct AugmentOptions {
  TORCH_ARG(double, min_scale) = 1.0;
  TORCH_ARG(double, max_scale) = 1.0;
  TORCH_ARG(int64_t, crop) = 0;  // 0: keep the (scaled) size
  TORCH_ARG(bool, flip) = false;
};

Sample augment(const Sample& sample, const AugmentOptions& options, std::mt19937_64& rng);

struct Batch {
  torch::Tensor images;  // N x C x H x W float
  torch::Tensor masks;   // N x H x W int64
};
// Stacks same-sized samples; throws fcn::Error naming the ids when sizes differ (use --crop).
Batch collate(const std::vector<Sample>& samples);

}  // namespace fcn
