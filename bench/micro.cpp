// Micro-benchmarks of the pieces a segmentation step spends its time in: a VGG conv block in both
// memory formats and dtypes, FCN-8s's 3x3 layers direct vs Winograd, fc6 direct vs im2col + sgemm,
// the x8 upsampling (LibTorch's and fcn's), the per-pixel loss, an optimizer step, the confusion matrix,
// labels from class probabilities (LibTorch's argmax and fcn's class_labels), NIfTI volumes read and written.
//   build/bench/fcn_micro --benchmark_min_time=0.5
//   build/bench/fcn_micro --benchmark_filter=Winograd   (the per-layer table of docs/benchmarks.md)
//   build/bench/fcn_micro --benchmark_filter=LargeConv  (fc6: docs/benchmarks.md)
//   build/bench/fcn_micro --benchmark_filter=DilatedTrain  (dilated 3x3 convs direct or by phases: docs/benchmarks.md)
//   build/bench/fcn_micro --benchmark_filter=OneByOne  (ResNet's 1x1 convs: oneDNN's conv, its sgemm, LibTorch's)
//   build/bench/fcn_micro --benchmark_filter=ClassLabels  (labels: docs/benchmarks.md)
//   build/bench/fcn_micro --benchmark_filter=Nifti  (NIfTI volumes read and labels written: docs/benchmarks.md)
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "fcn/eval/metrics.h"
#include "fcn/formats/nifti.h"
#include "fcn/infer/predictor.h"
#include "fcn/models/conv_train.h"
#include "fcn/models/gemm_conv.h"
#include "fcn/models/init.h"
#include "fcn/models/layers.h"
#include "fcn/models/winograd.h"
#include "fcn/train/fused_optimizers.h"
#include "fcn/train/loss.h"
#include "fcn/util/allocator.h"
#include "fcn/util/threads.h"

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

// One eligible 3x3 layer of FCN-8s VGG16 at 500x500 (the reference geometry: conv1 at 698x698) and others, with
// its ReLU, channels-last fp32 inference: LibTorch's direct convolution (arg 3 = 0) or fcn's Winograd (1).
void BM_Winograd3x3(benchmark::State& state) {
  const int64_t in = state.range(0), out = state.range(1), size = state.range(2);
  const bool winograd = state.range(3) != 0;
  if (winograd && !fcn::winograd_supported()) return state.SkipWithError("fcn was built without oneDNN");
  c10::InferenceMode guard;
  const auto x = torch::rand({1, in, size, size}).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto w = torch::randn({out, in, 3, 3}) / std::sqrt(9.0 * in);
  const auto b = torch::randn({out});
  for (auto _ : state)
    benchmark::DoNotOptimize(winograd ? fcn::winograd_conv2d(x, w, b, 1, /*relu=*/true) : torch::conv2d(x, w, b, 1, 1).relu_());
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * size * size * in * out * 9, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);  // the direct count, for both
  state.SetLabel(winograd ? "winograd" : "direct");
}
BENCHMARK(BM_Winograd3x3)
    ->ArgsProduct({{64}, {64}, {698}, {0, 1}})
    ->ArgsProduct({{64}, {128}, {349}, {0, 1}})
    ->ArgsProduct({{128}, {128}, {349}, {0, 1}})
    ->ArgsProduct({{128}, {256}, {175}, {0, 1}})
    ->ArgsProduct({{256}, {256}, {175}, {0, 1}})
    ->ArgsProduct({{256}, {512}, {88}, {0, 1}})
    ->ArgsProduct({{512}, {512}, {88}, {0, 1}})
    ->ArgsProduct({{512}, {512}, {44}, {0, 1}})
    // Layers whose transformed weights exceed 64 MiB, run in blocks of input channels (winograd_tiles.h): U-Net's
    // 1024-channel levels at 512x512 and torchvision's FCN head (2048 -> 512 at 512x512's stride 8)
    ->ArgsProduct({{512}, {1024}, {32}, {0, 1}})
    ->ArgsProduct({{1024}, {1024}, {32}, {0, 1}})
    ->ArgsProduct({{1024}, {512}, {64}, {0, 1}})
    ->ArgsProduct({{2048}, {512}, {64}, {0, 1}})
    ->Unit(benchmark::kMillisecond);

