#include "fcn/models/vgg.h"

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

int64_t first_padding(const BackboneOptions& options) { return options.layout() == BackboneLayout::kCaffe ? 100 : 1; }

int64_t pool_index(int64_t stride) {
  TORCH_CHECK(stride == 8 || stride == 16 || stride == 32, "VGG has maps at strides 8, 16, 32, asked for ", stride);
  return stride == 8 ? 3 : stride == 16 ? 4 : 5;
}

}  // namespace

VGGImpl::VGGImpl(const BackboneOptions& options_) : BackboneImpl(options_) {
  const auto blocks = convs_per_block(options.depth());
  int64_t in = options.in_channels();
  int64_t torchvision_index = 0;  // torchvision: conv, (batch norm,) relu, conv, ..., pool
  for (int b = 0; b < 5; ++b) {
    const int64_t out = scaled_channels(kBlockChannels[b], options.width());
    for (int i = 0; i < blocks[b]; ++i) {
      const int64_t padding = (b == 0 && i == 0) ? first_padding(options) : 1;
      const std::string suffix = std::to_string(b + 1) + "_" + std::to_string(i + 1);
      auto layer = register_module("conv" + suffix, torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(padding)));
      init_kaiming(layer);
      convs_.push_back({"conv" + suffix, torchvision_index, layer});
      if (options.batch_norm()) convs_.back().bn = register_module("bn" + suffix, torch::nn::BatchNorm2d(out));
      torchvision_index += options.batch_norm() ? 3 : 2;
      in = out;
    }
    block_ends_.push_back(static_cast<int>(convs_.size()) - 1);
    torchvision_index += 1;
  }
}

int64_t VGGImpl::channels(int64_t stride) const { return scaled_channels(kBlockChannels[pool_index(stride) - 1], options.width()); }

CoordMap VGGImpl::coord_map(int64_t stride) const {
  const int64_t pool = pool_index(stride);
  CoordMap map;
  size_t block = 0;
  for (size_t i = 0; i < convs_.size() && static_cast<int64_t>(block) < pool; ++i) {
    const auto& o = convs_[i].conv->options;
    map = map.then(conv_map((*o.kernel_size())[0], (*o.stride())[0], explicit_padding(o)->at(0)));
    if (static_cast<int>(i) == block_ends_[block]) {
      map = map.then(conv_map(2, 2, 0));  // max-pool 2x2 stride 2 (ceil mode moves no centre)
      ++block;
    }
  }
  return map;
}

int64_t VGGImpl::output_side_of(const BackboneOptions& options, int64_t side) {
  side += 2 * first_padding(options) - 2;  // conv1_1; every other 3x3 conv keeps the side
  for (int pool = 0; pool < 5; ++pool) side = options.layout() == BackboneLayout::kCaffe ? (side + 1) / 2 : side / 2;
  return std::max<int64_t>(side, 0);
}

void VGGImpl::pretty_print(std::ostream& stream) const {
  stream << "fcn::VGG(" << backbone_name(options) << ", in_channels=" << options.in_channels()
         << ", first_padding=" << first_padding(options) << (ceil_mode() ? ", ceil_mode" : "") << ")";
}

Features VGGImpl::forward(const torch::Tensor& input) {
  Features features;
  torch::Tensor x = input;
  size_t block = 0;
  for (size_t i = 0; i < convs_.size(); ++i) {
    const bool pool = static_cast<int>(i) == block_ends_[block];
    if (convs_[i].bn) {  // torchvision's order: conv, batch norm, relu (, pool)
      x = conv_bn(convs_[i].conv, convs_[i].bn, x, true);
      if (pool) x = torch::max_pool2d(x, 2, 2, 0, 1, ceil_mode());
    } else {
      x = pool ? conv_relu_pool(convs_[i].conv, x, MaxPool{2, 2, 0, ceil_mode()}) : conv_relu(convs_[i].conv, x);
    }
    if (pool) {
      if (block == 2) features.stride8 = x;
      if (block == 3) features.stride16 = x;
      ++block;
    }
  }
  features.stride32 = x;
  return features;
}

}  // namespace fcn
