#include "fcn/models/layers.h"

#include <torch/torch.h>

#include <array>
#include <atomic>
#include <string>
#include <utility>
#include <variant>

#include "fcn/models/conv_train.h"
#include "fcn/models/derived_weights.h"
#include "fcn/models/gemm_conv.h"
#include "fcn/models/upsampling.h"
#include "fcn/models/winograd.h"
#include "fcn/util/error.h"
#include "fcn/util/layout.h"

namespace fcn {
namespace {
thread_local FlopCounter* active_counter = nullptr;
std::atomic<UpsamplingPath> upsampling{UpsamplingPath::kSubpixel};
}  // namespace

void set_upsampling_path(UpsamplingPath path) { upsampling = path; }
UpsamplingPath upsampling_path() { return upsampling; }

FlopCounter::FlopCounter() {
  TORCH_CHECK(active_counter == nullptr, "FlopCounter: nested counters are not supported");
  active_counter = this;
}
FlopCounter::~FlopCounter() { active_counter = nullptr; }

void count_flops(double flops) {
  if (active_counter != nullptr) active_counter->flops_ += flops;
}

torch::Tensor relu_in_place(torch::Tensor x) {
  if (x.scalar_type() == torch::kBFloat16 && !torch::GradMode::is_enabled()) return torch::threshold_(x, 0.0, 0.0);
  return x.relu_();
}

namespace {
// nullptr for 'valid' or 'same'. The unqualified call finds std::get_if (LibTorch 2: std::variant) or,
// by argument-dependent lookup, c10::get_if (LibTorch 1.13: c10::variant).
const torch::ExpandingArray<2>* padding_if_explicit(const torch::nn::detail::ConvNdOptions<2>& o) {
  using std::get_if;
  return get_if<torch::ExpandingArray<2>>(&o.padding());
}

bool zeros_padding_mode(const torch::nn::detail::ConvNdOptions<2>& o) {
  using std::get_if;
  return get_if<torch::enumtype::kZeros>(&o.padding_mode()) != nullptr;
}

// A Conv2d's stride, dilation and zero padding as the kernels' eligibility rules take them; -1 where
// they differ between the axes, and no layer is eligible with a padding other than zeros.
struct ConvGeometry {
  int64_t stride = -1, dilation = -1, padding_h = -1, padding_w = -1;
};
ConvGeometry geometry_of(const torch::nn::detail::ConvNdOptions<2>& o) {
  ConvGeometry g;
  const auto* pad = padding_if_explicit(o);
  if (pad == nullptr || !zeros_padding_mode(o)) return g;
  g.padding_h = (*pad)->at(0);
  g.padding_w = (*pad)->at(1);
  g.stride = o.stride()->at(0) == o.stride()->at(1) ? o.stride()->at(0) : -1;
  g.dilation = o.dilation()->at(0) == o.dilation()->at(1) ? o.dilation()->at(0) : -1;
  return g;
}

// Whether this call may take one of fcn's own kernels (Winograd, im2col + sgemm): it runs in the mode
// asked (grad mode for training), that mode's conv algorithm is fcn's (the fast path's in inference,
// the trainer's in training), and the kernels are built (oneDNN's sgemm).
bool fcn_kernels_serve(bool training) {
  if (torch::GradMode::is_enabled() != training) return false;
  return is_winograd(training ? training_conv_algorithm() : conv_algorithm()) && winograd_supported();
}

// Winograd (fcn/models/winograd.h) where the fast path (inference) or the trainer (grad mode) chose
// it, on the layers it serves where it pays (enough tiles in inference, large maps in training);
// else LibTorch's own convolution.
bool use_winograd(const ConvGeometry& g, int64_t groups, const torch::Tensor& x, const torch::Tensor& weight) {
  const bool training = torch::GradMode::is_enabled();
  if (!fcn_kernels_serve(training)) return false;
  return g.stride > 0 && winograd_eligible(x, weight, g.stride, g.dilation, groups, g.padding_h, g.padding_w) &&
         (training ? winograd_trains_well(x, g.padding_h) : winograd_infers_well(x, g.padding_h));
}

// Dilated 3x3 convs (torchvision's FCN, DeepLab) by Winograd on their phases, where the fast path (inference) or the
// trainer (grad mode) runs fcn's kernels and Winograd pays on the phases (winograd.h).
bool use_dilated_winograd(const ConvGeometry& g, int64_t groups, const torch::Tensor& x, const torch::Tensor& weight) {
  if (!fcn_kernels_serve(torch::GradMode::is_enabled())) return false;
  return dilated_winograd_serves(x, weight, g.stride, g.dilation, groups, g.padding_h, g.padding_w);
}

// im2col + sgemm (fcn/models/gemm_conv.h) for fc6-sized weights in inference, where the fast path
// runs fcn's kernels (the same choice as Winograd's: both are fcn's, on oneDNN's sgemm).
bool use_gemm(const ConvGeometry& g, int64_t groups, const torch::Tensor& x, const torch::Tensor& weight) {
  if (!fcn_kernels_serve(false)) return false;
  return g.stride > 0 && gemm_conv_eligible(x, weight, g.stride, g.dilation, groups, g.padding_h, g.padding_w);
}

// Short products (fewer than 256 output pixels: the demo's fc6, a U-Net's bottleneck) in training by
// fcn's im2col + sgemm with its own gradients (fcn/models/gemm_conv.h), where the trainer runs fcn's
// kernels: the demo's fc6 step 40 -> 8.5 ms at 1 thread on Zen 5, 44 -> 14 on the AVX2 proxy; the
// demo's FCN-8s step ~30% faster, FCN-8s VGG16's 320^2 step (fc6: 100 pixels) 4.3 -> 3.2 s at 1 thread.
bool use_gemm_training(const ConvGeometry& g, int64_t groups, const torch::Tensor& x, const torch::Tensor& weight) {
  if (!fcn_kernels_serve(true)) return false;
  return g.stride > 0 && gemm_conv_trains_well(x, weight, g.stride, g.dilation, groups, g.padding_h, g.padding_w);
}

bool onednn_on() { return at::hasMKLDNN() && at::globalContext().userEnabledMkldnn(); }

// Where LibTorch 1.13 would run its _slow_conv2d_forward (im2col + OpenBLAS on one thread) and oneDNN's direct kernel
// is faster, in inference where the fast path runs fcn's kernels (ConvAlgorithm::kDirect stays LibTorch's, bitwise):
// - small maps: a batch-1 fp32 input of at most 20,480 values under a kernel of 2x2..3x3 that fcn's own kernels leave
//   (narrow layers, strided ones): ResNet-18-w0.25's 16-channel 32x32 3x3 layers took 0.1-0.9 ms a call there where
//   oneDNN's takes 0.04 (AVX-512 Zen 5). 1x1 kernels on such maps stay LibTorch's (one sgemm, faster than oneDNN's).
// - 1x1 kernels on larger maps at one thread (onednn_beats_libtorch_1x1, conv_train.h): torchvision's FCN ResNet-50
//   at 512^2 took 2.7x as long on one thread as on two (AVX-512 Zen 5; docs/benchmarks.md).
bool use_onednn(const ConvGeometry& g, int64_t groups, const torch::Tensor& x, const torch::Tensor& weight) {
  if (!fcn_kernels_serve(false) || !onednn_on()) return false;
  if (!x.is_cpu() || x.scalar_type() != torch::kFloat || weight.scalar_type() != torch::kFloat || x.dim() != 4) return false;
  if (g.stride < 1 || g.dilation < 1 || g.padding_h < 0 || groups != 1) return false;
  const int64_t kh = weight.size(2), kw = weight.size(3);
  if (kh * kw == 1) return onednn_beats_libtorch_1x1(x, weight, {g.stride, g.stride}, {g.padding_h, g.padding_w});
  return x.size(0) == 1 && !(kh > 3 && kw > 3) && x.numel() <= 20480;
}

// A transposed convolution's output less its `padding` on every side.
torch::Tensor without_border(const torch::Tensor& y, int64_t padding) {
  return padding > 0 ? crop(y, padding, padding, y.size(2) - 2 * padding, y.size(3) - 2 * padding) : y;
}

// U-Net's up-convolution (kernel = stride) by fcn's sgemm kernel (fcn/models/gemm_conv.h) in
// inference, where the fast path runs fcn's kernels (the same choice as Winograd's).
bool use_nonoverlapping(const torch::nn::detail::ConvNdOptions<2>& o, const torch::Tensor& x, const torch::Tensor& weight) {
  if (!fcn_kernels_serve(false)) return false;
  return nonoverlapping_transposed_serves(x, weight, o.stride()->at(0), o.groups(), o.dilation()->at(0), o.output_padding()->at(0));
}

// LibTorch's convolution, direct(); or in channels-last training under fcn's kernels the same less
// LibTorch's slow weight-gradient copy (fcn/models/conv_train.h), on the layers that serves.
template <typename Direct>
torch::Tensor direct_conv(const ConvGeometry& g, int64_t groups, const torch::Tensor& x, const torch::Tensor& weight,
                          const torch::Tensor& bias, Direct direct) {
  if (!torch::GradMode::is_enabled() || !is_winograd(training_conv_algorithm()) || g.stride < 1 || g.dilation < 1 || g.padding_h < 0)
    return direct();
  const std::array<int64_t, 2> stride{g.stride, g.stride}, padding{g.padding_h, g.padding_w}, dilation{g.dilation, g.dilation};
  return channels_last_trainer_serves(x, weight, bias, stride, padding, dilation, groups)
             ? channels_last_conv2d(x, weight, bias, stride, padding, dilation)
             : direct();
}

// A convolution of x by (weight, bias) with `o`'s geometry, relu(...) where `relu`: fcn's kernels where they serve,
// else direct() (LibTorch's). Where `later` is given and the ReLU would be a pass of its own in inference, it is left
// to the caller: *later = true.
template <typename Direct>
torch::Tensor conv_with(const torch::nn::detail::ConvNdOptions<2>& o, const torch::Tensor& weight, const torch::Tensor& bias,
                        const torch::Tensor& x, bool relu, bool* later, Direct direct) {
  const auto g = geometry_of(o);
  torch::Tensor y;
  if (use_winograd(g, o.groups(), x, weight)) {
    y = winograd_conv2d(x, weight, bias, g.padding_h, relu);
  } else if (use_dilated_winograd(g, o.groups(), x, weight)) {
    y = dilated_winograd_conv2d(x, weight, bias, g.dilation, relu);
  } else if (use_gemm(g, o.groups(), x, weight)) {
    y = gemm_conv2d(x, weight, bias, g.padding_h, relu);
  } else if (use_gemm_training(g, o.groups(), x, weight)) {
    y = gemm_conv2d_trainable(x, weight, bias, g.padding_h);
    if (relu) relu_in_place(y);
  } else if (use_onednn(g, o.groups(), x, weight)) {
    y = at::mkldnn_convolution(x, weight, bias, {g.padding_h, g.padding_w}, {g.stride, g.stride}, {g.dilation, g.dilation}, 1);
    if (relu) relu_in_place(y);
  } else {
    y = direct_conv(g, o.groups(), x, weight, bias, direct);
    if (relu && later != nullptr && !torch::GradMode::is_enabled())
      *later = true;
    else if (relu)
      relu_in_place(y);
  }
  if (active_counter != nullptr)  // weight: out x in/groups x kh x kw
    count_flops(2.0 * static_cast<double>(y.numel()) * static_cast<double>(weight.numel() / weight.size(0)));
  return y;
}

torch::Tensor conv(torch::nn::Conv2d& layer, const torch::Tensor& x, bool relu, bool* later = nullptr) {
  return conv_with(layer->options, layer->weight, layer->bias, x, relu, later, [&] { return layer->forward(x); });
}

// Convs with at most this many bytes of weights get their batch norm folded in (conv_bn). The folded weights are kept
// beside the layer's own, and what folding saves is LibTorch's batch-norm call, slow on narrow channels-last maps
// (0.45 ms for a 16-channel 64x64 map on one AVX-512 Zen 5 core): ResNet-18-w0.25's batch norms were 16% of an
// FCN-8s's 256^2 forward. Folding every layer of torchvision's FCN ResNet-50 at 512^2 gained nothing measurable
// (650-690 ms at 2 threads either way, as the AMX class had found) and raised peak memory by 151 MiB (576 -> 727).
constexpr int64_t kFoldMaxWeightBytes = int64_t{1} << 20;

// Whether conv_bn folds `bn` into `layer`: inference where the fast path runs fcn's kernels (kDirect stays LibTorch's
// conv and batch norm, bit for bit), float32 on the CPU, a batch norm in eval mode with affine parameters and running
// statistics, and a conv of explicit zero padding and at most kFoldMaxWeightBytes of weights.
bool folds(const torch::nn::Conv2d& layer, const torch::nn::BatchNorm2d& bn, const torch::Tensor& x) {
  if (!fcn_kernels_serve(false) || !x.is_cpu() || x.scalar_type() != torch::kFloat || layer->weight.scalar_type() != torch::kFloat ||
      layer->weight.numel() * static_cast<int64_t>(sizeof(float)) > kFoldMaxWeightBytes)
    return false;
  const auto g = geometry_of(layer->options);
  return g.stride > 0 && g.dilation > 0 && g.padding_h >= 0 && !bn->is_training() && bn->options.affine() &&
         bn->options.track_running_stats() && bn->running_mean.defined() && bn->running_var.defined() &&
         bn->running_mean.scalar_type() == torch::kFloat && bn->weight.scalar_type() == torch::kFloat;
}

// The conv's weight and bias with the batch norm folded in: w * s and beta + (b - mean) * s per output channel,
// s = gamma / sqrt(var + eps); made once per version of any of them (derived_weights.h).
std::pair<torch::Tensor, torch::Tensor> folded(const torch::nn::Conv2d& layer, const torch::nn::BatchNorm2d& bn) {
  const std::string kind = "batch norm folded, eps " + std::to_string(bn->options.eps());
  // (an undefined conv bias stands for zeros: the bn's running mean is its stand-in as a source)
  const auto& conv_bias = layer->bias.defined() ? layer->bias : bn->running_mean;
  const auto sources = {layer->weight, conv_bias, bn->weight, bn->bias, bn->running_mean, bn->running_var};
  const auto scale = [&] { return bn->weight / torch::sqrt(bn->running_var + bn->options.eps()); };
  auto w = derived_weight(kind + " weight", sources, [&] {
    const auto& weight = layer->weight;
    return (weight * scale().view({-1, 1, 1, 1})).contiguous(weight.suggest_memory_format());
  });
  auto b = derived_weight(kind + " bias", sources, [&] {
    const auto shift = layer->bias.defined() ? layer->bias - bn->running_mean : -bn->running_mean;
    return bn->bias + shift * scale();
  });
  return {std::move(w), std::move(b)};
}
}  // namespace

torch::Tensor conv(torch::nn::Conv2d layer, const torch::Tensor& x) { return conv(layer, x, false); }
torch::Tensor conv_relu(torch::nn::Conv2d layer, const torch::Tensor& x) { return conv(layer, x, true); }

torch::Tensor conv_bn(torch::nn::Conv2d layer, torch::nn::BatchNorm2d bn, const torch::Tensor& x, bool relu) {
  if (!folds(layer, bn, x)) {
    auto y = bn(conv(layer, x, false));
    return relu ? relu_in_place(y) : y;
  }
  const auto [w, b] = folded(layer, bn);
  const auto& o = layer->options;
  const auto g = geometry_of(o);
  return conv_with(o, w, b, x, relu, nullptr,
                   [&] { return torch::conv2d(x, w, b, o.stride(), {g.padding_h, g.padding_w}, o.dilation(), o.groups()); });
}

torch::Tensor conv_relu_pool(torch::nn::Conv2d layer, const torch::Tensor& x, const MaxPool& pool) {
  bool later = false;
  auto y = torch::max_pool2d(conv(layer, x, true, &later), pool.kernel, pool.stride, pool.padding, 1, pool.ceil_mode);
  return later ? relu_in_place(y) : y;
}

namespace {
// A stride-s transposed convolution's in x out x (m*s) x (m*s) weight as in x out x m x s x m x s (tap a*s + r), the
// m axes flipped: the taps of its s*s phases' stride-1 m x m convolution (transposed_as_subpixel_conv).
torch::Tensor flipped_taps(const torch::Tensor& weight, int64_t s) {
  const int64_t m = weight.size(2) / s, in = weight.size(0), out = weight.size(1);
  // A channels-last weight (the net's layout) made contiguous first: LibTorch copies that far faster than it gathers
  // the permuted taps from channels-last strides (U-Net's 1024 -> 512 up-convolution in bf16: 8.2 ms of copying a
  // call before, 1.1 + 4.2 ms after; AMX Xeon, 2 threads). A contiguous weight is not copied; with m > 1 the flip
  // below copies anyway.
  auto taps = (m == 1 ? weight.contiguous() : weight).view({in, out, m, s, m, s});
  // flip() always copies: with U-Net's 2x2 stride-2 kernels (m = 1) there is nothing to flip.
  return m > 1 ? taps.flip({2, 4}) : taps;
}

// Those taps as the (out*s*s) x in x m x m weight of that convolution, channels (out, ry, rx) as pixel_shuffle reads
// them, in the activations' layout.
torch::Tensor subpixel_weight(const torch::Tensor& weight, int64_t s, bool channels_last) {
  const int64_t m = weight.size(2) / s, in = weight.size(0), out = weight.size(1);
  auto k = flipped_taps(weight, s).permute({1, 3, 5, 0, 2, 4}).reshape({out * s * s, in, m, m});  // out, ry, rx, in, u, v
  return channels_last ? k.contiguous(torch::MemoryFormat::ChannelsLast) : k;
}

// The same taps as phase_gemm_transposed_conv2d's (m*m*in) x (s*s*out) matrix: rows (u, v, in), columns (ry, rx, out).
torch::Tensor subpixel_phase_weights(const torch::Tensor& weight, int64_t s) {
  const int64_t m = weight.size(2) / s, in = weight.size(0), out = weight.size(1);
  return flipped_taps(weight, s).permute({2, 4, 0, 3, 5, 1}).reshape({m * m * in, s * s * out}).contiguous();  // u, v, in, ry, rx, out
}

// Inference where the fast path runs fcn's kernels, in float32 on the CPU: fcn's phase sgemm runs the upsampler.
bool phase_gemm_runs(const torch::Tensor& x, const torch::Tensor& weight) {
  return fcn_kernels_serve(false) && x.is_cpu() && x.scalar_type() == torch::kFloat && weight.scalar_type() == torch::kFloat;
}

// Its weight matrix, made once per weight version (derived_weights.h).
torch::Tensor phase_matrix(const torch::Tensor& weight, int64_t s) {
  return derived_weight("subpixel " + std::to_string(s) + " phase matrix", {weight}, [&] { return subpixel_phase_weights(weight, s); });
}
}  // namespace

torch::Tensor transposed_as_subpixel_conv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                          int64_t stride, int64_t padding) {
  // Output pixel (q*s + r) of a stride-s transposed convolution with a k = m*s kernel receives
  // input q - a through kernel tap a*s + r, a in [0, m). So each of the s*s phases r is an m x m
  // correlation of the input padded by m - 1, with the taps flipped: one convolution with
  // C_out*s*s outputs, then pixel_shuffle interleaves the phases. In inference where the fast path runs fcn's kernels,
  // fcn's phase sgemm writes the phases to their pixels itself (gemm_conv.h), its weight matrix made once per weight
  // version (derived_weights.h); elsewhere the rearranged weights are made on every call (differentiable in training).
  const int64_t s = stride, m = weight.size(2) / s;
  if (phase_gemm_runs(x, weight)) return phase_gemm_transposed_conv2d(x, phase_matrix(weight, s), bias, s, m, padding);
  const bool channels_last = x.suggest_memory_format() == torch::MemoryFormat::ChannelsLast;
  const auto k = subpixel_weight(weight, s, channels_last);
  const auto b = bias.defined() ? bias.repeat_interleave(s * s) : torch::Tensor();
  const ConvGeometry g{1, 1, m - 1, m - 1};
  const auto phases = direct_conv(g, 1, x, k, b, [&] { return torch::conv2d(x, k, b, 1, m - 1); });
  return without_border(torch::pixel_shuffle(phases, s), padding);
}

