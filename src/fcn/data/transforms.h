// Augmentations applied to an image and its mask together (and to its instance ids and per-pixel
// weights when the sample has them): random scale (bilinear for the image, nearest for labels),
// U-Net's random rotation, shift and elastic deformation (one resampling: bicubic for the image,
// nearest for labels, bilinear for weights, mirrored at the borders), random crop (padding the
// image with 0 and the mask with the ignore label), horizontal flip, and a random grey-value
// gamma. Randomness comes from the caller's generator, so a run is reproducible from its seed;
// an augmentation that is off draws no random numbers. Images are 0..1 (a float .npy image may reach
// past it: warps keep its values within their own range, and gamma works over that range).
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
  TORCH_ARG(double, rotate) = 0.0;  // degrees: a uniform angle in [-rotate, rotate]
  TORCH_ARG(double, shift) = 0.0;   // pixels: a uniform shift in [-shift, shift] along each axis
  // U-Net's elastic deformation (section 3.1): displacement vectors drawn on a coarse grid x grid
  // lattice from a Gaussian with `elastic_alpha` pixels standard deviation (the paper: 10 px on
  // 3 x 3), interpolated bicubically to per-pixel displacements. 0: off.
  TORCH_ARG(double, elastic_alpha) = 0.0;
  TORCH_ARG(int64_t, elastic_grid) = 3;
  TORCH_ARG(double, gamma) = 1.0;  // >= 1: intensity^g with log g uniform in [-log gamma, log gamma] (past 0..1: of the values rescaled from their range)
  // nnU-Net's foreground oversampling (its oversample_foreground_percent, 0.33): the share of crops placed on
  // a foreground pixel where the sample has one. A class present other than background 0 and void is
  // drawn, each such class as likely as another (a small tumour as often as a large organ), then a pixel
  // of it, and the crop is centred on that pixel as far as the image allows. Random crops of an image with
  // a small structure rarely hold it. 0: every crop placed at random. In training (fcn::train) it is the
  // share of batch items forced so, class-balanced over the train set: a forced item draws a foreground class
  // among those the train masks hold (each as likely), and where its sample lacks it takes one of the train
  // samples that hold it (most images of a defect or lesion set have none), cropped on it; with or without a crop.
  TORCH_ARG(double, foreground) = 0.0;
  // The class forced crops are centred on where the sample holds it (-1, or not held: one of those present).
  TORCH_ARG(int64_t, foreground_class) = -1;
};

// Throws fcn::Error naming the field (AugmentOptions.crop, ...) for values that mean nothing.
void validate(const AugmentOptions& options);

Sample augment(const Sample& sample, const AugmentOptions& options, std::mt19937_64& rng);

// The sampling grid of one rotation + shift + elastic draw for an H x W map: 1 x H x W x 2
// normalised (x, y) source coordinates for grid_sample (align_corners = true). The identity when
// all three are off.
torch::Tensor warp_grid(int64_t height, int64_t width, const AugmentOptions& options, std::mt19937_64& rng);

struct Batch {
  torch::Tensor images;   // N x C x H x W float
  torch::Tensor masks;    // N x H x W int64
  torch::Tensor weights;  // N x H x W float, or undefined when the samples have none
};
// Stacks same-sized samples; throws fcn::Error naming the ids when sizes differ (use --crop).
Batch collate(const std::vector<Sample>& samples);

}  // namespace fcn
