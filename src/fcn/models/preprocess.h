// The one way pixels become a net's input, used by inference, evaluation, training and
// pretraining alike: channels adapted to the net (gray replicated, alpha dropped, colour to
// luminance), then the model's per-channel normalisation (x - mean) / std.
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

namespace fcn {

// Per-channel input normalisation on [0, 1] pixel values: (x - mean) / std.
struct Normalization {
  std::vector<double> mean, std;
};

// C x H x W or N x C x H x W in [0, 1] -> the same with `channels` channels. Gray -> RGB by
// replication, RGBA -> RGB dropping alpha, colour -> gray by luminance (BT.601), gray+alpha -> gray
// (and on to RGB by replication). A .npy image's channels (`source` ending in .npy) are all data, not
// colour: one channel is still replicated, but none is dropped or mixed. A TIFF's samples past its gray or RGB
// (tiff_colour_channels: alpha, or bands) are dropped for a net of 1 or 3 inputs, the colour adapted as above;
// where they are data (channels_are_data), gray and its bands do not fill a 3-input net.
// fcn::Error naming `source` for any other combination.
torch::Tensor adapt_channels(const torch::Tensor& image, int64_t channels, const std::string& source);

// (x - mean) / std per channel (dimension -3).
torch::Tensor normalize(const torch::Tensor& image, const Normalization& normalization);

// adapt_channels + normalize; a C x H x W image gains a batch dimension: N x channels x H x W,
// float32, ready for the net. Errors (empty image, channel counts) name `source`.
torch::Tensor preprocess(const torch::Tensor& image, int64_t channels, const Normalization& normalization,
                         const std::string& source);

}  // namespace fcn
