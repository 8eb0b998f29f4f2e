#include "fcn/util/quantile.h"

#include <algorithm>
#include <cmath>

#include "fcn/util/error.h"

namespace fcn {

std::vector<double> linear_quantiles(const torch::Tensor& values, const std::vector<double>& qs) {
  for (const double q : qs)
    if (!(q >= 0 && q <= 1)) fail("linear_quantiles", "a quantile must be 0..1, got " + number_text(q));
  const auto n = static_cast<size_t>(values.numel());
  if (n == 0) return std::vector<double>(qs.size(), std::nan(""));
  auto copy = values.to(torch::kDouble, /*non_blocking=*/false, /*copy=*/true).contiguous();  // exact for every type
  double* first = copy.data_ptr<double>();
  std::vector<double> result;
  for (const double q : qs) {  // the order statistics q falls between, each found in linear time
    const double rank = q * static_cast<double>(n - 1);
    const auto below = static_cast<size_t>(std::floor(rank));
    std::nth_element(first, first + below, first + n);
    const double a = first[below];
    const double b = below + 1 < n ? *std::min_element(first + below + 1, first + n) : a;
    result.push_back(a + (b - a) * (rank - static_cast<double>(below)));
  }
  return result;
}

}  // namespace fcn