// Inference on small maps (U-Net's and small inputs' deep levels): a K x K 3x3 layer on a batch of
// size x size maps, channels-last fp32, with its ReLU: LibTorch's convolution (arg 3 = 0), fcn's
// Winograd (1) or fcn's im2col + sgemm (2). Winograd transforms all 36 x K x K weights on each call,
// work a few tiles cannot repay; LibTorch sends batch-1 maps of at most 20,480 values to its
// one-thread _slow_conv2d_forward.
void BM_Winograd3x3SmallMaps(benchmark::State& state) {
  const int64_t channels = state.range(0), size = state.range(1), batch = state.range(2), path = state.range(3);
  if (path != 0 && !fcn::winograd_supported()) return state.SkipWithError("fcn was built without oneDNN");
  c10::InferenceMode guard;
  const auto x = torch::rand({batch, channels, size, size}).contiguous(torch::MemoryFormat::ChannelsLast);
  // Weights channels-last, as fcn::to_channels_last leaves a net's.
  const auto w = (torch::randn({channels, channels, 3, 3}) / std::sqrt(9.0 * channels)).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto b = torch::randn({channels});
  for (auto _ : state)
    benchmark::DoNotOptimize(path == 1   ? fcn::winograd_conv2d(x, w, b, 1, /*relu=*/true)
                             : path == 2 ? fcn::gemm_conv2d(x, w, b, 1, /*relu=*/true)
                                         : torch::conv2d(x, w, b, 1, 1).relu_());
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * batch * size * size * channels * channels * 9,
                                                 benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(path == 1 ? "winograd" : path == 2 ? "im2col + sgemm" : "direct");
}
BENCHMARK(BM_Winograd3x3SmallMaps)->ArgsProduct({{64, 128, 256, 512, 1024}, {4, 8, 16, 32, 44, 64}, {1, 2, 4}, {0, 1, 2}})->Unit(benchmark::kMillisecond);

// One 3x3 layer's training step (forward, then the input and weight gradients), channels-last fp32,
// batch 8, on maps from the demo's 4x4 to 64x64: LibTorch's direct convolution (arg 3 = 0) or
// Winograd (1: the process's training conv algorithm, fcn's trainer unless changed).
void BM_Winograd3x3Train(benchmark::State& state) {
  const int64_t in = state.range(0), out = state.range(1), size = state.range(2);
  const bool winograd = state.range(3) != 0;
  if (winograd && !fcn::winograd_supported()) return state.SkipWithError("fcn was built without oneDNN");
  const auto x = torch::rand({8, in, size, size}).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_();
  const auto w = (torch::randn({out, in, 3, 3}) / std::sqrt(9.0 * in)).requires_grad_();
  const auto b = torch::zeros({out}).requires_grad_();
  for (auto _ : state) {
    const auto y = winograd ? fcn::winograd_conv2d(x, w, b, 1) : torch::conv2d(x, w, b, 1, 1);
    y.backward(torch::ones_like(y));
  }
  state.counters["GFLOP/s"] = benchmark::Counter(3 * 2.0 * 8 * size * size * in * out * 9, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);  // the direct count, for both
  state.SetLabel(winograd ? "winograd" : "direct");
}
BENCHMARK(BM_Winograd3x3Train)
    ->ArgsProduct({{64, 128}, {64, 128}, {4, 8, 16, 32, 64}, {0, 1}})
    ->Unit(benchmark::kMillisecond);

