// 3x3 convolutions by Winograd's minimal filtering, F(4x4, 3x3): 36 multiplies per 4x4 output tile
// instead of 144, so VGG/U-Net's 3x3 layers need ~2-3x fewer operations than the direct
// convolution LibTorch 1.13 runs (it never uses Winograd on x86). Two implementations:
// - inference (grad mode off, or nothing needs a gradient): fcn's own kernel
//   (fcn/models/winograd_tiles.h: tile transforms + oneDNN's sgemm), on every x86-64 CPU; it holds
//   nothing between calls, so memory is that of the direct convolution. Used where the fast path
//   says so (fcn/infer/fast_path.h).
// - training (grad mode): two implementations, which the training conv algorithm names:
//   ConvAlgorithm::kWinograd is fcn's (the forward pass, the input gradient, a 3x3 convolution too,
//   and the weight gradient, by the same tiles), on every CPU; kWinogradOneDnn is oneDNN's kernels
//   for all three, which oneDNN 2.6 has for float32 on AVX-512 CPUs only. Which is faster depends on
//   the CPU, by a lot: FCN-8s's train step at 320x320 ran ~1.3x faster than direct with oneDNN's on
//   the AMX Xeon but 2.6-2.8x slower on an AVX-512 Zen 5, where fcn's is ~1.4x faster than direct
//   (docs/benchmarks.md). So fcn's is the rule and oneDNN's a candidate fcn tune --mode train times.
//
// Results agree with the direct convolution to float rounding of the transforms (relative
// ~1e-6..1e-5; tests/models/winograd_test.cpp holds them to 1e-4 of the output's scale).
#pragma once

#include <string>

#include <torch/types.h>

#include "fcn/util/cpu.h"

namespace fcn {

enum class ConvAlgorithm {
  kDirect,          // LibTorch's convolution (oneDNN direct / brgemm kernels)
  kWinograd,        // Winograd F(4x4, 3x3) for eligible layers (winograd_eligible) by fcn's kernels; in
                    // inference also fc6-sized layers by im2col + sgemm (fcn/models/gemm_conv.h); in
                    // channels-last training the other layers direct, their weight gradients written
                    // straight into the weight's layout (fcn/models/conv_train.h); direct for the rest
  kWinogradOneDnn,  // training: Winograd by oneDNN's kernels (winograd_onednn_trains()), the rest as kWinograd; inference: as kWinograd
};
// Process-wide, one for inference (grad mode off) and one for grad mode (training); both kDirect
// by default. fcn::conv (fcn/models/layers.h) follows them. set_training_conv_algorithm throws
// fcn::Error for kWinogradOneDnn where this CPU lacks oneDNN's kernels.
void set_conv_algorithm(ConvAlgorithm algorithm);
ConvAlgorithm conv_algorithm();
void set_training_conv_algorithm(ConvAlgorithm algorithm);
ConvAlgorithm training_conv_algorithm();
const char* conv_algorithm_name(ConvAlgorithm algorithm);  // "direct" | "winograd" | "winograd_onednn"
// A run's training conv algorithm while alive (direct where fcn has no Winograd: built without
// oneDNN), then the process's own choice again: fcn train's and fcn pretrain's steps.
class TrainingConvScope {
 public:
  explicit TrainingConvScope(ConvAlgorithm algorithm);
  ~TrainingConvScope();
  TrainingConvScope(const TrainingConvScope&) = delete;
  TrainingConvScope& operator=(const TrainingConvScope&) = delete;

 private:
  ConvAlgorithm before_;
};
// The inference conv algorithm while alive, then the one before: a trainer's validation runs the kernels its
// training runs (fcn's where those are), as fcn eval of the saved model does by the fast path's rule, so that the
// scores agree (near-tied logits of a young net otherwise flip pixels between kernels' roundings).
class InferenceConvScope {
 public:
  explicit InferenceConvScope(ConvAlgorithm algorithm);
  ~InferenceConvScope();
  InferenceConvScope(const InferenceConvScope&) = delete;
  InferenceConvScope& operator=(const InferenceConvScope&) = delete;

