// Training a convolution in channels-last on the CPU by LibTorch's own kernels, less one copy.
// LibTorch 1.13 returns a channels-last layer's weight gradient as oneDNN's blocked result made
// plain (OIHW) and then `.to(ChannelsLast)`: a permuting copy that runs at 1-12 ns per weight and
// was the largest single operator of the demo's FCN-8s step (4.6 of 43 ms on an AVX-512 Zen 5:
// five 128 x 128 x 3 x 3 gradients) and 2-6% of FCN-8s VGG16's step at 320^2 (docs/benchmarks.md).
// Here the same oneDNN backward-weights convolution (plain NHWC input and output gradient, its own
// blocked weight layout) is reordered once, straight into the weight's layout; the forward pass and
// the input gradient are LibTorch's calls, unchanged. fcn::conv (fcn/models/layers.h) runs it in
// grad mode where the training conv algorithm is fcn's kernels (not kDirect, LibTorch's alone).
#pragma once

#include <torch/types.h>

namespace fcn {

// A layer it serves: a float32 CPU N x C x H x W input that LibTorch runs channels-last (its
// suggested memory format), a 4-D weight, one group, stride and dilation >= 1, zero padding that
// leaves no negative right/bottom padding (the output's last row and column read inside the input
// or its left padding), and something that needs a gradient. False in a build without oneDNN.
bool channels_last_trainer_serves(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                  at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups);

// A 1x1 stride-1 unpadded float32 CPU convolution that LibTorch 1.13 would run by its _slow_conv2d_forward/backward
// (im2col-free OpenBLAS on NCHW copies): one thread, a batch under 16, more than 20,480 values an image (smaller maps
// are faster there). oneDNN's kernel, which LibTorch itself takes at two threads or more, ran ResNet-50's bottleneck
// convs at 64x64 about twice as fast on one AVX-512 Zen 5 core, and even to a little faster on its AVX2 proxy. False
// without oneDNN in LibTorch.
bool onednn_beats_libtorch_1x1(const torch::Tensor& x, const torch::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding);

// conv2d(x, weight, bias, stride, padding, dilation) with autograd (first derivatives only: no
// create_graph); the weight gradient in the weight's own layout, as LibTorch's backward gives it.
// Throws fcn::Error for a layer it does not serve.
torch::Tensor channels_last_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                   at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation);

}  // namespace fcn
