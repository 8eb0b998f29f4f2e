// The transposed convolution fcn runs as convolution + pixel_shuffle equals LibTorch's own
// conv_transpose2d, values and gradients, for every upsampler shape fcn builds; a conv's explicit
// padding as fcn's geometry rules read it.
#include "fcn/models/layers.h"
#include "fcn/models/winograd.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <tuple>
#include <vector>

#include "test_util.h"

namespace fcn {
namespace {

// transposed_as_subpixel_conv against conv_transpose2d: values, and the gradients of input and weight.
void expect_conv_transpose2d(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t stride, int64_t padding) {
  auto x1 = x.clone().requires_grad_(true), w1 = w.clone().requires_grad_(true);
  auto x2 = x.clone().requires_grad_(true), w2 = w.clone().requires_grad_(true);
  const auto expected = torch::conv_transpose2d(x1, w1, b, stride, padding);
  const auto actual = transposed_as_subpixel_conv(x2, w2, b, stride, padding);
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_LT((actual - expected).abs().max().item<double>(), 1e-4);
  const auto g = torch::randn_like(expected);
  (expected * g).sum().backward();
  (actual * g).sum().backward();
  EXPECT_LT((x2.grad() - x1.grad()).abs().max().item<double>(), 1e-3);
  EXPECT_LT((w2.grad() - w1.grad()).abs().max().item<double>(), 1e-3);
}

class SubpixelTransposed : public ::testing::TestWithParam<std::tuple<int, int, int, bool, bool>> {};

TEST_P(SubpixelTransposed, EqualsConvTranspose2dInValueAndGradient) {
  const auto [kernel, stride, padding, with_bias, channels_last] = GetParam();
  torch::manual_seed(kernel * 100 + stride * 10 + padding);
  auto x = torch::randn({2, 5, 7, 6});
  if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  auto w = torch::randn({5, 3, kernel, kernel});
  auto b = with_bias ? torch::randn({3}) : torch::Tensor();
  expect_conv_transpose2d(x, w, b, stride, padding);
}

// FCN upsamplers (2f x 2f, stride f; "same" geometry pads f/2) and U-Net's 2x2 stride 2.
INSTANTIATE_TEST_SUITE_P(Shapes, SubpixelTransposed,
                         ::testing::Values(std::make_tuple(4, 2, 0, false, false), std::make_tuple(4, 2, 1, false, true),
                                           std::make_tuple(16, 8, 0, false, true), std::make_tuple(16, 8, 4, true, false),
                                           std::make_tuple(64, 32, 0, false, false), std::make_tuple(64, 32, 16, false, true),
                                           std::make_tuple(2, 2, 0, true, true), std::make_tuple(6, 3, 0, true, false)));

// Kernel == stride (U-Net's up-convolution; nothing to flip) with the weights in either layout, as
// the predictor's channels-last nets hold them; and in bf16.
TEST(SubpixelTransposed, KernelEqualToStrideInEitherWeightLayout) {
  for (const auto& [kernel, padding, weight_channels_last, with_bias] :
       {std::make_tuple(2, 0, true, true), std::make_tuple(2, 0, false, true), std::make_tuple(3, 1, true, false)}) {
    SCOPED_TRACE(::testing::Message() << kernel << " " << padding << " " << weight_channels_last << " " << with_bias);
    torch::manual_seed(kernel + padding);
    auto w = torch::randn({6, 5, kernel, kernel});
    if (weight_channels_last) w = w.contiguous(torch::MemoryFormat::ChannelsLast);
    expect_conv_transpose2d(torch::randn({2, 6, 5, 4}).contiguous(torch::MemoryFormat::ChannelsLast), w,
                            with_bias ? torch::randn({5}) : torch::Tensor(), kernel, padding);
  }
  torch::manual_seed(3);
  torch::nn::ConvTranspose2d layer(torch::nn::ConvTranspose2dOptions(16, 8, 2).stride(2));
  const auto x = torch::randn({1, 16, 6, 6});
  const auto expected = layer->forward(x);
  layer->to(torch::kBFloat16);
  const auto actual = conv(layer, x.to(torch::kBFloat16).contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_EQ(actual.scalar_type(), torch::kBFloat16);
  EXPECT_LT((actual.to(torch::kFloat) - expected).abs().max().item<double>(), 0.05 * expected.abs().max().item<double>());
}

// Inference (no grad) takes other routes than training: the rearranged weights kept between calls and, where the
// fast path runs fcn's kernels, on channels-last activations phases ordered so that a permuting copy replaces
// pixel_shuffle, and the phases' convolution on oneDNN at more than one thread. Each FCN upsampler shape, each
// layout, 1 and 2 threads, with and without bias, either conv algorithm, against LibTorch's conv_transpose2d; then
// again after the weights change in place (an optimizer step between two evaluations), so a kept rearrangement of
// the old weights would show.
TEST(ConvTransposeLayer, InferenceEqualsConvTranspose2dAtEitherThreadCountAndAfterAWeightChange) {
  const int threads_before = at::get_num_threads();
  const std::vector<std::tuple<int, int, int, bool>> shapes{
      {4, 2, 1, false}, {16, 8, 4, true}, {64, 32, 16, false}, {2, 2, 0, true}};
  for (const auto algorithm : {ConvAlgorithm::kDirect, ConvAlgorithm::kWinograd})
    for (const auto& [kernel, stride, padding, with_bias] : shapes)
      for (const bool channels_last : {true, false})
        for (const int threads : {1, 2}) {
          SCOPED_TRACE(::testing::Message() << "kernel " << kernel << " stride " << stride << " channels_last "
                                            << channels_last << " threads " << threads << " "
                                            << conv_algorithm_name(algorithm));
          at::set_num_threads(threads);
          set_conv_algorithm(algorithm);
          torch::manual_seed(kernel + threads);
          torch::nn::ConvTranspose2d layer(
              torch::nn::ConvTranspose2dOptions(6, 5, kernel).stride(stride).padding(padding).bias(with_bias));
          auto x = torch::randn({2, 6, 5, 4});
          if (channels_last) {
            x = x.contiguous(torch::MemoryFormat::ChannelsLast);
            to_channels_last(*layer);
          }
          torch::NoGradGuard no_grad;
          for (int step = 0; step < 2; ++step) {
            const auto expected = torch::conv_transpose2d(x, layer->weight, layer->bias, stride, padding);
            const auto actual = conv(layer, x);
            ASSERT_EQ(actual.sizes(), expected.sizes());
            EXPECT_EQ(actual.suggest_memory_format(), x.suggest_memory_format());
            EXPECT_LT((actual - expected).abs().max().item<double>(), 1e-4) << "step " << step;
            EXPECT_TRUE(torch::allclose(conv(layer, x), actual)) << "a second call, from the kept weights";
            layer->weight.add_(torch::randn_like(layer->weight));
            if (with_bias) layer->bias.mul_(-2);
          }
        }
  set_conv_algorithm(ConvAlgorithm::kDirect);
  at::set_num_threads(threads_before);
}

// fcn's phase sgemm (gemm_conv.h) where products span several chunks (a 32x upsampler of 21 classes: 64 phase pixels a
// chunk, 169 in all), kernels three times the stride, crops of every size, and phases shared unevenly by 3 threads:
// conv_transpose2d's values in either layout.
TEST(ConvTransposeLayer, PhaseSgemmCoversEveryChunkCropAndThreadSplit) {
  if (!winograd_supported()) GTEST_SKIP() << "fcn built without oneDNN";
  const int threads_before = at::get_num_threads();
  const std::vector<std::tuple<int, int, int, int, int>> shapes{// in, out, kernel, stride, padding
                                                                {6, 21, 64, 32, 16}, {5, 3, 6, 2, 2}, {4, 7, 9, 3, 0}, {3, 4, 8, 4, 5}};
  set_conv_algorithm(ConvAlgorithm::kWinograd);
  torch::NoGradGuard no_grad;
  for (const auto& [in, out, kernel, stride, padding] : shapes)
    for (const bool channels_last : {true, false})
      for (const int threads : {1, 2, 3}) {
        SCOPED_TRACE(::testing::Message() << in << "->" << out << " kernel " << kernel << " stride " << stride << " padding "
                                          << padding << " channels_last " << channels_last << " threads " << threads);
        at::set_num_threads(threads);
        torch::manual_seed(kernel + threads);
        torch::nn::ConvTranspose2d layer(torch::nn::ConvTranspose2dOptions(in, out, kernel).stride(stride).padding(padding));
        auto x = torch::randn({1, in, 12, 11});
        if (channels_last) {
          x = x.contiguous(torch::MemoryFormat::ChannelsLast);
          to_channels_last(*layer);
        }
        const auto expected = torch::conv_transpose2d(x, layer->weight, layer->bias, stride, padding);
        const auto actual = conv(layer, x);
        ASSERT_EQ(actual.sizes(), expected.sizes());
        EXPECT_EQ(actual.suggest_memory_format(), x.suggest_memory_format());
        EXPECT_LT((actual - expected).abs().max().item<double>(), 1e-4);
      }
  set_conv_algorithm(ConvAlgorithm::kDirect);
  at::set_num_threads(threads_before);
}

// conv_add = sum + conv: in place (the sum's own storage) where fcn's phase sgemm runs the layer on a channels-last
// sum, with and without bias; a new tensor for an NCHW sum, with direct convs, and in grad mode.
TEST(ConvTransposeLayer, ConvAddAddsIntoAChannelsLastSumAndElseAddsAsUsual) {
  for (const bool with_bias : {false, true})
    for (const auto algorithm : {ConvAlgorithm::kWinograd, ConvAlgorithm::kDirect})
      for (const bool channels_last : {true, false})
        for (const bool grad : {false, true}) {
          SCOPED_TRACE(::testing::Message() << "bias " << with_bias << " " << conv_algorithm_name(algorithm) << " channels_last "
                                            << channels_last << " grad " << grad);
          set_conv_algorithm(algorithm);
          torch::manual_seed(7);
          torch::nn::ConvTranspose2d layer(torch::nn::ConvTranspose2dOptions(5, 5, 16).stride(8).padding(4).bias(with_bias));
          auto x = torch::randn({1, 5, 4, 3}), sum = torch::randn({1, 5, 32, 24});
          if (channels_last) {
            x = x.contiguous(torch::MemoryFormat::ChannelsLast);
            sum = sum.contiguous(torch::MemoryFormat::ChannelsLast);
            to_channels_last(*layer);
          }
          torch::AutoGradMode mode(grad);
          const auto expected = (sum + torch::conv_transpose2d(x, layer->weight, layer->bias, 8, 4)).detach();
          const auto* storage = sum.data_ptr<float>();
          const auto actual = conv_add(layer, x, grad ? sum : sum.detach());
          EXPECT_LT((actual.detach() - expected).abs().max().item<double>(), 1e-4);
          const bool in_place = winograd_supported() && algorithm == ConvAlgorithm::kWinograd && channels_last && !grad;
          EXPECT_EQ(actual.data_ptr<float>() == storage, in_place);
        }
  set_conv_algorithm(ConvAlgorithm::kDirect);
}

// conv_bn folds the batch norm into the conv in inference under fcn's kernels: bn(conv(x)) (and its ReLU) in value for
// 3x3 (Winograd's), 1x1 strided, 7x7 strided and small-map layers, with and without a conv bias, in either layout; again
// after each of the running statistics, gamma, beta and the conv weight changes in place; in training mode
// (batch statistics) and with direct convs it is bn(conv(x)) itself.
TEST(ConvBn, FoldedInInferenceEqualsConvThenBatchNormAndFollowsEveryChange) {
  const std::vector<std::tuple<int, int, int, int, int, int>> layers{// in, out, kernel, stride, padding, side
                                                                     {16, 16, 3, 1, 1, 24}, {8, 16, 1, 2, 0, 20}, {3, 8, 7, 2, 3, 32}, {16, 16, 3, 1, 1, 6}};
  for (const auto algorithm : {ConvAlgorithm::kWinograd, ConvAlgorithm::kDirect})
    for (const auto& [in, out, kernel, stride, padding, side] : layers)
      for (const bool channels_last : {true, false})
        for (const bool conv_bias : {false, true}) {
          SCOPED_TRACE(::testing::Message() << in << "->" << out << " k" << kernel << " s" << stride << " channels_last "
                                            << channels_last << " bias " << conv_bias << " " << conv_algorithm_name(algorithm));
          set_conv_algorithm(algorithm);
          torch::manual_seed(kernel + side);
          torch::nn::Conv2d layer(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(conv_bias));
          torch::nn::BatchNorm2d bn(torch::nn::BatchNorm2dOptions(out).eps(1e-3));
          auto x = torch::randn({1, in, side, side});
          torch::NoGradGuard no_grad;
          bn->running_mean.normal_();
          bn->running_var.uniform_(0.5, 2);
          bn->weight.normal_();
          bn->bias.normal_();
          if (channels_last) {
            x = x.contiguous(torch::MemoryFormat::ChannelsLast);
            to_channels_last(*layer);
          }
          bn->eval();
          for (int change = 0; change < 5; ++change) {
            const auto expected = bn(torch::conv2d(x, layer->weight, layer->bias, stride, padding));
            EXPECT_LT((conv_bn(layer, bn, x) - expected).abs().max().item<double>(), 1e-4) << "change " << change;
            EXPECT_LT((conv_bn(layer, bn, x, true) - expected.relu()).abs().max().item<double>(), 1e-4) << "change " << change;
            const std::vector<torch::Tensor> changed{bn->running_mean, bn->running_var, bn->weight, bn->bias, layer->weight};
            changed[change].mul_(change == 1 ? 2.0 : -1.5);
          }
          bn->train();
          EXPECT_TRUE(torch::equal(conv_bn(layer, bn, x), bn(conv(layer, x)))) << "training mode: batch statistics";
        }
  set_conv_algorithm(ConvAlgorithm::kDirect);
}

// Batch-1 inference on small maps under kernels LibTorch would run on its one-threaded im2col path goes to oneDNN
// where the fast path runs fcn's kernels: the same values as LibTorch's conv2d, for 3x3 layers (stride 1 and 2, with
// ReLU fused or not) and a 2x2, in either layout; 1x1 and batch 2 stay LibTorch's. With direct convs (kDirect) every
// layer is LibTorch's own, bit for bit.
TEST(ConvLayer, SmallMapsInInferenceEqualLibTorchsConvolution) {
  torch::NoGradGuard no_grad;
  const std::vector<std::tuple<int, int, int, int, int>> layers{
      {16, 16, 32, 3, 1}, {16, 32, 32, 3, 2}, {32, 32, 16, 3, 1}, {21, 8, 12, 2, 1}, {16, 21, 16, 1, 1}};
  for (const auto algorithm : {ConvAlgorithm::kDirect, ConvAlgorithm::kWinograd})
    for (const auto& [in, out, side, kernel, stride] : layers)
      for (const bool channels_last : {true, false})
        for (const int64_t batch : {1, 2}) {
          SCOPED_TRACE(::testing::Message() << in << "->" << out << " " << side << "^2 k" << kernel << " s" << stride
                                            << " channels_last " << channels_last << " batch " << batch << " "
                                            << conv_algorithm_name(algorithm));
          set_conv_algorithm(algorithm);
          torch::manual_seed(in + side);
          torch::nn::Conv2d layer(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2));
          auto x = torch::randn({batch, in, side, side});
          if (channels_last) {
            x = x.contiguous(torch::MemoryFormat::ChannelsLast);
            to_channels_last(*layer);
          }
          const auto expected = torch::conv2d(x, layer->weight, layer->bias, stride, kernel / 2);
          const auto y = conv(layer, x);
          EXPECT_LT((y - expected).abs().max().item<double>(), 1e-4);
          EXPECT_LT((conv_relu(layer, x) - expected.relu()).abs().max().item<double>(), 1e-4);
          if (algorithm == ConvAlgorithm::kDirect) EXPECT_TRUE(torch::equal(y, expected));
        }
  set_conv_algorithm(ConvAlgorithm::kDirect);
}

// 1x1 convs on larger maps at one thread, where LibTorch 1.13 runs its _slow_conv2d_forward: oneDNN's kernel under
// fcn's kernels (the same values as LibTorch's conv2d, within float rounding), LibTorch's own with direct convs.
TEST(ConvLayer, OneByOneOnLargerMapsAtOneThreadIsOneDnns) {
  if (!at::hasMKLDNN()) GTEST_SKIP() << "LibTorch without oneDNN";
  torch::NoGradGuard no_grad;
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  torch::manual_seed(6);
  torch::nn::Conv2d layer(torch::nn::Conv2dOptions(64, 96, 1));
  to_channels_last(*layer);
  const auto x = torch::randn({2, 64, 24, 20}).contiguous(torch::MemoryFormat::ChannelsLast);  // 30,720 values an image
  const auto expected = torch::conv2d(x, layer->weight, layer->bias);
  set_conv_algorithm(ConvAlgorithm::kWinograd);
  const auto y = conv(layer, x);
  set_conv_algorithm(ConvAlgorithm::kDirect);
  const auto direct = conv(layer, x);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(y, at::mkldnn_convolution(x, layer->weight, layer->bias, {0, 0}, {1, 1}, {1, 1}, 1)));
  EXPECT_LE(test::relative_error(y, expected), 1e-5);
  EXPECT_TRUE(torch::equal(direct, expected));
}

TEST(ConvTransposeLayer, OtherShapesFallBackToLibTorch) {
  torch::manual_seed(1);
  torch::nn::ConvTranspose2d layer(torch::nn::ConvTranspose2dOptions(4, 2, 3).stride(2).padding(1).output_padding(1));
  const auto x = torch::randn({1, 4, 5, 5});
  EXPECT_TRUE(torch::equal(conv(layer, x), layer->forward(x)));
}

TEST(ConvTransposeLayer, Bf16RunsOnTheCpuCloseToFp32) {
  torch::manual_seed(2);
  torch::nn::ConvTranspose2d layer(torch::nn::ConvTranspose2dOptions(6, 6, 16).stride(8).bias(false));
  const auto x = torch::randn({1, 6, 9, 9});
  const auto expected = layer->forward(x);
  layer->to(torch::kBFloat16);
  const auto actual = conv(layer, x.to(torch::kBFloat16));
  EXPECT_EQ(actual.scalar_type(), torch::kBFloat16);
  EXPECT_LT((actual.to(torch::kFloat) - expected).abs().max().item<double>(), 0.05 * expected.abs().max().item<double>());
}


// The padding every geometry rule reads (FCN coord maps, VGG's, the ONNX export): the conv's own,
// per axis, whichever variant type LibTorch holds it in; 'same' is not a padding fcn can map.
// relu_in_place: the values of relu_ for bf16 and fp32, in the same tensor, NaN kept, with and without autograd
// (bf16 without autograd goes through threshold_, faster there).
TEST(ReluInPlace, ValuesOfReluInTheSameTensorNaNKept) {
  torch::manual_seed(4);
  for (const auto dtype : {torch::kBFloat16, torch::kFloat}) {
    auto x = torch::randn({2, 8, 9, 7}).to(dtype).contiguous(torch::MemoryFormat::ChannelsLast);
    x.index_put_({0, 0, 0, 0}, -0.0);
    const auto expected = torch::relu(x);
    {
      torch::NoGradGuard no_grad;
      const auto y = relu_in_place(x);
      EXPECT_TRUE(y.is_same(x));
      EXPECT_TRUE(torch::equal(x, expected)) << dtype;
    }
    auto nan = torch::full({3}, std::numeric_limits<float>::quiet_NaN()).to(dtype);
    relu_in_place(nan);  // grad mode on: relu_
    EXPECT_TRUE(nan.isnan().all().item<bool>()) << dtype;
    torch::NoGradGuard no_grad;
    relu_in_place(nan);
    EXPECT_TRUE(nan.isnan().all().item<bool>()) << dtype;
  }
}

// conv_relu_pool: max_pool(relu(conv)) bit for bit, whichever order it runs them in (the ReLU after the pool for
// bf16 in inference), for VGG's 2x2 ceil-mode pools on odd sides and AlexNet's padded 3x3 stride-2 ones; a NaN
// stays NaN; with autograd, the gradient of the input is the reference's.
TEST(ConvReluPool, MaxPoolOfReluOfTheConvWhicheverOrder) {
  torch::manual_seed(5);
  torch::nn::Conv2d layer(torch::nn::Conv2dOptions(4, 6, 3).padding(1));
  for (const auto dtype : {torch::kBFloat16, torch::kFloat}) {
    layer->to(dtype);
    for (const auto& pool : {MaxPool{2, 2, 0, true}, MaxPool{2, 2, 0, false}, MaxPool{3, 2, 1, false}, MaxPool{3, 2, 0, true}}) {
      auto x = torch::randn({2, 4, 9, 11}).to(dtype).contiguous(torch::MemoryFormat::ChannelsLast);
      x.index_put_({1, 2, 4, 5}, std::numeric_limits<float>::quiet_NaN());
      const auto reference = [&](const torch::Tensor& input) {
        return torch::max_pool2d(torch::relu(conv(layer, input)), pool.kernel, pool.stride, pool.padding, 1, pool.ceil_mode);
      };
      {
        torch::NoGradGuard no_grad;
        const auto expected = reference(x), actual = conv_relu_pool(layer, x, pool);
        ASSERT_EQ(actual.sizes(), expected.sizes());
        EXPECT_TRUE(torch::equal(actual.nan_to_num(-7), expected.nan_to_num(-7))) << dtype << " kernel " << pool.kernel;
        EXPECT_TRUE(torch::equal(actual.isnan(), expected.isnan()));
        EXPECT_TRUE(actual.isnan().any().item<bool>());
      }
      if (dtype != torch::kFloat) continue;
      auto x1 = torch::randn({2, 4, 9, 11}).requires_grad_(true), x2 = x1.detach().clone().requires_grad_(true);
      const auto g = torch::randn_like(reference(x1));
      (reference(x1) * g).sum().backward();
      (conv_relu_pool(layer, x2, pool) * g).sum().backward();
      EXPECT_TRUE(torch::allclose(x1.grad(), x2.grad()));
    }
  }
}

TEST(ExplicitPadding, IsTheConvsOwnAndSameIsRefused) {
  const auto p = explicit_padding(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3).padding({2, 1}))->options);
  EXPECT_EQ(p->at(0), 2);
  EXPECT_EQ(p->at(1), 1);
  EXPECT_EQ(explicit_padding(torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(3, 4, 4).stride(2).padding(1))->options)->at(1), 1);
  const torch::nn::Conv2d same(torch::nn::Conv2dOptions(3, 4, 3).padding(torch::kSame));
  EXPECT_NE(test::error_of([&] { explicit_padding(same->options); }).find("'same'"), std::string::npos);
}

}  // namespace
}  // namespace fcn