// A dilated 3x3 layer of torchvision's FCN ResNet-50 (layer3: 256 channels, dilation 2; layer4: 512, dilation 4) at
// batch 1 on maps from 8x8 to the stride-8 maps of 320x320 and 512x512 inputs, channels-last fp32: its training step
// (arg 4 = 0: forward, then the input, weight and bias gradients) or its inference (1), direct (arg 3 = 0: fcn's
// channels-last direct trainer; oneDNN's direct kernel in inference) or by fcn's Winograd on the d*d phases as one
// batch (1), regardless of the rule (kDilatedPhaseMinSide, kDilatedPhaseMinTiles).
void BM_DilatedTrain(benchmark::State& state) {
  const int64_t channels = state.range(0), dilation = state.range(1), size = state.range(2);
  const bool phases = state.range(3) != 0;
  if (!fcn::winograd_supported()) return state.SkipWithError("fcn was built without oneDNN");
  if (state.range(4) != 0) {  // inference
    c10::InferenceMode guard;
    const auto x = torch::rand({1, channels, size, size}).contiguous(torch::MemoryFormat::ChannelsLast);
    const auto w =
        (torch::randn({channels, channels, 3, 3}) / std::sqrt(9.0 * channels)).contiguous(torch::MemoryFormat::ChannelsLast);
    const auto b = torch::zeros({channels});
    for (auto _ : state)
      benchmark::DoNotOptimize(phases ? fcn::dilated_winograd_conv2d(x, w, b, dilation)
                                      : at::mkldnn_convolution(x, w, b, {dilation, dilation}, {1, 1}, {dilation, dilation}, 1));
    state.SetLabel(phases ? "inference, winograd on phases" : "inference, direct");
    return;
  }
  const auto x = torch::rand({1, channels, size, size}).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_();
  const auto w = (torch::randn({channels, channels, 3, 3}) / std::sqrt(9.0 * channels))
                     .contiguous(torch::MemoryFormat::ChannelsLast)
                     .requires_grad_();
  const auto b = torch::zeros({channels}).requires_grad_();
  for (auto _ : state) {
    const auto y = phases ? fcn::dilated_winograd_conv2d(x, w, b, dilation)
                          : fcn::channels_last_conv2d(x, w, b, {1, 1}, {dilation, dilation}, {dilation, dilation});
    y.backward(torch::ones_like(y));
  }
  state.counters["GFLOP/s"] = benchmark::Counter(3 * 2.0 * size * size * channels * channels * 9,
                                                 benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(phases ? "winograd on phases" : "direct");
}
BENCHMARK(BM_DilatedTrain)
    ->ArgsProduct({{256}, {2}, {8, 16, 24, 40, 64}, {0, 1}, {0, 1}})
    ->ArgsProduct({{512}, {4}, {8, 16, 24, 32, 40, 64}, {0, 1}, {0, 1}})
    ->Unit(benchmark::kMillisecond);

// A short product's training step (forward, then the input, weight and bias gradients), fp32, in
// channels-last (arg 4 = 1) or NCHW (0): the demo's fc6 (VGG16-w0.25: 7x7, 128 -> 1024 over an 8x8
// pool5 map, batch 8: 32 output pixels) and a U-Net's 4x4 bottleneck at batch 8 (128 pixels), by
// LibTorch's convolution (arg 5 = 0) or fcn's im2col + sgemm (1).
void BM_ShortProductTrain(benchmark::State& state) {
  const int64_t in = state.range(0), out = state.range(1), kernel = state.range(2), size = state.range(3);
  const bool channels_last = state.range(4) != 0, gemm = state.range(5) != 0;
  if (gemm && !fcn::winograd_supported()) return state.SkipWithError("fcn was built without oneDNN");
  const auto format = channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  const int64_t padding = kernel == 3 ? 1 : 0;
  const auto x = torch::rand({8, in, size, size}).contiguous(format).requires_grad_();
  const auto w = (torch::randn({out, in, kernel, kernel}) / std::sqrt(kernel * kernel * in)).contiguous(format).requires_grad_();
  const auto b = torch::zeros({out}).requires_grad_();
  for (auto _ : state) {
    const auto y = gemm ? fcn::gemm_conv2d_trainable(x, w, b, padding) : torch::conv2d(x, w, b, 1, padding);
    y.backward(torch::ones_like(y));
  }
  state.SetLabel(gemm ? "im2col + sgemm" : "direct");
}
BENCHMARK(BM_ShortProductTrain)
    ->ArgsProduct({{128}, {1024}, {7}, {8}, {0, 1}, {0, 1}})
    ->ArgsProduct({{512}, {1024}, {3}, {4}, {0, 1}, {0, 1}})
    ->ArgsProduct({{128}, {128}, {3}, {4}, {0, 1}, {0, 1}})
    ->Unit(benchmark::kMillisecond);

// fc6 of FCN-8s VGG16 (7x7, 512 -> 4096: 411 MB of weights) on the 500x500 reference geometry's
// 22x22 pool5 and the same geometry's 16x16 (padding 3), and AlexNet's fc6 (6x6, 256 -> 4096) on a
// 13x13 map, with ReLU, channels-last fp32 inference: LibTorch's direct convolution (arg 4 = 0)
// or fcn's im2col + sgemm (1).
void BM_LargeConv(benchmark::State& state) {
  const int64_t in = state.range(0), kernel = state.range(1), size = state.range(2), padding = state.range(3);
  const bool gemm = state.range(4) != 0;
  if (gemm && !fcn::winograd_supported()) return state.SkipWithError("fcn was built without oneDNN");
  c10::InferenceMode guard;
  const int64_t out = 4096, out_size = size + 2 * padding - kernel + 1;
  const auto x = torch::rand({1, in, size, size}).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto w = (torch::randn({out, in, kernel, kernel}) / std::sqrt(kernel * kernel * in)).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto b = torch::randn({out});
  for (auto _ : state)
    benchmark::DoNotOptimize(gemm ? fcn::gemm_conv2d(x, w, b, padding, /*relu=*/true) : torch::conv2d(x, w, b, 1, padding).relu_());
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * out_size * out_size * in * out * kernel * kernel,
                                                 benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(gemm ? "im2col + sgemm" : "direct");
}
BENCHMARK(BM_LargeConv)
    ->ArgsProduct({{512}, {7}, {22}, {0}, {0, 1}})
    ->ArgsProduct({{512}, {7}, {16}, {3}, {0, 1}})
    ->ArgsProduct({{256}, {6}, {13}, {0}, {0, 1}})
    ->Unit(benchmark::kMillisecond);

// A 1x1 conv of ResNet-50 in torchvision's FCN at 512x512 (C -> K on a size x size map), channels-last fp32 inference
// with its bias: oneDNN's convolution, what fcn runs (arg 3 = 0); the same product by oneDNN's sgemm on the
// channels-last map seen as a (pixels x C) matrix, the bias added after (1); LibTorch's own choice (2: at one thread
// its _slow_conv2d_forward on the BLAS).
void BM_OneByOne(benchmark::State& state) {
  const int64_t in = state.range(0), out = state.range(1), size = state.range(2), path = state.range(3);
  if (path == 1 && !fcn::winograd_supported()) return state.SkipWithError("fcn was built without oneDNN");
  c10::InferenceMode guard;
  const auto x = torch::rand({1, in, size, size}).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto w = (torch::randn({out, in, 1, 1}) / std::sqrt(1.0 * in)).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto b = torch::randn({out});
  const auto w_t = w.view({out, in}).t().contiguous();  // C x K, made once as a derived weight would be
  for (auto _ : state) {
    if (path == 0) {
      benchmark::DoNotOptimize(at::mkldnn_convolution(x, w, b, {0, 0}, {1, 1}, {1, 1}, 1));
    } else if (path == 1) {
      auto y = fcn::onednn_mm(x.permute({0, 2, 3, 1}).reshape({size * size, in}), w_t);
      benchmark::DoNotOptimize(y.add_(b));
    } else {
      benchmark::DoNotOptimize(torch::conv2d(x, w, b));
    }
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * size * size * in * out, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.SetLabel(path == 0 ? "onednn conv" : path == 1 ? "onednn sgemm" : "libtorch");
}
BENCHMARK(BM_OneByOne)
    ->ArgsProduct({{1024}, {256}, {64}, {0, 1, 2}})
    ->ArgsProduct({{256}, {1024}, {64}, {0, 1, 2}})
    ->ArgsProduct({{2048}, {512}, {64}, {0, 1, 2}})
    ->ArgsProduct({{512}, {2048}, {64}, {0, 1, 2}})
    ->ArgsProduct({{256}, {64}, {128}, {0, 1, 2}})
    ->ArgsProduct({{64}, {256}, {128}, {0, 1, 2}})
    ->Unit(benchmark::kMillisecond);

// FCN-8s upscore8 at 500x500 (21 classes, 16x16 kernel, stride 8, from a 70x70 map): LibTorch's
// conv_transpose2d (arg 0) against fcn::conv's convolution + pixel_shuffle (arg 1), fp32.
void BM_Upscore8(benchmark::State& state) {
  c10::InferenceMode guard;
  torch::nn::ConvTranspose2d up(torch::nn::ConvTranspose2dOptions(21, 21, 16).stride(8).bias(false));
  fcn::init_bilinear(up);
  const auto x = torch::rand({1, 21, 70, 70}).contiguous(torch::MemoryFormat::ChannelsLast);
  const bool subpixel = state.range(0) != 0;
  for (auto _ : state) benchmark::DoNotOptimize(subpixel ? fcn::conv(up, x) : up->forward(x));
  state.SetLabel(subpixel ? "fcn: conv + pixel_shuffle" : "LibTorch conv_transpose2d");
}
BENCHMARK(BM_Upscore8)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

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

// One optimizer step over VGG16 FCN-8s's parameters (134 M; fc6 is 103 M of them), fcn's one-pass
// update (second argument 1) or LibTorch's (0): SGD with momentum and weight decay (first argument
// 0) or AdamW (1). Memory-bound: the counter is the bytes the one pass reads and writes.
void BM_OptimizerStep(benchmark::State& state) {
  const bool adamw = state.range(0) != 0, fused = state.range(1) != 0;
  torch::manual_seed(0);
  std::vector<torch::Tensor> params{torch::randn({4096, 512, 7, 7}), torch::randn({4096, 4096}), torch::randn({14'700'000})};
  for (auto& p : params) {
    p.requires_grad_();
    p.mutable_grad() = torch::randn_like(p);
  }
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (adamw) optimizer = fused ? std::make_unique<fcn::FusedAdamW>(params, torch::optim::AdamWOptions(1e-4).weight_decay(1e-4))
                               : std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(1e-4).weight_decay(1e-4));
  else optimizer = fused ? std::make_unique<fcn::FusedSGD>(params, torch::optim::SGDOptions(1e-4).momentum(0.9).weight_decay(5e-4))
                         : std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(1e-4).momentum(0.9).weight_decay(5e-4));
  optimizer->step();  // the state exists from here on
  for (auto _ : state) optimizer->step();
  double n = 0;
  for (const auto& p : params) n += static_cast<double>(p.numel());
  state.counters["GB/s"] = benchmark::Counter(n * 4 * (adamw ? 7 : 5), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(std::string(adamw ? "AdamW " : "SGD ") + (fused ? "fcn one pass" : "LibTorch"));
}
BENCHMARK(BM_OptimizerStep)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kMillisecond);

