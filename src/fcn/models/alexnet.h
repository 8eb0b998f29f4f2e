// AlexNet backbone (Krizhevsky et al.), one of the FCN paper's three classifiers (FCN-AlexNet),
// laid out exactly as torchvision's `alexnet().features` (convs at indices 0, 3, 6, 8, 10, max-pools
// at 2, 5, 12) so its weights import by name, with a width multiplier and input-channel count.
// Taps: pool1 (stride 8), pool2 (16), pool5 (32). Layouts: kClassifier is torchvision's (conv1
// padded by 2, 3x3/2 pools); kSame pads conv1 by 5 and the pools by 1, so the maps are input / 8,
// / 16, / 32 for multiples of 32. No kCaffe: see alexnet.cpp.
#pragma once

#include <torch/nn/modules/conv.h>

#include "fcn/models/backbone.h"

namespace fcn {

class AlexNetImpl : public BackboneImpl {
 public:
  explicit AlexNetImpl(const BackboneOptions& options = BackboneOptions().family(BackboneFamily::kAlexNet));
  Features forward(const torch::Tensor& x) override;
  int64_t channels(int64_t stride) const override;
  CoordMap coord_map(int64_t stride) const override;
  void pretty_print(std::ostream& stream) const override;
  static int64_t output_side_of(const BackboneOptions& options, int64_t input_side);

  // torchvision's names: features.0 (conv1) .. features.10 (conv5).
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr}, conv4{nullptr}, conv5{nullptr};
};

}  // namespace fcn
