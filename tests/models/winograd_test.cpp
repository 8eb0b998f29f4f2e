// Winograd 3x3 convolutions against LibTorch's direct convolution (the oracle, itself golden-tested
// against PyTorch): fcn's inference kernel over layouts, padding, bias, batch, image edges and
// several chunks of tiles (16 channels at a time with AVX-512, 8 elsewhere: ctest's winograd_as_avx2
// runs this suite again with AVX-512 hidden), and weights changed between calls; the gradients of the training path
// (fcn's trainer on every CPU, oneDNN's with AVX-512) against LibTorch's autograd; the dispatch in
// fcn::conv (each mode's own choice, eligible layers only). Skipped in a build without libdnnl-dev,
// except the eligibility rules.
#include "fcn/models/winograd.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/models/gemm_conv.h"
#include "fcn/models/layers.h"
#include "fcn/models/registry.h"
#include "fcn/models/winograd_tiles.h"
#include "fcn/util/allocator.h"
#include "fcn/util/error.h"
#include "test_util.h"

namespace fcn {
namespace {

#define SKIP_WITHOUT_WINOGRAD() \
  if (!winograd_supported()) GTEST_SKIP() << "fcn was built without oneDNN (libdnnl-dev)"

TEST(Winograd, MatchesDirectConvolution) {
  SKIP_WITHOUT_WINOGRAD();
  torch::manual_seed(0);
  struct Case {
    int64_t n, c, o, h, w, padding;
    bool channels_last, bias;
  };
  // Sizes not multiples of the 4x4 tile, 1 to 4 tiles across, and (the last) 2 x 18 x 13 tiles: several chunks.
  for (const auto& k : {Case{1, 64, 64, 20, 24, 1, false, true}, Case{2, 64, 128, 9, 13, 0, false, true},
                        Case{1, 128, 64, 11, 7, 1, true, true}, Case{3, 64, 80, 6, 6, 1, true, false},
                        Case{1, 64, 64, 3, 3, 0, false, true}, Case{2, 64, 64, 70, 51, 1, true, true}}) {
    const auto format = k.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
    const auto x = torch::randn({k.n, k.c, k.h, k.w}).contiguous(format);
    // In the layout of the input, as a model in that layout has them (a channels-last weight is read where it lies).
    const auto weight = (torch::randn({k.o, k.c, 3, 3}) / std::sqrt(9.0 * k.c)).contiguous(format);
    const auto bias = k.bias ? torch::randn({k.o}) : torch::Tensor();
    torch::NoGradGuard no_grad;
    const auto expected = torch::conv2d(x, weight, bias, 1, k.padding);
    const auto y = winograd_conv2d(x, weight, bias, k.padding);
    ASSERT_EQ(y.sizes(), expected.sizes()) << k.c << "->" << k.o;
    EXPECT_LE(test::relative_error(y, expected), 1e-4) << k.c << "->" << k.o << " " << k.h << "x" << k.w;
    EXPECT_GT(test::relative_error(y, expected), 0.0) << "bitwise equal: did Winograd run at all?";
    EXPECT_EQ(y.is_contiguous(torch::MemoryFormat::ChannelsLast) && !y.is_contiguous(), k.channels_last);
    const auto fused = winograd_conv2d(x, weight, bias, k.padding, /*relu=*/true);  // ReLU in the output pass
    EXPECT_LE(test::relative_error(fused, expected.relu()), 1e-4);
    EXPECT_EQ(fused.min().item<float>(), 0.f);
  }
}

// A layer whose transformed weights (36 x K x C floats) exceed 64 MiB runs a block of input channels at a time where
// the blocks read them fewer times, the blocks' outputs summed: the same convolution, holding less than the whole
// layer's transformed weights at once (1024 -> 512: 72 MiB, as fcn's allocator counts the most in use at once).
TEST(Winograd, LargeLayersRunInBlocksOfInputChannels) {
  SKIP_WITHOUT_WINOGRAD();
  EXPECT_EQ(winograd_input_channel_blocks(512, 512, 484), 1);    // VGG's 512-channel layers: 36 MiB
  EXPECT_EQ(winograd_input_channel_blocks(512, 2048, 256), 3);   // torchvision's FCN head at 512x512: 144 MiB
  EXPECT_EQ(winograd_input_channel_blocks(512, 1024, 256), 2);   // U-Net 512x512, 1024 -> 512 at 64x64
  EXPECT_EQ(winograd_input_channel_blocks(1024, 1024, 64), 1);   // and 1024 -> 1024 at 32x32: no fewer reads
  EXPECT_EQ(winograd_input_channel_blocks(512, 2048, 16), 1);    // one chunk either way
  EXPECT_EQ(winograd_input_channel_blocks(1 << 16, 16, 256), 1);  // never less than 16 channels a block
  torch::manual_seed(0);
  const bool measured = std::getenv("FCN_CPU_ALLOCATOR") == nullptr && std::getenv("FCN_CPU_CACHE_MIB") == nullptr &&
                        set_cpu_allocator_policy(CpuAllocatorPolicy::kHugePages) == CpuAllocatorPolicy::kHugePages;
  for (const bool channels_last : {false, true}) {
    const auto format = channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
    const auto x = torch::randn({1, 1024, 31, 32}).contiguous(format);  // 8 x 8 tiles: 2 chunks whole, 1 per block
    const auto weight = (torch::randn({512, 1024, 3, 3}) / std::sqrt(9.0 * 1024)).contiguous(format);
    const auto bias = torch::randn({512});
    torch::NoGradGuard no_grad;
    const auto expected = torch::conv2d(x, weight, bias, 1, 1);
    release_cached_cpu_memory();  // the most in use at once counts from here
    const auto before = cpu_allocator_stats();
    const auto y = winograd_conv2d(x, weight, bias, 1, /*relu=*/true);
    const auto after = cpu_allocator_stats();
    EXPECT_LE(test::relative_error(y, expected.relu()), 1e-4) << (channels_last ? "channels-last" : "NCHW");
    EXPECT_EQ(y.is_contiguous(torch::MemoryFormat::ChannelsLast) && !y.is_contiguous(), channels_last);
    EXPECT_EQ(y.min().item<float>(), 0.f);
    if (measured) EXPECT_LT(after.peak_live_bytes - before.live_bytes, size_t{72} << 20);
  }
}

// The Winograd trainers this CPU runs: fcn's everywhere, oneDNN's with AVX-512.
std::vector<ConvAlgorithm> trainers() {
  std::vector<ConvAlgorithm> all{ConvAlgorithm::kWinograd};
  if (winograd_onednn_trains()) all.push_back(ConvAlgorithm::kWinogradOneDnn);
  return all;
}

using test::TrainingConvScope;

// fcn's kernel shares a layer's tiles among the threads in one of two ways: each thread its own
// chunks (many chunks: 1 x 64 x 96 x 96 has 5 of 128 tiles, at one thread), or every thread on each
// group of tiles, the 36 products split by position and, from 13 threads, by blocks of output
// channels (few chunks per thread: the same map at 3 and 16 threads, and every weight gradient).
// Same results either way, at any thread count (this machine's cores or not).
TEST(Winograd, EveryThreadCountComputesTheSame) {
  SKIP_WITHOUT_WINOGRAD();
  torch::manual_seed(3);
  const int before = torch::get_num_threads();
  const TrainingConvScope scope(ConvAlgorithm::kWinograd);
  for (const int threads : {1, 3, 16}) {
    torch::set_num_threads(threads);
    SCOPED_TRACE(std::to_string(threads) + " threads");
    {
      torch::NoGradGuard no_grad;
      const auto x = torch::randn({1, 64, 96, 96}).contiguous(torch::MemoryFormat::ChannelsLast);
      const auto weight = torch::randn({128, 64, 3, 3}) / 24.0, bias = torch::randn({128});
      EXPECT_LE(test::relative_error(winograd_conv2d(x, weight, bias, 1), torch::conv2d(x, weight, bias, 1, 1)), 1e-4);
    }
    const auto x = torch::randn({2, 64, 34, 37}).requires_grad_();
    const auto weight = (torch::randn({96, 64, 3, 3}) / 24.0).requires_grad_();
    const auto upstream = torch::randn({2, 96, 34, 37});
    const auto oracle = torch::autograd::grad({torch::conv2d(x, weight, {}, 1, 1)}, {x, weight}, {upstream});
    const auto got = torch::autograd::grad({winograd_conv2d(x, weight, {}, 1)}, {x, weight}, {upstream});
    EXPECT_LE(test::relative_error(got[0], oracle[0]), 1e-4) << "input gradient";
    EXPECT_LE(test::relative_error(got[1], oracle[1]), 1e-4) << "weight gradient";
  }
  torch::set_num_threads(before);
}

// Training: forward, input, weight and bias gradients against LibTorch's autograd through conv2d,
// for each trainer: within 1e-4 of their scale, and the input and weight gradients not bitwise
// LibTorch's (Winograd ran). Maps from 4x4 to 10x12, with and without padding, tiles cut at the
// edges: the weight gradient's zero-filled border tiles are checked there.
TEST(Winograd, GradientsMatchDirectConvolution) {
  SKIP_WITHOUT_WINOGRAD();
  torch::manual_seed(2);
  struct Case {
    int64_t n, c, o, h, w, padding;
    bool channels_last, bias, weight_grad, input_grad;
  };
  for (const auto trainer : trainers()) {
    SCOPED_TRACE(conv_algorithm_name(trainer));
    const TrainingConvScope scope(trainer);
    for (const auto& k : {Case{2, 64, 64, 10, 12, 1, false, true, true, true}, Case{1, 64, 128, 9, 7, 0, true, true, true, true},
                          Case{1, 128, 64, 4, 4, 1, true, true, true, true}, Case{3, 64, 64, 13, 5, 0, false, false, true, true},
                          Case{1, 128, 64, 8, 8, 1, true, false, false, true},  // frozen weights
                          Case{1, 64, 64, 6, 9, 1, false, true, true, false},    // the first layer: no input grad
                          Case{1, 64, 128, 128, 128, 1, true, true, true, true}}) {  // chunks enough for every thread
      const auto format = k.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
      const auto x = torch::randn({k.n, k.c, k.h, k.w}).contiguous(format).requires_grad_(k.input_grad);
      const auto weight = (torch::randn({k.o, k.c, 3, 3}) / std::sqrt(9.0 * k.c)).contiguous(format).requires_grad_(k.weight_grad);
      const auto bias = k.bias ? torch::randn({k.o}).requires_grad_(k.weight_grad) : torch::Tensor();
      const auto expected = torch::conv2d(x, weight, bias, 1, k.padding);
      const auto y = winograd_conv2d(x, weight, bias, k.padding);
      ASSERT_TRUE(y.requires_grad());
      EXPECT_LE(test::relative_error(y.detach(), expected.detach()), 1e-4);
      EXPECT_GT(test::relative_error(y.detach(), expected.detach()), 0.0);
      EXPECT_EQ(y.is_contiguous(torch::MemoryFormat::ChannelsLast) && !y.is_contiguous(), k.channels_last);
      const auto wanted = test::gradient_inputs(x, weight, bias, k.input_grad, k.weight_grad);
      const auto [got, oracle] = test::gradients_against(y, expected, wanted);
      for (size_t i = 0; i < wanted.size(); ++i) {
        ASSERT_EQ(got[i].sizes(), oracle[i].sizes()) << "gradient " << i;
        EXPECT_LE(test::relative_error(got[i], oracle[i]), 1e-4) << k.c << "->" << k.o << " gradient " << i;
        if (!wanted[i].is_same(bias)) EXPECT_EQ(got[i].strides(), wanted[i].strides()) << "gradient " << i << " not in its tensor's layout";
        const bool bias_gradient = k.bias && i + 1 == wanted.size() && k.weight_grad;
        if (!bias_gradient)
          EXPECT_GT(test::relative_error(got[i], oracle[i]), 0.0) << "gradient " << i << " bitwise LibTorch's: did Winograd run?";
      }
    }
    // Second derivatives are not computed: a clear error, never a silently wrong Hessian product.
    const auto x = torch::randn({1, 64, 6, 6}).requires_grad_();
    const auto w = torch::randn({64, 64, 3, 3}).requires_grad_();
    const auto y = winograd_conv2d(x, w, {}, 1);
    EXPECT_NE(test::error_of([&] { torch::autograd::grad({y.sum()}, {x}, {}, true, true); }).find("double backward"), std::string::npos);
  }
}

// Where each trainer pays (fcn's: outputs of at least 32 x 32), the choice of trainer, and the
// algorithms' names as the CLI and the fast-path cache spell them.
TEST(Winograd, TrainersServeTheMapsTheyPayOn) {
  SKIP_WITHOUT_WINOGRAD();
  {
    const TrainingConvScope scope(ConvAlgorithm::kWinograd);
    EXPECT_TRUE(winograd_trains_well(torch::zeros({1, 64, 32, 32}), 1));
    EXPECT_TRUE(winograd_trains_well(torch::zeros({1, 64, 34, 40}), 0));
    EXPECT_FALSE(winograd_trains_well(torch::zeros({1, 64, 32, 32}), 0));  // 30 x 30 out
    EXPECT_FALSE(winograd_trains_well(torch::zeros({1, 64, 31, 64}), 1));
  }
  if (winograd_onednn_trains()) {
    const TrainingConvScope scope(ConvAlgorithm::kWinogradOneDnn);
    EXPECT_TRUE(winograd_trains_well(torch::zeros({1, 64, 4, 4}), 1));
  } else {
    EXPECT_NE(test::error_of([] { set_training_conv_algorithm(ConvAlgorithm::kWinogradOneDnn); }).find("AVX-512"), std::string::npos);
    EXPECT_EQ(training_conv_algorithm(), ConvAlgorithm::kDirect);  // refused: unchanged
  }
  for (const auto a : {ConvAlgorithm::kDirect, ConvAlgorithm::kWinograd, ConvAlgorithm::kWinogradOneDnn})
    EXPECT_EQ(parse_conv_algorithm(conv_algorithm_name(a), "conv"), a);
  EXPECT_EQ(parse_conv_algorithm("winograd-onednn", "--conv"), ConvAlgorithm::kWinogradOneDnn);
  EXPECT_NE(test::error_of([] { parse_conv_algorithm("fft", "--conv"); }).find("--conv"), std::string::npos);
  EXPECT_TRUE(is_winograd(ConvAlgorithm::kWinogradOneDnn) && !is_winograd(ConvAlgorithm::kDirect));
}

// Inference pays on calls with enough tiles (fcn/models/winograd.h): 64 with AVX-512, 16 without.
// fcn::conv takes Winograd there and LibTorch's direct convolution, bit for bit, on the small maps
// where the weight transform costs more than the multiplies it saves.
TEST(Winograd, InferenceServesTheCallsItPaysOn) {
  EXPECT_EQ(winograd_inference_min_tiles(CpuInfo{"x", {"avx2"}}), 16);
  EXPECT_EQ(winograd_inference_min_tiles(CpuInfo{"x", {"avx2", "avx512f", "avx512_bf16"}}), 64);
  const bool avx512 = cpu_info().has("avx512f");
  EXPECT_TRUE(winograd_infers_well(torch::zeros({1, 64, 32, 32}), 1));   // 32 x 32 out: 64 tiles
  EXPECT_TRUE(winograd_infers_well(torch::zeros({1, 64, 32, 32}), 0));   // 30 x 30: 8 x 8 tiles
  EXPECT_EQ(winograd_infers_well(torch::zeros({1, 64, 16, 16}), 1), !avx512);  // 16 tiles
  EXPECT_FALSE(winograd_infers_well(torch::zeros({1, 64, 14, 64}), 1));  // 64 tiles, but 14 rows ...
  EXPECT_TRUE(winograd_infers_well(torch::zeros({1, 64, 16, 64}), 1));   // ... it pays from 16
  EXPECT_TRUE(winograd_infers_well(torch::zeros({4, 64, 16, 16}), 1));   // a batch of 4: 64 tiles
  EXPECT_FALSE(winograd_infers_well(torch::zeros({16, 64, 8, 8}), 1));   // 256 tiles of 8 x 8 maps
  SKIP_WITHOUT_WINOGRAD();
  torch::manual_seed(2);
  torch::nn::Conv2d layer(torch::nn::Conv2dOptions(64, 64, 3).padding(1));
  torch::NoGradGuard no_grad;
  set_conv_algorithm(ConvAlgorithm::kWinograd);
  for (const int64_t side : {8, 16, 32}) {
    SCOPED_TRACE(side);
    const auto x = torch::randn({1, 64, side, side});
    const auto y = conv(layer, x), direct = layer->forward(x);
    if (side == 8) {  // 64 pixels: a short product, im2col + sgemm's (fcn/models/gemm_conv.h)
      EXPECT_TRUE(torch::equal(y, gemm_conv2d(x, layer->weight, layer->bias, 1)));
    } else if (side == 16 && avx512) {  // 16,384 values at batch 1: oneDNN's direct kernel, not LibTorch's im2col
      EXPECT_TRUE(torch::equal(y, at::mkldnn_convolution(x, layer->weight, layer->bias, {1, 1}, {1, 1}, {1, 1}, 1)));
      EXPECT_LE(test::relative_error(y, direct), 1e-5);
    } else {
      EXPECT_FALSE(torch::equal(y, direct));
      EXPECT_LE(test::relative_error(y, direct), 1e-4);
    }
  }
  set_conv_algorithm(ConvAlgorithm::kDirect);
}

// Inference transforms the weights on every call: a weight changed in place, re-pointed, strided
// or made under InferenceMode is always the one used; and a strided input is read where it lies.
TEST(Winograd, UsesTheWeightsAsTheyAreNow) {
  SKIP_WITHOUT_WINOGRAD();
  torch::manual_seed(1);
  const auto x = torch::randn({1, 64, 12, 12});
  auto weight = torch::randn({64, 64, 3, 3}) / 24.0;
  const auto bias = torch::randn({64});
  torch::NoGradGuard no_grad;
  auto check = [&](const torch::Tensor& in, const torch::Tensor& w) {
    EXPECT_LE(test::relative_error(winograd_conv2d(in, w, bias, 1), torch::conv2d(in, w, bias, 1, 1)), 1e-4);
  };
  check(x, weight);
  weight.mul_(-2);
  check(x, weight);
  weight.set_data(torch::randn({64, 64, 3, 3}) / 24.0);
  check(x, weight);
  check(x, weight.contiguous(torch::MemoryFormat::ChannelsLast));
  check(torch::randn({1, 64, 12, 30}).slice(3, 3, 27, 2), weight);  // every other column: not contiguous
  c10::InferenceMode guard;
  check(x, torch::randn({64, 64, 3, 3}) / 24.0);
}

// A dilated conv as d*d phase convs in one Winograd batch: every dilation's phases, sides not multiples of d (the
// phases of unequal sizes), both layouts, bias and the fused ReLU, a batch of 2; and fcn::conv takes this path for a
// dilated layer in inference (torchvision's FCN, DeepLab) where the phases' batch has the tiles Winograd pays on.
TEST(Winograd, DilatedConvByPhasesMatchesDirectConvolution) {
  SKIP_WITHOUT_WINOGRAD();
  torch::manual_seed(4);
  torch::NoGradGuard no_grad;
  for (const int64_t d : {2, 3, 4}) {
    for (const bool channels_last : {false, true}) {
      const auto format = channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
      const auto x = torch::randn({2, 64, 37, 30}).contiguous(format);
      const auto weight = (torch::randn({80, 64, 3, 3}) / 24.0).contiguous(format);
      const auto bias = torch::randn({80});
      const auto expected = torch::conv2d(x, weight, bias, 1, d, d);
      const auto y = dilated_winograd_conv2d(x, weight, bias, d);
      SCOPED_TRACE(std::to_string(d) + (channels_last ? " channels-last" : " NCHW"));
      ASSERT_EQ(y.sizes(), expected.sizes());
      EXPECT_LE(test::relative_error(y, expected), 1e-4);
      EXPECT_GT(test::relative_error(y, expected), 0.0) << "bitwise equal: did Winograd run at all?";
      EXPECT_TRUE(y.is_contiguous(format));
      EXPECT_LE(test::relative_error(dilated_winograd_conv2d(x, weight, bias, d, /*relu=*/true), expected.relu()), 1e-4);
    }
  }
  const auto w = torch::zeros({64, 64, 3, 3});
  EXPECT_TRUE(dilated_winograd_serves(torch::zeros({1, 64, 64, 64}), w, 1, 2, 1, 2, 2));  // phases 4 x 32 x 32
  EXPECT_TRUE(dilated_winograd_serves(torch::zeros({1, 64, 64, 64}), w, 1, 4, 1, 4, 4));  // 16 x 16 x 16
  EXPECT_TRUE(dilated_winograd_serves(torch::zeros({1, 64, 32, 32}), w, 1, 4, 1, 4, 4));  // 16 x 8 x 8: 64 tiles
  EXPECT_TRUE(dilated_winograd_serves(torch::zeros({1, 64, 24, 24}), w, 1, 2, 1, 2, 2));  // 4 x 12 x 12: 36 tiles
  EXPECT_FALSE(dilated_winograd_serves(torch::zeros({1, 64, 16, 16}), w, 1, 2, 1, 2, 2));  // 4 x 8 x 8: 16 tiles
  EXPECT_TRUE(dilated_winograd_serves(torch::zeros({2, 64, 16, 16}), w, 1, 2, 1, 2, 2));   // a batch of 2: 32 tiles
  EXPECT_FALSE(dilated_winograd_serves(torch::zeros({1, 64, 24, 24}), w, 1, 4, 1, 4, 4));  // phases of 6 x 6
  EXPECT_FALSE(dilated_winograd_serves(torch::zeros({4, 64, 16, 16}), w, 1, 4, 1, 4, 4));  // phases of 4 x 4
  EXPECT_FALSE(dilated_winograd_serves(torch::zeros({1, 64, 64, 64}), w, 1, 1, 1, 1, 1));  // not dilated
  EXPECT_FALSE(dilated_winograd_serves(torch::zeros({1, 64, 64, 64}), w, 1, 2, 1, 1, 1));  // padding not d
  EXPECT_FALSE(dilated_winograd_serves(torch::zeros({1, 64, 64, 64}), w, 2, 2, 1, 2, 2));  // stride
  EXPECT_NE(test::error_of([&] { dilated_winograd_conv2d(torch::zeros({1, 64, 8, 8}), w, {}, 1); }).find("dilation >= 2"),
            std::string::npos);
  torch::nn::Conv2d layer(torch::nn::Conv2dOptions(64, 64, 3).padding(2).dilation(2));
  const auto x = torch::randn({1, 64, 64, 64}).contiguous(torch::MemoryFormat::ChannelsLast);
  set_conv_algorithm(ConvAlgorithm::kWinograd);
  const auto y = conv(layer, x);
  set_conv_algorithm(ConvAlgorithm::kDirect);
  EXPECT_TRUE(torch::equal(y, dilated_winograd_conv2d(x, layer->weight, layer->bias, 2)));
  EXPECT_TRUE(torch::equal(conv(layer, x), layer->forward(x)));  // --conv direct: LibTorch's
}

// Training a dilated conv by Winograd on its phases: forward, input, weight and bias gradients against LibTorch's
// autograd through the dilated conv2d, for each trainer, both layouts, sides not multiples of d; and fcn::conv trains
// a dilated layer so where the trainer runs fcn's kernels and the phases pay (torchvision's FCN ResNet-50: layer3 at
// dilation 2, layer4 at 4).
TEST(Winograd, DilatedConvTrainsByPhases) {
  SKIP_WITHOUT_WINOGRAD();
  torch::manual_seed(6);
  for (const auto trainer : trainers()) {
    const TrainingConvScope scope(trainer);
    for (const int64_t d : {2, 4}) {
      for (const bool channels_last : {false, true}) {
        SCOPED_TRACE(std::string(conv_algorithm_name(trainer)) + " d " + std::to_string(d) + (channels_last ? " channels-last" : " NCHW"));
        const auto format = channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
        const auto x = torch::randn({2, 64, 21, 18}).contiguous(format).requires_grad_();
        const auto weight = (torch::randn({80, 64, 3, 3}) / 24.0).contiguous(format).requires_grad_();
        const auto bias = torch::randn({80}).requires_grad_();
        const auto expected = torch::conv2d(x, weight, bias, 1, d, d);
        const auto y = dilated_winograd_conv2d(x, weight, bias, d);
        ASSERT_TRUE(y.requires_grad());
        ASSERT_EQ(y.sizes(), expected.sizes());
        EXPECT_LE(test::relative_error(y.detach(), expected.detach()), 1e-4);
        const auto wanted = test::gradient_inputs(x, weight, bias, true, true);
        const auto [got, oracle] = test::gradients_against(y, expected, wanted);
        for (size_t i = 0; i < wanted.size(); ++i) {
          ASSERT_EQ(got[i].sizes(), oracle[i].sizes()) << "gradient " << i;
          EXPECT_LE(test::relative_error(got[i], oracle[i]), 1e-4) << "gradient " << i;
          if (i < 2) EXPECT_GT(test::relative_error(got[i], oracle[i]), 0.0) << "gradient " << i << " bitwise LibTorch's: did Winograd run?";
        }
      }
    }
  }
  torch::nn::Conv2d layer(torch::nn::Conv2dOptions(64, 64, 3).padding(4).dilation(4));
  const auto x = torch::randn({1, 64, 32, 32}).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_();
  const auto upstream = torch::randn({1, 64, 32, 32});
  const auto grads_of = [&](const torch::Tensor& y) { return torch::autograd::grad({y}, {x, layer->weight}, {upstream}); };
  const TrainingConvScope scope(ConvAlgorithm::kWinograd);
  const auto by_conv = grads_of(conv(layer, x));
  const auto by_phases = grads_of(dilated_winograd_conv2d(x, layer->weight, layer->bias, 4));
  EXPECT_TRUE(torch::equal(by_conv[0], by_phases[0]) && torch::equal(by_conv[1], by_phases[1])) << "fcn::conv trained it another way";
  const TrainingConvScope direct(ConvAlgorithm::kDirect);
  EXPECT_TRUE(torch::equal(grads_of(conv(layer, x))[1], grads_of(layer->forward(x))[1]));  // --conv direct: LibTorch's
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

TEST(Winograd, ConvFollowsEachModesChoice) {
  SKIP_WITHOUT_WINOGRAD();
  const auto net = test::small_fcn8s("vgg11-w0.125");  // 1/8 width: conv4_2 and conv5_* are 64 -> 64, the rest too narrow
  net->eval();
  const auto input = torch::rand({1, 3, 256, 288});  // conv4_2 at 32 x 36: fcn's trainer serves it too
  set_conv_algorithm(ConvAlgorithm::kDirect);
  set_training_conv_algorithm(ConvAlgorithm::kDirect);
  torch::Tensor direct, winograd;
  {
    torch::NoGradGuard no_grad;
    direct = net->forward(input);
  }
  set_conv_algorithm(ConvAlgorithm::kWinograd);
  {
    torch::NoGradGuard no_grad;
    winograd = net->forward(input);
  }
  const auto grad_mode = net->forward(input);  // grad mode follows the training choice: LibTorch's, bitwise
  set_conv_algorithm(ConvAlgorithm::kDirect);
  EXPECT_LE(test::relative_error(winograd, direct), 1e-4);
  EXPECT_GT(test::relative_error(winograd, direct), 0.0);
  EXPECT_TRUE(torch::equal(grad_mode.detach(), direct));
  if (!winograd_supported()) return;
  // Training with Winograd: the same logits and parameter gradients, up to the transforms' rounding.
  auto grads_of = [&](const torch::Tensor& logits) {
    net->zero_grad();
    logits.square().sum().backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : net->parameters()) grads.push_back(p.grad().clone());
    return grads;
  };
  const auto direct_grads = grads_of(net->forward(input));
  for (const auto trainer : trainers()) {
    SCOPED_TRACE(conv_algorithm_name(trainer));
    set_training_conv_algorithm(trainer);
    const auto trained = net->forward(input);
    const auto winograd_grads = grads_of(trained);
    set_training_conv_algorithm(ConvAlgorithm::kDirect);
    EXPECT_LE(test::relative_error(trained.detach(), direct), 1e-4);
    EXPECT_GT(test::relative_error(trained.detach(), direct), 0.0);
    for (size_t i = 0; i < direct_grads.size(); ++i)
      if (direct_grads[i].abs().max().item<double>() > 0) EXPECT_LE(test::relative_error(winograd_grads[i], direct_grads[i]), 1e-3) << i;
  }
}

}  // namespace
}  // namespace fcn
