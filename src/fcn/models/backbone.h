// VGG backbone (Simonyan & Zisserman), laid out exactly as torchvision's vgg11/13/16/19 `features`
// (so its weights import), with a width multiplier and input-channel count for small variants,
// and the Caffe-FCN geometry switches (conv1_1 padding 100, pools that round up).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <nlohmann/json_fwd.hpp>
#include <torch/nn/modules/conv.h>

#include "fcn/models/coord_map.h"

namespace fcn {

struct VGGOptions {
  TORCH_ARG(int64_t, depth) = 16;        // 11, 13, 16 or 19 weight layers (torchvision A, B, D, E)
  TORCH_ARG(double, width) = 1.0;        // channel multiplier: 0.25 gives 16-32-64-128-128
  TORCH_ARG(int64_t, in_channels) = 3;
  TORCH_ARG(int64_t, first_padding) = 1; // Caffe FCN: 100, so any input (even 1x1) survives 5 pools
  TORCH_ARG(bool, ceil_mode) = false;    // Caffe's pooling rounds up
};

// "vgg16", "vgg11", "vgg16-w0.25", ... <-> options (depth and width only).
VGGOptions parse_backbone(const std::string& name);
std::string backbone_name(const VGGOptions& options);
// {"name": "vgg16-w0.25", "in_channels": 3} <-> options, as model configs store a backbone.
nlohmann::json backbone_config(const VGGOptions& options);
VGGOptions backbone_from_config(const nlohmann::json& config);

// The three maps FCN's skips read: after pool3 (stride 8), pool4 (16) and pool5 (32).
struct VGGFeatures {
  torch::Tensor pool3, pool4, pool5;
};

class VGGImpl : public torch::nn::Module {
 public:
  explicit VGGImpl(const VGGOptions& options = {});
  VGGFeatures forward(const torch::Tensor& x);

  // Channels of pool3, pool4 and pool5.
  int64_t channels(int pool) const;
  // Where pool3/4/5 (pool = 3, 4, 5) pixels sit on the input, from the layers' kernels, strides
  // and paddings (coord_map.h).
  CoordMap coord_map(int pool) const;
  void pretty_print(std::ostream& stream) const override;
  // Conv layers in order, named as in the paper ("conv1_1" ... "conv5_3"), each with the index
  // it has in torchvision's `features` Sequential (for weight import).
  struct NamedConv {
    std::string name;
    int64_t torchvision_index;
    torch::nn::Conv2d conv;
  };
  const std::vector<NamedConv>& convs() const { return convs_; }

  VGGOptions options;

 private:
  std::vector<NamedConv> convs_;
  std::vector<int> block_ends_;  // index into convs_ after which a max-pool follows
};
TORCH_MODULE(VGG);

}  // namespace fcn
