// linear_quantiles against a hand computation and against torch::quantile (linear, numpy's default).
#include "fcn/util/quantile.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/util/error.h"
#include "test_util.h"

namespace fcn {
namespace {

TEST(Quantile, LinearBetweenTheTwoOrderStatisticsByHand) {
  const auto values = torch::tensor({4, 1, 3, 2}, torch::kInt16);  // sorted 1 2 3 4
  const auto q = linear_quantiles(values, {0, 0.5, 0.95, 1});
  EXPECT_DOUBLE_EQ(q[0], 1);
  EXPECT_DOUBLE_EQ(q[1], 2.5);   // rank 1.5
  EXPECT_DOUBLE_EQ(q[2], 3.85);  // rank 2.85: 3 + 0.85 * (4 - 3)
  EXPECT_DOUBLE_EQ(q[3], 4);
  EXPECT_EQ(values[0].item<int>(), 4);  // the values left as they were
  EXPECT_DOUBLE_EQ(linear_quantiles(torch::tensor({7.0}), {0.3})[0], 7);
  EXPECT_TRUE(std::isnan(linear_quantiles(torch::empty({0}), {0.5})[0]));
  EXPECT_NE(test::error_of([&] { linear_quantiles(values, {1.5}); }).find("a quantile must be 0..1, got 1.5"), std::string::npos);
  EXPECT_NE(test::error_of([&] { linear_quantiles(values, {std::nan("")}); }).find("must be 0..1"), std::string::npos);
}

TEST(Quantile, AsTorchQuantileOnRandomValuesWithTies) {
  torch::manual_seed(3);
  for (const int64_t n : {2, 5, 100, 1001}) {
    const auto values = torch::randint(0, n / 2 + 2, {n}, torch::kDouble);  // many ties
    const std::vector<double> qs = {0, 0.005, 0.25, 0.5, 0.95, 0.995, 1};
    const auto ours = linear_quantiles(values.view({1, n}), qs);
    const auto theirs = torch::quantile(values, torch::tensor(qs, torch::kDouble));
    for (size_t i = 0; i < qs.size(); ++i) EXPECT_NEAR(ours[i], theirs[static_cast<int64_t>(i)].item<double>(), 1e-12) << n << " " << qs[i];
  }
}

}  // namespace
}  // namespace fcn
