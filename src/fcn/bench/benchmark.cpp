#include "fcn/bench/benchmark.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <mutex>

#include <ATen/CPUGeneratorImpl.h>

#include <torch/torch.h>

#include "fcn/infer/fast_path.h"
#include "fcn/models/gemm_conv.h"
#include "fcn/models/layers.h"
#include "fcn/models/winograd.h"
#include "fcn/train/fused_optimizers.h"
#include "fcn/train/loss.h"
#include "fcn/util/cpu.h"
#include "fcn/util/dtype.h"
#include "fcn/util/error.h"
#include "fcn/util/threads.h"

namespace fcn {
namespace {

double elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

void synchronize(torch::Device device) {
  // A tiny read back: waits for queued device work without needing CUDA headers.
  if (device.is_cuda()) torch::zeros({1}, torch::TensorOptions().device(device)).cpu();
}

// The fastest of `repeats` runs of `body` on `device`, each timed to the device's end, after one
// untimed run (a GPU's first call loads its kernels).
template <typename F>
double best_ms(torch::Device device, F&& body, int repeats) {
  body();
  synchronize(device);
  double best = 1e300;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    body();
    synchronize(device);
    best = std::min(best, elapsed_ms(start));
  }
  return best;
}

}  // namespace

double Timing::median() const {
  auto sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  return sorted.empty() ? 0.0 : sorted[sorted.size() / 2];
}
double Timing::min() const { return ms.empty() ? 0.0 : *std::min_element(ms.begin(), ms.end()); }
double Timing::max() const { return ms.empty() ? 0.0 : *std::max_element(ms.begin(), ms.end()); }

torch::Tensor to_inference_input(const torch::Tensor& x, const BenchOptions& options) {
  auto y = x.to(options.device, parse_dtype(options.dtype));
  return options.channels_last ? y.contiguous(torch::MemoryFormat::ChannelsLast) : y.contiguous();
}

Timing time_net(NetImpl& net, const BenchOptions& options) {
  if (options.mode != "infer" && options.mode != "train") fail("BenchOptions.mode", "'" + options.mode + "' is not one of infer, train");
  if (options.runs < 1 || options.warmup < 0) fail("BenchOptions.runs", "needs at least one run");
  const auto dtype = parse_dtype(options.dtype);
  check_dtype_runs_natively(dtype, options.device, "BenchOptions.dtype");
  net.to(options.device, dtype);
  to_layout(net, options.channels_last);  // also back to NCHW after a channels-last run
  torch::manual_seed(0);
  const auto input = to_inference_input(torch::rand({options.batch, net.in_channels(), options.height, options.width}), options);
  Timing timing;
  // The timed runs, then with options.profile one more, untimed, under the operator profiler.
  auto time_runs = [&](const auto& run) {
    for (int64_t i = 0; i < options.warmup + options.runs; ++i) {
      const auto start = std::chrono::steady_clock::now();
      run();
      synchronize(options.device);
      if (i >= options.warmup) timing.ms.push_back(elapsed_ms(start));
    }
    if (!options.profile) return;
    OpProfiler profiler(options.profile_shapes);
    run();
    synchronize(options.device);
    timing.profile = profiler.finish();
  };
  if (options.mode == "infer") {
    c10::InferenceMode guard;
    net.eval();
    time_runs([&] { net.forward(input); });
    return timing;
  }
  net.train();
  for (auto& p : net.parameters()) p.mutable_grad().reset();  // a gradient left in another layout by an earlier call
  FusedSGD sgd(net.parameters(), torch::optim::SGDOptions(1e-4).momentum(0.9));  // the trainer's update, the peer's settings
  torch::Tensor labels;
  time_runs([&] {
    clear_gradients(sgd);
    const auto outputs = net.forward_with_aux(input);  // auxiliary heads as the trainer runs them
    if (!labels.defined()) {  // a class per pixel (N x H x W), or per image for a classifier (N)
      auto shape = outputs[0].sizes().vec();
      shape.erase(shape.begin() + 1);
      labels = torch::randint(0, net.num_classes(), shape, torch::TensorOptions().dtype(torch::kLong).device(options.device));
    }
    loss_with_aux(outputs, [&](const torch::Tensor& logits) {
      const auto scores = logits.to(torch::kFloat);
      return scores.dim() == 2 ? torch::nn::functional::cross_entropy(scores, labels) : segmentation_loss(scores, labels);
    }).backward();
    if (options.communicator) options.communicator->all_reduce_gradients(net.parameters());
    sgd.step();
  });
  return timing;
}

