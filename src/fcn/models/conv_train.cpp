#include "fcn/models/conv_train.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#ifdef FCN_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#include <torch/csrc/autograd/custom_function.h>

#include "fcn/models/onednn_memory.h"
#endif

#include "fcn/util/error.h"

namespace fcn {

bool onednn_beats_libtorch_1x1(const torch::Tensor& x, const torch::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding) {
  if (!at::hasMKLDNN() || !at::globalContext().userEnabledMkldnn() || !x.is_cpu() || x.dim() != 4 || weight.dim() != 4 ||
      x.scalar_type() != torch::kFloat || weight.scalar_type() != torch::kFloat)
    return false;
  const bool one_by_one = weight.size(2) == 1 && weight.size(3) == 1 && x.size(1) == weight.size(1);
  const bool plain = stride.size() == 2 && stride[0] == 1 && stride[1] == 1 && padding.size() == 2 && padding[0] == 0 && padding[1] == 0;
  return one_by_one && plain && x.size(0) > 0 && x.size(0) < 16 && x.numel() / x.size(0) > 20480 && at::get_num_threads() == 1;
}

#ifdef FCN_WITH_ONEDNN
namespace {

// The bottom (or right) zero padding that makes oneDNN's output size LibTorch's: negative where the
// stride leaves the last input rows unread.
int64_t padding_after(int64_t in, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation) {
  const int64_t out = (in + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1;
  return (out - 1) * stride + dilation * (kernel - 1) + 1 - in - padding;
}

}  // namespace
#endif

bool channels_last_trainer_serves(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                  at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
#ifndef FCN_WITH_ONEDNN
  (void)x, (void)weight, (void)bias, (void)stride, (void)padding, (void)dilation, (void)groups;
  return false;
#else
  if (!x.defined() || !weight.defined() || !x.is_cpu() || x.dim() != 4 || weight.dim() != 4 || x.numel() == 0 ||
      x.scalar_type() != at::kFloat || weight.scalar_type() != at::kFloat || groups != 1 || weight.size(1) != x.size(1) ||
      x.suggest_memory_format() != at::MemoryFormat::ChannelsLast)
    return false;
  if (bias.defined() && (bias.scalar_type() != at::kFloat || bias.dim() != 1 || bias.size(0) != weight.size(0))) return false;
  if (stride.size() != 2 || padding.size() != 2 || dilation.size() != 2) return false;
  for (size_t i = 0; i < 2; ++i) {
    const int64_t in = x.size(2 + i), span = dilation[i] * (weight.size(2 + i) - 1) + 1;
    if (stride[i] < 1 || dilation[i] < 1 || padding[i] < 0 || in + 2 * padding[i] < span ||
        padding_after(in, weight.size(2 + i), stride[i], padding[i], dilation[i]) < 0)
      return false;
  }
  return torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
#endif
}

#ifdef FCN_WITH_ONEDNN
namespace onednn {
namespace {

// stride, padding, dilation: two values each (height, width).
struct Geometry {
  std::vector<int64_t> stride, padding, dilation;
};

// oneDNN's backward-weights convolution for one shape, ready to run: its primitive and, where
// oneDNN keeps the gradient in a blocked layout of its own, the reorder into the weight's.
struct WeightGradPlan {
  dnnl::convolution_backward_weights::primitive_desc pd;
  dnnl::convolution_backward_weights primitive;
  Desc plain;                 // the weight's layout: OHWI (channels-last) or OIHW
  Desc blocked;               // pd's diff-weights layout
  dnnl::reorder to_plain;     // blocked -> plain; unused when they are the same
  bool reorders = false;
};

WeightGradPlan plan_for(const Dims& src, const Dims& dst, const Dims& dims, const Geometry& g, bool bias, bool nhwc) {
  const Dims strides{g.stride[0], g.stride[1]}, dilates{g.dilation[0] - 1, g.dilation[1] - 1}, before{g.padding[0], g.padding[1]},
      after{padding_after(src[2], dims[2], g.stride[0], g.padding[0], g.dilation[0]),
            padding_after(src[3], dims[3], g.stride[1], g.padding[1], g.dilation[1])};
  const Desc src_d(src, kF32, Tag::nhwc), dst_d(dst, kF32, Tag::nhwc), any(dims, kF32, Tag::any),
      bias_d = bias ? Desc({dims[0]}, kF32, Tag::x) : Desc();
  const dnnl::convolution_forward::primitive_desc hint(
      {dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src_d, any, bias_d, dst_d, strides, dilates, before, after},
      engine());
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // scratch from the ATen allocator; plans shared by threads
  WeightGradPlan plan{{{dnnl::algorithm::convolution_direct, src_d, any, bias_d, dst_d, strides, dilates, before, after}, attr, engine(), hint},
                      {}, Desc(dims, kF32, nhwc ? Tag::ohwi : Tag::oihw), {}, {}};
  plan.primitive = dnnl::convolution_backward_weights(plan.pd);
  plan.blocked = plan.pd.diff_weights_desc();
  plan.reorders = plan.blocked != plan.plain;
  if (plan.reorders) plan.to_plain = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), plan.blocked, engine(), plan.plain));
  return plan;
}

// Plans by shape, geometry and thread count (oneDNN sizes its work split when it makes one), made
// once rather than at every step: a training run has a few dozen shapes; the cache starts over past 1024.
std::shared_ptr<const WeightGradPlan> cached_plan(const Dims& src, const Dims& dst, const Dims& dims, const Geometry& g, bool bias,
                                                  bool nhwc) {
  static std::mutex mutex;
  static std::map<std::vector<int64_t>, std::shared_ptr<const WeightGradPlan>> plans;
  std::vector<int64_t> key{bias, nhwc, at::get_num_threads()};
  for (const auto* part : {&src, &dst, &dims, &g.stride, &g.padding, &g.dilation}) key.insert(key.end(), part->begin(), part->end());
  std::lock_guard<std::mutex> lock(mutex);
  const auto found = plans.find(key);
  if (found != plans.end()) return found->second;
  if (plans.size() >= 1024) plans.clear();
  return plans[key] = std::make_shared<const WeightGradPlan>(plan_for(src, dst, dims, g, bias, nhwc));
}

// The weight gradient (in the weight's layout) and the bias gradient (if `bias`) of the convolution
// of x by a weight shaped like `weight`, given the output gradient dy; x and dy channels-last.
std::pair<at::Tensor, at::Tensor> weight_grads(const at::Tensor& x, const at::Tensor& dy, const at::Tensor& weight, bool bias,
                                               const Geometry& g) {
  RECORD_FUNCTION("fcn::conv_weight_grad", std::vector<c10::IValue>());  // a row of its own in operator profiles
  const Dims src{x.size(0), x.size(1), x.size(2), x.size(3)}, dst{dy.size(0), dy.size(1), dy.size(2), dy.size(3)},
      dims{weight.size(0), weight.size(1), weight.size(2), weight.size(3)};
  const bool nhwc = weight.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
  const auto plan = cached_plan(src, dst, dims, g, bias, nhwc);
  auto dw = at::empty({dims[0], dims[1], dims[2], dims[3]},
                      weight.options().memory_format(nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
  dnnl::memory result(plan->plain, engine(), dw.data_ptr());
  const auto blocked_bytes = plan->reorders ? bytes_for(plan->blocked) : at::Tensor();
  const auto scratch = bytes_for(plan->pd.scratchpad_desc());
  auto diff_weights = plan->reorders ? dnnl::memory(plan->blocked, engine(), blocked_bytes.data_ptr()) : result;
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory({src, kF32, Tag::nhwc}, engine(), x.data_ptr())},
                                             {DNNL_ARG_DIFF_DST, dnnl::memory({dst, kF32, Tag::nhwc}, engine(), dy.data_ptr())},
                                             {DNNL_ARG_DIFF_WEIGHTS, diff_weights},
                                             {DNNL_ARG_SCRATCHPAD, dnnl::memory(plan->pd.scratchpad_desc(), engine(), scratch.data_ptr())}};
  at::Tensor db;
  if (bias) {
    db = at::empty({dims[0]}, weight.options().memory_format(at::MemoryFormat::Contiguous));
    args.emplace(DNNL_ARG_DIFF_BIAS, dnnl::memory({{dims[0]}, kF32, Tag::x}, engine(), db.data_ptr()));
  }
  dnnl::stream stream(engine());
  plan->primitive.execute(stream, args);
  if (plan->reorders) plan->to_plain.execute(stream, diff_weights, result);
  stream.wait();
  return {dw, db};
}

// LibTorch's forward pass and input gradient; the weight and bias gradients by weight_grads.
class ChannelsLastConv : public torch::autograd::Function<ChannelsLastConv> {
 public:
  // LibTorch 1.13's custom functions take no undefined inputs: an empty bias stands for none.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, const std::vector<int64_t>& geometry) {
    ctx->save_for_backward({x, weight});
    ctx->saved_data["geometry"] = geometry;
    ctx->saved_data["bias"] = bias.numel() > 0;
    const auto g = unpack(geometry);
    if (onednn_beats_libtorch_1x1(x, weight, g.stride, g.padding))
      return at::mkldnn_convolution(x, weight, bias.numel() > 0 ? bias : at::Tensor(), g.padding, g.stride, g.dilation, 1);
    return at::convolution(x, weight, bias.numel() > 0 ? bias : at::Tensor(), g.stride, g.padding, g.dilation, false, {0, 0}, 1);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    if (torch::GradMode::is_enabled())
      fail("channels-last convolution", "has no double backward (create_graph): train with set_training_conv_algorithm(kDirect)");
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1];
    const auto g = unpack(ctx->saved_data["geometry"].toIntVector());
    const bool bias = ctx->saved_data["bias"].toBool();
    const auto dy = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor dx, dw, db;
    const auto transposed = weight.transpose(0, 1);  // C x K: a 1x1 stride-1 conv's input gradient is dy's conv by it
    if (ctx->needs_input_grad(0) && onednn_beats_libtorch_1x1(dy, transposed, g.stride, g.padding))
      dx = at::mkldnn_convolution(dy, transposed.contiguous(at::MemoryFormat::ChannelsLast), at::Tensor(), {0, 0}, {1, 1}, {1, 1}, 1);
    else if (ctx->needs_input_grad(0))
      dx = std::get<0>(at::convolution_backward(dy, x, weight, c10::nullopt, g.stride, g.padding, g.dilation, false, {0, 0}, 1,
                                                {true, false, false}));
    if (ctx->needs_input_grad(1) || (bias && ctx->needs_input_grad(2))) {
      try {
        std::tie(dw, db) = weight_grads(x.contiguous(at::MemoryFormat::ChannelsLast), dy, weight, bias, g);
      } catch (const dnnl::error& e) {
        fail("channels-last convolution", std::string("oneDNN (weight gradient): ") + e.what());
      }
    }
    return {dx, ctx->needs_input_grad(1) ? dw : at::Tensor(), db, at::Tensor()};
  }

 private:
  static Geometry unpack(const std::vector<int64_t>& v) { return {{v[0], v[1]}, {v[2], v[3]}, {v[4], v[5]}}; }
};

}  // namespace
}  // namespace onednn

torch::Tensor channels_last_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                   at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  if (!channels_last_trainer_serves(x, weight, bias, stride, padding, dilation, 1))
    fail("channels-last convolution",
         "needs a float32 CPU channels-last N x C x H x W input, one group, a window inside the padded input and a gradient to compute");
  std::vector<int64_t> geometry{stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1]};
  return onednn::ChannelsLastConv::apply(x, weight, bias.defined() ? bias : at::empty({0}, weight.options()), std::move(geometry));
}

#else  // built without oneDNN: LibTorch's convolution serves every layer

torch::Tensor channels_last_conv2d(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, at::IntArrayRef,
                                   at::IntArrayRef, at::IntArrayRef) {
  fail("channels-last convolution", "fcn was built without oneDNN (libdnnl-dev)");
}

#endif

}  // namespace fcn
