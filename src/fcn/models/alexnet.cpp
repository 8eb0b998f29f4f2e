#include "fcn/models/alexnet.h"

#include <torch/torch.h>

#include "fcn/models/init.h"
#include "fcn/models/layers.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

struct AlexNetPadding {
  int64_t conv1_padding, pool_padding;
};

AlexNetPadding geometry_of(BackboneLayout layout) {
  switch (layout) {
    case BackboneLayout::kClassifier: return {2, 0};
    case BackboneLayout::kSame: return {5, 1};
    case BackboneLayout::kCaffe: break;
  }
  // Caffe's FCN-AlexNet (conv1 padded by 100) puts its final map half a pixel off the input grid
  // (crop 18.5), so it has no exact reference geometry here.
  fail("backbone", "alexnet has no Caffe layout (the reference geometry is VGG's)");
}

int64_t pooled(int64_t side, const AlexNetPadding& g) {  // 3x3 stride 2
  const int64_t span = side + 2 * g.pool_padding - 3;
  return span < 0 ? 0 : span / 2 + 1;
}

}  // namespace

AlexNetImpl::AlexNetImpl(const BackboneOptions& options_) : BackboneImpl(options_) {
  const auto g = geometry_of(options.layout());
  const double w = options.width();
  const int64_t c1 = scaled_channels(64, w), c2 = scaled_channels(192, w), c3 = scaled_channels(384, w),
                c4 = scaled_channels(256, w), c5 = scaled_channels(256, w);
  auto features = register_module("features", std::make_shared<torch::nn::Module>());
  auto add = [&](const char* index, torch::nn::Conv2dOptions o) {
    auto layer = features->register_module(index, torch::nn::Conv2d(o));
    init_kaiming(layer);
    return layer;
  };
  conv1 = add("0", torch::nn::Conv2dOptions(options.in_channels(), c1, 11).stride(4).padding(g.conv1_padding));
  conv2 = add("3", torch::nn::Conv2dOptions(c1, c2, 5).padding(2));
  conv3 = add("6", torch::nn::Conv2dOptions(c2, c3, 3).padding(1));
  conv4 = add("8", torch::nn::Conv2dOptions(c3, c4, 3).padding(1));
  conv5 = add("10", torch::nn::Conv2dOptions(c4, c5, 3).padding(1));
}

Features AlexNetImpl::forward(const torch::Tensor& input) {
  const MaxPool pool{3, 2, geometry_of(options.layout()).pool_padding, false};
  Features f;
  f.stride8 = conv_relu_pool(conv1, input, pool);
  f.stride16 = conv_relu_pool(conv2, f.stride8, pool);
  auto x = relu_in_place(conv(conv3, f.stride16));
  x = relu_in_place(conv(conv4, x));
  f.stride32 = conv_relu_pool(conv5, x, pool);
  return f;
}

int64_t AlexNetImpl::channels(int64_t stride) const {
  TORCH_CHECK(stride == 8 || stride == 16 || stride == 32, "AlexNet has maps at strides 8, 16, 32, asked for ", stride);
  return scaled_channels(stride == 8 ? 64 : stride == 16 ? 192 : 256, options.width());
}

CoordMap AlexNetImpl::coord_map(int64_t stride) const {
  const auto g = geometry_of(options.layout());
  CoordMap map = conv_map(11, 4, g.conv1_padding).then(conv_map(3, 2, g.pool_padding));  // pool1
  if (stride == 8) return map;
  map = map.then(conv_map(5, 1, 2)).then(conv_map(3, 2, g.pool_padding));  // pool2
  if (stride == 16) return map;
  TORCH_CHECK(stride == 32, "AlexNet has maps at strides 8, 16, 32, asked for ", stride);
  return map.then(conv_map(3, 2, g.pool_padding));  // conv3-5 keep the grid; pool5
}

int64_t AlexNetImpl::output_side_of(const BackboneOptions& options, int64_t side) {
  const auto g = geometry_of(options.layout());
  const int64_t span = side + 2 * g.conv1_padding - 11;
  if (span < 0) return 0;
  side = span / 4 + 1;                       // conv1
  side = pooled(pooled(pooled(side, g), g), g);  // pool1, pool2 (conv2 keeps the side), pool5
  return side;
}

void AlexNetImpl::pretty_print(std::ostream& stream) const {
  stream << "fcn::AlexNet(" << backbone_name(options) << ", in_channels=" << options.in_channels()
         << ", conv1_padding=" << geometry_of(options.layout()).conv1_padding << ")";
}

}  // namespace fcn
