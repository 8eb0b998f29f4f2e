// fcn's own Winograd F(4x4, 3x3) inference kernel (internal to fcn/models/winograd.cpp).
//
// The input is cut into 6x6 tiles (stride 4), each tile of every channel is transformed (B^T d B),
// the 36 transformed positions become 36 matrix products over channels (oneDNN's sgemm), and each
// product is transformed back (A^T m A) into a 4x4 output tile, with the bias added. Tiles are
// processed in chunks, one chunk per thread at a time, so the transformed data stays in cache and
// nothing the size of an activation is allocated besides the output; where a layer has too few
// chunks to keep every thread busy (deep layers, small images, many cores), all threads work on
// each group of tiles in turn, the 36 products split by position and block of output channels. The weights are transformed
// (G g G^T) on every call: ~1 ms for a 512->512 layer against ~10-100 ms for its convolution, so
// nothing is held between calls and inference memory stays that of the direct convolution.
//
// It runs on every x86-64 CPU LibTorch runs on (oneDNN's sgemm picks its own ISA; the transforms
// are compiled for AVX2+FMA and a baseline on 8 channels at a time, chosen at load time, and for
// AVX-512 on 16, chosen at first use unless FCN_CPU_FLAGS hides avx512f), unlike oneDNN's Winograd
// kernels, which need AVX-512. Per-layer timings on both classes are in docs/benchmarks.md.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace fcn {

// conv2d(x, weight, bias, stride 1, padding, dilation 1, groups 1): x float32 CPU N x C x H x W (any
// layout; the result has x's: channels-last or contiguous), weight K x C x 3 x 3 with C and K
// multiples of 16, bias K or undefined; with `relu`, max(0, .) of it, in the same pass. The caller
// checks eligibility (winograd_eligible). A layer whose transformed weights (36 x K x C floats, 4x its
// own) exceed kWinogradWeightBlockBytes runs in blocks of input channels, summed, where that reads
// them fewer times (winograd_input_channel_blocks): torchvision's FCN head (3x3, 2048 -> 512 at
// 64x64) held 144 MiB of them for the call, raising the net's peak memory above PyTorch's, and
// streamed them once per 28 tiles (docs/benchmarks.md, "Large layers in blocks").
at::Tensor winograd_tiles_conv2d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t padding,
                                 bool relu = false);

constexpr int64_t kWinogradWeightBlockBytes = int64_t{64} << 20;
// ceil(transformed weight bytes / kWinogradWeightBlockBytes), at most one block per 16 input channels, where the
// blocks' chunks of `tiles` 4x4 output tiles are fewer than the whole layer's; else 1.
int64_t winograd_input_channel_blocks(int64_t out_channels, int64_t in_channels, int64_t tiles);

// The gradient of winograd_tiles_conv2d(x, weight, ., padding) with respect to x, given the output
// gradient dy (N x K x H' x W', any layout; the result has its): the convolution of dy, padded by
// 2 - padding, with the weight flipped and its channels swapped, without making that weight — the
// taps' flip goes into the kernel transform and the swap into the products (U^T instead of U).
at::Tensor winograd_tiles_input_grad(const at::Tensor& dy, const at::Tensor& weight, int64_t padding);

// The gradient of winograd_tiles_conv2d(x, w, ., padding) with respect to w (K x C x 3 x 3,
// contiguous, or channels-last written as such: no permuting copy after), given the output gradient dy (N x K x H' x W'), by the same tiles: per tile
// G^T [(A dy A^T) . (B^T d B)] G, the 36 positions summed over tiles as 36 matrix products
// (K x tiles by tiles x C) — 4x fewer multiplies than the direct backward-weights convolution. The
// threads share each group of tiles and each owns blocks of the one 36 x K x C sum (transient: 36 MiB
// for a 512 -> 512 layer, whatever the thread count).
at::Tensor winograd_tiles_weight_grad(const at::Tensor& x, const at::Tensor& dy, int64_t padding, bool channels_last = false);

}  // namespace fcn
