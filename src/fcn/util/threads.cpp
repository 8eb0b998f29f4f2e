#include "fcn/util/threads.h"

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include <ATen/Parallel.h>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fcn {

int cgroup_cpu_quota(const char* path) {
  std::ifstream in(path);
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max" || !(period > 0)) return 0;
  char* end = nullptr;
  const double q = std::strtod(quota.c_str(), &end);
  if (end == quota.c_str() || *end != '\0' || !(q > 0) || !std::isfinite(q / period)) return 0;
  return static_cast<int>(std::min(4096.0, std::ceil(q / period)));
}

int available_cpus() {
  int cpus = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
  if (cpus <= 0) cpus = static_cast<int>(std::thread::hardware_concurrency());
  const int quota = cgroup_cpu_quota();
  if (quota > 0) cpus = std::min(cpus, quota);
  return std::max(1, cpus);
}

namespace {

bool env_set(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0';
}

// OpenBLAS's C entry points, looked up in what the process has loaded: null where the BLAS is
// another one, or OpenBLAS runs on OpenMP (openblas_get_parallel: 0 sequential, 1 pthreads, 2 OpenMP).
struct OpenBlas {
  int (*get_threads)() = nullptr;
  void (*set_threads)(int) = nullptr;
  OpenBlas() {
    const auto parallel = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
    if (parallel == nullptr || parallel() != 1) return;
    get_threads = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    set_threads = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (get_threads == nullptr || set_threads == nullptr) get_threads = nullptr, set_threads = nullptr;
  }
};

const OpenBlas& openblas() {
  static const OpenBlas entry_points;
  return entry_points;
}

}  // namespace

int openblas_threads() { return openblas().get_threads != nullptr ? openblas().get_threads() : 0; }

std::string openblas_core() {
  const auto corename = reinterpret_cast<char* (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* name = corename != nullptr ? corename() : nullptr;
  return name != nullptr ? name : "";
}

bool openblas_core_has_avx2_kernels(const std::string& core) {
  std::string lower;
  for (const char ch : core) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* known : {"haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"})
    if (lower == known) return true;
  return false;
}

bool libtorch_blas_is_fast_openblas() {
  static const bool fast = openblas_core_has_avx2_kernels(openblas_core());
  return fast;
}

int set_openblas_threads(int threads) {
  if (openblas().set_threads != nullptr) openblas().set_threads(std::max(1, threads));
  return openblas_threads();
}

OpenBlasOnCallingThread::OpenBlasOnCallingThread() {
  if (env_set("OPENBLAS_NUM_THREADS")) return;
  before_ = openblas_threads();
  if (before_ > 1) set_openblas_threads(1);
}

OpenBlasOnCallingThread::~OpenBlasOnCallingThread() {
  if (before_ > 1) set_openblas_threads(before_);
}

int use_available_cpus() {
  if (!env_set("OMP_NUM_THREADS")) at::set_num_threads(available_cpus());
  if (!env_set("OPENBLAS_NUM_THREADS")) set_openblas_threads(1);
  return at::get_num_threads();
}

void single_threaded_kernels_in_this_thread() {
#ifdef _OPENMP
  // LibTorch sets each thread's OpenMP thread count from its global one at the thread's first
  // parallel kernel; after that, the thread's own setting (an OpenMP per-thread variable) holds.
  at::internal::lazy_init_num_threads();
  omp_set_num_threads(1);
#endif
}

SingleThreadedKernels::SingleThreadedKernels() {
#ifdef _OPENMP
  before_ = omp_get_max_threads();
  omp_set_num_threads(1);
#endif
}

SingleThreadedKernels::~SingleThreadedKernels() {
#ifdef _OPENMP
  omp_set_num_threads(before_);
#endif
}

}  // namespace fcn
