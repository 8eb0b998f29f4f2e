#include "fcn/formats/npy.h"

#include <cstring>
#include <regex>

#include <torch/torch.h>

#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

struct DType {
  const char* descr;
  torch::ScalarType type;
};
constexpr DType kDTypes[] = {{"<f4", torch::kFloat}, {"<f8", torch::kDouble}, {"<i8", torch::kLong},
                             {"<i4", torch::kInt},   {"|u1", torch::kByte},   {"|b1", torch::kBool},
                             {"<u1", torch::kByte},  {"<f2", torch::kHalf}};

}  // namespace

torch::Tensor read_npy(const std::string& path) {
  const auto bytes = read_file(path);
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, 6) != 0) fail(path, "not a .npy file (no \\x93NUMPY magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail(path, "truncated .npy header");
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    offset = 12;
  } else {
    fail(path, ".npy format version " + std::to_string(major) + " is not supported (1, 2 or 3)");
  }
  if (offset + header_len > bytes.size()) fail(path, "truncated .npy header");
  const std::string header(bytes.data() + offset, header_len);
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']+)'")))
    fail(path, "no 'descr' in the .npy header");
  const std::string descr = m[1];
  const DType* dtype = nullptr;
  for (const auto& d : kDTypes)
    if (descr == d.descr) dtype = &d;
  if (dtype == nullptr) fail(path, "dtype '" + descr + "' is not supported (float32/64, int32/64, uint8, bool)");
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True")))
    fail(path, "Fortran-order arrays are not supported; save with numpy.ascontiguousarray");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)"))) fail(path, "no 'shape' in the .npy header");
  std::vector<int64_t> shape;
  const std::string dims = m[1];
  const std::regex number("\\d+");
  for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it)
    shape.push_back(std::stoll(it->str()));
  const size_t data_offset = offset + header_len;
  auto tensor = torch::empty(shape, torch::TensorOptions().dtype(dtype->type));
  const size_t need = tensor.numel() * tensor.element_size();
  if (bytes.size() - data_offset != need)
    fail(path, "has " + std::to_string(bytes.size() - data_offset) + " data bytes, shape and dtype need " + std::to_string(need) +
                   " (truncated?)");
  if (need > 0) std::memcpy(tensor.data_ptr(), bytes.data() + data_offset, need);
  return tensor;
}

void write_npy(const std::string& path, const torch::Tensor& input) {
  auto tensor = input.detach().to(torch::kCPU).contiguous();
  const DType* dtype = nullptr;
  for (const auto& d : kDTypes)
    if (tensor.scalar_type() == d.type && dtype == nullptr) dtype = &d;
  if (dtype == nullptr) fail(path, std::string("cannot write dtype ") + c10::toString(tensor.scalar_type()) + " as .npy");
  std::string shape;
  for (auto s : tensor.sizes()) shape += std::to_string(s) + ", ";
  if (tensor.dim() > 1) shape.resize(shape.size() - 1);  // "(3,)" for 1-D, "(1, 2)" otherwise
  if (tensor.dim() > 1) shape.pop_back();
  std::string header = std::string("{'descr': '") + dtype->descr + "', 'fortran_order': False, 'shape': (" + shape + "), }";
  const size_t unpadded = 10 + header.size() + 1;
  header += std::string((64 - unpadded % 64) % 64, ' ') + "\n";
  std::vector<char> bytes(kMagic, kMagic + 6);
  bytes.push_back(1);
  bytes.push_back(0);
  bytes.push_back(static_cast<char>(header.size() & 0xff));
  bytes.push_back(static_cast<char>(header.size() >> 8));
  bytes.insert(bytes.end(), header.begin(), header.end());
  const auto* data = static_cast<const char*>(tensor.data_ptr());
  bytes.insert(bytes.end(), data, data + tensor.numel() * tensor.element_size());
  write_file_atomic(path, bytes);
}

}  // namespace fcn
