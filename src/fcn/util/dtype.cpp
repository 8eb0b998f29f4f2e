#include "fcn/util/dtype.h"

#include "fcn/util/error.h"

namespace fcn {

torch::Dtype parse_dtype(const std::string& name) {
  if (name == "fp32") return torch::kFloat;
  if (name == "bf16") return torch::kBFloat16;
  fail("dtype", "'" + name + "' is not one of fp32, bf16");
}

std::string dtype_name(torch::Dtype dtype) {
  if (dtype == torch::kFloat) return "fp32";
  if (dtype == torch::kBFloat16) return "bf16";
  return c10::toString(dtype);
}

}  // namespace fcn
