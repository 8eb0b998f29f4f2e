// VGG backbone (Simonyan & Zisserman), the FCN paper's VGG16: laid out as torchvision's
// vgg11/13/16/19 `features` (weights import by index), its convs named as in the paper (conv1_1 ..
// conv5_3); as torchvision's vgg*_bn, a batch norm after each conv (bn1_1 ..). Layouts: kClassifier =
// kSame (3x3 convs padded by 1, floor pools); kCaffe (conv1_1 padded by 100 so any input, even 1x1,
// survives five pools; pools that round up).
#pragma once

#include <string>
#include <vector>

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>

#include "fcn/models/backbone.h"

namespace fcn {

class VGGImpl : public BackboneImpl {
 public:
  explicit VGGImpl(const BackboneOptions& options = {});
  // pool3 (stride 8), pool4 (16), pool5 (32).
  Features forward(const torch::Tensor& x) override;
  int64_t channels(int64_t stride) const override;
  CoordMap coord_map(int64_t stride) const override;
  void pretty_print(std::ostream& stream) const override;
  static int64_t output_side_of(const BackboneOptions& options, int64_t input_side);

  // Conv layers in order, named as in the paper ("conv1_1" ... "conv5_3"), each with the index
  // it has in torchvision's `features` Sequential (for weight import).
  // With batch norm, the conv's BatchNorm2d ("bn1_1" ...), at torchvision_index + 1.
  struct NamedConv {
    std::string name;
    int64_t torchvision_index;
    torch::nn::Conv2d conv;
    torch::nn::BatchNorm2d bn{nullptr};
  };
  const std::vector<NamedConv>& convs() const { return convs_; }
  bool ceil_mode() const { return options.layout() == BackboneLayout::kCaffe; }

 private:
  std::vector<NamedConv> convs_;
  std::vector<int> block_ends_;  // index into convs_ after which a max-pool follows
};

}  // namespace fcn
