// Convolutions by im2col + one matrix product per chunk of output pixels (oneDNN's sgemm), for
// inference, where LibTorch 1.13's own kernels fall short:
// - weights too large for any cache (VGG16's fc6: 7x7x512 -> 4096, 411 MB; AlexNet's fc6: 6x6x256
//   -> 4096, 151 MB): LibTorch runs these on oneDNN's direct kernels, which stream the weights from
//   memory again and again: VGG16's fc6 on FCN-8s's 500^2 input ran at ~42 GFLOP/s on one AVX-512
//   core, where the sgemm reaches ~85 (docs/benchmarks.md, "fc6 by im2col + sgemm"). The sgemm
//   reads the weights once per chunk of up to 32 MiB of columns.
// - short products, output maps of fewer than 256 pixels (a U-Net's or a small input's deepest
//   levels): LibTorch sends batch-1 maps of at most 20,480 values to its _slow_conv2d_forward, on one
//   thread whatever the thread count, and oneDNN's direct kernels are no faster on such maps; the
//   threads here share the output channels (docs/benchmarks.md, "Short products").
//
// Used by fcn::conv (fcn/models/layers.h) in inference (grad mode off) where the fast path runs
// fcn's kernels (ConvAlgorithm::kWinograd, fcn/models/winograd.h) and the layer is eligible.
// Results agree with the direct convolution to float rounding (another summation order).
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace fcn {

// Weights at least this large (bytes, float32) go by im2col + sgemm: smaller ones stay in cache
// well enough that oneDNN's direct kernels are as fast or faster (VGG16-w0.25's fc6, 26 MB: direct
// 37 ms vs 45 ms on one AVX-512 core), and the columns would cost memory for nothing.
constexpr int64_t kGemmConvMinWeightBytes = int64_t{64} << 20;

// Output maps of fewer pixels than this (over the batch) are short products: they go by this path
// whatever the weights' size, and the threads split each product's output channels between them
// (oneDNN's threaded sgemm ran them 2x slower at 2 threads than at 1). Measured per layer on both
// CPU classes (fcn_micro --benchmark_filter=SmallMaps): at 4x4 and 8x8 (batch 1) and 4x4 (batch 4)
// this path wins or ties at 1 and 2 threads; at 256 pixels (16x16, or 8x8 batch 4) oneDNN's direct
// kernels win on the AVX-512 class.
constexpr int64_t kGemmConvShortProductPixels = 256;

// A layer this path serves: float32 CPU N x C x H x W input, C x kh x kw weight with kh*kw > 1,
// stride 1, dilation 1, one group, the same zero padding on every side, a non-empty output, and
// (gemm_conv_eligible) at least kGemmConvMinWeightBytes of weights or fewer than
// kGemmConvShortProductPixels output pixels.
bool gemm_conv_serves(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t dilation, int64_t groups,
                      int64_t padding_h, int64_t padding_w);
bool gemm_conv_eligible(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t dilation, int64_t groups,
                        int64_t padding_h, int64_t padding_w);

// conv2d(x, weight, bias, stride 1, padding), and max(0, .) of it with `relu`, for a layer
// gemm_conv_serves (any weight size); the result has x's layout (channels-last or contiguous).
// Weights in either layout are read in place (channels-last OHWI or contiguous OIHW; others are
// copied to OIHW first). Throws fcn::Error for a layer it does not serve, or in a build without oneDNN.
torch::Tensor gemm_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, int64_t padding,
                          bool relu = false);

// Training (grad mode) by the same products, for short products only (gemm_conv_trains_well: fewer
// than kGemmConvShortProductPixels output pixels, e.g. the demo's fc6, 7x7 over an 8x8 pool5 map at
// batch 8): the forward pass keeps its columns, dW = dY^T x columns is written straight into the
// weight's layout and dX is d(columns) = dY x W scattered back. First derivatives only. Throws
// fcn::Error for a layer it does not serve, or in a build without oneDNN.
bool gemm_conv_trains_well(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t dilation, int64_t groups,
                           int64_t padding_h, int64_t padding_w);
torch::Tensor gemm_conv2d_trainable(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, int64_t padding);

// U-Net's up-convolution for inference: a transposed convolution whose kernel equals its stride
// (s x s, stride s; no overlap), so input pixel p's s x s output block is p's channels times the
// weight read as an in x (s*s*out) matrix. One sgemm per chunk of pixels into a cache-sized buffer,
// then the blocks (and the bias) go to their places in a channels-last output. LibTorch's
// conv_transpose2d takes a slow im2col path, and fcn's subpixel rewrite (layers.h) copies the
// weights into a conv's layout on every call: 11 ms of a 64x64 U-Net forward's 65 (AVX-512 Zen 5).
// x: float32 CPU N x in x H x W; weight: in x out x s x s (either layout). The result is
// N x out x H*s x W*s in x's layout, before the transposed conv's padding is cropped.
bool nonoverlapping_transposed_serves(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t groups,
                                      int64_t dilation, int64_t output_padding);
torch::Tensor nonoverlapping_transposed_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                               int64_t stride);

// FCN's upsamplers for inference: a stride-s transposed convolution with an (m*s) x (m*s) kernel, m > 1 (kernel =
// stride is nonoverlapping_transposed_conv2d's), as the stride-1 m x m convolution of its s*s phases
// (transposed_as_subpixel_conv, layers.h) by im2col + sgemm, each chunk of the products written straight to its
// places in the output, cropped by `padding`, bias added on the way: no phases tensor, no pixel_shuffle or permuting
// copy. LibTorch sends these batch-1 2x2 convolutions with thousands of output channels (21 classes x 32 x 32 phases)
// to its im2col path at 50-60 GFLOP/s on one AVX-512 Zen 5 core, oneDNN's direct kernels to ~60; their sgemm with
// the weights stored (depth x outputs) runs at 140-210, and the threads share the phases (columns) of each product.
// phase_weights: float32 (m*m*in) x (s*s*out), rows (u, v, in) of the flipped taps, columns (ry, rx, out)
// (subpixel_phase_weights, layers.cpp, makes it once per weight version). x: float32 CPU N x in x h x w. The result is
// N x out x H x W, H = (h + m - 1) * s - 2 * padding (W likewise), in x's layout. With `into` (float32 CPU, those
// sizes, channels-last): the result is added into it in place (an FCN's sum of upsampled scores without a pass of its
// own) and `into` is returned.
torch::Tensor phase_gemm_transposed_conv2d(const torch::Tensor& x, const torch::Tensor& phase_weights, const torch::Tensor& bias,
                                           int64_t stride, int64_t m, int64_t padding, const torch::Tensor& into = {});

// a (m x k) times b (k x n), float32 CPU, by oneDNN's sgemm (the GEMM of fcn's kernels) on LibTorch's threads; an
// undefined tensor where fcn was built without oneDNN. For fcn bench's SGEMM peak.
torch::Tensor onednn_mm(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace fcn
