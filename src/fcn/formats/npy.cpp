#include "fcn/formats/npy.h"

#include <algorithm>
#include <cstring>

#include <torch/torch.h>

#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"

namespace fcn {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

struct DType {
  const char* descr;
  torch::ScalarType type;
};
// uint16 ("<u2") has no torch type: read as int16 bits and widened to int32 (0..65535) after.
constexpr DType kDTypes[] = {{"<f4", torch::kFloat}, {"<f8", torch::kDouble}, {"<i8", torch::kLong}, {"<i4", torch::kInt},
                             {"|u1", torch::kByte},  {"|b1", torch::kBool},   {"<u1", torch::kByte}, {"<f2", torch::kHalf},
                             {"<i2", torch::kShort}, {"<u2", torch::kShort}};

// The value of `key` in a .npy header dict ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"),
// read by hand (linear, no regex: a 60,000-character field must not recurse).
std::string header_field(const std::string& header, const std::string& key, const std::string& path) {
  const auto at = header.find("'" + key + "'");
  if (at == std::string::npos) fail(path, "no '" + key + "' in the .npy header");
  size_t i = header.find(':', at);
  if (i == std::string::npos) fail(path, "malformed .npy header at '" + key + "'");
  ++i;
  while (i < header.size() && header[i] == ' ') ++i;
  if (i >= header.size()) fail(path, "malformed .npy header at '" + key + "'");
  const char open = header[i];
  const char close = open == '\'' ? '\'' : open == '(' ? ')' : ',';
  const size_t start = open == '\'' || open == '(' ? i + 1 : i;
  const size_t end = header.find(close, start);
  if (end == std::string::npos) fail(path, "malformed .npy header at '" + key + "'");
  return header.substr(start, end - start);
}

// "2, 3" / "3," / "" -> dimensions; anything but non-negative integers is an error.
std::vector<int64_t> parse_shape(const std::string& text, const std::string& path) {
  std::vector<int64_t> shape;
  size_t i = 0;
  int64_t numel = 1, extent = 1;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    if (i == text.size()) break;
    if (text[i] < '0' || text[i] > '9')
      fail(path, ".npy shape (" + text.substr(0, 40) + ") holds '" + std::string(1, text[i]) + "', not a non-negative integer");
    int64_t dim = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (__builtin_add_overflow(checked_mul(path, ".npy shape", dim, 10), text[i] - '0', &dim))
        fail(path, ".npy shape overflows 64 bits (corrupt file?)");
      ++i;
    }
    shape.push_back(dim);
    numel = checked_mul(path, ".npy shape", numel, dim);
    // Past a zero the element count stays 0, but LibTorch still multiplies the other sides (strides, copies):
    // their product is bounded as any array's (a shape of 0 x 10^10 x 10^10 is no array to read).
    extent = checked_mul(path, ".npy shape", extent, std::max<int64_t>(dim, 1));
    if (shape.size() > 32) fail(path, ".npy shape has more than 32 dimensions");
  }
  if (numel == 0 && extent > limits().max_tensor_bytes)  // an array with elements meets the data-size check instead
    fail(path, ".npy shape (" + printable(text.substr(0, 40)) + ") is past any array fcn reads");
  return shape;
}

// `tensor` (contiguous, on the CPU) written with the header of `dtype`, atomically.
void write_npy_as(const std::string& path, const torch::Tensor& tensor, const DType* dtype) {
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

}  // namespace

bool is_npy(const std::vector<char>& bytes) { return bytes.size() >= 6 && std::memcmp(bytes.data(), kMagic, 6) == 0; }

torch::Tensor parse_npy(const std::vector<char>& bytes, const std::string& path, std::string* stored) {
  if (bytes.size() < 10 || !is_npy(bytes)) fail(path, "not a .npy file (no \\x93NUMPY magic)");
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
  if (header_len > bytes.size() - offset) fail(path, "truncated .npy header");
  const std::string header(bytes.data() + offset, header_len);
  const std::string descr = header_field(header, "descr", path);
  const DType* dtype = nullptr;
  for (const auto& d : kDTypes)
    if (descr == d.descr) dtype = &d;
  if (dtype == nullptr)
    fail(path, "dtype '" + printable(descr.substr(0, 40)) + "' is not supported (float16/32/64, int16/32/64, uint8/16, bool)");
  if (stored != nullptr) *stored = descr;
  if (header_field(header, "fortran_order", path).find("True") != std::string::npos)
    fail(path, "Fortran-order arrays are not supported; save with numpy.ascontiguousarray");
  const auto shape = parse_shape(header_field(header, "shape", path), path);
  int64_t numel = 1;
  for (const auto d : shape) numel *= d;  // checked in parse_shape
  const int64_t element = static_cast<int64_t>(c10::elementSize(dtype->type));
  const int64_t need = checked_mul(path, ".npy data size", numel, element);
  const size_t data_offset = offset + header_len;
  if (bytes.size() - data_offset != static_cast<size_t>(need))
    fail(path, "has " + std::to_string(bytes.size() - data_offset) + " data bytes, shape and dtype need " + std::to_string(need) +
                   " (truncated?)");
  auto tensor = torch::empty(shape, torch::TensorOptions().dtype(dtype->type));
  if (need > 0) std::memcpy(tensor.data_ptr(), bytes.data() + data_offset, static_cast<size_t>(need));
  if (descr == "<u2") return tensor.to(torch::kInt).bitwise_and_(0xffff);
  return tensor;
}

torch::Tensor read_npy(const std::string& path) { return parse_npy(read_file(path), path); }

void write_npy(const std::string& path, const torch::Tensor& input) {
  auto tensor = input.detach().to(torch::kCPU).contiguous();
  const DType* dtype = nullptr;
  for (const auto& d : kDTypes)
    if (tensor.scalar_type() == d.type && dtype == nullptr) dtype = &d;
  if (dtype == nullptr) fail(path, std::string("cannot write dtype ") + c10::toString(tensor.scalar_type()) + " as .npy");
  write_npy_as(path, tensor, dtype);
}

void write_npy_uint16(const std::string& path, const torch::Tensor& values) {
  const auto wide = values.detach().to(torch::kCPU, torch::kInt);
  if (wide.numel() > 0 && (wide.min().item<int>() < 0 || wide.max().item<int>() > 65535))
    fail(path, "uint16 values must lie in 0..65535");
  write_npy_as(path, wide.to(torch::kShort).contiguous(), &kDTypes[9]);  // the same 16 bits, "<u2"
}

}  // namespace fcn