namespace {
// The FCN/U-Net upsamplers' shape: a square kernel a multiple of the stride, the same padding on both axes, one group,
// no dilation or output padding (transposed_as_subpixel_conv's identity holds).
bool subpixel_shape(const torch::nn::detail::ConvNdOptions<2>& o) {
  const auto pad = explicit_padding(o);
  return o.stride()->at(0) == o.stride()->at(1) && o.kernel_size()->at(0) == o.kernel_size()->at(1) &&
         o.kernel_size()->at(0) % o.stride()->at(0) == 0 && pad->at(0) == pad->at(1) && o.groups() == 1 &&
         o.dilation()->at(0) == 1 && o.dilation()->at(1) == 1 && o.output_padding()->at(0) == 0 && o.output_padding()->at(1) == 0;
}

void count_transposed_flops(const torch::Tensor& x, const torch::Tensor& w) {
  if (active_counter != nullptr)  // each input pixel scatters a kernel: in x out/groups x kh x kw
    count_flops(2.0 * static_cast<double>(x.numel()) * static_cast<double>(w.numel() / w.size(0)));
}
}  // namespace

torch::Tensor conv(torch::nn::ConvTranspose2d layer, const torch::Tensor& x) {
  // LibTorch 1.13 runs transposed convolutions on the CPU through a slow im2col path (and not at
  // all in bf16): 20% of FCN-8s inference at 500^2. The FCN/U-Net upsamplers (kernel a multiple of
  // the stride, square, ungrouped) are the same arithmetic as a stride-1 convolution followed by
  // pixel_shuffle, which runs on oneDNN; the stored weights are the ConvTranspose2d's, rearranged
  // on the fly (differentiable, so training updates the same parameters).
  const auto& o = layer->options;
  const auto& w = layer->weight;
  const int64_t s = o.stride()->at(0), padding = explicit_padding(o)->at(0);
  const bool subpixel = x.is_cpu() && upsampling == UpsamplingPath::kSubpixel && subpixel_shape(o);
  torch::Tensor y;
  if (subpixel && use_nonoverlapping(o, x, w)) {
    y = without_border(nonoverlapping_transposed_conv2d(x, w, layer->bias, s), padding);
  } else {
    y = subpixel ? transposed_as_subpixel_conv(x, w, layer->bias, s, padding) : layer->forward(x);
  }
  count_transposed_flops(x, w);
  return y;
}

