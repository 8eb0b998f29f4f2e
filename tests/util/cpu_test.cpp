// The CPU's ISA class and the bf16 refusal, with the flags forced through FCN_CPU_FLAGS (each
// test runs in its own process under ctest, and cpu_info() reads the flags once).
#include <cstdlib>

#include <gtest/gtest.h>

#include "fcn/util/cpu.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

TEST(Cpu, Avx2OnlyHasNoBf16AndRefusesIt) {
  ::setenv("FCN_CPU_FLAGS", "fpu sse avx avx2 fma", 1);
  const auto& cpu = cpu_info();
  EXPECT_EQ(cpu.isa_class(), "avx2");
  EXPECT_FALSE(cpu.native_bf16());
  EXPECT_NO_THROW(check_dtype_runs_natively(torch::kFloat, torch::kCPU, "PredictOptions.dtype"));
  EXPECT_NO_THROW(check_dtype_runs_natively(torch::kBFloat16, torch::Device(torch::kCUDA, 0), "PredictOptions.dtype"));
  try {
    check_dtype_runs_natively(torch::kBFloat16, torch::kCPU, "PredictOptions.dtype");
    FAIL() << "bf16 on an AVX2-only CPU was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "PredictOptions.dtype");
    EXPECT_NE(std::string(e.what()).find("no bf16 instructions"), std::string::npos) << e.what();
  }
}

TEST(Cpu, ClassesFromTheFlags) {
  ::setenv("FCN_CPU_FLAGS", "avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile", 1);
  const auto& cpu = cpu_info();
  EXPECT_EQ(cpu.isa_class(), "amx");
  EXPECT_TRUE(cpu.native_bf16());
  EXPECT_EQ(cpu.flags, (std::vector<std::string>{"avx2", "avx512f", "avx512_bf16", "amx_bf16"}));
  EXPECT_NO_THROW(check_dtype_runs_natively(torch::kBFloat16, torch::kCPU, "BenchOptions.dtype"));
  EXPECT_FALSE(cpu.model.empty());
}

}  // namespace
}  // namespace fcn
