// Winograd 3x3 convolutions through oneDNN against LibTorch's direct convolution (the oracle,
// itself golden-tested against PyTorch): layouts, padding, bias, batch; the transformed-weight
// cache following in-place changes, re-pointing and freeing of the weight; the dispatch in
// fcn::conv (inference only, eligible layers only). Skipped where oneDNN has no Winograd kernel
// (CPUs without AVX-512, or a build without libdnnl-dev), except the eligibility rules.
#include "fcn/models/winograd.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/models/layers.h"
#include "fcn/models/registry.h"
#include "fcn/util/error.h"
#include "test_util.h"

namespace fcn {
namespace {

#define SKIP_WITHOUT_WINOGRAD() \
  if (!winograd_supported()) GTEST_SKIP() << "oneDNN has no Winograd kernel on this CPU/build"

// |a - b| relative to b's largest magnitude: Winograd's transforms round differently from direct.
double scaled_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

TEST(Winograd, MatchesDirectConvolution) {
  SKIP_WITHOUT_WINOGRAD();
  torch::manual_seed(0);
  struct Case {
    int64_t n, c, o, h, w, padding;
    bool channels_last, bias;
  };
  for (const auto& k : {Case{1, 64, 64, 20, 24, 1, false, true}, Case{2, 64, 128, 9, 13, 0, false, true},
                        Case{1, 128, 64, 11, 7, 1, true, true}, Case{3, 64, 80, 6, 6, 1, true, false}}) {
    const auto format = k.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
    const auto x = torch::randn({k.n, k.c, k.h, k.w}).contiguous(format);
    const auto weight = torch::randn({k.o, k.c, 3, 3}) / std::sqrt(9.0 * k.c);
    const auto bias = k.bias ? torch::randn({k.o}) : torch::Tensor();
    torch::NoGradGuard no_grad;
    const auto expected = torch::conv2d(x, weight, bias, 1, k.padding);
    const auto y = winograd_conv2d(x, weight, bias, k.padding);
    ASSERT_EQ(y.sizes(), expected.sizes()) << k.c << "->" << k.o;
    EXPECT_LE(scaled_error(y, expected), 1e-4) << k.c << "->" << k.o << " " << k.h << "x" << k.w;
    EXPECT_GT(scaled_error(y, expected), 0.0) << "bitwise equal: did Winograd run at all?";
    EXPECT_EQ(y.is_contiguous(torch::MemoryFormat::ChannelsLast) && !y.is_contiguous(), k.channels_last);
  }
}

TEST(Winograd, TransformedWeightsFollowTheWeightTensor) {
  SKIP_WITHOUT_WINOGRAD();
  clear_winograd_cache();
  torch::manual_seed(1);
  const auto x = torch::randn({1, 64, 12, 12});
  auto weight = torch::randn({64, 64, 3, 3}) / 24.0;
  const auto bias = torch::randn({64});
  torch::NoGradGuard no_grad;
  auto check = [&] { EXPECT_LE(scaled_error(winograd_conv2d(x, weight, bias, 1), torch::conv2d(x, weight, bias, 1, 1)), 1e-4); };
  check();
  EXPECT_EQ(winograd_cache_entries(), 1u);
  weight.mul_(-2);  // in place: the version counter moves, the stale transform is replaced
  check();
  EXPECT_EQ(winograd_cache_entries(), 1u);
  weight.set_data(torch::randn({64, 64, 3, 3}) / 24.0);  // re-pointed
  check();
  EXPECT_EQ(winograd_cache_entries(), 1u);
  weight = torch::Tensor();  // freed: its transform goes too
  EXPECT_EQ(winograd_cache_entries(), 0u);
  {
    c10::InferenceMode guard;  // inference tensors have no version counter: never cached, still right
    const auto w = torch::randn({64, 64, 3, 3}) / 24.0;
    for (int i = 0; i < 2; ++i) EXPECT_LE(scaled_error(winograd_conv2d(x, w, bias, 1), torch::conv2d(x, w, bias, 1, 1)), 1e-4);
  }
  EXPECT_EQ(winograd_cache_entries(), 0u);
}

TEST(Winograd, OnlyLayersItServes) {
  const auto x = torch::zeros({1, 64, 8, 8});
  const auto w = torch::zeros({64, 64, 3, 3});
  EXPECT_TRUE(winograd_eligible(x, w, 1, 1, 1, 1, 1));
  EXPECT_FALSE(winograd_eligible(x, w, 2, 1, 1, 1, 1));                          // stride
  EXPECT_FALSE(winograd_eligible(x, w, 1, 2, 1, 1, 1));                          // dilation
  EXPECT_FALSE(winograd_eligible(x, w, 1, 1, 2, 1, 1));                          // groups
  EXPECT_FALSE(winograd_eligible(x, w, 1, 1, 1, 1, 0));                          // uneven padding
  EXPECT_FALSE(winograd_eligible(x, w, 1, 1, 1, 2, 2));                          // padding > 1
  EXPECT_FALSE(winograd_eligible(x, torch::zeros({64, 64, 5, 5}), 1, 1, 1, 1, 1));  // kernel
  EXPECT_FALSE(winograd_eligible(torch::zeros({1, 32, 8, 8}), torch::zeros({32, 32, 3, 3}), 1, 1, 1, 1, 1));  // narrow
  EXPECT_FALSE(winograd_eligible(torch::zeros({1, 72, 8, 8}), torch::zeros({72, 72, 3, 3}), 1, 1, 1, 1, 1));  // not x16
  EXPECT_FALSE(winograd_eligible(x.to(torch::kBFloat16), w.to(torch::kBFloat16), 1, 1, 1, 1, 1));
  EXPECT_FALSE(winograd_eligible(torch::zeros({1, 64, 1, 1}), w, 1, 1, 1, 0, 0));  // output would be empty
  if (winograd_supported())
    EXPECT_EQ(winograd_conv2d(x, w, {}, 0).sizes(), torch::IntArrayRef({1, 64, 6, 6}));
  else  // a CPU without the kernel, or a build without oneDNN: a clear error, never a wrong answer
    EXPECT_NE(test::error_of([&] { winograd_conv2d(x, w, {}, 0); }).find("winograd convolution"), std::string::npos);
  EXPECT_NE(test::error_of([&] { winograd_conv2d(x, torch::zeros({64, 64, 5, 5}), {}, 1); }).find("winograd convolution"),
            std::string::npos);
}

TEST(Winograd, ConvRunsItForInferenceOnly) {
  SKIP_WITHOUT_WINOGRAD();
  NetRecipe recipe;  // vgg11 at 1/8 width: conv4_2 and conv5_* are 64 -> 64, the rest too narrow
  recipe.arch = "fcn8s";
  recipe.backbone = "vgg11-w0.125";
  recipe.fc_channels = 16;
  recipe.fc_kernel = 2;
  recipe.classes = 3;
  torch::manual_seed(0);
  const auto net = make_net(recipe);
  {
    torch::NoGradGuard no_grad;  // score layers start at zero: move them, so the logits are not all 0
    for (auto& p : net->parameters())
      if (p.abs().max().item<float>() == 0) p.normal_(0, 0.1);
  }
  net->eval();
  const auto input = torch::rand({1, 3, 64, 96});
  set_conv_algorithm(ConvAlgorithm::kDirect);
  clear_winograd_cache();
  torch::Tensor direct, winograd, trained;
  {
    torch::NoGradGuard no_grad;
    direct = net->forward(input);
  }
  set_conv_algorithm(ConvAlgorithm::kWinograd);
  {
    torch::NoGradGuard no_grad;
    winograd = net->forward(input);
  }
  EXPECT_EQ(winograd_cache_entries(), 3u);  // conv4_2, conv5_1, conv5_2
  trained = net->forward(input);            // grad mode: always LibTorch's, bitwise
  set_conv_algorithm(ConvAlgorithm::kDirect);
  EXPECT_LE(scaled_error(winograd, direct), 1e-4);
  EXPECT_GT(scaled_error(winograd, direct), 0.0);
  EXPECT_TRUE(torch::equal(trained.detach(), direct));
  clear_winograd_cache();
}

}  // namespace
}  // namespace fcn
