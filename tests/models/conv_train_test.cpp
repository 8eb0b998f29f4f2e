// Channels-last training's own weight gradient (src/fcn/models/conv_train.cpp) against LibTorch's
// autograd, the layers it serves, and fcn::conv's choice of it. Skipped in a build without libdnnl-dev.
#include "fcn/models/conv_train.h"

#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/models/layers.h"
#include "fcn/models/registry.h"
#include "fcn/models/winograd.h"
#include "test_util.h"

namespace fcn {
namespace {

#define SKIP_WITHOUT_ONEDNN() \
  if (!winograd_supported()) GTEST_SKIP() << "fcn was built without oneDNN (libdnnl-dev)"

using test::TrainingConvScope;

// Channels-last training's own weight gradient (fcn/models/conv_train.h): every geometry the nets
// have (3x3, 1x1, fc6's 7x7, a strided and a dilated layer, the subpixel upsamplers' 2x2 with
// padding 1, an RGB first layer without input gradient, frozen weights), against LibTorch's
// autograd; the output is LibTorch's own call (bitwise); each gradient in its tensor's layout.
TEST(ChannelsLastTrainer, GradientsMatchLibTorch) {
  SKIP_WITHOUT_ONEDNN();
  torch::manual_seed(3);
  struct Case {
    int64_t n, c, o, h, w, kh, kw, stride, padding, dilation;
    bool bias, input_grad, weight_grad, weight_channels_last;
  };
  for (const auto& k : {Case{2, 16, 32, 10, 12, 3, 3, 1, 1, 1, true, true, true, true},
                        Case{2, 64, 11, 5, 7, 1, 1, 1, 0, 1, true, true, true, true},
                        Case{1, 32, 48, 9, 9, 7, 7, 1, 0, 1, true, true, true, true},
                        Case{2, 16, 24, 9, 11, 3, 3, 2, 1, 1, false, true, true, true},
                        Case{1, 16, 16, 12, 12, 3, 3, 1, 2, 2, true, true, true, true},
                        Case{2, 11, 44, 4, 4, 2, 2, 1, 1, 1, true, true, true, true},
                        Case{2, 3, 16, 13, 10, 3, 1, 1, 1, 1, true, false, true, false},
                        Case{1, 16, 16, 6, 6, 3, 3, 1, 1, 1, true, true, false, true}}) {
    SCOPED_TRACE(std::to_string(k.c) + "->" + std::to_string(k.o) + " " + std::to_string(k.kh) + "x" + std::to_string(k.kw));
    const auto x = torch::randn({k.n, k.c, k.h, k.w}).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_(k.input_grad);
    auto weight = torch::randn({k.o, k.c, k.kh, k.kw}) / std::sqrt(static_cast<double>(k.kh * k.kw * k.c));
    if (k.weight_channels_last) weight = weight.contiguous(torch::MemoryFormat::ChannelsLast);
    weight.requires_grad_(k.weight_grad);
    const auto bias = k.bias ? torch::randn({k.o}).requires_grad_(k.weight_grad) : torch::Tensor();
    const std::vector<int64_t> stride{k.stride, k.stride}, padding{k.padding, k.padding}, dilation{k.dilation, k.dilation};
    ASSERT_TRUE(channels_last_trainer_serves(x, weight, bias, stride, padding, dilation, 1));
    const auto expected = torch::conv2d(x, weight, bias, stride, padding, dilation);
    const auto y = channels_last_conv2d(x, weight, bias, stride, padding, dilation);
    EXPECT_TRUE(torch::equal(y.detach(), expected.detach()));
    EXPECT_NE(y.grad_fn()->name().find("ChannelsLastConv"), std::string::npos) << y.grad_fn()->name();
    const auto wanted = test::gradient_inputs(x, weight, bias, k.input_grad, k.weight_grad);
    const auto [got, oracle] = test::gradients_against(y, expected, wanted);
    for (size_t i = 0; i < wanted.size(); ++i) {
      ASSERT_EQ(got[i].sizes(), oracle[i].sizes()) << "gradient " << i;
      EXPECT_LE(test::relative_error(got[i], oracle[i]), 1e-5) << "gradient " << i;
      EXPECT_EQ(got[i].strides(), wanted[i].strides()) << "gradient " << i << " not in its tensor's layout";
    }
  }
  const auto x = torch::randn({1, 16, 6, 6}).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_();
  const auto y = channels_last_conv2d(x, torch::randn({16, 16, 3, 3}), {}, {1, 1}, {1, 1}, {1, 1});
  EXPECT_NE(test::error_of([&] { torch::autograd::grad({y.sum()}, {x}, {}, true, true); }).find("double backward"), std::string::npos);
}

// A 1x1 stride-1 conv on a larger map at one thread, where LibTorch 1.13 would run its _slow_conv2d path: the forward
// pass and the input gradient by oneDNN's kernel (the input gradient as the 1x1 conv of dy by the transposed weight),
// against LibTorch's autograd; at two threads, or on a small map, LibTorch's own call (bitwise).
TEST(ChannelsLastTrainer, OneByOneOnLargerMapsAtOneThreadIsOneDnns) {
  SKIP_WITHOUT_ONEDNN();
  const int threads = at::get_num_threads();
  for (const int t : {1, 2}) {
    at::set_num_threads(t);
    for (const int64_t side : {32, 8}) {  // 48 x 32 x 32 = 49,152 values an image; 3,072
      SCOPED_TRACE(std::to_string(t) + " thread(s), " + std::to_string(side) + "^2");
      torch::manual_seed(side);
      const auto x = torch::randn({2, 48, side, side}).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_(true);
      const auto weight = (torch::randn({80, 48, 1, 1}) / 7.0).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_(true);
      const auto bias = torch::randn({80}).requires_grad_(true);
      EXPECT_EQ(onednn_beats_libtorch_1x1(x, weight, {1, 1}, {0, 0}), t == 1 && side == 32);
      EXPECT_FALSE(onednn_beats_libtorch_1x1(x, weight, {2, 2}, {0, 0}));  // strided: LibTorch takes oneDNN itself
      const auto expected = torch::conv2d(x, weight, bias);
      const auto y = channels_last_conv2d(x, weight, bias, {1, 1}, {0, 0}, {1, 1});
      EXPECT_LE(test::relative_error(y.detach(), expected.detach()), 1e-5);
      if (t == 2 || side == 8) EXPECT_TRUE(torch::equal(y.detach(), expected.detach()));
      const auto wanted = test::gradient_inputs(x, weight, bias, true, true);
      const auto [got, oracle] = test::gradients_against(y, expected, wanted);
      for (size_t i = 0; i < wanted.size(); ++i) EXPECT_LE(test::relative_error(got[i], oracle[i]), 1e-5) << "gradient " << i;
    }
  }
  at::set_num_threads(threads);
}

TEST(ChannelsLastTrainer, ServesOnlyWhatItCan) {
  SKIP_WITHOUT_ONEDNN();
  const auto cl = [](torch::Tensor t) { return t.contiguous(torch::MemoryFormat::ChannelsLast); };
  const auto x = cl(torch::zeros({1, 16, 8, 8})).requires_grad_();
  const auto w = torch::zeros({16, 16, 3, 3});
  const std::vector<int64_t> one{1, 1};
  EXPECT_TRUE(channels_last_trainer_serves(x, w, {}, one, one, one, 1));
  EXPECT_FALSE(channels_last_trainer_serves(torch::zeros({1, 16, 8, 8}).requires_grad_(), w, {}, one, one, one, 1));  // NCHW
  EXPECT_FALSE(channels_last_trainer_serves(x, torch::zeros({16, 8, 3, 3}), {}, one, one, one, 2));                   // groups
  EXPECT_FALSE(channels_last_trainer_serves(cl(torch::zeros({1, 16, 6, 6})).requires_grad_(), w, {}, {2, 2}, {0, 0}, one, 1));  // last row unread
  EXPECT_FALSE(channels_last_trainer_serves(x, w, {}, one, {0, 0}, {4, 4}, 1));  // window wider than the input
  EXPECT_FALSE(channels_last_trainer_serves(x.detach().to(torch::kBFloat16).requires_grad_(), w.to(torch::kBFloat16), {}, one, one, one, 1));
  EXPECT_FALSE(channels_last_trainer_serves(x.detach(), w, {}, one, one, one, 1));  // nothing needs a gradient
  {
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(channels_last_trainer_serves(x, w, {}, one, one, one, 1));
  }
  EXPECT_NE(test::error_of([&] { channels_last_conv2d(x.detach(), w, {}, one, one, one); }).find("channels-last convolution"),
            std::string::npos);
}

// fcn::conv trains channels-last layers by it under fcn's kernels, by LibTorch's alone under
// kDirect: a whole FCN-8s (direct, Winograd, 1x1 and subpixel layers) gets the same gradients, in
// its parameters' layouts.
TEST(ChannelsLastTrainer, ConvTrainsANetByIt) {
  SKIP_WITHOUT_ONEDNN();
  const auto net = test::small_fcn8s("vgg11-w0.125");
  to_channels_last(*net);
  net->eval();  // no dropout: both passes see the same net
  const auto input = torch::rand({2, 3, 96, 64}).contiguous(torch::MemoryFormat::ChannelsLast);
  auto grads_of = [&](ConvAlgorithm a) {
    const TrainingConvScope scope(a);
    net->zero_grad();
    const auto logits = net->forward(input);
    logits.square().sum().backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : net->parameters()) {
      EXPECT_EQ(p.grad().strides(), p.strides());
      grads.push_back(p.grad().clone());
    }
    return grads;
  };
  const auto direct = grads_of(ConvAlgorithm::kDirect);
  const auto fcn_kernels = grads_of(ConvAlgorithm::kWinograd);
  for (size_t i = 0; i < direct.size(); ++i)
    if (direct[i].abs().max().item<double>() > 0) EXPECT_LE(test::relative_error(fcn_kernels[i], direct[i]), 1e-4) << i;
  // Under fcn's kernels a direct layer records fcn's node, under kDirect LibTorch's.
  const auto conv1 = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(net->named_modules()["backbone.conv1_1"]);
  ASSERT_NE(conv1, nullptr);
  const torch::nn::Conv2d layer(conv1);
  {
    const TrainingConvScope scope(ConvAlgorithm::kWinograd);
    EXPECT_NE(conv(layer, input).grad_fn()->name().find("ChannelsLastConv"), std::string::npos);
  }
  EXPECT_EQ(conv(layer, input).grad_fn()->name(), "ConvolutionBackward0");
}

}  // namespace
}  // namespace fcn
