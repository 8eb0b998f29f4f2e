#include "fcn/train/fused_optimizers.h"

#include <cmath>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/util/string_utils.h>
#include <torch/autograd.h>

namespace fcn {

namespace {

// The per-element updates follow LibTorch's order of operations. ATen fuses some multiply-adds (one
// rounding) where these loops may not, so the results agree to a float's last bits, not bitwise.
// Each loop is one thread's share, its variant chosen by template so the loop has no branch and
// the compiler vectorizes it (the file is built with -fno-math-errno for AdamW's sqrt).

// SGD: d = g + wd·w; b = m·b + (1 − dampening)·d, or b = d on the first step; w = w − lr·b.
struct SgdUpdate {
  float weight_decay = 0, momentum = 0, keep = 1, negative_lr = 0;
  bool first = false;  // the momentum buffer is new: it takes the decayed gradient
};

template <bool kDecay, bool kMomentum, bool kFirst>
void sgd_range(float* __restrict weight, const float* __restrict grad, float* __restrict buffer, int64_t begin, int64_t end,
               const SgdUpdate u) {
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
void sgd_update_with(float* weight, const float* grad, float* buffer, int64_t n, const SgdUpdate& u) {
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    if (buffer == nullptr) sgd_range<kDecay, false, false>(weight, grad, buffer, begin, end, u);
    else if (u.first) sgd_range<kDecay, true, true>(weight, grad, buffer, begin, end, u);
    else sgd_range<kDecay, true, false>(weight, grad, buffer, begin, end, u);
  });
}

void sgd_update(float* weight, const float* grad, float* buffer, int64_t n, const SgdUpdate& u) {
  RECORD_FUNCTION("fcn::sgd_update", std::vector<c10::IValue>());
  if (u.weight_decay != 0) sgd_update_with<true>(weight, grad, buffer, n, u);
  else sgd_update_with<false>(weight, grad, buffer, n, u);
}

// AdamW (decoupled weight decay): w = w·(1 − lr·wd); m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g·g
// (from zero on the first step); w = w − (lr / c1)·m / (√v / √c2 + ε), c = 1 − β^step.
struct AdamWUpdate {
  float decay = 1, beta1 = 0, keep1 = 1, beta2 = 0, keep2 = 1, root_c2 = 1, eps = 0, negative_step = 0;
  bool first = false;  // the moments are new (LibTorch starts them at zero)
};

template <bool kDecay, bool kFirst>
void adamw_range(float* __restrict weight, const float* __restrict grad, float* __restrict m, float* __restrict v, int64_t begin,
                 int64_t end, const AdamWUpdate u) {
  for (int64_t i = begin; i < end; ++i) {
    const float w = kDecay ? weight[i] * u.decay : weight[i];
    const float g = grad[i];
    const float mi = kFirst ? u.keep1 * g : m[i] * u.beta1 + u.keep1 * g;
    const float vi = kFirst ? u.keep2 * g * g : v[i] * u.beta2 + u.keep2 * g * g;
    m[i] = mi;
    v[i] = vi;
    weight[i] = w + u.negative_step * mi / (std::sqrt(vi) / u.root_c2 + u.eps);
  }
}

template <bool kDecay>
void adamw_update_with(float* weight, const float* grad, float* m, float* v, int64_t n, const AdamWUpdate& u) {
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    if (u.first) adamw_range<kDecay, true>(weight, grad, m, v, begin, end, u);
    else adamw_range<kDecay, false>(weight, grad, m, v, begin, end, u);
  });
}

void adamw_update(float* weight, const float* grad, float* m, float* v, int64_t n, const AdamWUpdate& u) {
  RECORD_FUNCTION("fcn::adamw_update", std::vector<c10::IValue>());
  if (u.decay != 1) adamw_update_with<true>(weight, grad, m, v, n, u);
  else adamw_update_with<false>(weight, grad, m, v, n, u);
}

// Whether the one pass may treat `t` as `weight`'s flat memory: float on the CPU, same sizes and strides.
bool same_flat_memory(const torch::Tensor& t, const torch::Tensor& weight) {
  return t.defined() && t.is_cpu() && t.scalar_type() == torch::kFloat && !t.is_sparse() && t.strides() == weight.strides() &&
         t.sizes() == weight.sizes();
}

