#include "fcn/util/dtype.h"

#include "fcn/util/error.h"

namespace fcn {

torch::Dtype parse_dtype(const std::string& name) {
  if (name == "fp32") return torch::kFloat;
  if (name == "bf16") return torch::kBFloat16;
  fail("dtype", "'" + name + "' is not one of fp32, bf16");
}

}  // namespace fcn
