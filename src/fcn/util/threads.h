// Threads beside the training step: LibTorch's CPU kernels called from a helper thread (a data
// loader's) would each start a team of OpenMP threads as large as the machine, on top of the
// step's own: on 2 cores an epoch with 2 loader threads took 3x as long (bench/scaling.sh).
#pragma once

namespace fcn {

// Makes LibTorch's CPU kernels that this thread calls run on this thread alone. Other threads,
// and LibTorch's global thread count (torch::set_num_threads), are unchanged. A no-op where
// LibTorch does not use OpenMP.
void single_threaded_kernels_in_this_thread();

}  // namespace fcn
