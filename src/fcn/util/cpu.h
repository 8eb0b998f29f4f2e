// The CPU this process runs on, as fcn's fast paths care about it: the model name and the
// instruction-set extensions (from /proc/cpuinfo), the ISA class benchmarks are filed under, and
// whether bf16 runs in hardware. A bf16 net on a CPU without AVX512-BF16 or AMX is emulated by
// oneDNN, measured > 50x slower than fp32 (docs/machines.md): fcn refuses it instead of crawling.
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

namespace fcn {

struct CpuInfo {
  std::string model;               // "Intel(R) Xeon(R) Processor", "AMD EPYC 7551P ..."
  std::vector<std::string> flags;  // those of interest that this CPU has: avx2, avx512f, avx512_bf16, amx_bf16
  std::string family, model_number;  // /proc/cpuinfo's "cpu family" and "model" ("25", "17": AMD Zen 4); "" where absent
  bool has(const std::string& flag) const;
  // The model name with the family and model numbers: "AMD EPYC (family 25, model 17)". Virtual machines often name
  // every generation alike ("AMD EPYC" for Zen 4 and Zen 5, "Intel(R) Xeon(R) Processor" for three Xeons), and what is
  // fastest differs between them, so a tuned choice is filed under this.
  std::string name() const;
  // "amx" | "avx512_bf16" | "avx512" | "avx2" | "baseline": the best class this CPU belongs to.
  std::string isa_class() const;
  bool native_bf16() const { return has("avx512_bf16") || has("amx_bf16"); }
};

// Read once. FCN_CPU_FLAGS (space-separated, e.g. "avx2") replaces the flags read, so a test or a
// user can play a CPU of another class.
const CpuInfo& cpu_info();
// The same from /proc/cpuinfo's text, `forced_flags` (null: none) replacing its flags.
CpuInfo cpu_info_from(const std::string& cpuinfo_text, const char* forced_flags);

// fcn::Error naming `subject` when `dtype` on `device` would not run in hardware on `cpu` (bf16 on a
// CPU without AVX512-BF16 or AMX). fp32 and every GPU dtype pass.
void check_dtype_runs_natively(torch::Dtype dtype, torch::Device device, const std::string& subject, const CpuInfo& cpu = cpu_info());

}  // namespace fcn
