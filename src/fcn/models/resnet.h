// ResNet backbone (He et al.), as torchvision's resnet18/34/50/101/152, resnext and wide_resnet (v1.5: the stride of a
// bottleneck on its 3x3 conv) with the same module names (conv1, bn1, layer1.0.conv1, ...,
// layerN.0.downsample.{0,1}), so torchvision weights import by name; a width multiplier scales
// every stage. Taps: layer2 (stride 8), layer3 (16), layer4 (32). Its classifier head is a global
// average pool and one dense layer (no fc6/fc7), so an FCN scores layer4 directly. With
// output_stride 8, layer3 and layer4 are dilated instead of strided (torchvision's segmentation nets).
#pragma once

#include <vector>

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>

#include "fcn/models/backbone.h"

namespace fcn {

// One residual block: BasicBlock (two 3x3 convs) or Bottleneck (1x1, 3x3, 1x1 with 4x expansion), the bottleneck's
// inner convs `inner` channels wide (planes for ResNet, wider for ResNeXt and Wide ResNet) and its 3x3 in `groups`.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t in, int64_t planes, int64_t stride, bool bottleneck, int64_t expansion_channels,
                    int64_t dilation = 1, int64_t inner = 0, int64_t groups = 1);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  // torchvision's downsample.0 (1x1 conv) and downsample.1 (batch norm), empty when the block keeps its shape.
  torch::nn::Conv2d downsample_conv{nullptr};
  torch::nn::BatchNorm2d downsample_bn{nullptr};
};
TORCH_MODULE(ResidualBlock);

class ResNetImpl : public BackboneImpl {
 public:
  explicit ResNetImpl(const BackboneOptions& options = BackboneOptions().family(BackboneFamily::kResNet).depth(50));
  Features forward(const torch::Tensor& x) override;
  int64_t channels(int64_t stride) const override;
  CoordMap coord_map(int64_t stride) const override;
  void pretty_print(std::ostream& stream) const override;
  static int64_t output_side_of(const BackboneOptions& options, int64_t input_side);

  bool bottleneck() const { return options.depth() >= 50; }

  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  std::vector<std::vector<ResidualBlock>> layers;  // layer1 .. layer4

 private:
  torch::Tensor stage(size_t index, torch::Tensor x);
};

}  // namespace fcn
