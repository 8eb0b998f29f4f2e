#include "fcn/models/resnet.h"

#include <torch/torch.h>

#include "fcn/models/layers.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

std::vector<int64_t> blocks_per_stage(int64_t depth) {
  switch (depth) {
    case 18: return {2, 2, 2, 2};
    case 34: return {3, 4, 6, 3};
    case 50: return {3, 4, 6, 3};
    case 101: return {3, 4, 23, 3};
    case 152: return {3, 8, 36, 3};
    default: fail("backbone", "ResNet depth " + std::to_string(depth) + " is not one of 18, 34, 50, 101, 152");
  }
}

torch::nn::Conv2d conv_layer(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t dilation = 1, int64_t groups = 1) {
  torch::nn::Conv2d layer(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(dilation * (kernel / 2)).dilation(dilation).groups(groups).bias(false));
  // torchvision's init: Kaiming-normal, fan-out, ReLU.
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(layer->weight, 0.0, torch::kFanOut, torch::kReLU);
  return layer;
}

int64_t halved(int64_t side) { return side < 1 ? 0 : (side - 1) / 2 + 1; }  // k3 s2 p1, k7 s2 p3, k1 s2 p0

constexpr int64_t kStagePlanes[4] = {64, 128, 256, 512};

}  // namespace

ResidualBlockImpl::ResidualBlockImpl(int64_t in, int64_t planes, int64_t stride, bool bottleneck, int64_t out, int64_t dilation,
                                     int64_t inner, int64_t groups) {
  if (dilation > 1 && !bottleneck) fail("backbone", "dilation is for bottleneck ResNets (50, 101, 152), as in torchvision");
  if (bottleneck) {
    if (inner <= 0) inner = planes;
    conv1 = register_module("conv1", conv_layer(in, inner, 1, 1));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(inner));
    conv2 = register_module("conv2", conv_layer(inner, inner, 3, stride, dilation, groups));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(inner));
    conv3 = register_module("conv3", conv_layer(inner, out, 1, 1));
    bn3 = register_module("bn3", torch::nn::BatchNorm2d(out));
  } else {
    conv1 = register_module("conv1", conv_layer(in, planes, 3, stride));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", conv_layer(planes, out, 3, 1));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(out));
  }
  if (stride != 1 || in != out) {
    auto downsample = register_module("downsample", std::make_shared<torch::nn::Module>());
    downsample_conv = downsample->register_module("0", conv_layer(in, out, 1, stride));
    downsample_bn = downsample->register_module("1", torch::nn::BatchNorm2d(out));
  }
}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) {
  auto y = conv_bn(conv1, bn1, x, true);
  y = conv_bn(conv2, bn2, y, !conv3.is_empty());
  if (!conv3.is_empty()) y = conv_bn(conv3, bn3, y);
  const auto identity = downsample_conv.is_empty() ? x : conv_bn(downsample_conv, downsample_bn, x);
  // In inference the sum goes into y, the block's own fresh output: one map fewer to allocate and write.
  return relu_in_place(torch::GradMode::is_enabled() ? y + identity : y.add_(identity));
}

