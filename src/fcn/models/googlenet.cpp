#include "fcn/models/googlenet.h"

#include <torch/torch.h>

#include "fcn/models/layers.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

torch::Tensor ceil_pool(const torch::Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0) {
  return torch::max_pool2d(x, kernel, stride, padding, 1, true);
}

int64_t ceil_pooled(int64_t side, int64_t kernel, int64_t stride) {  // no padding, ceil mode, as PyTorch
  const int64_t span = side - kernel;
  int64_t out = (span >= 0 ? (span + stride - 1) / stride : -(-span / stride)) + 1;
  if ((out - 1) * stride >= side) --out;  // the last window must start inside the input
  return std::max<int64_t>(out, 0);
}

}  // namespace

BasicConvImpl::BasicConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false)));
  bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(0.001)));
}

torch::Tensor BasicConvImpl::forward(const torch::Tensor& x) { return conv_bn(conv, bn, x, true); }

InceptionImpl::InceptionImpl(int64_t in, int64_t ch1x1, int64_t ch3x3red, int64_t ch3x3, int64_t ch5x5red, int64_t ch5x5,
                             int64_t pool_proj)
    : out_(ch1x1 + ch3x3 + ch5x5 + pool_proj) {
  // torchvision's names: branch1, branch2.{0,1}, branch3.{0,1}, branch4.1 (branch4.0 is the pool).
  branch1 = register_module("branch1", BasicConv(in, ch1x1, 1));
  auto b2 = register_module("branch2", std::make_shared<torch::nn::Module>());
  branch2_reduce = b2->register_module("0", BasicConv(in, ch3x3red, 1));
  branch2 = b2->register_module("1", BasicConv(ch3x3red, ch3x3, 3));
  auto b3 = register_module("branch3", std::make_shared<torch::nn::Module>());
  branch3_reduce = b3->register_module("0", BasicConv(in, ch5x5red, 1));
  branch3 = b3->register_module("1", BasicConv(ch5x5red, ch5x5, 3));  // 3x3, as torchvision (a known deviation)
  auto b4 = register_module("branch4", std::make_shared<torch::nn::Module>());
  branch4 = b4->register_module("1", BasicConv(in, pool_proj, 1));
}

torch::Tensor InceptionImpl::forward(const torch::Tensor& x) {
  return torch::cat({branch1(x), branch2(branch2_reduce(x)), branch3(branch3_reduce(x)), branch4(ceil_pool(x, 3, 1, 1))}, 1);
}

GoogLeNetImpl::GoogLeNetImpl(const BackboneOptions& options_) : BackboneImpl(options_) {
  if (options.layout() == BackboneLayout::kCaffe)
    fail("backbone", backbone_name(options) + " has no Caffe layout (the reference geometry is VGG's)");
  const auto c = [&](int64_t channels) { return scaled_channels(channels, options.width()); };
  conv1 = register_module("conv1", BasicConv(options.in_channels(), c(64), 7, 2));
  conv2 = register_module("conv2", BasicConv(c(64), c(64), 1));
  conv3 = register_module("conv3", BasicConv(c(64), c(192), 3));
  auto add = [&](const char* name, int64_t in, int64_t a, int64_t b, int64_t d, int64_t e, int64_t f, int64_t g) {
    return register_module(name, Inception(in, c(a), c(b), c(d), c(e), c(f), c(g)));
  };
  inception3a = add("inception3a", c(192), 64, 96, 128, 16, 32, 32);
  inception3b = add("inception3b", inception3a->out_channels(), 128, 128, 192, 32, 96, 64);
  inception4a = add("inception4a", inception3b->out_channels(), 192, 96, 208, 16, 48, 64);
  inception4b = add("inception4b", inception4a->out_channels(), 160, 112, 224, 24, 64, 64);
  inception4c = add("inception4c", inception4b->out_channels(), 128, 128, 256, 24, 64, 64);
  inception4d = add("inception4d", inception4c->out_channels(), 112, 144, 288, 32, 64, 64);
  inception4e = add("inception4e", inception4d->out_channels(), 256, 160, 320, 32, 128, 128);
  inception5a = add("inception5a", inception4e->out_channels(), 256, 160, 320, 32, 128, 128);
  inception5b = add("inception5b", inception5a->out_channels(), 384, 192, 384, 48, 128, 128);
}

Features GoogLeNetImpl::forward(const torch::Tensor& input) {
  auto x = input;
  if (options.transform_input()) {
    // torchvision's _transform_input: ImageNet-normalised input re-expressed as (x - 0.5) / 0.5.
    const auto scale = torch::tensor({0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5}, x.options()).view({1, 3, 1, 1});
    const auto shift = torch::tensor({(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5}, x.options()).view({1, 3, 1, 1});
    x = x * scale + shift;
  }
  x = ceil_pool(conv1(x), 3, 2);
  x = ceil_pool(conv3(conv2(x)), 3, 2);
  Features f;
  f.stride8 = inception3b(inception3a(x));
  x = ceil_pool(f.stride8, 3, 2);
  f.stride16 = inception4e(inception4d(inception4c(inception4b(inception4a(x)))));
  f.stride32 = inception5b(inception5a(ceil_pool(f.stride16, 2, 2)));
  return f;
}

int64_t GoogLeNetImpl::channels(int64_t stride) const {
  TORCH_CHECK(stride == 8 || stride == 16 || stride == 32, "GoogLeNet has maps at strides 8, 16, 32, asked for ", stride);
  return (stride == 8 ? inception3b : stride == 16 ? inception4e : inception5b)->out_channels();
}

CoordMap GoogLeNetImpl::coord_map(int64_t stride) const {
  TORCH_CHECK(stride == 8 || stride == 16 || stride == 32, "GoogLeNet has maps at strides 8, 16, 32, asked for ", stride);
  // conv1 7x7/2, pools 3x3/2 (maxpool1-3) and 2x2/2 (maxpool4); every other layer is centred.
  CoordMap map = conv_map(7, 2, 3).then(conv_map(3, 2, 0)).then(conv_map(3, 2, 0));
  if (stride >= 16) map = map.then(conv_map(3, 2, 0));
  if (stride == 32) map = map.then(conv_map(2, 2, 0));
  return map;
}

int64_t GoogLeNetImpl::output_side_of(const BackboneOptions&, int64_t side) {
  side = side < 1 ? 0 : (side - 1) / 2 + 1;  // conv1 7x7/2 pad 3
  for (int i = 0; i < 3; ++i) side = ceil_pooled(side, 3, 2);
  return ceil_pooled(side, 2, 2);
}

void GoogLeNetImpl::pretty_print(std::ostream& stream) const {
  stream << "fcn::GoogLeNet(" << backbone_name(options) << ", in_channels=" << options.in_channels()
         << (options.transform_input() ? ", transform_input" : "") << ")";
}

}  // namespace fcn
