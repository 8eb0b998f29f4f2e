#include "fcn/train/fused_sgd.h"

#include <string>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/util/string_utils.h>
#include <torch/autograd.h>

namespace fcn {

namespace {

// The elementwise update, in SGD::step's order of operations (d = g + wd·w; b = m·b + (1 − damp)·d,
// or b = d on the first step; w = w − lr·b). ATen fuses some of these multiply-adds (one rounding)
// where this loop may not, so the two agree to a float's last bit, not bitwise.
struct Update {
  float weight_decay = 0, momentum = 0, keep = 1, negative_lr = 0;
  bool first = false;  // the momentum buffer is new: it takes the decayed gradient
};

// One thread's share, without branches in the loop so that the compiler vectorizes it.
template <bool kDecay, bool kMomentum, bool kFirst>
void update_range(float* __restrict weight, const float* __restrict grad, float* __restrict buffer, int64_t begin, int64_t end,
                  const Update u) {
  for (int64_t i = begin; i < end; ++i) {
    float d = kDecay ? grad[i] + u.weight_decay * weight[i] : grad[i];
    if (kMomentum) {
      d = kFirst ? d : buffer[i] * u.momentum + u.keep * d;
      buffer[i] = d;
    }
    weight[i] = weight[i] + u.negative_lr * d;
  }
}

template <bool kDecay>
void update_with(float* weight, const float* grad, float* buffer, int64_t n, const Update& u) {
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    if (buffer == nullptr) update_range<kDecay, false, false>(weight, grad, buffer, begin, end, u);
    else if (u.first) update_range<kDecay, true, true>(weight, grad, buffer, begin, end, u);
    else update_range<kDecay, true, false>(weight, grad, buffer, begin, end, u);
  });
}

void update(float* weight, const float* grad, float* buffer, int64_t n, const Update& u) {
  RECORD_FUNCTION("fcn::sgd_update", std::vector<c10::IValue>());
  if (u.weight_decay != 0) update_with<true>(weight, grad, buffer, n, u);
  else update_with<false>(weight, grad, buffer, n, u);
}

// Whether the one pass may treat `t` as `weight`'s flat memory: float on the CPU, dense, same strides.
bool same_flat_memory(const torch::Tensor& t, const torch::Tensor& weight) {
  return t.defined() && t.is_cpu() && t.scalar_type() == torch::kFloat && !t.is_sparse() && t.strides() == weight.strides() &&
         t.sizes() == weight.sizes();
}

std::string state_key(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

}  // namespace

bool FusedSGD::fusable() const {
  for (const auto& group : param_groups_) {
    if (static_cast<const torch::optim::SGDOptions&>(group.options()).nesterov()) return false;
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (!same_flat_memory(p, p) || !p.is_non_overlapping_and_dense() || !same_flat_memory(p.grad(), p)) return false;
      const auto found = state_.find(state_key(p));
      if (found != state_.end() &&
          !same_flat_memory(static_cast<const torch::optim::SGDParamState&>(*found->second).momentum_buffer(), p))
        return false;
    }
  }
  return true;
}

torch::Tensor FusedSGD::step(LossClosure closure) {
  torch::Tensor loss;
  if (closure != nullptr) {  // first, as SGD::step does: it computes the gradients
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  if (!fusable()) {
    SGD::step();
    return loss;
  }
  torch::NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::SGDOptions&>(group.options());
    Update u;
    u.weight_decay = static_cast<float>(options.weight_decay());
    u.momentum = static_cast<float>(options.momentum());
    u.keep = static_cast<float>(1 - options.dampening());
    u.negative_lr = static_cast<float>(-options.lr());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      torch::Tensor buffer;
      u.first = false;
      if (options.momentum() != 0) {
        const auto key = state_key(p);
        auto found = state_.find(key);
        if (found == state_.end()) {
          buffer = at::empty_like(p);
          auto state = std::make_unique<torch::optim::SGDParamState>();
          state->momentum_buffer(buffer);
          state_[key] = std::move(state);
          u.first = true;
        } else {
          buffer = static_cast<torch::optim::SGDParamState&>(*found->second).momentum_buffer();
        }
      }
      const auto grad = p.grad();
      update(p.data_ptr<float>(), grad.data_ptr<float>(), buffer.defined() ? buffer.data_ptr<float>() : nullptr, p.numel(), u);
    }
  }
  return loss;
}

void clear_gradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) p.mutable_grad().reset();
}

}  // namespace fcn
