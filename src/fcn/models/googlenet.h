// GoogLeNet backbone (Szegedy et al.), one of the FCN paper's three classifiers (FCN-GoogLeNet),
// laid out as torchvision's `googlenet` (BasicConv2d = conv + batch norm (eps 0.001) + ReLU,
// inception3a .. inception5b, torchvision's names), with a width multiplier and torchvision's
// optional transform_input (its pretrained weights expect it). Taps: inception3b (stride 8), 4e (16)
// and 5b (32). As in the paper, the auxiliary heads are dropped and the final average pool with them:
// an FCN scores inception5b with a 1x1 conv. torchvision's layout is already exact for multiples of 32.
#pragma once

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>

#include "fcn/models/backbone.h"

namespace fcn {

// torchvision's BasicConv2d.
class BasicConvImpl : public torch::nn::Module {
 public:
  BasicConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(BasicConv);

// torchvision's Inception block: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 (torchvision's "5x5") | pool -> 1x1.
class InceptionImpl : public torch::nn::Module {
 public:
  InceptionImpl(int64_t in, int64_t ch1x1, int64_t ch3x3red, int64_t ch3x3, int64_t ch5x5red, int64_t ch5x5, int64_t pool_proj);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t out_channels() const { return out_; }
  BasicConv branch1{nullptr}, branch2_reduce{nullptr}, branch2{nullptr}, branch3_reduce{nullptr}, branch3{nullptr}, branch4{nullptr};

 private:
  int64_t out_ = 0;
};
TORCH_MODULE(Inception);

class GoogLeNetImpl : public BackboneImpl {
 public:
  explicit GoogLeNetImpl(const BackboneOptions& options = BackboneOptions().family(BackboneFamily::kGoogLeNet).depth(22));
  Features forward(const torch::Tensor& x) override;
  int64_t channels(int64_t stride) const override;
  CoordMap coord_map(int64_t stride) const override;
  void pretty_print(std::ostream& stream) const override;
  static int64_t output_side_of(const BackboneOptions& options, int64_t input_side);

  BasicConv conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  Inception inception3a{nullptr}, inception3b{nullptr}, inception4a{nullptr}, inception4b{nullptr}, inception4c{nullptr},
      inception4d{nullptr}, inception4e{nullptr}, inception5a{nullptr}, inception5b{nullptr};
};

}  // namespace fcn
