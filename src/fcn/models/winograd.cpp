#include "fcn/models/winograd.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#ifdef FCN_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#include <torch/csrc/autograd/custom_function.h>

#include "fcn/models/onednn_memory.h"
#endif

#include "fcn/models/winograd_tiles.h"
#include "fcn/util/error.h"
#include "fcn/util/layout.h"

namespace fcn {
namespace {
std::atomic<ConvAlgorithm> algorithm{ConvAlgorithm::kDirect}, training_algorithm{ConvAlgorithm::kDirect};
}  // namespace

bool winograd_trains_well(const torch::Tensor& x, int64_t padding) {
  if (training_conv_algorithm() == ConvAlgorithm::kWinogradOneDnn) return true;
  return x.dim() == 4 && x.size(2) + 2 * padding - 2 >= kFcnTrainingMinSide && x.size(3) + 2 * padding - 2 >= kFcnTrainingMinSide;
}

int64_t winograd_inference_min_tiles(const CpuInfo& cpu) { return cpu.has("avx512f") ? 64 : 16; }

namespace {
bool infers_well(int64_t batch, int64_t height, int64_t width, int64_t padding) {
  static const int64_t min_tiles = winograd_inference_min_tiles();
  const int64_t rows = height + 2 * padding - 2, cols = width + 2 * padding - 2;
  const int64_t tiles = batch * ((rows + 3) / 4) * ((cols + 3) / 4);
  return rows >= kFcnInferenceMinSide && cols >= kFcnInferenceMinSide && tiles >= min_tiles;
}
}  // namespace

bool winograd_infers_well(const torch::Tensor& x, int64_t padding) {
  return x.dim() == 4 && infers_well(x.size(0), x.size(2), x.size(3), padding);
}

void set_conv_algorithm(ConvAlgorithm a) { algorithm = a; }
ConvAlgorithm conv_algorithm() { return algorithm; }
void set_training_conv_algorithm(ConvAlgorithm a) {
  if (a == ConvAlgorithm::kWinogradOneDnn && !winograd_onednn_trains())
    fail("winograd convolution", "oneDNN has no Winograd training kernels on this CPU (it needs AVX-512): use winograd or direct");
  training_algorithm = a;
}
ConvAlgorithm training_conv_algorithm() { return training_algorithm; }

TrainingConvScope::TrainingConvScope(ConvAlgorithm algorithm) : before_(training_conv_algorithm()) {
  set_training_conv_algorithm(winograd_supported() ? algorithm : ConvAlgorithm::kDirect);
}
TrainingConvScope::~TrainingConvScope() { training_algorithm = before_; }
InferenceConvScope::InferenceConvScope(ConvAlgorithm a) : before_(conv_algorithm()) {
  set_conv_algorithm(winograd_supported() ? a : ConvAlgorithm::kDirect);
}
InferenceConvScope::~InferenceConvScope() { algorithm = before_; }

const char* conv_algorithm_name(ConvAlgorithm a) {
  switch (a) {
    case ConvAlgorithm::kWinograd: return "winograd";
    case ConvAlgorithm::kWinogradOneDnn: return "winograd_onednn";
    default: return "direct";
  }
}

ConvAlgorithm parse_conv_algorithm(const std::string& name, const std::string& what) {
  if (name == "direct") return ConvAlgorithm::kDirect;
  if (name == "winograd") return ConvAlgorithm::kWinograd;
  if (name == "winograd_onednn" || name == "winograd-onednn") return ConvAlgorithm::kWinogradOneDnn;
  fail(what, "'" + name + "' is not one of direct, winograd, winograd-onednn");
}

bool winograd_eligible(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t dilation,
                       int64_t groups, int64_t padding_h, int64_t padding_w) {
  if (!x.defined() || !x.is_cpu() || x.dim() != 4 || x.scalar_type() != torch::kFloat || weight.dim() != 4 ||
      weight.scalar_type() != torch::kFloat)
    return false;
  const int64_t out = weight.size(0), in = weight.size(1);
  return weight.size(2) == 3 && weight.size(3) == 3 && stride == 1 && dilation == 1 && groups == 1 &&
         padding_h == padding_w && (padding_h == 0 || padding_h == 1) && out % 16 == 0 && in % 16 == 0 &&
         std::min(out, in) >= 64 && x.size(1) == in && x.size(2) + 2 * padding_h >= 3 && x.size(3) + 2 * padding_w >= 3;
}

namespace {
// The phases' batch of a dilated conv's input: sides rounded up to a multiple of d (zeros past the input, which the
// conv's zero padding reads there anyway), phase (p, q) = x[:, :, p::d, q::d] as images p*d+q of every batch
// element: [d*d*N, C, ceil(H/d), ceil(W/d)], channels-last (Winograd's fastest input).
torch::Tensor phases_of(const torch::Tensor& x, int64_t d) {
  const int64_t n = x.size(0), c = x.size(1), h = (x.size(2) + d - 1) / d, w = (x.size(3) + d - 1) / d;
  auto padded = x;
  if (h * d != x.size(2) || w * d != x.size(3)) padded = torch::constant_pad_nd(x, {0, w * d - x.size(3), 0, h * d - x.size(2)}, 0.0);
  auto phases = at::empty({d, d, n, h, w, c}, x.options());
  // padded as N x h x d x w x d x C (an NHWC view of any layout), permuted to the phases' order
  phases.copy_(padded.permute({0, 2, 3, 1}).reshape({n, h, d, w, d, c}).permute({2, 4, 0, 1, 3, 5}));
  return phases.view({d * d * n, h, w, c}).permute({0, 3, 1, 2});
}

// The inverse: the phase convs' outputs [d*d*N, K, h, w] back to one N x K x H x W map in `layout`.
torch::Tensor from_phases(const torch::Tensor& y, int64_t d, int64_t n, int64_t height, int64_t width, at::MemoryFormat layout) {
  const int64_t k = y.size(1), h = y.size(2), w = y.size(3);
  auto nhwc = y.permute({0, 2, 3, 1}).reshape({d, d, n, h, w, k}).permute({2, 3, 0, 4, 1, 5});  // N, h, d, w, d, K
  if (h * d == height && w * d == width && layout == at::MemoryFormat::ChannelsLast)
    return nhwc.contiguous().view({n, height, width, k}).permute({0, 3, 1, 2});
  const auto full = nhwc.reshape({n, h * d, w * d, k}).permute({0, 3, 1, 2});
  return full.narrow(2, 0, height).narrow(3, 0, width).contiguous(layout);
}
}  // namespace

bool dilated_winograd_serves(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t dilation,
                             int64_t groups, int64_t padding_h, int64_t padding_w) {
  if (dilation < 2 || padding_h != dilation || padding_w != dilation || !winograd_eligible(x, weight, stride, 1, groups, 1, 1))
    return false;
  const int64_t d = dilation, rows = (x.size(2) + d - 1) / d, cols = (x.size(3) + d - 1) / d;  // the phases' outputs
  return rows >= kDilatedPhaseMinSide && cols >= kDilatedPhaseMinSide &&
         d * d * x.size(0) * ((rows + 3) / 4) * ((cols + 3) / 4) >= kDilatedPhaseMinTiles;
}

torch::Tensor dilated_winograd_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                      int64_t dilation, bool relu) {
  if (dilation < 2 || !winograd_eligible(x, weight, 1, 1, 1, 1, 1))
    fail("winograd convolution", "a dilated conv by phases needs dilation >= 2, a float32 CPU N x C x H x W input and a 3x3 "
                                 "weight with channels in multiples of 16");
  const auto y = winograd_conv2d(phases_of(x, dilation), weight, bias, 1, relu);
  return from_phases(y, dilation, x.size(0), x.size(2), x.size(3), x.suggest_memory_format());
}

