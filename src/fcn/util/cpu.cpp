#include "fcn/util/cpu.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "fcn/util/error.h"

namespace fcn {
namespace {

const std::vector<std::string> kFlagsOfInterest = {"avx2", "avx512f", "avx512_bf16", "amx_bf16"};

std::vector<std::string> flags_of_interest(const std::string& text) {
  std::istringstream words(text);
  std::vector<std::string> found;
  for (std::string word; words >> word;)
    if (std::find(kFlagsOfInterest.begin(), kFlagsOfInterest.end(), word) != kFlagsOfInterest.end() &&
        std::find(found.begin(), found.end(), word) == found.end())
      found.push_back(word);
  return found;
}

// The value of the first "key : value" line of /proc/cpuinfo with this key (the whole key: "model" is not "model name").
std::string cpuinfo_field(const std::string& text, const std::string& key) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || line.compare(0, key.size(), key) != 0 ||
        line.find_first_not_of(" \t", key.size()) != colon)
      continue;
    const auto value = line.find_first_not_of(" \t", colon + 1);
    return value == std::string::npos ? "" : line.substr(value);
  }
  return "";
}

CpuInfo read_cpu_info() {
  std::ifstream in("/proc/cpuinfo");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return cpu_info_from(text, std::getenv("FCN_CPU_FLAGS"));
}

}  // namespace

CpuInfo cpu_info_from(const std::string& cpuinfo_text, const char* forced_flags) {
  CpuInfo info;
  info.model = cpuinfo_field(cpuinfo_text, "model name");
  if (info.model.empty()) info.model = "unknown CPU";
  info.family = cpuinfo_field(cpuinfo_text, "cpu family");
  info.model_number = cpuinfo_field(cpuinfo_text, "model");
  info.flags = flags_of_interest(forced_flags != nullptr ? forced_flags : cpuinfo_field(cpuinfo_text, "flags"));
  return info;
}

std::string CpuInfo::name() const {
  if (family.empty() && model_number.empty()) return model;
  return model + " (family " + (family.empty() ? "?" : family) + ", model " + (model_number.empty() ? "?" : model_number) + ")";
}

bool CpuInfo::has(const std::string& flag) const { return std::find(flags.begin(), flags.end(), flag) != flags.end(); }

std::string CpuInfo::isa_class() const {
  if (has("amx_bf16")) return "amx";
  if (has("avx512_bf16")) return "avx512_bf16";
  if (has("avx512f")) return "avx512";
  if (has("avx2")) return "avx2";
  return "baseline";
}

const CpuInfo& cpu_info() {
  static const CpuInfo info = read_cpu_info();
  return info;
}

void check_dtype_runs_natively(torch::Dtype dtype, torch::Device device, const std::string& subject, const CpuInfo& cpu) {
  if (dtype != torch::kBFloat16 || !device.is_cpu() || cpu.native_bf16()) return;
  std::string flags;
  for (const auto& flag : cpu.flags) flags += (flags.empty() ? "" : " ") + flag;
  fail(subject, "bf16 on this CPU (" + cpu.model + "; " + (flags.empty() ? "no AVX2" : flags) +
                    ") has no bf16 instructions (AVX512-BF16 or AMX): it would be emulated, measured over 50x slower than "
                    "fp32; use fp32");
}

}  // namespace fcn