void BM_ConfusionMatrix(benchmark::State& state) {
  const auto predictions = torch::randint(0, 21, {500, 500});
  const auto labels = torch::randint(0, 21, {500, 500});
  fcn::ConfusionMatrix confusion(21);
  for (auto _ : state) confusion.update(predictions, labels);
  state.SetItemsProcessed(state.iterations() * 500 * 500);
}
BENCHMARK(BM_ConfusionMatrix)->Unit(benchmark::kMicrosecond);

// Labels from K x 480 x 640 class probabilities: LibTorch's argmax(0) (arg 1: 0) against fcn's
// plane-by-plane class_labels (1), the step after every forward pass of predict, eval and validation.
void BM_ClassLabels(benchmark::State& state) {
  torch::manual_seed(0);
  const auto probs = torch::softmax(torch::randn({state.range(0), 480, 640}), 0);
  for (auto _ : state) benchmark::DoNotOptimize(state.range(1) == 0 ? probs.argmax(0) : fcn::class_labels(probs));
}
BENCHMARK(BM_ClassLabels)->ArgsProduct({{2, 11, 21, 150}, {0, 1}})->Unit(benchmark::kMillisecond);

// A 512 x 512 x 64 volume (a CT series' slab) read from NIfTI, plain (arg 0) or gzipped (1): 16-bit voxels
// of smooth structure, as scans compress; and its uint8 labels written over it. What fcn predict spends on
// a volume besides the net (docs/benchmarks.md "NIfTI volumes").
fcn::NiftiVolume bench_volume(bool gz, std::string& path) {
  fcn::NiftiVolume like;
  like.header.assign(348, 0);
  const int32_t size = 348;
  std::memcpy(like.header.data(), &size, 4);
  like.width = like.height = 512, like.slices = 64;
  const auto z = torch::arange(64).view({64, 1, 1}), y = torch::arange(512).view({1, 512, 1}), x = torch::arange(512).view({1, 1, 512});
  const auto scan = ((x * x + y * y) / 7 + z * 300 + (x * 31 + y * 17) % 97) % 60000;
  path = (std::filesystem::temp_directory_path() / (gz ? "fcn-bench-volume.nii.gz" : "fcn-bench-volume.nii")).string();
  fcn::write_nifti_labels(path, like, scan);  // 16-bit: uint16 voxels
  return fcn::read_nifti(path);
}