#ifdef FCN_WITH_ONEDNN
namespace {

using onednn::bytes_for;
using onednn::Desc;
using onednn::Dims;
using onednn::engine;
using onednn::kF32;
using onednn::Tag;

// The shapes of one convolution, as oneDNN names them.
struct Shape {
  Dims src, weights, dst;
  bool bias = false;
  int64_t padding = 0;
};

Shape shape_of(const at::Tensor& x, const at::Tensor& weight, bool bias, int64_t padding) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), o = weight.size(0);
  return {{n, c, h, w}, {o, c, 3, 3}, {n, o, h + 2 * padding - 2, w + 2 * padding - 2}, bias, padding};
}

Desc bias_desc(const Shape& s) { return s.bias ? Desc({s.weights[0]}, kF32, Tag::x) : Desc(); }

dnnl::convolution_forward::desc forward_op(const Shape& s, dnnl::prop_kind kind) {
  return {kind, dnnl::algorithm::convolution_winograd, Desc(s.src, kF32, Tag::any), Desc(s.weights, kF32, Tag::any),
          bias_desc(s), Desc(s.dst, kF32, Tag::any), {1, 1}, {s.padding, s.padding}, {s.padding, s.padding}};
}

dnnl::convolution_forward::primitive_desc winograd_desc(const Shape& s, dnnl::prop_kind kind) {
  return {forward_op(s, kind), engine()};
}