ResNetImpl::ResNetImpl(const BackboneOptions& options_) : BackboneImpl(options_) {
  if (options.layout() == BackboneLayout::kCaffe)
    fail("backbone", backbone_name(options) + " has no Caffe layout (the reference geometry is VGG's and AlexNet's)");
  const auto blocks = blocks_per_stage(options.depth());
  if (options.output_stride() != 32 && options.output_stride() != 8)
    fail("backbone", "output stride " + std::to_string(options.output_stride()) + " is not 32 or 8");
  if (options.output_stride() == 8 && !bottleneck()) fail("backbone", backbone_name(options) + " cannot dilate (torchvision: 50, 101, 152)");
  if (options.groups() < 1 || options.width_per_group() < 1 || options.width_per_group() * options.groups() > 65536 ||
      (options.groups() == 1 && options.width_per_group() % 64 != 0))
    fail("backbone", "groups " + std::to_string(options.groups()) + " x width per group " + std::to_string(options.width_per_group()) + " is out of range");
  if (!bottleneck() && (options.groups() != 1 || options.width_per_group() != 64))
    fail("backbone", "groups and width per group are for bottleneck ResNets (50, 101, 152), as in torchvision");
  const int64_t stem = scaled_channels(64, options.width());
  conv1 = register_module("conv1", conv_layer(options.in_channels(), stem, 7, 2));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(stem));
  int64_t in = stem;
  const int64_t expansion = bottleneck() ? 4 : 1;
  int64_t dilation = 1;
  for (size_t s = 0; s < 4; ++s) {
    auto holder = register_module("layer" + std::to_string(s + 1), std::make_shared<torch::nn::Module>());
    layers.emplace_back();
    const int64_t planes = scaled_channels(kStagePlanes[s], options.width());
    // torchvision's Bottleneck: int(planes * width_per_group / 64) * groups inner channels (at least one a group, for
    // the narrow nets a width multiplier makes).
    const int64_t inner = std::max<int64_t>(1, planes * options.width_per_group() / 64) * options.groups();
    // torchvision's _make_layer: a dilated stage keeps stride 1; its first block uses the old dilation.
    int64_t stride = s > 0 ? 2 : 1;
    const int64_t first_dilation = dilation;
    if (options.output_stride() == 8 && s >= 2) {
      dilation *= stride;
      stride = 1;
    }
    for (int64_t b = 0; b < blocks[s]; ++b) {
      auto block = ResidualBlock(in, planes, b == 0 ? stride : 1, bottleneck(), planes * expansion, b == 0 ? first_dilation : dilation,
                                 inner, options.groups());
      layers.back().push_back(holder->register_module(std::to_string(b), block));
      in = planes * expansion;
    }
  }
}

torch::Tensor ResNetImpl::stage(size_t index, torch::Tensor x) {
  for (auto& block : layers[index]) x = block->forward(x);
  return x;
}

Features ResNetImpl::forward(const torch::Tensor& input) {
  auto x = torch::max_pool2d(conv_bn(conv1, bn1, input, true), 3, 2, 1);
  x = stage(0, x);
  Features f;
  f.stride8 = stage(1, x);
  f.stride16 = stage(2, f.stride8);
  f.stride32 = stage(3, f.stride16);
  return f;
}

int64_t ResNetImpl::channels(int64_t stride) const {
  TORCH_CHECK(stride == 8 || stride == 16 || stride == 32, "ResNet has maps at strides 8, 16, 32, asked for ", stride);
  const size_t s = stride == 8 ? 1 : stride == 16 ? 2 : 3;
  return scaled_channels(kStagePlanes[s], options.width()) * (bottleneck() ? 4 : 1);
}

CoordMap ResNetImpl::coord_map(int64_t stride) const {
  TORCH_CHECK(stride == 8 || stride == 16 || stride == 32, "ResNet has maps at strides 8, 16, 32, asked for ", stride);
  // conv1 7x7/2 pad 3 and the 3x3/2 max-pool pad 1, then one 3x3/2 (or 1x1/2) per stage: all centred on 0.
  CoordMap map = conv_map(7, 2, 3).then(conv_map(3, 2, 1));
  for (int64_t s = 8; s <= std::min(stride, options.output_stride()); s *= 2) map = map.then(conv_map(3, 2, 1));
  return map;  // dilated stages keep the grid
}

int64_t ResNetImpl::output_side_of(const BackboneOptions& options, int64_t side) {
  for (int i = 0; i < (options.output_stride() == 8 ? 3 : 5); ++i) side = halved(side);
  return side;
}

void ResNetImpl::pretty_print(std::ostream& stream) const {
  stream << "fcn::ResNet(" << backbone_name(options) << ", in_channels=" << options.in_channels()
         << (bottleneck() ? ", bottleneck" : ", basic") << (options.output_stride() == 8 ? ", dilated to stride 8" : "") << ")";
}

}  // namespace fcn