std::string state_key(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

// A state tensor of p's sizes held in another memory layout than p — a checkpoint written while the
// weights were in another layout, or weights moved between NCHW and channels-last since — is put in
// p's layout, so that the one pass applies: the same values, in another order in memory.
void in_weight_layout(torch::Tensor& state, const torch::Tensor& p) {
  if (state.defined() && state.sizes() == p.sizes() && state.strides() != p.strides() && p.is_non_overlapping_and_dense() &&
      state.device() == p.device() && state.scalar_type() == p.scalar_type())
    state = at::empty_like(p).copy_(state);
}

using StateMap = ska::flat_hash_map<std::string, std::unique_ptr<torch::optim::OptimizerParamState>>;

// Whether the one pass applies to every parameter with a gradient: dense float on the CPU, its
// gradient and the state tensors `states_of` lists (none before its first step; undefined ones, as
// AdamW's max_exp_avg_sq without AMSGrad, skipped) in its memory layout — state in another layout is
// put in it first (in_weight_layout).
template <typename StatesOf>
bool one_pass_applies(std::vector<torch::optim::OptimizerParamGroup>& groups, StateMap& state, const StatesOf& states_of) {
  for (auto& group : groups)
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (!same_flat_memory(p, p) || !p.is_non_overlapping_and_dense() || !same_flat_memory(p.grad(), p)) return false;
      const auto found = state.find(state_key(p));
      if (found == state.end()) continue;
      for (torch::Tensor* t : states_of(*found->second)) {
        in_weight_layout(*t, p);
        if (t->defined() && !same_flat_memory(*t, p)) return false;
      }
    }
  return true;
}

std::vector<torch::Tensor*> sgd_state(torch::optim::OptimizerParamState& state) {
  return {&static_cast<torch::optim::SGDParamState&>(state).momentum_buffer()};
}

std::vector<torch::Tensor*> adamw_state(torch::optim::OptimizerParamState& state) {
  auto& adamw = static_cast<torch::optim::AdamWParamState&>(state);
  return {&adamw.exp_avg(), &adamw.exp_avg_sq(), &adamw.max_exp_avg_sq()};
}

// The closure first, as LibTorch's optimizers run it: it computes the gradients the step uses.
torch::Tensor run_closure(const torch::optim::Optimizer::LossClosure& closure) {
  if (closure == nullptr) return {};
  at::AutoGradMode enable_grad(true);
  return closure();
}

}  // namespace

bool FusedSGD::fusable() {
  for (const auto& group : param_groups_)
    if (static_cast<const torch::optim::SGDOptions&>(group.options()).nesterov()) return false;
  return one_pass_applies(param_groups_, state_, sgd_state);
}

torch::Tensor FusedSGD::step(LossClosure closure) {
  const auto loss = run_closure(closure);
  if (!fusable()) {
    SGD::step();
    return loss;
  }
  torch::NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::SGDOptions&>(group.options());
    SgdUpdate u;
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
        const auto found = state_.find(key);
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
      sgd_update(p.data_ptr<float>(), p.grad().data_ptr<float>(), buffer.defined() ? buffer.data_ptr<float>() : nullptr, p.numel(), u);
    }
  }
  return loss;
}

bool FusedAdamW::fusable() {
  for (const auto& group : param_groups_)
    if (static_cast<const torch::optim::AdamWOptions&>(group.options()).amsgrad()) return false;
  return one_pass_applies(param_groups_, state_, adamw_state);
}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  const auto loss = run_closure(closure);
  if (!fusable()) {
    AdamW::step();
    return loss;
  }
  torch::NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
    const double beta1 = std::get<0>(options.betas()), beta2 = std::get<1>(options.betas());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto key = state_key(p);
      AdamWUpdate u;
      if (state_.find(key) == state_.end()) {
        auto state = std::make_unique<torch::optim::AdamWParamState>();
        state->step(0);
        state->exp_avg(at::empty_like(p));
        state->exp_avg_sq(at::empty_like(p));
        state_[key] = std::move(state);
        u.first = true;
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*state_[key]);
      state.step(state.step() + 1);
      const double c1 = 1 - std::pow(beta1, state.step()), c2 = 1 - std::pow(beta2, state.step());
      u.decay = static_cast<float>(1 - options.lr() * options.weight_decay());
      u.beta1 = static_cast<float>(beta1), u.keep1 = static_cast<float>(1 - beta1);
      u.beta2 = static_cast<float>(beta2), u.keep2 = static_cast<float>(1 - beta2);
      u.root_c2 = static_cast<float>(std::sqrt(c2));
      u.eps = static_cast<float>(options.eps());
      u.negative_step = static_cast<float>(-options.lr() / c1);
      adamw_update(p.data_ptr<float>(), p.grad().data_ptr<float>(), state.exp_avg().data_ptr<float>(),
                   state.exp_avg_sq().data_ptr<float>(), p.numel(), u);
    }
  }
  return loss;
}

void clear_gradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) p.mutable_grad().reset();
}

}  // namespace fcn