 private:
  ConvAlgorithm before_;
};
// "direct" | "winograd" | "winograd_onednn" (or "winograd-onednn"); throws fcn::Error naming `what` otherwise.
ConvAlgorithm parse_conv_algorithm(const std::string& name, const std::string& what);
inline bool is_winograd(ConvAlgorithm a) { return a != ConvAlgorithm::kDirect; }

// fcn was built with oneDNN (whose sgemm fcn's kernel uses), for inference and training alike.
bool winograd_supported();
// oneDNN has its Winograd training kernels on this CPU (checked once): kWinogradOneDnn can train.
bool winograd_onednn_trains();

// fcn's trainer pays on maps of at least this many output rows and columns: on 4x4 and 8x8 maps its
// transforms cost more than the multiplies saved, and on 16x16 its layout copies in an NCHW net take
// the rest (AVX2 proxy, per layer and whole steps: docs/benchmarks.md).
constexpr int64_t kFcnTrainingMinSide = 32;
// Whether training an eligible layer on input x by the training conv algorithm's Winograd pays:
// always with oneDNN's, with fcn's on outputs of at least kFcnTrainingMinSide on both sides.
bool winograd_trains_well(const torch::Tensor& x, int64_t padding);

// fcn's inference kernel transforms all 36 x K x C weights on every call and streams them through
// each chunk of tiles, so it pays only where a call has enough 4x4 output tiles to share that cost.
// Where that starts depends on how fast the CPU's direct convolution is (fcn_micro
// --benchmark_filter=Winograd3x3SmallMaps, batch 1, 1 and 2 threads, docs/benchmarks.md):
//  - AVX-512 (Zen 5): 16x16 maps (16 tiles) and smaller lost to direct for 256-1024 channels (1.1-2.5x
//    slower); from 32x32 (64 tiles) it won (0.6-0.85x). A U-Net on 64x64 inputs ran 2x slower with
//    Winograd on every eligible layer than direct;
//  - AVX2 (the proxy: Zen 5 held to AVX2): at 16x16 it already won (0.73-0.96x at 1 thread), at 8x8 lost.
// Maps under 16 on a side never pay (batch 4 of 8x8, 64 tiles, did not either).
constexpr int64_t kFcnInferenceMinSide = 16;
// 64 tiles per call with AVX-512, 16 without.
int64_t winograd_inference_min_tiles(const CpuInfo& cpu = cpu_info());
// Whether inference of an eligible layer on input x by fcn's Winograd pays on this CPU: output maps
// of at least kFcnInferenceMinSide, and winograd_inference_min_tiles() tiles over the batch.
bool winograd_infers_well(const torch::Tensor& x, int64_t padding);

// A layer Winograd serves well: float32 CPU input, 3x3 kernel, stride 1, dilation 1, one group,
// zero padding 0 or 1 on every side (oneDNN's training kernel takes no more), and in/out channels
// multiples of 16 (oneDNN's block) and at least 64: narrower layers gain little or lose (a 3-channel
// RGB first layer is all transform; docs/benchmarks.md).
bool winograd_eligible(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t dilation,
                       int64_t groups, int64_t padding_h, int64_t padding_w);

// A dilated 3x3 conv (dilation d > 1, stride 1, padding d: the 'same' atrous conv of DeepLab and torchvision's FCN)
// is d*d ordinary 3x3 convs with padding 1, one on each phase x[:, :, p::d, q::d] of its input. In inference and in
// training, where fcn's Winograd would serve such a phase conv and pays on the d*d phases as one batch,
// dilated_winograd_conv2d runs it so. It pays where the phases are at least kDilatedPhaseMinSide on each side and
// hold kDilatedPhaseMinTiles 4x4 output tiles between them (fcn_micro --benchmark_filter=DilatedTrain: torchvision's
// FCN ResNet-50 layers, on an AVX-512 Zen 4 and on its AVX2 proxy, docs/benchmarks.md): 512 channels at dilation 4 on
// a 32x32 map (16 phases of 8x8, 64 tiles) trained 1.6-2.3x and inferred 1.5-2.4x faster than direct; phases of 4x4
// lost up to 3.4x; 8x8 phases with 16 tiles and 6x6 ones (64 tiles, half of them padding) were within ~30% either way.
constexpr int64_t kDilatedPhaseMinSide = 8;
constexpr int64_t kDilatedPhaseMinTiles = 32;
bool dilated_winograd_serves(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t dilation,
                             int64_t groups, int64_t padding_h, int64_t padding_w);
// conv2d(x, weight, bias, stride 1, padding d, dilation d) by Winograd on the phases (see above); relu as in
// winograd_conv2d, and in grad mode with autograd as winograd_conv2d records it (the phases' copies are ATen ops). The
// result has x's layout. Throws fcn::Error for a layer dilated_winograd_serves does not take
// (its tile-count rule aside).
torch::Tensor dilated_winograd_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                      int64_t dilation, bool relu = false);

// conv2d(x, weight, bias, stride 1, padding) by Winograd; x float32 on the CPU, NCHW or
// channels-last (the result has x's layout). Throws fcn::Error for a layer it does not serve. In
// grad mode, with an input that requires grad, it runs the training conv algorithm's kernels (fcn's
// unless it is kWinogradOneDnn) and records autograd (first derivatives only: no create_graph). With
// `relu`, the result is max(0, conv2d(...)): fused into the inference kernel's output pass, a
// separate step in training.
torch::Tensor winograd_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              int64_t padding, bool relu = false);

}  // namespace fcn
