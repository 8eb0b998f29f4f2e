// The architectures by name. Every net describes itself as a JSON config ({"arch": "fcn",
// "stride": 8, ...}: NetImpl::config() plus its name) and is rebuilt from one by the factory
// registered under that name in registry.cpp, so model files, checkpoints and the CLI hold any net
// without knowing its type. A new architecture is a new file plus one line in that table.
//
// `NetRecipe` is what a user asks for by name (`--arch fcn8s --backbone vgg16-w0.25 ...`): one
// recipe per architecture, so every verb that builds a fresh net builds the same one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "fcn/models/net.h"

namespace fcn {

nlohmann::json net_config(const NetImpl& net);
// A freshly initialised net of this config; fcn::Error naming `context` and the bad key.
std::shared_ptr<NetImpl> build_net(const nlohmann::json& config, const std::string& context = "config");
// The registered architecture names ("classifier", "conv-classifier", "fcn", "unet").
std::vector<std::string> architectures();

struct NetRecipe {
  std::string arch = "fcn8s";       // fcn32s | fcn16s | fcn8s | unet | classifier | torchvision-fcn
  int64_t classes = 0;              // 0: the arch's usual count (FCN 21, U-Net 2, classifier 1000)
  int64_t in_channels = 3;
  std::string backbone = "vgg16";   // FCN, classifier: vgg11|13|16|19 (vgg16_bn: batch norm), alexnet, resnet18|34|50|101|152, resnext50_32x4d, wide_resnet50_2, -wWIDTH
  std::string geometry = "same";    // FCN: same | reference (the Caffe nets; VGG)
  int64_t fc_channels = 0;          // FCN, classifier: fc6/fc7 width; 0 = the backbone's (4096 x width; ResNet: none)
  int64_t fc_kernel = 0;            // FCN: fc6 kernel; 0 = the classifier's k at 224 (VGG 7, AlexNet 6)
  bool frozen_upsampling = false;   // FCN: keep the bilinear upsampling fixed
  bool at_once = false;             // FCN-8s: the reference's at-once skip scaling
  bool aux = false;                 // torchvision-fcn: the auxiliary head on layer3
  int64_t input_size = 224;         // classifier: training input side
  int64_t depth = 4;                // U-Net: poolings
  int64_t base_channels = 64;       // U-Net: channels at full resolution
  std::string padding = "same";     // U-Net: same | valid (the paper)
  std::string upsample = "transposed";  // U-Net: transposed | bilinear
  bool batch_norm = false;          // U-Net
  double dropout = 0.0;             // U-Net: dropout at the end of the contracting path (the paper: 0.5)
};

// A freshly initialised net of the recipe; fcn::Error naming the field ("NetRecipe.arch").
std::shared_ptr<NetImpl> make_net(const NetRecipe& recipe);
// 32, 16 or 8 for "fcn32s", "fcn16s", "fcn8s"; 0 for any other arch name.
int64_t fcn_stride(const std::string& arch);

}  // namespace fcn
