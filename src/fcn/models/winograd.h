// 3x3 convolutions by Winograd's minimal filtering, F(4x4, 3x3), through oneDNN: 36 multiplies
// per 4x4 output tile instead of 144, so VGG/U-Net's 3x3 layers need ~2-3x fewer operations than
// the direct convolution LibTorch runs. oneDNN 2.6 has the kernels for float32 on AVX-512 CPUs
// only, forward and backward; LibTorch 1.13 never selects them, so fcn calls oneDNN (the same
// libdnnl LibTorch loads) itself:
// - inference, where the fast path says so (`fcn tune --winograd`, fcn/infer/fast_path.h): it
//   trades memory for speed, holding the transformed weights;
// - training, forward and backward, where TrainOptions.winograd says so (on by default: FCN-8s's
//   train step ~1.3x faster; its memory is transient; docs/benchmarks.md).
//
// Results agree with the direct convolution to float rounding of the transforms (relative
// ~1e-6..1e-5; tests/models/winograd_test.cpp holds them to 1e-4 of the output's scale).
// Inference caches the transformed weights per weight tensor (4x the weight's bytes: VGG16's convs
// add ~0.23 GiB) until the tensor is changed in place, re-pointed or freed, or clear_winograd_cache().
#pragma once

#include <cstddef>

#include <torch/types.h>

namespace fcn {

enum class ConvAlgorithm {
  kDirect,    // LibTorch's convolution (oneDNN direct / brgemm kernels)
  kWinograd,  // oneDNN Winograd for eligible layers (winograd_eligible), direct for the rest
};
// Process-wide, one for inference (grad mode off) and one for grad mode (training); both kDirect
// by default. fcn::conv (fcn/models/layers.h) follows them.
void set_conv_algorithm(ConvAlgorithm algorithm);
ConvAlgorithm conv_algorithm();
void set_training_conv_algorithm(ConvAlgorithm algorithm);
ConvAlgorithm training_conv_algorithm();
const char* conv_algorithm_name(ConvAlgorithm algorithm);  // "direct" | "winograd"

// fcn was built with oneDNN and this CPU runs its Winograd kernels: the inference one, or with
// `training` the forward-training and both backward ones (checked once, by asking oneDNN).
bool winograd_supported(bool training = false);

// A layer Winograd serves well: float32 CPU input, 3x3 kernel, stride 1, dilation 1, one group,
// zero padding 0 or 1 on every side (oneDNN's kernel takes no more), and in/out channels multiples of 16 (oneDNN's block) and at
// least 64: narrower layers gain nothing (32->32 at 512^2 is 1.1-1.9x slower by Winograd, a
// 3-channel RGB first layer 8x; AMX class, docs/benchmarks.md).
bool winograd_eligible(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t dilation,
                       int64_t groups, int64_t padding_h, int64_t padding_w);

// conv2d(x, weight, bias, stride 1, padding) by Winograd; x float32 on the CPU, NCHW or
// channels-last (the result has x's layout). Throws fcn::Error where oneDNN has no Winograd
// kernel for it. In grad mode, with an input that requires grad, it records autograd and its
// backward runs oneDNN's Winograd backward passes too (first derivatives only: no create_graph).
torch::Tensor winograd_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              int64_t padding);

// Transformed weights held (for tests), and dropping them all.
size_t winograd_cache_entries();
void clear_winograd_cache();

}  // namespace fcn
