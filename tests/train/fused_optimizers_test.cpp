// FusedSGD and FusedAdamW against LibTorch's torch::optim::SGD and AdamW (PyTorch's algorithms): the
// same weights and optimizer state after several steps, in every layout and group setting fcn uses,
// with a closure, the same state in checkpoints both ways, LibTorch's step itself where the one pass
// does not apply; and clear_gradients leaves a fresh gradient, not an accumulated one.
#include <functional>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/bench/profile.h"
#include "fcn/train/fused_optimizers.h"
#include "test_util.h"

namespace fcn {
namespace {

using Groups = std::vector<torch::optim::OptimizerParamGroup>;

// A conv weight in channels-last, a linear weight (more than one thread's share) and a bias: the
// layouts fcn's trainer steps.
std::vector<torch::Tensor> parameters(uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({8, 4, 3, 3}).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_(),
          torch::randn({5, 70001}).requires_grad_(), torch::randn({8}).requires_grad_()};
}

std::vector<torch::Tensor> copies(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params) out.push_back(p.detach().clone().requires_grad_());  // clone keeps the layout
  return out;
}

// make_optimizer's two groups (weights decayed; biases not, at another rate) and settings beyond them.
// `unfusable`: Nesterov momentum, or AMSGrad, which only LibTorch's step computes.
struct Sgd {
  using Fused = FusedSGD;
  using Reference = torch::optim::SGD;
  static Groups groups(const std::vector<torch::Tensor>& p, bool unfusable = false) {
    Groups g;
    g.emplace_back(std::vector<torch::Tensor>{p[0], p[1]},
                   std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-3).nesterov(unfusable)));
    g.emplace_back(std::vector<torch::Tensor>{p[2]},
                   std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(0.2).momentum(0.5).dampening(unfusable ? 0 : 0.25)));
    return g;
  }
  static Fused fused(const std::vector<torch::Tensor>& p, bool unfusable = false) { return Fused(groups(p, unfusable), torch::optim::SGDOptions(0.1)); }
  static Reference reference(const std::vector<torch::Tensor>& p, bool unfusable = false) {
    return Reference(groups(p, unfusable), torch::optim::SGDOptions(0.1));
  }
  static std::vector<torch::Tensor> state_of(torch::optim::Optimizer& o, const torch::Tensor& p) {
    const auto key = c10::guts::to_string(p.unsafeGetTensorImpl());
    return {static_cast<torch::optim::SGDParamState&>(*o.state().at(key)).momentum_buffer()};
  }
  static std::vector<torch::Tensor*> state_tensors(torch::optim::Optimizer& o, const torch::Tensor& p) {
    return {&static_cast<torch::optim::SGDParamState&>(*o.state().at(c10::guts::to_string(p.unsafeGetTensorImpl()))).momentum_buffer()};
  }
};

struct AdamW {
  using Fused = FusedAdamW;
  using Reference = torch::optim::AdamW;
  static Groups groups(const std::vector<torch::Tensor>& p, bool unfusable = false) {
    Groups g;
    g.emplace_back(std::vector<torch::Tensor>{p[0], p[1]},
                   std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-2).weight_decay(0.1).amsgrad(unfusable)));
    g.emplace_back(std::vector<torch::Tensor>{p[2]}, std::make_unique<torch::optim::AdamWOptions>(
                                                         torch::optim::AdamWOptions(2e-2).betas({0.8, 0.99}).eps(1e-3).weight_decay(0)));
    return g;
  }
  static Fused fused(const std::vector<torch::Tensor>& p, bool unfusable = false) { return Fused(groups(p, unfusable), torch::optim::AdamWOptions(1e-2)); }
  static Reference reference(const std::vector<torch::Tensor>& p, bool unfusable = false) {
    return Reference(groups(p, unfusable), torch::optim::AdamWOptions(1e-2));
  }
  static std::vector<torch::Tensor> state_of(torch::optim::Optimizer& o, const torch::Tensor& p) {
    const auto key = c10::guts::to_string(p.unsafeGetTensorImpl());
    const auto& state = static_cast<torch::optim::AdamWParamState&>(*o.state().at(key));
    return {state.exp_avg(), state.exp_avg_sq(), torch::tensor(static_cast<double>(state.step()))};
  }
  static std::vector<torch::Tensor*> state_tensors(torch::optim::Optimizer& o, const torch::Tensor& p) {
    auto& state = static_cast<torch::optim::AdamWParamState&>(*o.state().at(c10::guts::to_string(p.unsafeGetTensorImpl())));
    return {&state.exp_avg(), &state.exp_avg_sq()};
  }
};

template <typename Kind>
class FusedOptimizer : public ::testing::Test {};
using Kinds = ::testing::Types<Sgd, AdamW>;
TYPED_TEST_SUITE(FusedOptimizer, Kinds);