double time_train_step(NetImpl& net, const FastPath& path, int64_t height, int64_t width, int64_t batch, const std::string& dtype,
                       int runs) {
  set_training_conv_algorithm(path.conv);
  BenchOptions options;
  options.mode = "train";
  options.dtype = dtype;
  options.batch = batch, options.height = height, options.width = width;
  options.runs = runs;
  options.channels_last = path.channels_last;
  const double ms = time_net(net, options).min();
  to_layout(net, false);  // its gradients: reset by the next time_net, or by TrainingTuneGuard
  return ms;
}

namespace {
std::vector<torch::Tensor> state_of(NetImpl& net) {
  auto tensors = net.parameters();
  for (const auto& buffer : net.buffers()) tensors.push_back(buffer);
  return tensors;
}
}  // namespace

TrainingTuneGuard::TrainingTuneGuard(NetImpl& net) : net_(net), training_conv_(training_conv_algorithm()) {
  for (const auto& t : state_of(net)) tensors_.push_back(t.detach().clone());
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  rng_state_ = generator.get_state();
}

TrainingTuneGuard::~TrainingTuneGuard() {
  torch::NoGradGuard no_grad;
  const auto now = state_of(net_);
  for (size_t i = 0; i < now.size() && i < tensors_.size(); ++i) now[i].copy_(tensors_[i]);
  for (auto& p : net_.parameters()) p.mutable_grad().reset();
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(rng_state_);
  set_training_conv_algorithm(training_conv_);
}

namespace {

// OpenBLAS at the run's thread count while alive (the CLI keeps it on one thread beside LibTorch's
// OpenMP team, threads.h), then as it was.
class OpenBlasAtRunThreads {
 public:
  OpenBlasAtRunThreads() : before_(openblas_threads()) { set_openblas_threads(at::get_num_threads()); }
  ~OpenBlasAtRunThreads() {
    if (before_ > 0) set_openblas_threads(before_);
  }
  OpenBlasAtRunThreads(const OpenBlasAtRunThreads&) = delete;
  OpenBlasAtRunThreads& operator=(const OpenBlasAtRunThreads&) = delete;

 private:
  int before_;
};

}  // namespace

SgemmPeak sgemm_peak(torch::Device device) {
  c10::InferenceMode guard;
  OpenBlasAtRunThreads blas;  // the machine's SGEMM peak at the run's threads
  const int64_t n = device.is_cpu() ? 2048 : 8192;
  const auto on = torch::TensorOptions().device(device);
  const auto a = torch::rand({n, n}, on), b = torch::rand({n, n}, on);
  const auto gflops = [&](double ms) { return 2.0 * static_cast<double>(n * n * n) / (ms * 1e6); };
  SgemmPeak peak;
  peak.libtorch_blas = gflops(best_ms(device, [&] { torch::mm(a, b); }, 5));
  peak.best = peak.libtorch_blas;
  if (device.is_cpu() && winograd_supported())  // built with oneDNN
    peak.best = std::max(peak.best, gflops(best_ms(device, [&] { onednn_mm(a, b); }, 5)));
  return peak;
}

double conv_gflops(torch::Dtype dtype, torch::Device device) {
  c10::InferenceMode guard;
  const int64_t batch = device.is_cpu() ? 1 : 16, side = device.is_cpu() ? 64 : 128;
  const auto on = torch::TensorOptions().device(device);
  const auto x = torch::rand({batch, 256, side, side}, on).to(dtype).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto w = torch::rand({256, 256, 3, 3}, on).to(dtype);
  const double ms = best_ms(device, [&] { torch::conv2d(x, w, {}, 1, 1); }, 5);
  return 2.0 * static_cast<double>(batch * side * side) * 256 * 256 * 9 / (ms * 1e6);
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux: KiB
}

}  // namespace fcn
