// The thread count the fcn CLI runs with: every CPU the process may use (affinity mask, cgroup v2
// quota), unless OMP_NUM_THREADS is set. LibTorch's own default counts physical cores from CPUID,
// 1 on the 2-vCPU development VM, which left `fcn train` on one core.
#include "fcn/util/threads.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace fcn {
namespace {

TEST(Threads, AvailableCpusFollowTheAffinityMask) {
  cpu_set_t all;
  ASSERT_EQ(sched_getaffinity(0, sizeof(all), &all), 0);
  const int quota = cgroup_cpu_quota();
  EXPECT_EQ(available_cpus(), quota > 0 ? std::min(CPU_COUNT(&all), quota) : CPU_COUNT(&all));
  int first = 0;
  while (!CPU_ISSET(first, &all)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);  // this thread only, as `taskset -c N` would
  EXPECT_EQ(available_cpus(), 1);
  ASSERT_EQ(sched_setaffinity(0, sizeof(all), &all), 0);
}

TEST(Threads, CgroupQuotaInWholeCpus) {
  const std::string path = test::temp_dir() + "/cpu.max";
  auto quota_of = [&](const std::string& text) {
    std::ofstream(path) << text;
    return cgroup_cpu_quota(path.c_str());
  };
  EXPECT_EQ(quota_of("max 100000\n"), 0);  // no quota
  EXPECT_EQ(quota_of("200000 100000\n"), 2);
  EXPECT_EQ(quota_of("150000 100000\n"), 2);  // 1.5 CPUs: both get work
  EXPECT_EQ(quota_of("50000 100000\n"), 1);
  EXPECT_EQ(quota_of("lots 100000\n"), 0);
  EXPECT_EQ(quota_of("-100000 100000\n"), 0);
  EXPECT_EQ(quota_of("100000 0\n"), 0);
  EXPECT_EQ(quota_of(""), 0);
  EXPECT_EQ(cgroup_cpu_quota((test::temp_dir() + "/no-such-cpu.max").c_str()), 0);
}

TEST(Threads, CliThreadCountUnlessOmpNumThreadsIsSet) {
  const int before = at::get_num_threads();
  ::setenv("OMP_NUM_THREADS", "1", 1);
  at::set_num_threads(1);
  EXPECT_EQ(use_available_cpus(), 1);  // the user's setting stands
  ::unsetenv("OMP_NUM_THREADS");
  EXPECT_EQ(use_available_cpus(), available_cpus());
  at::set_num_threads(before);
}

// Debian's default OpenBLAS (libopenblas0-pthread, LibTorch's BLAS here) runs its own pthreads
// pool; the CLI keeps it on the calling thread unless OPENBLAS_NUM_THREADS says otherwise.
TEST(Threads, OpenBlasOnTheCallingThreadUnlessOpenBlasNumThreadsIsSet) {
  std::ifstream maps("/proc/self/maps");
  const std::string loaded((std::istreambuf_iterator<char>(maps)), std::istreambuf_iterator<char>());
  // OpenBLAS names its pthreads build libopenblasp (Debian: under openblas-pthread/).
  if (loaded.find("libopenblasp") == std::string::npos && loaded.find("openblas-pthread") == std::string::npos) {
    EXPECT_EQ(set_openblas_threads(2), 0);
    GTEST_SKIP() << "LibTorch's BLAS here is not OpenBLAS's pthreads build";
  }
  const int before = openblas_threads(), omp_before = at::get_num_threads();
  ASSERT_GT(before, 0);
  ASSERT_EQ(set_openblas_threads(2), 2);
  ::unsetenv("OPENBLAS_NUM_THREADS");
  use_available_cpus();
  EXPECT_EQ(openblas_threads(), 1);
  ::setenv("OPENBLAS_NUM_THREADS", "2", 1);
  set_openblas_threads(2);
  use_available_cpus();
  EXPECT_EQ(openblas_threads(), 2);  // the user's setting stands
  ::unsetenv("OPENBLAS_NUM_THREADS");
  set_openblas_threads(before);
  at::set_num_threads(omp_before);
}

// OpenBLAS picks its kernels for the CPU at load time and, where it predates the CPU, falls back to SSE3 ones
// ("Prescott"): fcn's GEMMs that could run on LibTorch's BLAS take oneDNN's then (gemm_conv.cpp's phase products).
TEST(Threads, OpenBlasKernelsOfAvx2OrWiderAreKnownByName) {
  for (const char* fast : {"Haswell", "Zen", "SkylakeX", "skylakex", "Cooperlake", "SapphireRapids"})
    EXPECT_TRUE(openblas_core_has_avx2_kernels(fast)) << fast;
  for (const char* slow : {"Prescott", "Core2", "Nehalem", "Sandybridge", "Unknown", "", "Haswell2"})
    EXPECT_FALSE(openblas_core_has_avx2_kernels(slow)) << slow;
  std::ifstream maps("/proc/self/maps");
  const std::string loaded((std::istreambuf_iterator<char>(maps)), std::istreambuf_iterator<char>());
  if (loaded.find("openblas") == std::string::npos) {
    EXPECT_EQ(openblas_core(), "");
    EXPECT_FALSE(libtorch_blas_is_fast_openblas());
    GTEST_SKIP() << "LibTorch's BLAS here is not OpenBLAS";
  }
  EXPECT_FALSE(openblas_core().empty());
  EXPECT_EQ(libtorch_blas_is_fast_openblas(), openblas_core_has_avx2_kernels(openblas_core()));
}

}  // namespace
}  // namespace fcn
