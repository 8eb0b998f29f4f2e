// NumPy .npy files (format 1.0-3.0, C order, little endian): the interop and debugging format of
// `fcn forward` and the golden tests. float32/float64/int64/int32/uint8/bool.
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

namespace fcn {

torch::Tensor read_npy(const std::string& path);  // throws fcn::Error naming the file
// The same from the file's bytes; `path` names it in errors. Sizes are checked before allocating.
torch::Tensor parse_npy(const std::vector<char>& bytes, const std::string& path);
void write_npy(const std::string& path, const torch::Tensor& tensor);  // atomic

}  // namespace fcn