// Training: the forward pass and both backward passes (oneDNN transforms the weights itself).
struct TrainingDescs {
  dnnl::convolution_forward::primitive_desc forward;
  dnnl::convolution_backward_data::primitive_desc data;
  dnnl::convolution_backward_weights::primitive_desc weights;
};

TrainingDescs training_descs(const Shape& s) {
  const auto forward = winograd_desc(s, dnnl::prop_kind::forward_training);
  const auto alg = dnnl::algorithm::convolution_winograd;
  const Desc src(s.src, kF32, Tag::any), weights(s.weights, kF32, Tag::any), dst(s.dst, kF32, Tag::any);
  const Dims one{1, 1}, pad{s.padding, s.padding};
  return {forward, {{alg, src, weights, dst, one, pad, pad}, engine(), forward},
          {{alg, src, weights, bias_desc(s), dst, one, pad, pad}, engine(), forward}};
}

// `t` (dims, NCHW / OIHW or channels-last) reordered into oneDNN's layout `want`, held by `hold`.
dnnl::memory blocked_copy(const at::Tensor& t, const Dims& dims, const Desc& want, at::Tensor& hold, dnnl::stream& stream) {
  const bool nhwc = strictly_channels_last(t);
  const auto plain = nhwc ? t : t.contiguous();  // oneDNN reads NCHW and NHWC directly, else NCHW first
  dnnl::memory user({dims, kF32, nhwc ? Tag::nhwc : Tag::nchw}, engine(), plain.data_ptr());
  hold = bytes_for(want);
  dnnl::memory blocked(want, engine(), hold.data_ptr());
  dnnl::reorder(user, blocked).execute(stream, user, blocked);
  stream.wait();
  return blocked;
}

