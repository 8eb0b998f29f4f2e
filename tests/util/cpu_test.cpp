// The CPU's ISA class and the bf16 refusal, from /proc/cpuinfo texts and flags forced as FCN_CPU_FLAGS
// forces them (cpu_info_from: no process state, so the tests pass in one process or in many).
#include <cstdlib>

#include <gtest/gtest.h>

#include "fcn/util/cpu.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

TEST(Cpu, Avx2OnlyHasNoBf16AndRefusesIt) {
  const auto cpu = cpu_info_from("processor\t: 0\nmodel name\t: AMD EPYC 7551P\nflags\t\t: fpu sse avx avx2 fma\n", nullptr);
  EXPECT_EQ(cpu.model, "AMD EPYC 7551P");
  EXPECT_EQ(cpu.isa_class(), "avx2");
  EXPECT_FALSE(cpu.native_bf16());
  EXPECT_NO_THROW(check_dtype_runs_natively(torch::kFloat, torch::kCPU, "PredictOptions.dtype", cpu));
  EXPECT_NO_THROW(check_dtype_runs_natively(torch::kBFloat16, torch::Device(torch::kCUDA, 0), "PredictOptions.dtype", cpu));
  try {
    check_dtype_runs_natively(torch::kBFloat16, torch::kCPU, "PredictOptions.dtype", cpu);
    FAIL() << "bf16 on an AVX2-only CPU was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "PredictOptions.dtype");
    EXPECT_NE(std::string(e.what()).find("no bf16 instructions"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("AMD EPYC 7551P; avx2"), std::string::npos) << e.what();
  }
}

TEST(Cpu, ClassesFromTheFlags) {
  const auto cpu = cpu_info_from("model name : Intel Xeon\nflags : avx2\n", "avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile");
  EXPECT_EQ(cpu.isa_class(), "amx");
  EXPECT_TRUE(cpu.native_bf16());
  EXPECT_EQ(cpu.flags, (std::vector<std::string>{"avx2", "avx512f", "avx512_bf16", "amx_bf16"}));
  EXPECT_NO_THROW(check_dtype_runs_natively(torch::kBFloat16, torch::kCPU, "BenchOptions.dtype", cpu));
  EXPECT_EQ(cpu.model, "Intel Xeon");
  EXPECT_EQ(cpu_info_from("model name : Zen\nflags : avx2 avx512f avx512_bf16\n", nullptr).isa_class(), "avx512_bf16");
  EXPECT_EQ(cpu_info_from("model name : Zen\nflags : avx2 avx512f\n", nullptr).isa_class(), "avx512");
  EXPECT_EQ(cpu_info_from("flags : sse2\n", nullptr).isa_class(), "baseline");
  EXPECT_EQ(cpu_info_from("flags : sse2\n", nullptr).model, "unknown CPU");
}

// Virtual machines name several generations alike; the family and model numbers tell them apart (tune_key files
// fcn tune's choices under name()).
TEST(Cpu, GenerationsOfOneNameAreToldApart) {
  const auto zen4 = cpu_info_from("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
                                  "model name\t: AMD EPYC\nflags\t\t: avx2 avx512f avx512_bf16\n", nullptr);
  const auto zen5 = cpu_info_from("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n"
                                  "model name\t: AMD EPYC\nflags\t\t: avx2 avx512f avx512_bf16\n", nullptr);
  EXPECT_EQ(zen4.model, "AMD EPYC");
  EXPECT_EQ(zen4.family, "25");
  EXPECT_EQ(zen4.model_number, "17");
  EXPECT_EQ(zen4.name(), "AMD EPYC (family 25, model 17)");
  EXPECT_EQ(zen5.name(), "AMD EPYC (family 26, model 2)");
  EXPECT_EQ(zen4.isa_class(), zen5.isa_class());
  // "model" is its own key, wherever "model name" stands
  const auto xeon = cpu_info_from("model name : Intel(R) Xeon(R) Processor\ncpu family : 6\nmodel : 207\n", nullptr);
  EXPECT_EQ(xeon.model_number, "207");
  EXPECT_EQ(xeon.model, "Intel(R) Xeon(R) Processor");
  EXPECT_EQ(cpu_info_from("model name : Y\nflags : avx2\n", nullptr).name(), "Y");  // no numbers (not x86): the name alone
}

}  // namespace
}  // namespace fcn
