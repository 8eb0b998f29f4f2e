// Floating-point types by the names users write: "fp32" and "bf16".
#pragma once

#include <string>

#include <torch/types.h>

namespace fcn {

torch::Dtype parse_dtype(const std::string& name);  // "fp32" | "bf16"; fcn::Error otherwise

}  // namespace fcn
