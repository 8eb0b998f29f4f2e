// im2col + sgemm convolutions (fc6-sized weights) against LibTorch's direct convolution, the oracle
// (itself golden-tested against PyTorch): both weight layouts, input layouts, padding, bias, the
// fused ReLU, batches and several chunks of pixels across an image boundary; which layers it
// serves; and the dispatch in fcn::conv (inference under fcn's kernels only). The same for U-Net's
// up-convolution (kernel = stride) by sgemm, against LibTorch's conv_transpose2d. Skipped in a build
// without libdnnl-dev, except the eligibility rules.
#include "fcn/models/gemm_conv.h"

#include <ATen/record_function.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/models/layers.h"
#include "fcn/models/winograd.h"
#include "fcn/util/error.h"
#include "test_util.h"

namespace fcn {
namespace {

TEST(GemmConv, MatchesDirectConvolution) {
  if (!winograd_supported()) GTEST_SKIP() << "fcn was built without oneDNN (libdnnl-dev)";
  torch::manual_seed(0);
  struct Case {
    int64_t n, c, o, h, w, kernel, padding;
    bool channels_last_x, channels_last_weight, bias;
  };
  // The first: a 7x7 over 512 channels, 25,088 floats per column, so 334 pixels per chunk and
  // 2 x 22 x 22 = 968 pixels: three chunks, one across the two images.
  for (const auto& k : {Case{2, 512, 16, 22, 22, 7, 3, true, true, true}, Case{1, 64, 32, 13, 9, 7, 0, false, false, true},
                        Case{1, 24, 40, 6, 8, 6, 0, true, false, false}, Case{3, 16, 8, 5, 5, 2, 1, false, true, true},
                        Case{1, 32, 8, 3, 3, 3, 0, true, true, true}}) {
    const auto x_format = k.channels_last_x ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
    const auto w_format = k.channels_last_weight ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
    const auto x = torch::randn({k.n, k.c, k.h, k.w}).contiguous(x_format);
    const auto weight = (torch::randn({k.o, k.c, k.kernel, k.kernel}) / std::sqrt(k.kernel * k.kernel * k.c)).contiguous(w_format);
    const auto bias = k.bias ? torch::randn({k.o}) : torch::Tensor();
    torch::NoGradGuard no_grad;
    const auto expected = torch::conv2d(x, weight, bias, 1, k.padding);
    const auto y = gemm_conv2d(x, weight, bias, k.padding);
    ASSERT_EQ(y.sizes(), expected.sizes()) << k.c << "->" << k.o << " " << k.kernel << "x" << k.kernel;
    EXPECT_LE(test::relative_error(y, expected), 1e-5) << k.c << "->" << k.o << " " << k.kernel << "x" << k.kernel;
    if (y.size(2) * y.size(3) > 1)  // (a 1 x 1 map is both layouts)
      EXPECT_EQ(y.is_contiguous(torch::MemoryFormat::ChannelsLast) && !y.is_contiguous(), k.channels_last_x) << k.kernel;
    const auto fused = gemm_conv2d(x, weight, bias, k.padding, /*relu=*/true);
    EXPECT_LE(test::relative_error(fused, expected.relu()), 1e-5);
    EXPECT_EQ(fused.min().item<float>(), 0.f);
  }
}

TEST(GemmConv, OnlyLayersItServes) {
  const auto x = torch::zeros({1, 512, 22, 22});
  const auto fc6 = torch::zeros({1}).expand({4096, 512, 7, 7});  // VGG16's fc6 shape, 411 MB, without the memory
  EXPECT_TRUE(gemm_conv_eligible(x, fc6, 1, 1, 1, 0, 0));
  EXPECT_TRUE(gemm_conv_eligible(x, fc6, 1, 1, 1, 3, 3));
  EXPECT_TRUE(gemm_conv_eligible(x, torch::zeros({1}).expand({1024, 512, 7, 7}), 1, 1, 1, 0, 0));  // 103 MB
  // VGG16-w0.25's fc6 (26 MB) stays with LibTorch, though this path would serve it.
  EXPECT_FALSE(gemm_conv_eligible(torch::zeros({1, 128, 16, 16}), torch::zeros({1024, 128, 7, 7}), 1, 1, 1, 3, 3));
  // Short products, whatever the weights: fewer than 256 output pixels over the batch.
  EXPECT_TRUE(gemm_conv_eligible(torch::zeros({1, 1024, 4, 4}), torch::zeros({1024, 1024, 3, 3}), 1, 1, 1, 1, 1));
  EXPECT_TRUE(gemm_conv_eligible(torch::zeros({4, 8, 4, 4}), torch::zeros({8, 8, 3, 3}), 1, 1, 1, 1, 1));     // 64 pixels
  EXPECT_TRUE(gemm_conv_eligible(torch::zeros({1, 8, 17, 15}), torch::zeros({8, 8, 3, 3}), 1, 1, 1, 0, 0));   // 15 x 13
  EXPECT_FALSE(gemm_conv_eligible(torch::zeros({1, 8, 16, 16}), torch::zeros({8, 8, 3, 3}), 1, 1, 1, 1, 1));  // 256
  EXPECT_FALSE(gemm_conv_eligible(torch::zeros({4, 8, 8, 8}), torch::zeros({8, 8, 3, 3}), 1, 1, 1, 1, 1));    // 4 x 64
  EXPECT_EQ(kGemmConvShortProductPixels, 256);
  EXPECT_TRUE(gemm_conv_serves(torch::zeros({1, 128, 16, 16}), torch::zeros({1024, 128, 7, 7}), 1, 1, 1, 3, 3));
  EXPECT_FALSE(gemm_conv_eligible(x, fc6, 2, 1, 1, 0, 0));  // stride
  EXPECT_FALSE(gemm_conv_eligible(x, fc6, 1, 2, 1, 0, 0));  // dilation
  EXPECT_FALSE(gemm_conv_eligible(x, fc6, 1, 1, 2, 0, 0));  // groups
  EXPECT_FALSE(gemm_conv_eligible(x, fc6, 1, 1, 1, 3, 2));  // uneven padding
  EXPECT_FALSE(gemm_conv_eligible(torch::zeros({1, 4096, 2, 2}), torch::zeros({1}).expand({4096, 4096, 1, 1}), 1, 1, 1, 0, 0));  // 1x1: a plain GEMM already
  EXPECT_FALSE(gemm_conv_eligible(torch::zeros({1, 512, 6, 6}), fc6, 1, 1, 1, 0, 0));  // input smaller than the kernel
  EXPECT_FALSE(gemm_conv_eligible(torch::zeros({1, 256, 22, 22}), fc6, 1, 1, 1, 0, 0));  // channels differ
  EXPECT_FALSE(gemm_conv_eligible(x.to(torch::kBFloat16), fc6.to(torch::kBFloat16), 1, 1, 1, 0, 0));
  EXPECT_NE(test::error_of([&] { gemm_conv2d(x, torch::zeros({8, 512, 1, 1}), {}, 0); }).find("gemm convolution"), std::string::npos);
  if (!winograd_supported())  // a build without oneDNN: a clear error, never a wrong answer
    EXPECT_NE(test::error_of([&] { gemm_conv2d(x, torch::zeros({8, 512, 3, 3}), {}, 0); }).find("without oneDNN"), std::string::npos);
}

// Short products with several threads: each thread's sgemm computes its share of the output
// channels (shares of 2, 2 and 1 for 5 outputs on 3 threads; a thread with none for 2 outputs),
// into the right columns of the result, fused ReLU and bias included; weights-first (40 rows, the
// product transposed into place) and columns-first (144 rows).
TEST(GemmConv, ThreadsShareAShortProductsOutputs) {
  if (!winograd_supported()) GTEST_SKIP() << "fcn was built without oneDNN (libdnnl-dev)";
  torch::manual_seed(4);
  const int threads = at::get_num_threads();
  torch::NoGradGuard no_grad;
  for (const int split : {3, 2, 1}) {
    at::set_num_threads(split);
    for (const int64_t outputs : {5, 2, 37}) {
      for (const int64_t side : {4, 8}) {  // 2 x 5 x 4 = 40 and 2 x 9 x 8 = 144 output pixels
        SCOPED_TRACE(std::to_string(split) + " threads, " + std::to_string(outputs) + " outputs, side " + std::to_string(side));
        const auto x = torch::randn({2, 24, side + 1, side}).contiguous(torch::MemoryFormat::ChannelsLast);
        const auto weight = torch::randn({outputs, 24, 3, 3}).contiguous(torch::MemoryFormat::ChannelsLast) / 15.0;
        const auto bias = torch::randn({outputs});
        const auto expected = torch::conv2d(x, weight, bias, 1, 1);
        EXPECT_LE(test::relative_error(gemm_conv2d(x, weight, bias, 1), expected), 1e-5);
        EXPECT_LE(test::relative_error(gemm_conv2d(x, weight, bias, 1, /*relu=*/true), expected.relu()), 1e-5);
      }
    }
  }
  at::set_num_threads(threads);
}

// fcn::conv takes this path in inference under fcn's kernels only: LibTorch's convolution, bitwise,
// under kDirect and in grad mode (training).
TEST(GemmConv, ConvFollowsTheFastPathsChoice) {
  if (!winograd_supported()) GTEST_SKIP() << "fcn was built without oneDNN (libdnnl-dev)";
  torch::manual_seed(3);
  torch::nn::Conv2d layer(torch::nn::Conv2dOptions(1024, 1024, 4));  // 64 MiB of weights: the smallest eligible
  ASSERT_EQ(layer->weight.numel() * 4, kGemmConvMinWeightBytes);
  const auto x = torch::randn({1, 1024, 5, 6});
  torch::Tensor direct, fast, relu;
  set_conv_algorithm(ConvAlgorithm::kDirect);
  {
    torch::NoGradGuard no_grad;
    direct = conv(layer, x);
    set_conv_algorithm(ConvAlgorithm::kWinograd);
    fast = conv(layer, x);
    relu = conv_relu(layer, x);
  }
  const auto grad_mode = conv(layer, x);
  set_conv_algorithm(ConvAlgorithm::kDirect);
  EXPECT_TRUE(torch::equal(direct, layer->forward(x).detach()));
  EXPECT_LE(test::relative_error(fast, direct), 1e-5);
  EXPECT_GT(test::relative_error(fast, direct), 0.0) << "bitwise LibTorch's: did im2col + sgemm run at all?";
  EXPECT_LE(test::relative_error(relu, direct.relu()), 1e-5);
  EXPECT_TRUE(torch::equal(grad_mode.detach(), direct));
}

// Training short products: the output and the input, weight and bias gradients against LibTorch's
// autograd convolution (the oracle), over both layouts, kernels 7 (the demo's fc6, valid), 3 (padded)
// and 2, bias or none; the weight gradient comes back in the weight's own layout.
TEST(GemmConv, TrainsShortProductsLikeAutograd) {
  if (!winograd_supported()) GTEST_SKIP() << "fcn was built without oneDNN (libdnnl-dev)";
  torch::manual_seed(5);
  struct Case {
    int64_t n, c, o, h, w, kernel, padding;
    bool channels_last, bias;
  };
  for (const auto& k : {Case{4, 24, 40, 8, 8, 7, 0, true, true}, Case{4, 24, 40, 8, 8, 7, 0, false, true},
                        Case{2, 16, 12, 4, 5, 3, 1, true, false}, Case{3, 8, 6, 5, 4, 2, 1, false, true},
                        Case{1, 32, 8, 3, 3, 3, 0, true, true}}) {
    SCOPED_TRACE(std::to_string(k.kernel) + "x" + std::to_string(k.kernel) + (k.channels_last ? " channels-last" : " NCHW"));
    const auto format = k.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
    const auto x0 = torch::randn({k.n, k.c, k.h, k.w}).contiguous(format);
    const auto w0 = (torch::randn({k.o, k.c, k.kernel, k.kernel}) / std::sqrt(k.kernel * k.kernel * k.c)).contiguous(format);
    const auto b0 = torch::randn({k.o});
    auto grads = [&](bool gemm) {
      const auto x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_();
      const auto b = k.bias ? b0.clone().requires_grad_() : torch::Tensor();
      const auto y = gemm ? gemm_conv2d_trainable(x, w, b, k.padding) : torch::conv2d(x, w, b, 1, k.padding);
      const auto upstream = torch::arange(y.numel(), torch::kFloat).view(y.sizes()).sin();  // the same in both runs
      y.backward(upstream);
      return std::vector<torch::Tensor>{y.detach(), x.grad(), w.grad(), k.bias ? b.grad() : torch::zeros({1})};
    };
    ASSERT_TRUE(gemm_conv_trains_well(x0, w0, 1, 1, 1, k.padding, k.padding));
    const auto expected = grads(false), got = grads(true);
    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(got[i].sizes(), expected[i].sizes()) << i;
      EXPECT_LE(test::relative_error(got[i], expected[i]), 1e-5) << "output, dx, dw, db: " << i;
    }
    EXPECT_EQ(got[2].is_contiguous(format), true) << "the weight gradient in the weight's layout";
    if (k.h * k.w > 1 && k.channels_last) EXPECT_FALSE(got[1].is_contiguous()) << "dx in x's layout";
  }
  // Which layers: fewer than 256 output pixels only; no double backward.
  EXPECT_FALSE(gemm_conv_trains_well(torch::zeros({1, 8, 16, 16}), torch::zeros({8, 8, 3, 3}), 1, 1, 1, 1, 1));
  EXPECT_TRUE(gemm_conv_trains_well(torch::zeros({3, 8, 9, 9}), torch::zeros({8, 8, 3, 3}), 1, 1, 1, 1, 1));  // 243
  EXPECT_NE(test::error_of([] { gemm_conv2d_trainable(torch::zeros({1, 8, 16, 16}), torch::zeros({8, 8, 3, 3}), {}, 1); })
                .find("fewer than 256 output pixels"),
            std::string::npos);
  const auto x = torch::randn({1, 4, 3, 3}).requires_grad_();
  const auto w = torch::randn({2, 4, 3, 3}).requires_grad_();
  const auto y = gemm_conv2d_trainable(x, w, {}, 1);
  EXPECT_NE(test::error_of([&] { torch::autograd::grad({y.sum()}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true); })
                .find("no double backward"),
            std::string::npos);
}

// fcn::conv trains short products this way under the trainer's fcn kernels (the default), and by
// LibTorch's convolution, bitwise, under kDirect; inference is gemm_conv2d's.
TEST(GemmConv, ConvTrainsShortProductsUnderFcnsKernels) {
  if (!winograd_supported()) GTEST_SKIP() << "fcn was built without oneDNN (libdnnl-dev)";
  torch::manual_seed(6);
  torch::nn::Conv2d layer(torch::nn::Conv2dOptions(32, 16, 3).padding(1));
  const auto x = torch::randn({2, 32, 6, 6}).requires_grad_();
  auto step = [&](ConvAlgorithm algorithm) {
    set_training_conv_algorithm(algorithm);
    layer->zero_grad();
    const auto y = conv_relu(layer, x);
    y.sum().backward();
    return std::make_pair(y.detach(), layer->weight.grad().clone());
  };
  const auto direct = step(ConvAlgorithm::kDirect), fcn = step(ConvAlgorithm::kWinograd);
  set_training_conv_algorithm(ConvAlgorithm::kWinograd);
  const auto reference = torch::relu(layer->forward(x));
  EXPECT_TRUE(torch::equal(direct.first, reference.detach()));
  EXPECT_FALSE(torch::equal(fcn.first, direct.first)) << "bitwise LibTorch's: did the gemm path run at all?";
  EXPECT_LE(test::relative_error(fcn.first, direct.first), 1e-5);
  EXPECT_LE(test::relative_error(fcn.second, direct.second), 1e-5);
}

// U-Net's up-convolution: either input and weight layout, bias or none, one pixel or several
// chunks of pixels over an image boundary, strides 2 and 3.
TEST(NonOverlappingTransposed, MatchesConvTranspose2d) {
  if (!winograd_supported()) GTEST_SKIP() << "fcn was built without oneDNN (libdnnl-dev)";
  torch::NoGradGuard no_grad;
  struct Case {
    int64_t batch, in, out, side, stride;
    bool bias, channels_last_input, channels_last_weight;
  };
  for (const auto& c : {Case{1, 64, 32, 1, 2, true, true, true}, Case{2, 16, 64, 64, 2, true, true, true},  // 8 chunks
                        Case{2, 16, 64, 64, 2, false, false, false}, Case{1, 24, 8, 7, 3, true, false, true},
                        Case{3, 32, 16, 9, 2, true, true, false}}) {
    SCOPED_TRACE(::testing::Message() << c.batch << "x" << c.in << "->" << c.out << " @" << c.side << " s" << c.stride);
    torch::manual_seed(c.in + c.side);
    auto x = torch::randn({c.batch, c.in, c.side, c.side + 1});
    auto w = torch::randn({c.in, c.out, c.stride, c.stride}) / std::sqrt(static_cast<double>(c.in));
    const auto b = c.bias ? torch::randn({c.out}) : torch::Tensor();
    if (c.channels_last_input) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    if (c.channels_last_weight) w = w.contiguous(torch::MemoryFormat::ChannelsLast);
    const auto expected = torch::conv_transpose2d(x, w, b, c.stride);
    const auto actual = nonoverlapping_transposed_conv2d(x, w, b, c.stride);
    ASSERT_EQ(actual.sizes(), expected.sizes());
    EXPECT_EQ(actual.is_contiguous(torch::MemoryFormat::ChannelsLast) && !actual.is_contiguous(), c.channels_last_input);
    EXPECT_LE(test::relative_error(actual, expected), 1e-5);
  }
  EXPECT_FALSE(nonoverlapping_transposed_serves(torch::zeros({1, 4, 3, 3}), torch::zeros({4, 2, 4, 4}), 2, 1, 1, 0));  // overlap
  EXPECT_FALSE(nonoverlapping_transposed_serves(torch::zeros({1, 4, 3, 3}), torch::zeros({4, 2, 2, 2}), 2, 1, 1, 1));  // output padding
  EXPECT_FALSE(nonoverlapping_transposed_serves(torch::zeros({1, 4, 3, 3}), torch::zeros({4, 2, 2, 2}), 2, 2, 1, 0));  // groups
  EXPECT_FALSE(nonoverlapping_transposed_serves(torch::zeros({1, 4, 3, 3}).to(torch::kBFloat16),
                                                torch::zeros({4, 2, 2, 2}).to(torch::kBFloat16), 2, 1, 1, 0));
  EXPECT_NE(test::error_of([] { nonoverlapping_transposed_conv2d(torch::zeros({1, 4, 3, 3}), torch::zeros({4, 2, 4, 4}), {}, 2); })
                .find("up-convolution"),
            std::string::npos);
}

// Calls of fcn's up-convolution kernel on this thread, heard through its row in operator profiles.
thread_local int kernel_calls = 0;
std::unique_ptr<at::ObserverContext> count_kernel_calls(const at::RecordFunction& function) {
  if (std::string(function.name()) == "fcn::nonoverlapping_transposed_conv2d") ++kernel_calls;
  return nullptr;
}

// fcn::conv takes it in inference under fcn's kernels, with the layer's padding cropped; LibTorch's
// (the subpixel rewrite) otherwise and in grad mode.
TEST(NonOverlappingTransposed, ConvFollowsTheFastPathsChoice) {
  if (!winograd_supported()) GTEST_SKIP() << "fcn was built without oneDNN (libdnnl-dev)";
  torch::manual_seed(4);
  torch::nn::ConvTranspose2d layer(torch::nn::ConvTranspose2dOptions(32, 16, 2).stride(2).padding(1));
  const auto x = torch::randn({1, 32, 10, 12}).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto expected = layer->forward(x).detach();
  const auto handle = at::addThreadLocalCallback(at::RecordFunctionCallback(count_kernel_calls));
  torch::Tensor direct, fast;
  int calls_direct = 0, calls_fast = 0, calls_grad_mode = 0;
  {
    torch::NoGradGuard no_grad;
    set_conv_algorithm(ConvAlgorithm::kDirect);
    kernel_calls = 0;
    direct = conv(layer, x);
    calls_direct = kernel_calls;
    set_conv_algorithm(ConvAlgorithm::kWinograd);
    kernel_calls = 0;
    fast = conv(layer, x);
    calls_fast = kernel_calls;
  }
  kernel_calls = 0;
  const auto grad_mode = conv(layer, x).detach();
  calls_grad_mode = kernel_calls;
  at::removeCallback(handle);
  set_conv_algorithm(ConvAlgorithm::kDirect);
  ASSERT_EQ(fast.sizes(), expected.sizes());
  EXPECT_LE(test::relative_error(fast, expected), 1e-5);
  EXPECT_EQ(calls_fast, 1) << "fcn's kernel should run under the fast path";
  EXPECT_EQ(calls_direct, 0);
  EXPECT_EQ(calls_grad_mode, 0);
  EXPECT_TRUE(torch::equal(grad_mode, direct));
}

}  // namespace
}  // namespace fcn
