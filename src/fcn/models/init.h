// Weight initialisations the FCN paper relies on: bilinear interpolation kernels for the
// upsampling (transposed) convolutions, zeros for new score layers, and VGG's own init.
#pragma once

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

namespace fcn {

// k x k bilinear interpolation kernel for upsampling by a factor of ceil(k / 2) (Caffe's
// `bilinear` filler / FCN's upsample_filt): 1 - |x - c| / f along each axis.
torch::Tensor bilinear_kernel(int64_t size);

// Sets an (C x C x k x k) transposed conv to upsample each channel independently and bilinearly.
void init_bilinear(torch::nn::ConvTranspose2d layer);
// Zero weights and bias: a new score layer that contributes nothing until trained.
void init_zero(torch::nn::Conv2d layer);
// torchvision VGG's init: Kaiming-normal (fan-out, ReLU) convs with zero bias.
void init_kaiming(torch::nn::Conv2d layer);
// torchvision VGG's init for dense layers: N(0, 0.01), zero bias.
void init_normal(torch::nn::Linear layer);

}  // namespace fcn
