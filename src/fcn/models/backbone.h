// Backbones: the classifiers FCN turns into segmenters (the paper's VGG16 and AlexNet; ResNet, as
// torchvision's fcn_resnet50 uses). A backbone yields feature maps at strides 8, 16 and 32 (the
// maps FCN's skips read), their channel counts and where their pixels sit on the input; each keeps
// torchvision's module layout and parameter names so its weights import, and takes a width
// multiplier and an input-channel count for small variants ("alexnet-w0.25", "resnet18-w0.5").
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>
#include <torch/arg.h>
#include <torch/nn/module.h>

#include "fcn/models/coord_map.h"

namespace fcn {

enum class BackboneFamily { kVGG, kAlexNet, kResNet, kGoogLeNet };

// How the first conv and the pools are padded. kClassifier is torchvision's classifier; kSame
// makes every stride-s map exactly input / s for inputs that are multiples of 32 (FCN's same
// geometry); kCaffe is the Caffe FCN nets' (conv1 padding 100, pools that round up).
enum class BackboneLayout { kClassifier, kSame, kCaffe };

struct BackboneOptions {
  TORCH_ARG(BackboneFamily, family) = BackboneFamily::kVGG;
  TORCH_ARG(int64_t, depth) = 16;   // VGG: 11, 13, 16, 19 weight layers; ResNet: 18, 34, 50, 101, 152; AlexNet: 8
  TORCH_ARG(double, width) = 1.0;   // channel multiplier: VGG16 at 0.25 gives 16-32-64-128-128
  TORCH_ARG(int64_t, in_channels) = 3;
  TORCH_ARG(BackboneLayout, layout) = BackboneLayout::kClassifier;
  // 32, or 8 for a ResNet-50/101 whose layer3 and layer4 trade their stride for dilation (2, 4),
  // as torchvision's segmentation nets do (replace_stride_with_dilation=[False, True, True]).
  TORCH_ARG(int64_t, output_stride) = 32;
  // GoogLeNet: torchvision's transform_input (ImageNet-normalised input re-expressed as (x - 0.5) / 0.5).
  TORCH_ARG(bool, transform_input) = false;
  // VGG: a batch norm after every conv, as torchvision's vgg11_bn ... vgg19_bn ("vgg16_bn", "vgg16_bn-w0.25").
  TORCH_ARG(bool, batch_norm) = false;
  // Bottleneck ResNets: the 3x3 conv's groups and channels per group at 64 planes (torchvision's groups and
  // width_per_group): 1 and 64 are ResNet's, 32 and 4 ResNeXt-50 32x4d's ("resnext50_32x4d"), 1 and 128 Wide
  // ResNet-50-2's ("wide_resnet50_2").
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(int64_t, width_per_group) = 64;
};

// Whether the family's classifier has fc6/fc7 over a k x k window (VGG, AlexNet) or a global pool
// and one dense layer (ResNet, GoogLeNet).
bool has_fc_head(BackboneFamily family);

// "vgg16", "vgg16-w0.25", "vgg16_bn", "alexnet", "alexnet-w0.5", "resnet50", "resnet18-w0.25", "resnext50_32x4d",
// "wide_resnet50_2", "googlenet" <-> options (family, depth, batch norm, groups, width per group, width). fcn::Error (subject "backbone") for anything else.
BackboneOptions parse_backbone(const std::string& name);
std::string backbone_name(const BackboneOptions& options);
// {"name": "vgg16-w0.25", "in_channels": 3} <-> options, as model configs store a backbone.
nlohmann::json backbone_config(const BackboneOptions& options);
BackboneOptions backbone_from_config(const nlohmann::json& config);

// A channel count scaled by the width multiplier (at least 1).
int64_t scaled_channels(int64_t channels, double width);

// The maps FCN's skips read: VGG's pool3, pool4, pool5; AlexNet's pool1, pool2, pool5; ResNet's
// layer2, layer3, layer4.
struct Features {
  torch::Tensor stride8, stride16, stride32;
};

class BackboneImpl : public torch::nn::Module {
 public:
  explicit BackboneImpl(const BackboneOptions& options) : options(options) {}
  virtual Features forward(const torch::Tensor& x) = 0;
  // Channels of the stride-8, -16 and -32 maps.
  virtual int64_t channels(int64_t stride) const = 0;
  // Where the stride-s map's pixels sit on the input, from the layers' kernels, strides and paddings.
  virtual CoordMap coord_map(int64_t stride) const = 0;
  // Side of the last (stride-32, or output_stride) map for an input side (0 when the input is too small).
  int64_t output_side(int64_t input_side) const;

  BackboneOptions options;
};

// The backbone of these options (the family's class); fcn::Error for a layout the family lacks.
std::shared_ptr<BackboneImpl> make_backbone(const BackboneOptions& options);
// output_side of that backbone without building it.
int64_t backbone_output_side(const BackboneOptions& options, int64_t input_side);

}  // namespace fcn
