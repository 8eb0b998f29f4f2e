// Micro-benchmarks of the pieces a segmentation step spends its time in: a VGG conv block in both
// memory formats and dtypes, the x32 bilinear upsampling, the per-pixel loss, the confusion matrix.
//   build/bench/fcn_micro --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "fcn/eval/metrics.h"
#include "fcn/models/init.h"
#include "fcn/train/loss.h"

namespace {

// conv3_x of VGG16 at a 500x500 input (stride 4: 125x125, 256 channels), 3x3 + ReLU.
void BM_VggConvBlock(benchmark::State& state) {
  const bool channels_last = state.range(0) != 0;
  const auto dtype = state.range(1) != 0 ? torch::kBFloat16 : torch::kFloat;
  c10::InferenceMode guard;
  auto x = torch::rand({1, 256, 125, 125}).to(dtype);
  if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  const auto w = torch::rand({256, 256, 3, 3}).to(dtype);
  for (auto _ : state) benchmark::DoNotOptimize(torch::relu(torch::conv2d(x, w, {}, 1, 1)));
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * 125 * 125 * 256 * 256 * 9, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.SetLabel(std::string(channels_last ? "NHWC " : "NCHW ") + (dtype == torch::kFloat ? "fp32" : "bf16"));
}
BENCHMARK(BM_VggConvBlock)->Args({0, 0})->Args({1, 0})->Args({1, 1})->Unit(benchmark::kMillisecond);

// FCN-32s upscore: 21 classes, x32 bilinear transposed conv from a 16x16 score map.
void BM_BilinearUpscore32(benchmark::State& state) {
  c10::InferenceMode guard;
  torch::nn::ConvTranspose2d up(torch::nn::ConvTranspose2dOptions(21, 21, 64).stride(32).padding(16).bias(false));
  fcn::init_bilinear(up);
  const auto x = torch::rand({1, 21, 16, 16});
  for (auto _ : state) benchmark::DoNotOptimize(up->forward(x));
}
BENCHMARK(BM_BilinearUpscore32)->Unit(benchmark::kMillisecond);

void BM_SegmentationLoss(benchmark::State& state) {
  const auto logits = torch::randn({8, 21, 256, 256}, torch::requires_grad());
  const auto labels = torch::randint(0, 21, {8, 256, 256});
  for (auto _ : state) {
    auto loss = fcn::segmentation_loss(logits, labels);
    loss.backward();
    benchmark::DoNotOptimize(loss);
  }
}
BENCHMARK(BM_SegmentationLoss)->Unit(benchmark::kMillisecond);

void BM_ConfusionMatrix(benchmark::State& state) {
  const auto predictions = torch::randint(0, 21, {500, 500});
  const auto labels = torch::randint(0, 21, {500, 500});
  fcn::ConfusionMatrix confusion(21);
  for (auto _ : state) confusion.update(predictions, labels);
  state.SetItemsProcessed(state.iterations() * 500 * 500);
}
BENCHMARK(BM_ConfusionMatrix)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