// The same gradients for both sets, in each parameter's own layout (as autograd hands them over).
void give_gradients(std::vector<torch::Tensor>& a, std::vector<torch::Tensor>& b, int step) {
  torch::manual_seed(100 + step);
  for (size_t i = 0; i < a.size(); ++i) {
    const auto g = torch::randn_like(a[i]);
    a[i].mutable_grad() = g.clone();
    b[i].mutable_grad() = g.clone();
  }
}

double largest_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  return worst;
}

// ATen operators that compute, recorded while `work` runs (add_, mul_, clone, ...; the first step's
// empty_like for the state aside).
int64_t aten_calls_in(const std::function<void()>& work) {
  OpProfiler profiler;
  work();
  int64_t calls = 0;
  for (const auto& op : profiler.finish())
    if (op.name.rfind("aten::", 0) == 0 && op.name.rfind("aten::empty", 0) != 0) calls += op.calls;
  return calls;
}

double number(const torch::Tensor& t) { return t.item<double>(); }

std::string saved(torch::optim::Optimizer& o) {
  torch::serialize::OutputArchive archive;
  o.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void load(torch::optim::Optimizer& o, const std::string& bytes) {
  torch::serialize::InputArchive archive;
  std::istringstream in(bytes);
  archive.load_from(in);
  o.load(archive);
}

TYPED_TEST(FusedOptimizer, StepsAsLibTorchsOptimizerDoes) {
  auto fused_params = parameters(1), reference_params = copies(fused_params);
  auto fused = TypeParam::fused(fused_params);
  auto reference = TypeParam::reference(reference_params);
  for (int step = 0; step < 5; ++step) {
    give_gradients(fused_params, reference_params, step);
    // The one pass runs no ATen operator; LibTorch's optimizers run several per parameter.
    EXPECT_EQ(aten_calls_in([&] { fused.step(); }), 0) << "step " << step;
    reference.step();
    EXPECT_LE(largest_difference(fused_params, reference_params), 1e-6) << "step " << step;
  }
  for (size_t i = 0; i < fused_params.size(); ++i) {
    const auto state = TypeParam::state_of(fused, fused_params[i]);
    const auto expected = TypeParam::state_of(reference, reference_params[i]);
    EXPECT_LE(largest_difference(state, expected), 1e-6 * std::max(1.0, number(expected[0].abs().max()))) << i;
    EXPECT_EQ(state[0].strides(), fused_params[i].strides()) << i;  // the state in its weight's layout
  }
  // Moved at all: 5 steps of unit-sized gradients.
  EXPECT_GT(largest_difference(fused_params, parameters(1)), 3e-2);
}

TYPED_TEST(FusedOptimizer, TakesAClosureAsLibTorchsOptimizerDoes) {
  auto a = parameters(7), b = copies(a);
  auto fused = TypeParam::fused(a);
  auto reference = TypeParam::reference(b);
  auto closure_of = [](std::vector<torch::Tensor>& p, torch::optim::Optimizer& o) {
    return [&p, &o] {
      clear_gradients(o);
      auto loss = (p[0] * p[0]).sum() + p[1].sin().sum() + p[2].cos().sum();
      loss.backward();
      return loss;
    };
  };
  for (int step = 0; step < 3; ++step) {
    const auto loss = fused.step(closure_of(a, fused));  // the gradients exist only once it has run
    const double expected = number(reference.step(closure_of(b, reference)));
    EXPECT_NEAR(number(loss), expected, 1e-6 * std::abs(expected)) << step;
    EXPECT_LE(largest_difference(a, b), 1e-5) << step;
  }
  EXPECT_GT(largest_difference(a, parameters(7)), 1e-2);
}

TYPED_TEST(FusedOptimizer, CheckpointsMoveBetweenItAndLibTorchsOptimizer) {
  auto a = parameters(4), b = copies(a);
  auto fused = TypeParam::fused(a);
  auto reference = TypeParam::reference(b);
  for (int step = 0; step < 2; ++step) {
    give_gradients(a, b, step);
    fused.step();
    reference.step();
  }
  // Each optimizer's state into a new optimizer of the other kind, over copies of the weights.
  auto a2 = copies(a), b2 = copies(b), a3 = copies(a);
  auto reference_from_fused = TypeParam::reference(a2);
  auto fused_from_reference = TypeParam::fused(b2);
  auto fresh = TypeParam::fused(a3);
  load(reference_from_fused, saved(fused));
  load(fused_from_reference, saved(reference));
  for (int step = 2; step < 4; ++step) {
    give_gradients(a2, b2, step);
    a3[0].mutable_grad() = a2[0].grad().clone(), a3[1].mutable_grad() = a2[1].grad().clone(), a3[2].mutable_grad() = a2[2].grad().clone();
    reference_from_fused.step();
    fused_from_reference.step();
    fresh.step();
  }
  EXPECT_LE(largest_difference(a2, b2), 1e-6);
  EXPECT_GT(largest_difference(a2, a3), 1e-3);  // without the loaded state the steps differ
}

TYPED_TEST(FusedOptimizer, FallsBackToLibTorchsStepWhereThePassDoesNotApply) {
  for (const bool unfusable_setting : {true, false}) {
    auto fused_params = parameters(5), reference_params = copies(fused_params);
    auto fused = TypeParam::fused(fused_params, unfusable_setting);
    auto reference = TypeParam::reference(reference_params, unfusable_setting);
    for (int step = 0; step < 3; ++step) {
      give_gradients(fused_params, reference_params, step);
      // Else the conv weight's gradient in NCHW while the weight is channels-last.
      if (!unfusable_setting) fused_params[0].mutable_grad() = fused_params[0].grad().contiguous();
      EXPECT_GT(aten_calls_in([&] { fused.step(); }), 0);
      reference.step();
      EXPECT_LE(largest_difference(fused_params, reference_params), 1e-6) << "setting " << unfusable_setting << " step " << step;
    }
  }
}

TYPED_TEST(FusedOptimizer, PutsStateOfAnotherLayoutInItsWeightsAndStaysFused) {
  // As after loading a checkpoint written while the conv weight was NCHW, the weight channels-last now.
  auto fused_params = parameters(10), reference_params = copies(fused_params);
  auto fused = TypeParam::fused(fused_params);
  auto reference = TypeParam::reference(reference_params);
  give_gradients(fused_params, reference_params, 0);
  fused.step();
  reference.step();
  for (auto* t : TypeParam::state_tensors(fused, fused_params[0])) *t = t->contiguous();
  ASSERT_NE(TypeParam::state_of(fused, fused_params[0])[0].strides(), fused_params[0].strides());
  for (int step = 1; step < 4; ++step) {
    give_gradients(fused_params, reference_params, step);
    const int64_t calls = aten_calls_in([&] { fused.step(); });
    if (step == 1) EXPECT_GT(calls, 0);  // the state's copy into the weight's layout, once
    else EXPECT_EQ(calls, 0) << "step " << step;
    reference.step();
    EXPECT_LE(largest_difference(fused_params, reference_params), 1e-6) << "step " << step;
  }
  EXPECT_EQ(TypeParam::state_of(fused, fused_params[0])[0].strides(), fused_params[0].strides());
}

TEST(FusedSGD, WithoutMomentumOrDecayIsPlainGradientDescent) {
  auto params = parameters(2);
  const auto before = params[1].detach().clone();
  FusedSGD sgd({params[1]}, torch::optim::SGDOptions(0.5));
  torch::manual_seed(3);
  params[1].mutable_grad() = torch::randn_like(params[1]);
  sgd.step();
  EXPECT_TRUE(torch::allclose(params[1], before - 0.5 * params[1].grad(), 0, 1e-6));
  EXPECT_TRUE(sgd.state().empty());  // no buffer kept, as LibTorch's SGD keeps none
}

TEST(FusedAdamW, FirstStepMovesEachWeightByTheLearningRate) {
  // A hand computation: at step 1 the bias-corrected m/√v is g/|g| (ε aside), so every weight moves
  // by lr against its gradient's sign, after the decay w·(1 − lr·wd).
  auto params = parameters(8);
  const auto before = params[1].detach().clone();
  FusedAdamW adamw({params[1]}, torch::optim::AdamWOptions(1e-2).weight_decay(0.5).eps(1e-12));
  torch::manual_seed(9);
  params[1].mutable_grad() = torch::randn_like(params[1]);
  adamw.step();
  const auto expected = before * (1 - 1e-2 * 0.5) - 1e-2 * params[1].grad().sign();
  EXPECT_LE((params[1] - expected).abs().max().item<double>(), 1e-6);
}

TEST(FusedOptimizers, ClearedGradientsAreFreshNotAccumulated) {
  auto params = parameters(6);
  FusedSGD sgd(Sgd::groups(params), torch::optim::SGDOptions(0.1));
  auto loss = [&] { return (params[0] * params[0]).sum() + params[1].sum() + params[2].pow(3).sum(); };
  loss().backward();
  sgd.step();
  clear_gradients(sgd);
  for (const auto& p : params) EXPECT_FALSE(p.grad().defined());
  loss().backward();
  EXPECT_LE((params[0].grad() - 2 * params[0].detach()).abs().max().item<double>(), 1e-6);  // d(w²)/dw, once
  EXPECT_LE((params[1].grad() - 1).abs().max().item<double>(), 0.0);
  EXPECT_EQ(params[0].grad().strides(), params[0].strides());  // handed over in the weight's layout
}

}  // namespace
}  // namespace fcn
