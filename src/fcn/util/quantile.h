// Quantiles as numpy's percentile gives them by default: the value at rank q * (n - 1) of the sorted
// values, interpolated linearly between the two values it falls between. Exact, in linear time (no sort).
#pragma once

#include <vector>

#include <torch/types.h>

namespace fcn {

// The quantiles `qs` (each 0..1) of `values` (any shape and real dtype, NaN-free: the caller leaves NaN
// out), from one copy of the values as double (8 bytes a value; `values` is left as it was). NaN for
// each q where `values` is empty; fcn::Error for a q outside 0..1.
std::vector<double> linear_quantiles(const torch::Tensor& values, const std::vector<double>& qs);

}  // namespace fcn
