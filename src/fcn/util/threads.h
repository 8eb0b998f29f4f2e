// Threads beside the training step: LibTorch's CPU kernels called from a helper thread (a data
// loader's) would each start a team of OpenMP threads as large as the machine, on top of the
// step's own: on 2 cores an epoch with 2 loader threads took 3x as long (bench/scaling.sh).
#pragma once

#include <string>

namespace fcn {

// The CPUs this process may run on: its affinity mask (taskset, cpusets), capped by a cgroup v2
// CPU quota (a container's --cpus) where one is set; at least 1. The fcn CLI runs LibTorch with this
// many threads unless OMP_NUM_THREADS says otherwise: LibTorch's own default counts the physical
// cores it reads from CPUID, which on some VMs is 1 of 2 vCPUs (docs/benchmarks.md, "Threads").
int available_cpus();
// The whole CPUs (rounded up) of a cgroup v2 cpu.max file ("QUOTA PERIOD"); 0 for no quota ("max"),
// no file, or text that is not a quota.
int cgroup_cpu_quota(const char* path = "/sys/fs/cgroup/cpu.max");

// torch::set_num_threads(available_cpus()) unless OMP_NUM_THREADS is set (then LibTorch follows it),
// and OpenBLAS on the calling thread alone (set_openblas_threads(1)) unless OPENBLAS_NUM_THREADS is set.
// Returns the thread count in effect.
int use_available_cpus();

// LibTorch's BLAS (torch::mm, nn::Linear) is OpenBLAS here, and Debian's default OpenBLAS runs its own
// pthreads pool beside LibTorch's OpenMP team. On 2 cores each pool's idle threads spin on the cores
// the other pool's threads need: `fcn pretrain` (a classifier, so Linear layers between OpenMP-parallel
// convolutions) stepped 1.6x faster with OpenBLAS on one thread (docs/benchmarks.md, "Two thread pools").
// fcn's own GEMMs are oneDNN's, on the OpenMP team. Sets OpenBLAS's thread count where OpenBLAS's
// pthreads build is loaded (found at run time: no link dependency) and returns the count in effect;
// 0 where there is none (another BLAS, or OpenBLAS's OpenMP build, which shares LibTorch's team).
int set_openblas_threads(int threads);
int openblas_threads();  // OpenBLAS's pthreads pool size; 0 where there is none

// The kernel set OpenBLAS picked for this CPU at load time (openblas_get_corename: "Haswell", "SkylakeX",
// "Prescott", ...); "" where LibTorch's BLAS is not OpenBLAS. An OpenBLAS older than the CPU does not know it
// and falls back to its SSE3 "Prescott" kernels: Debian 12's OpenBLAS 0.3.21 on an Intel Xeon of family 6 model
// 207 (AMX) ran a 2048^2 SGEMM at 52 GFLOP/s on one thread, against 184-237 with OPENBLAS_CORETYPE=SkylakeX
// (docs/benchmarks.md, "OpenBLAS older than the CPU").
std::string openblas_core();
// Whether `core` names OpenBLAS kernels of AVX2 or wider (Haswell, Zen, SkylakeX, Cooperlake, SapphireRapids).
bool openblas_core_has_avx2_kernels(const std::string& core);
// LibTorch's BLAS is OpenBLAS with kernels of AVX2 or wider: fcn's GEMMs that could use either take it only then
// (oneDNN's sgemm otherwise).
bool libtorch_blas_is_fast_openblas();

// While alive: OpenBLAS on the calling thread (set_openblas_threads(1)) unless OPENBLAS_NUM_THREADS is
// set, then the count it had before. pretrain_fashion_mnist holds one, so a program of one's own that
// trains a classifier runs as fast as `fcn pretrain` without calling use_available_cpus() first.
class OpenBlasOnCallingThread {
 public:
  OpenBlasOnCallingThread();
  ~OpenBlasOnCallingThread();
  OpenBlasOnCallingThread(const OpenBlasOnCallingThread&) = delete;
  OpenBlasOnCallingThread& operator=(const OpenBlasOnCallingThread&) = delete;

 private:
  int before_ = 0;  // 0: nothing was changed
};

// Makes LibTorch's CPU kernels that this thread calls run on this thread alone. Other threads,
// and LibTorch's global thread count (torch::set_num_threads), are unchanged. A no-op where
// LibTorch does not use OpenMP.
void single_threaded_kernels_in_this_thread();

// The same for this thread while alive, then the thread's previous setting again: for a parallel
// loop's body calling OpenMP code (oneDNN's sgemm would otherwise start a team in every call), also
// where at::parallel_for ran the body inline on the caller.
class SingleThreadedKernels {
 public:
  SingleThreadedKernels();
  ~SingleThreadedKernels();
  SingleThreadedKernels(const SingleThreadedKernels&) = delete;
  SingleThreadedKernels& operator=(const SingleThreadedKernels&) = delete;

 private:
  int before_ = 0;
};

}  // namespace fcn