torch::Tensor conv_add(torch::nn::ConvTranspose2d layer, const torch::Tensor& x, torch::Tensor sum) {
  const auto& o = layer->options;
  const auto& w = layer->weight;
  const int64_t s = o.stride()->at(0), m = o.kernel_size()->at(0) / std::max<int64_t>(1, s), padding = explicit_padding(o)->at(0);
  const bool in_place = x.is_cpu() && x.dim() == 4 && upsampling == UpsamplingPath::kSubpixel && subpixel_shape(o) && m > 1 &&
                        phase_gemm_runs(x, w) && sum.is_cpu() && sum.scalar_type() == torch::kFloat && !sum.requires_grad() &&
                        sum.sizes() == torch::IntArrayRef{x.size(0), w.size(1), (x.size(2) + m - 1) * s - 2 * padding,
                                                          (x.size(3) + m - 1) * s - 2 * padding} &&
                        strictly_channels_last(sum);
  if (!in_place) return sum + conv(layer, x);
  phase_gemm_transposed_conv2d(x, phase_matrix(w, s), layer->bias, s, m, padding, sum);
  count_transposed_flops(x, w);
  return sum;
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
}

torch::ExpandingArray<2> explicit_padding(const torch::nn::detail::ConvNdOptions<2>& options) {
  const auto* pad = padding_if_explicit(options);
  if (pad == nullptr) throw Error("fcn layers take an explicit conv padding, not 'valid' or 'same'");
  return *pad;
}

