// Bilinear initialisation (FCN paper 3.3): upsampling a constant gives a constant and a linear
// ramp gives a linear ramp, in the closed form of each geometry's alignment.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/models/init.h"

namespace fcn {
namespace {

TEST(BilinearKernel, MatchesClosedForm) {
  // Caffe's bilinear filler for factor 2: [1, 3, 3, 1] / 4 along each axis.
  const auto k = bilinear_kernel(4);
  const auto row = torch::tensor({0.25f, 0.75f, 0.75f, 0.25f});
  EXPECT_TRUE(torch::allclose(k, torch::outer(row, row)));
  // Odd size 3 (factor 2): [0.5, 1, 0.5].
  const auto k3 = bilinear_kernel(3);
  EXPECT_FLOAT_EQ(k3[1][1].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(k3[0][1].item<float>(), 0.5f);
}

torch::nn::ConvTranspose2d upsampler(int64_t channels, int64_t factor, int64_t padding) {
  torch::nn::ConvTranspose2d layer(
      torch::nn::ConvTranspose2dOptions(channels, channels, 2 * factor).stride(factor).padding(padding).bias(false));
  init_bilinear(layer);
  return layer;
}

class BilinearUpsampling : public ::testing::TestWithParam<int64_t> {};

TEST_P(BilinearUpsampling, ConstantStaysConstantInTheInterior) {
  const int64_t f = GetParam();
  auto up = upsampler(3, f, f / 2);
  torch::NoGradGuard no_grad;
  const auto y = up(torch::full({1, 3, 6, 5}, 2.5f));
  // Interior: away from the first and last input cell (the zero padding beyond them fades).
  const auto interior = y.slice(2, f, 5 * f).slice(3, f, 4 * f);
  EXPECT_LT((interior - 2.5f).abs().max().item<float>(), 1e-5f);
}

TEST_P(BilinearUpsampling, RampStaysRampInTheSameGeometry) {
  // Padding f/2 aligns cell centres: output pixel t samples input position (t + 0.5) / f - 0.5.
  const int64_t f = GetParam(), n = 7;
  auto up = upsampler(2, f, f / 2);
  torch::NoGradGuard no_grad;
  const auto ramp = torch::arange(n, torch::kFloat).view({1, 1, 1, n}).expand({1, 2, 4, n}).contiguous();
  const auto y = up(ramp * 3.0f - 1.0f);
  ASSERT_EQ(y.size(3), n * f);
  // Row 2f is interior vertically (rows below f fade into the zero padding).
  for (int64_t t = f; t < (n - 1) * f; ++t) {
    const double position = (t + 0.5) / f - 0.5;
    EXPECT_NEAR(y[0][1][2 * f][t].item<float>(), position * 3.0 - 1.0, 1e-5) << "factor " << f << " pixel " << t;
  }
}

TEST_P(BilinearUpsampling, RampStaysRampInTheReferenceGeometry) {
  // No padding (Caffe): output pixel t samples input position (t - f + 0.5) / f.
  const int64_t f = GetParam(), n = 6;
  auto up = upsampler(1, f, 0);
  torch::NoGradGuard no_grad;
  const auto y = up(torch::arange(n, torch::kFloat).view({1, 1, n, 1}).expand({1, 1, n, n}).contiguous());
  for (int64_t t = 2 * f; t < n * f; ++t)
    EXPECT_NEAR(y[0][0][t][3 * f].item<float>(), (t - f + 0.5) / f, 1e-5) << "factor " << f << " row " << t;
}

TEST(BilinearUpsampling, ChannelsAreUpsampledIndependently) {
  auto up = upsampler(3, 2, 1);
  torch::NoGradGuard no_grad;
  auto x = torch::zeros({1, 3, 4, 4});
  x[0][1].fill_(1.0f);
  const auto y = up(x);
  EXPECT_EQ(y[0][0].abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(y[0][2].abs().sum().item<float>(), 0.0f);
  EXPECT_GT(y[0][1].sum().item<float>(), 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Factors, BilinearUpsampling, ::testing::Values(2, 8, 16, 32));

}  // namespace
}  // namespace fcn