// A new tensor of `dims` in the layout of `like` (channels-last or contiguous) holding `from`.
// (Weights: OIHW reads as NCHW and OHWI as NHWC, the same order of dimensions in memory.)
at::Tensor plain_copy(dnnl::memory from, const Dims& dims, const at::Tensor& like, dnnl::stream& stream) {
  const bool nhwc = strictly_channels_last(like);
  auto y = at::empty(at::IntArrayRef(dims.data(), dims.size()),
                     like.options().memory_format(nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
  dnnl::memory user({dims, kF32, nhwc ? Tag::nhwc : Tag::nchw}, engine(), y.data_ptr());
  dnnl::reorder(from, user).execute(stream, from, user);
  stream.wait();
  return y;
}

// One forward pass of `pd` on x with the weights oneDNN wants already in `weights`.
at::Tensor run_forward(const dnnl::convolution_forward::primitive_desc& pd, const Shape& s, const at::Tensor& x,
                       const dnnl::memory& weights, const at::Tensor& bias, dnnl::stream& stream) {
  at::Tensor src_bytes, b;
  const auto dst_bytes = bytes_for(pd.dst_desc());
  dnnl::memory dst(pd.dst_desc(), engine(), dst_bytes.data_ptr());
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, blocked_copy(x, s.src, pd.src_desc(), src_bytes, stream)}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
  if (s.bias) {
    b = bias.to(at::kFloat).contiguous();
    args.emplace(DNNL_ARG_BIAS, dnnl::memory({{s.weights[0]}, kF32, Tag::x}, engine(), b.data_ptr()));
  }
  dnnl::convolution_forward(pd).execute(stream, args);
  stream.wait();
  args.clear();
  src_bytes = at::Tensor();  // freed before the output exists: the peak holds x, dst and y, not four maps
  return plain_copy(dst, s.dst, x, stream);
}

// What both trainers' backward passes read: x, the weights, the padding and whether there is a bias
// (an empty bias stands for none: LibTorch 1.13's custom functions take no undefined inputs).
bool save_conv(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
               int64_t padding) {
  const bool has_bias = bias.numel() > 0;
  ctx->save_for_backward({x, weight});
  ctx->saved_data["padding"] = padding;
  ctx->saved_data["bias"] = has_bias;
  return has_bias;
}

void refuse_double_backward() {
  if (torch::GradMode::is_enabled())
    fail("winograd convolution", "has no double backward (create_graph): train with set_training_conv_algorithm(kDirect)");
}

// Winograd with autograd: what grad mode records when an input needs a gradient (training).
class WinogradConv : public torch::autograd::Function<WinogradConv> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, int64_t padding) {
    const Shape s = shape_of(x, weight, save_conv(ctx, x, weight, bias, padding), padding);
    const auto pd = winograd_desc(s, dnnl::prop_kind::forward_training);
    dnnl::stream stream(engine());
    at::Tensor weight_bytes;
    const auto weights = blocked_copy(weight, s.weights, pd.weights_desc(), weight_bytes, stream);
    return run_forward(pd, s, x, weights, bias, stream);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    refuse_double_backward();
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1];
    const Shape s = shape_of(x, weight, ctx->saved_data["bias"].toBool(), ctx->saved_data["padding"].toInt());
    try {
      const auto pds = training_descs(s);
      dnnl::stream stream(engine());
      at::Tensor dx, dw, db, grad_bytes;
      const auto diff_dst = blocked_copy(grads[0], s.dst, pds.data.diff_dst_desc(), grad_bytes, stream);
      if (ctx->needs_input_grad(0)) dx = input_grad(pds.data, s, x, weight, diff_dst, stream);
      if (ctx->needs_input_grad(1) || (s.bias && ctx->needs_input_grad(2))) {
        at::Tensor again;  // the backward-weights pass may want the gradient in another layout
        const auto diff_dst_w = pds.weights.diff_dst_desc() == pds.data.diff_dst_desc()
                                    ? diff_dst
                                    : blocked_copy(grads[0], s.dst, pds.weights.diff_dst_desc(), again, stream);
        std::tie(dw, db) = weight_grads(pds.weights, s, x, weight, diff_dst_w, stream);
      }
      return {dx, dw, db, at::Tensor()};
    } catch (const dnnl::error& e) {
      fail("winograd convolution", std::string("oneDNN (backward): ") + e.what());
    }
  }

 private:
  static at::Tensor input_grad(const dnnl::convolution_backward_data::primitive_desc& pd, const Shape& s, const at::Tensor& x,
                               const at::Tensor& weight, const dnnl::memory& diff_dst, dnnl::stream& stream) {
    at::Tensor weight_bytes;
    const auto weights = blocked_copy(weight, s.weights, pd.weights_desc(), weight_bytes, stream);
    const auto dx_bytes = bytes_for(pd.diff_src_desc());
    dnnl::memory dx(pd.diff_src_desc(), engine(), dx_bytes.data_ptr());
    dnnl::convolution_backward_data(pd).execute(
        stream, {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DIFF_SRC, dx}});
    stream.wait();
    return plain_copy(dx, s.src, x, stream);
  }

  static std::pair<at::Tensor, at::Tensor> weight_grads(const dnnl::convolution_backward_weights::primitive_desc& pd,
                                                        const Shape& s, const at::Tensor& x, const at::Tensor& weight,
                                                        const dnnl::memory& diff_dst, dnnl::stream& stream) {
    at::Tensor src_bytes, db;
    const auto dw_bytes = bytes_for(pd.diff_weights_desc());
    dnnl::memory dw(pd.diff_weights_desc(), engine(), dw_bytes.data_ptr());
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, blocked_copy(x, s.src, pd.src_desc(), src_bytes, stream)},
                                               {DNNL_ARG_DIFF_DST, diff_dst},
                                               {DNNL_ARG_DIFF_WEIGHTS, dw}};
    if (s.bias) {
      db = at::empty({s.weights[0]}, weight.options().memory_format(at::MemoryFormat::Contiguous));
      args.emplace(DNNL_ARG_DIFF_BIAS, dnnl::memory({{s.weights[0]}, kF32, Tag::x}, engine(), db.data_ptr()));
    }
    dnnl::convolution_backward_weights(pd).execute(stream, args);
    stream.wait();
    return {plain_copy(dw, s.weights, weight, stream), db};
  }
};

