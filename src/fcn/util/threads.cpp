#include "fcn/util/threads.h"

#include <ATen/Parallel.h>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fcn {

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
