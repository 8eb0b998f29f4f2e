#include "fcn/models/backbone.h"

#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/init.h"
#include "fcn/models/layers.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

// Convs per block for torchvision's cfgs A (vgg11), B (vgg13), D (vgg16), E (vgg19).
std::vector<int> convs_per_block(int64_t depth) {
  switch (depth) {
    case 11: return {1, 1, 2, 2, 2};
    case 13: return {2, 2, 2, 2, 2};
    case 16: return {2, 2, 3, 3, 3};
    case 19: return {2, 2, 4, 4, 4};
    default: fail("backbone", "VGG depth " + std::to_string(depth) + " is not one of 11, 13, 16, 19");
  }
}

constexpr int64_t kBlockChannels[5] = {64, 128, 256, 512, 512};

int64_t scaled(int64_t channels, double width) {
  return std::max<int64_t>(1, std::llround(static_cast<double>(channels) * width));
}

}  // namespace

VGGOptions parse_backbone(const std::string& name) {
  VGGOptions options;
  std::string rest = name;
  if (rest.rfind("vgg", 0) != 0) fail("backbone", "'" + name + "' is not a VGG name like vgg16 or vgg16-w0.25");
  rest = rest.substr(3);
  const auto dash = rest.find("-w");
  try {
    size_t used = 0;
    options.depth(std::stoi(rest.substr(0, dash), &used));
    if (used != (dash == std::string::npos ? rest.size() : dash)) throw std::invalid_argument(name);
    if (dash != std::string::npos) {
      const std::string width = rest.substr(dash + 2);
      options.width(std::stod(width, &used));
      if (used != width.size() || !(options.width() > 0) || options.width() > 4) throw std::invalid_argument(name);
    }
  } catch (const std::logic_error&) {
    fail("backbone", "'" + name + "' is not a VGG name like vgg16 or vgg16-w0.25 (width in (0, 4])");
  }
  convs_per_block(options.depth());  // validates the depth
  return options;
}

std::string backbone_name(const VGGOptions& options) {
  std::ostringstream out;
  out << "vgg" << options.depth();
  if (options.width() != 1.0) out << "-w" << options.width();
  return out.str();
}

nlohmann::json backbone_config(const VGGOptions& options) {
  return {{"name", backbone_name(options)}, {"in_channels", options.in_channels()}};
}

VGGOptions backbone_from_config(const nlohmann::json& config) {
  auto options = parse_backbone(config.at("name").get<std::string>());
  options.in_channels(config.at("in_channels").get<int64_t>());
  if (options.in_channels() < 1) fail("backbone.in_channels", "must be positive");
  return options;
}

VGGImpl::VGGImpl(const VGGOptions& options_) : options(options_) {
  const auto blocks = convs_per_block(options.depth());
  int64_t in = options.in_channels();
  int64_t torchvision_index = 0;  // torchvision: conv, relu, conv, relu, ..., pool
  for (int b = 0; b < 5; ++b) {
    const int64_t out = scaled(kBlockChannels[b], options.width());
    for (int i = 0; i < blocks[b]; ++i) {
      const int64_t padding = (b == 0 && i == 0) ? options.first_padding() : 1;
      const std::string name = "conv" + std::to_string(b + 1) + "_" + std::to_string(i + 1);
      auto layer = register_module(name, torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(padding)));
      init_kaiming(layer);
      convs_.push_back({name, torchvision_index, layer});
      torchvision_index += 2;
      in = out;
    }
    block_ends_.push_back(static_cast<int>(convs_.size()) - 1);
    torchvision_index += 1;
  }
}

int64_t VGGImpl::channels(int pool) const {
  TORCH_CHECK(pool >= 1 && pool <= 5, "VGG has pools 1..5, asked for ", pool);
  return scaled(kBlockChannels[pool - 1], options.width());
}

CoordMap VGGImpl::coord_map(int pool) const {
  TORCH_CHECK(pool >= 1 && pool <= 5, "VGG has pools 1..5, asked for ", pool);
  CoordMap map;
  size_t block = 0;
  for (size_t i = 0; i < convs_.size() && static_cast<int>(block) < pool; ++i) {
    const auto& o = convs_[i].conv->options;
    map = map.then(conv_map((*o.kernel_size())[0], (*o.stride())[0], (*c10::get<torch::ExpandingArray<2>>(o.padding()))[0]));
    if (static_cast<int>(i) == block_ends_[block]) {
      map = map.then(conv_map(2, 2, 0));  // max-pool 2x2 stride 2 (ceil mode moves no centre)
      ++block;
    }
  }
  return map;
}

void VGGImpl::pretty_print(std::ostream& stream) const {
  stream << "fcn::VGG(" << backbone_name(options) << ", in_channels=" << options.in_channels()
         << ", first_padding=" << options.first_padding() << (options.ceil_mode() ? ", ceil_mode" : "") << ")";
}

VGGFeatures VGGImpl::forward(const torch::Tensor& input) {
  VGGFeatures features;
  torch::Tensor x = input;
  size_t block = 0;
  for (size_t i = 0; i < convs_.size(); ++i) {
    x = conv(convs_[i].conv, x).relu_();
    if (static_cast<int>(i) == block_ends_[block]) {
      x = torch::max_pool2d(x, 2, 2, 0, 1, options.ceil_mode());
      if (block == 2) features.pool3 = x;
      if (block == 3) features.pool4 = x;
      ++block;
    }
  }
  features.pool5 = x;
  return features;
}

}  // namespace fcn