torch::Tensor linear(torch::nn::Linear layer, const torch::Tensor& x) {
  auto y = layer->forward(x);
  count_flops(2.0 * static_cast<double>(y.numel()) * static_cast<double>(layer->weight.size(1)));
  return y;
}

torch::Tensor crop(const torch::Tensor& x, int64_t top, int64_t left, int64_t height, int64_t width) {
  TORCH_CHECK(top >= 0 && left >= 0 && top + height <= x.size(2) && left + width <= x.size(3),
              "crop window [", top, ":", top + height, ", ", left, ":", left + width,
              "] leaves a map of ", x.size(2), "x", x.size(3));
  return x.slice(2, top, top + height).slice(3, left, left + width);
}

torch::Tensor center_crop(const torch::Tensor& x, int64_t height, int64_t width) {
  return crop(x, (x.size(2) - height) / 2, (x.size(3) - width) / 2, height, width);
}

torch::Tensor pad_to_multiple(const torch::Tensor& x, int64_t multiple) {
  const int64_t pad_h = (multiple - x.size(2) % multiple) % multiple;
  const int64_t pad_w = (multiple - x.size(3) % multiple) % multiple;
  if (pad_h == 0 && pad_w == 0) return x;
  return torch::constant_pad_nd(x, {0, pad_w, 0, pad_h}, 0.0);
}

void check_input(const torch::Tensor& x, int64_t channels, const char* net) {
  if (!x.defined() || x.dim() != 4)
    fail(net, "input must be N x C x H x W, got " + (x.defined() ? std::to_string(x.dim()) : std::string("no")) +
                  " dimensions");
  if (x.size(1) != channels)
    fail(net, "input has " + std::to_string(x.size(1)) + " channels, the net expects " + std::to_string(channels));
  if (!x.is_floating_point()) fail(net, "input must be floating point, got " + std::string(c10::toString(x.scalar_type())));
  if (x.size(0) == 0 || x.size(2) == 0 || x.size(3) == 0) fail(net, "input is empty (a zero dimension)");
}

void copy_state(torch::nn::Module& to, const torch::nn::Module& from) {
  torch::NoGradGuard no_grad;
  const auto parameters = from.named_parameters();
  for (auto& item : to.named_parameters()) item.value().copy_(parameters[item.key()]);
  const auto buffers = from.named_buffers();
  for (auto& item : to.named_buffers()) item.value().copy_(buffers[item.key()]);
}

}  // namespace fcn
