// Measuring speed honestly: repeated timed runs after warm-up (median and spread), the machine's
// reachable peak measured in the same process (an SGEMM and a large 3x3 convolution through
// oneDNN), and peak resident memory. `fcn bench` prints these beside its peers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "fcn/bench/profile.h"
#include "fcn/infer/fast_path.h"
#include "fcn/models/net.h"
#include "fcn/train/distributed.h"

namespace fcn {

struct BenchOptions {
  std::string mode = "infer";  // infer | train (forward + loss + backward + SGD step)
  std::string dtype = "fp32";  // fp32 | bf16 (weights and activations; CPUs with AVX512-BF16/AMX)
  int64_t batch = 1, height = 500, width = 500;
  int64_t warmup = 1, runs = 5;
  bool channels_last = true;   // NHWC activations: oneDNN's fast layout on CPU
  bool profile = false;        // also record the operators of the last run (Timing.profile)
  bool profile_shapes = false;  // ... a row per operator, input shapes and outermost caller (OpProfiler(true))
  torch::Device device = torch::kCPU;
  // Train mode as one rank of a data-parallel job: gradients summed over the ranks each step.
  std::shared_ptr<Communicator> communicator;
};

struct Timing {
  std::vector<double> ms;  // per run (a run = one batch)
  std::vector<OpTime> profile;  // with BenchOptions.profile: the last run's operators, by self time
  double median() const;
  double min() const;
  double max() const;
};

// Times `net` (converted in place to the options' dtype and device). Inference runs under
// c10::InferenceMode. Train steps use random labels and SGD (momentum 0.9).
Timing time_net(NetImpl& net, const BenchOptions& options);

// One training step's time on `path` (its layout and conv algorithm; the allocator and upsampling as
// they are): the fastest of `runs` after one warm-up, as time_forward (fcn/infer/fast_path.h) is for
// inference. The steps change the net's weights: tune a copy, or restore them (TrainingTuneGuard).
// The net is left in NCHW.
double time_train_step(NetImpl& net, const FastPath& path, int64_t height, int64_t width, int64_t batch, const std::string& dtype,
                       int runs);

// Keeps a net's parameters and buffers, the default CPU generator's state and the training conv
// algorithm, and puts them back on destruction: timing training steps (time_train_step) on the net a
// run is about to train leaves no trace in the run or the process.
class TrainingTuneGuard {
 public:
  explicit TrainingTuneGuard(NetImpl& net);
  ~TrainingTuneGuard();
  TrainingTuneGuard(const TrainingTuneGuard&) = delete;
  TrainingTuneGuard& operator=(const TrainingTuneGuard&) = delete;

 private:
  NetImpl& net_;
  std::vector<torch::Tensor> tensors_;
  torch::Tensor rng_state_;
  ConvAlgorithm training_conv_;
};

// GFLOP/s of an SGEMM and of a 3x3 256->256 convolution (channels-last, the given dtype), each the
// best of a few runs: what this machine reaches through LibTorch and, for the SGEMM on the CPU, oneDNN's
// sgemm (fcn's kernels' GEMM), whichever is faster: LibTorch's BLAS alone understates the machine where
// OpenBLAS predates the CPU (threads.h: 28 GFLOP/s on an AMX Xeon whose oneDNN sgemm ran ~200). On the CPU
// a 2048^2 SGEMM and one 64^2 map; on a GPU sizes that fill it (8192^2; 16 maps of 128^2), timed to the
// device's end.
struct SgemmPeak {
  double best = 0;           // the faster of the two
  double libtorch_blas = 0;  // torch::mm's: OpenBLAS on Debian, cuBLAS on a GPU
};
SgemmPeak sgemm_peak(torch::Device device = torch::kCPU);
double conv_gflops(torch::Dtype dtype, torch::Device device = torch::kCPU);

// Peak resident memory of this process so far, MiB (getrusage).
double peak_rss_mib();

// The input layout and dtype time_net uses (the fast path for inference on CPU).
torch::Tensor to_inference_input(const torch::Tensor& x, const BenchOptions& options);

}  // namespace fcn
