#include "fcn/formats/safetensors.h"

#include <cstring>
#include <limits>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"

namespace fcn {
namespace {

torch::ScalarType safetensors_dtype(const std::string& name, const std::string& path, const std::string& key) {
  static const std::map<std::string, torch::ScalarType> kTypes = {
      {"F32", torch::kFloat}, {"F64", torch::kDouble}, {"F16", torch::kHalf}, {"BF16", torch::kBFloat16},
      {"I64", torch::kLong},  {"I32", torch::kInt},    {"I16", torch::kShort}, {"I8", torch::kChar},
      {"U8", torch::kByte},   {"BOOL", torch::kBool}};
  const auto it = kTypes.find(name);
  if (it == kTypes.end()) fail(path, "tensor '" + key + "' has unsupported dtype " + printable(name.substr(0, 40)));
  return it->second;
}

// A header entry's list of sizes or offsets: whole numbers of at least 0, as safetensors writes
// them. Anything else is refused here, before a conversion could lose it: a float (1.5 would become
// 1) or an integer beyond 64 bits, which JSON parsers hold as a float and whose conversion to an
// integer is undefined (found by fuzz_safetensors).
template <typename T>
std::vector<T> whole_numbers(const nlohmann::json& list, const std::string& path, const std::string& what) {
  if (!list.is_array()) fail(path, what + " is " + printable(list.dump().substr(0, 40)) + ", not a list");
  std::vector<T> out;
  for (const auto& value : list) {
    if (value.is_number_integer() && !value.is_number_unsigned() && value.get<int64_t>() < 0)
      fail(path, what + " holds " + value.dump() + ", a negative number");
    if (!value.is_number_unsigned() || value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      fail(path, what + " holds " + printable(value.dump().substr(0, 40)) + ", not a whole number of at most " +
                     std::to_string(std::numeric_limits<T>::max()));
    out.push_back(static_cast<T>(value.get<uint64_t>()));
  }
  return out;
}

}  // namespace

StateDict read_safetensors(const std::string& path) { return parse_safetensors(read_file(path), path); }

bool is_safetensors(const std::vector<char>& head) { return head.size() >= 9 && head[8] == '{'; }

StateDict parse_safetensors(const std::vector<char>& bytes, const std::string& path) {
  if (bytes.size() < 8) fail(path, "too short for a safetensors file (truncated?)");
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (header_size > bytes.size() - 8) fail(path, "safetensors header runs past the end of the file (truncated?)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_size));
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("safetensors header is not valid JSON: ") + first_line(e.what()));
  }
  if (!header.is_object()) fail(path, "safetensors header is not a JSON object");
  const size_t data_start = 8 + header_size;
  const uint64_t data_size = bytes.size() - data_start;
  // safetensors keeps no order; the header's keys sort, which is as good as any.
  StateDict out;
  for (const auto& [key, info] : header.items()) {
    if (key == "__metadata__") continue;
    const std::string name = "tensor '" + printable(key) + "'";
    try {
      const auto dtype = safetensors_dtype(info.at("dtype").get<std::string>(), path, printable(key));
      const auto shape = whole_numbers<int64_t>(info.at("shape"), path, name + "'s shape");
      const auto offsets = whole_numbers<uint64_t>(info.at("data_offsets"), path, name + "'s data_offsets");
      // Sizes are checked against the file before anything is allocated.
      int64_t numel = 1;
      for (const auto d : shape) numel = checked_mul(path, name + "'s size", numel, d);
      const auto need = static_cast<uint64_t>(checked_mul(path, name + "'s size", numel, static_cast<int64_t>(c10::elementSize(dtype))));
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size || offsets[1] - offsets[0] != need)
        fail(path, name + " has data offsets that do not fit its shape or the file (truncated?)");
      auto tensor = torch::empty(shape, torch::TensorOptions().dtype(dtype));
      if (need > 0) std::memcpy(tensor.data_ptr(), bytes.data() + data_start + offsets[0], need);
      out.emplace_back(key, tensor);
    } catch (const nlohmann::json::exception& e) {
      fail(path, name + " has a malformed header entry: " + first_line(e.what()));
    }
  }
  return out;
}

}  // namespace fcn
