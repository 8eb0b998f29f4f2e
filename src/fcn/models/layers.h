// The few layer calls every fcn net makes, in one place: convolution forward passes that also
// count FLOPs when a FlopCounter is alive (so `fcn info` reports the cost of any architecture),
// and the crop/pad helpers the FCN and U-Net geometries need.
#pragma once

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

namespace fcn {

// Counts the floating-point operations (2 per multiply-add) of conv/linear layers run through
// the helpers below on this thread while it is alive. Nested counters are not supported.
class FlopCounter {
 public:
  FlopCounter();
  ~FlopCounter();
  FlopCounter(const FlopCounter&) = delete;
  FlopCounter& operator=(const FlopCounter&) = delete;
  double flops() const { return flops_; }

 private:
  friend void count_flops(double);
  double flops_ = 0;
};
void count_flops(double flops);

torch::Tensor conv(torch::nn::Conv2d layer, const torch::Tensor& x);
// relu(conv(layer, x)), the ReLU fused into the Winograd inference kernel's output pass where that runs.
torch::Tensor conv_relu(torch::nn::Conv2d layer, const torch::Tensor& x);
// bn(conv(layer, x)), then a ReLU where `relu`. In inference where the fast path runs fcn's kernels, the batch norm
// (eval mode) of a conv with at most 1 MiB of weights is folded into the conv's weights and bias, made once per
// version of any of them (derived_weights.h): no batch-norm call, and the ReLU fused where the conv's kernel fuses it
// (ResNet-18-w0.25's batch norms were 16% of an FCN-8s's 256^2 forward). Elsewhere (training, larger convs,
// ConvAlgorithm::kDirect) conv, then bn.
torch::Tensor conv_bn(torch::nn::Conv2d layer, torch::nn::BatchNorm2d bn, const torch::Tensor& x, bool relu = false);
// A max-pool's window, as torch::max_pool2d takes it (dilation 1).
struct MaxPool {
  int64_t kernel = 2, stride = 2, padding = 0;
  bool ceil_mode = false;
};
// max_pool(relu(conv(layer, x))): the ReLU fused into fcn's kernels where they run; where it would be a pass of its
// own (LibTorch's convolutions: bf16, a direct path) in inference, after the pool, on a quarter of the values (ReLU
// does not decrease, so it commutes with max; a padded window's -inf gives way to its values either way; NaN stays
// NaN). FCN-8s VGG16 500x500 bf16 (AMX Xeon, 1 thread): the five block-ending ReLUs, 45% of the ReLU time, on a
// quarter of their values.
torch::Tensor conv_relu_pool(torch::nn::Conv2d layer, const torch::Tensor& x, const MaxPool& pool);
// x.relu_() (in place: x is a handle to the same tensor), the same values, faster for bf16 in inference:
// LibTorch 1.13's relu_ (clamp_min_) on bf16 runs 2.7x slower than threshold_(x, 0, 0), NaN kept by both (Intel
// Xeon, AMX class, 2 threads, [1,64,698,698] channels-last: 17.7 vs 6.3 ms). fp32, where relu_ is as fast, and
// training keep relu_.
torch::Tensor relu_in_place(torch::Tensor x);
// CPU: computed as a convolution + pixel_shuffle when the kernel is a multiple of the stride
// (every fcn upsampler), which oneDNN runs ~10x faster than LibTorch 1.13's transposed kernel. In
// inference where the fast path runs fcn's kernels: by fcn's phase sgemm, which writes each phase
// to its pixels (gemm_conv.h), its weight matrix kept while the layer's weights are unchanged
// (derived_weights.h); U-Net's up-convolutions (kernel = stride) by nonoverlapping_transposed_conv2d.
torch::Tensor conv(torch::nn::ConvTranspose2d layer, const torch::Tensor& x);
// sum + conv(layer, x). Where fcn's phase sgemm runs the layer and `sum` is a channels-last float32 tensor of the
// result's sizes, the upsampled values are added into `sum` itself (no pass of its own over the sum: FCN-8s's three
// full-resolution scores in the kSame geometry) and `sum` is returned: pass a tensor no one else reads.
torch::Tensor conv_add(torch::nn::ConvTranspose2d layer, const torch::Tensor& x, torch::Tensor sum);
// The identity behind it, exposed for tests: conv_transpose2d(x, weight, bias, stride, padding)
// for a square kernel that is a multiple of `stride`.
torch::Tensor transposed_as_subpixel_conv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                          int64_t stride, int64_t padding);
torch::Tensor linear(torch::nn::Linear layer, const torch::Tensor& x);

// A conv's explicit padding (every fcn layer has one; 'valid' or 'same' throws), in one place because
// LibTorch 1.13 holds it in a c10::variant and LibTorch 2 in a std::variant.
torch::ExpandingArray<2> explicit_padding(const torch::nn::detail::ConvNdOptions<2>& options);

// Conv weights in channels-last (NHWC) layout: with channels-last activations, oneDNN then runs
// without reordering activations between layers (FCN-8s VGG16 500^2: 6.0 s -> 3.9 s in PyTorch).
void to_channels_last(torch::nn::Module& module);

// x[:, :, top:top+height, left:left+width]; throws if the window leaves x.
torch::Tensor crop(const torch::Tensor& x, int64_t top, int64_t left, int64_t height, int64_t width);
// Center crop of x to like's spatial size (U-Net skips).
torch::Tensor center_crop(const torch::Tensor& x, int64_t height, int64_t width);
// Zero-pads x at the bottom and right so H and W become multiples of `multiple`.
torch::Tensor pad_to_multiple(const torch::Tensor& x, int64_t multiple);

// Copies every parameter and buffer of `from` into the same-named one of `to` (shapes must match):
// the weights of one net carried into another that shares its layers.
void copy_state(torch::nn::Module& to, const torch::nn::Module& from);

// Checks a user tensor is N x channels x H x W floating point; throws fcn::Error otherwise.
void check_input(const torch::Tensor& x, int64_t channels, const char* net);

}  // namespace fcn
