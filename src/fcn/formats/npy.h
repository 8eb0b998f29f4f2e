// NumPy .npy files (format 1.0-3.0, C order, little endian): the interop and debugging format of
// `fcn forward` and the golden tests, and images of any channel count (read_image). float16/32/64,
// int16/32/64, uint8, bool; uint16 is read into int32 (torch has no uint16).
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

namespace fcn {

torch::Tensor read_npy(const std::string& path);  // throws fcn::Error naming the file
bool is_npy(const std::vector<char>& bytes);       // by the \x93NUMPY magic
// The same from the file's bytes; `path` names it in errors. Sizes are checked before allocating.
// `stored`, where given, gets the array's dtype as the file names it ("<u2", "|u1", "<f4", ...).
torch::Tensor parse_npy(const std::vector<char>& bytes, const std::string& path, std::string* stored = nullptr);
void write_npy(const std::string& path, const torch::Tensor& tensor);  // atomic
// Integers 0..65535 (any integer tensor) as a uint16 .npy ("<u2"), atomic; a value outside is an error.
void write_npy_uint16(const std::string& path, const torch::Tensor& values);

}  // namespace fcn