// Winograd with autograd on fcn's own kernels (winograd_tiles.h), on every CPU: the forward pass;
// the input gradient, which is again a 3x3 convolution (of the output gradient with each kernel
// turned 180 degrees and in/out channels swapped, padding 2 - p); and the weight gradient, by the
// same tiles (winograd_tiles_weight_grad). The bias gradient is the output gradient's sum.
class TilesConv : public torch::autograd::Function<TilesConv> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, int64_t padding) {
    return winograd_tiles_conv2d(x, weight, save_conv(ctx, x, weight, bias, padding) ? bias : at::Tensor(), padding);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    refuse_double_backward();
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1];
    const int64_t padding = ctx->saved_data["padding"].toInt();
    const bool has_bias = ctx->saved_data["bias"].toBool();
    const auto dy = grads[0].contiguous(x.suggest_memory_format());  // so the input gradient has x's layout, as LibTorch's
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) dx = winograd_tiles_input_grad(dy, weight, padding);
    if (ctx->needs_input_grad(1))  // in the weight's own layout, as LibTorch's backward gives it
      dw = winograd_tiles_weight_grad(x, dy, padding, weight.suggest_memory_format() == at::MemoryFormat::ChannelsLast);
    if (has_bias && ctx->needs_input_grad(2)) db = dy.sum({0, 2, 3});
    return {dx, dw, db, at::Tensor()};
  }
};

// Whether oneDNN has its Winograd training kernels on this CPU (AVX-512 and up in oneDNN 2.6).
bool training_kernels() {
  try {
    training_descs({{1, 16, 8, 8}, {16, 16, 3, 3}, {1, 16, 8, 8}, true, 1});
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

}  // namespace

bool winograd_onednn_trains() {
  static const bool trains = training_kernels();
  return trains;
}

// Inference: fcn's own kernel (winograd_tiles.h); training: fcn's (TilesConv) or, with
// kWinogradOneDnn, oneDNN's (WinogradConv).
bool winograd_supported() { return true; }

torch::Tensor winograd_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              int64_t padding, bool relu) {
  if (!winograd_eligible(x, weight, 1, 1, 1, padding, padding))
    fail("winograd convolution", "needs a float32 CPU N x C x H x W input and a 3x3 weight with channels in multiples of 16");
  try {
    if (torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()))) {
      // LibTorch 1.13's custom functions take no undefined inputs: no bias is an empty one.
      const auto b = bias.defined() ? bias : at::empty({0}, weight.options());
      auto y = training_conv_algorithm() == ConvAlgorithm::kWinogradOneDnn ? WinogradConv::apply(x, weight, b, padding)
                                                                            : TilesConv::apply(x, weight, b, padding);
      return relu ? y.relu_() : y;
    }
    return winograd_tiles_conv2d(x, weight, bias, padding, relu);
  } catch (const dnnl::error& e) {
    fail("winograd convolution", std::string("oneDNN: ") + e.what());
  }
}

#else  // built without oneDNN: every layer runs direct

bool winograd_onednn_trains() { return false; }
bool winograd_supported() { return false; }

torch::Tensor winograd_conv2d(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, int64_t, bool) {
  fail("winograd convolution", "fcn was built without oneDNN (libdnnl-dev)");
}

#endif

}  // namespace fcn