void BM_NiftiRead(benchmark::State& state) {
  std::string path;
  bench_volume(state.range(0) == 1, path);
  for (auto _ : state) benchmark::DoNotOptimize(fcn::read_nifti(path));
  state.SetBytesProcessed(state.iterations() * 512 * 512 * 64 * 2);
  std::filesystem::remove(path);
}
BENCHMARK(BM_NiftiRead)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_NiftiWriteLabels(benchmark::State& state) {
  std::string path;
  const auto volume = bench_volume(state.range(0) == 1, path);
  const auto labels = (volume.voxels / 20000).to(torch::kByte);  // 3 classes in large regions
  for (auto _ : state) fcn::write_nifti_labels(path, volume, labels);
  state.SetBytesProcessed(state.iterations() * 512 * 512 * 64);
  std::filesystem::remove(path);
}
BENCHMARK(BM_NiftiWriteLabels)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace

// fcn's CPU allocator, as the fcn CLI installs it at start (FCN_CPU_ALLOCATOR=system keeps
// LibTorch's): without it a layer's fresh activations are page-faulted in at every iteration, ~20%
// of the small training rows' time, varying 2x between repetitions. Threads as the CLI sets them
// (fcn/util/threads.h): every CPU the process may use unless OMP_NUM_THREADS says otherwise, and
// OpenBLAS on the calling thread, whose own pool's spinning threads otherwise slowed LibTorch's
// small direct convolutions 3-4x at 2 threads (AVX-512 Zen 5).
int main(int argc, char** argv) {
  fcn::install_cpu_allocator();
  fcn::use_available_cpus();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
