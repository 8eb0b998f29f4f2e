// FusedSGD against LibTorch's torch::optim::SGD (PyTorch's algorithm): the same weights and momentum
// buffers after several steps, in every layout and group setting fcn uses, the same state in
// checkpoints both ways, SGD::step itself where the one pass does not apply; and clear_gradients
// leaves a fresh gradient, not an accumulated one.
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/bench/profile.h"
#include "fcn/train/fused_sgd.h"
#include "test_util.h"

namespace fcn {
namespace {

// A conv weight in channels-last, a linear weight and a bias: the layouts fcn's trainer steps.
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

// Weights (decayed), biases (no decay, twice the rate, dampened): make_optimizer's two groups and more.
std::vector<torch::optim::OptimizerParamGroup> groups(const std::vector<torch::Tensor>& p, bool nesterov = false) {
  std::vector<torch::optim::OptimizerParamGroup> g;
  g.emplace_back(std::vector<torch::Tensor>{p[0], p[1]},
                 std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-3).nesterov(nesterov)));
  g.emplace_back(std::vector<torch::Tensor>{p[2]},
                 std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(0.2).momentum(0.5).dampening(nesterov ? 0 : 0.25)));
  return g;
}

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

torch::Tensor buffer_of(torch::optim::Optimizer& o, const torch::Tensor& p) {
  const auto key = c10::guts::to_string(p.unsafeGetTensorImpl());
  return static_cast<torch::optim::SGDParamState&>(*o.state().at(key)).momentum_buffer();
}

// ATen operators that compute, recorded while `work` runs (add_, mul_, clone, ...; the first step's
// empty_like for the momentum buffers aside).
int64_t aten_calls_in(const std::function<void()>& work) {
  OpProfiler profiler;
  work();
  int64_t calls = 0;
  for (const auto& op : profiler.finish())
    if (op.name.rfind("aten::", 0) == 0 && op.name.rfind("aten::empty", 0) != 0) calls += op.calls;
  return calls;
}

TEST(FusedSGD, StepsAsLibTorchsSgdDoes) {
  auto fused_params = parameters(1), reference_params = copies(fused_params);
  FusedSGD fused(groups(fused_params), torch::optim::SGDOptions(0.1));
  torch::optim::SGD reference(groups(reference_params), torch::optim::SGDOptions(0.1));
  for (int step = 0; step < 5; ++step) {
    give_gradients(fused_params, reference_params, step);
    // The one pass runs no ATen operator; LibTorch's SGD runs several per parameter.
    EXPECT_EQ(aten_calls_in([&] { fused.step(); }), 0) << "step " << step;
    reference.step();
    EXPECT_LE(largest_difference(fused_params, reference_params), 1e-6) << "step " << step;
  }
  for (size_t i = 0; i < fused_params.size(); ++i) {
    const auto buffer = buffer_of(fused, fused_params[i]);
    EXPECT_LE((buffer - buffer_of(reference, reference_params[i])).abs().max().item<double>(), 1e-6) << i;
    EXPECT_EQ(buffer.strides(), fused_params[i].strides()) << i;  // the buffer in its weight's layout
  }
  // Moved at all: 5 steps of lr 0.1 with unit gradients.
  EXPECT_GT((fused_params[1] - parameters(1)[1]).abs().max().item<double>(), 0.1);
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

TEST(FusedSGD, TakesAClosureAsLibTorchsSgdDoes) {
  auto a = parameters(7), b = copies(a);
  FusedSGD fused(groups(a), torch::optim::SGDOptions(0.1));
  torch::optim::SGD reference(groups(b), torch::optim::SGDOptions(0.1));
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
    const double expected = reference.step(closure_of(b, reference)).item<double>();
    EXPECT_NEAR(loss.item<double>(), expected, 1e-6 * std::abs(expected)) << step;
    EXPECT_LE(largest_difference(a, b), 1e-5) << step;
  }
  EXPECT_GT(largest_difference(a, parameters(7)), 1e-2);
}

TEST(FusedSGD, CheckpointsMoveBetweenItAndLibTorchsSgd) {
  auto a = parameters(4), b = copies(a);
  FusedSGD fused(groups(a), torch::optim::SGDOptions(0.1));
  torch::optim::SGD reference(groups(b), torch::optim::SGDOptions(0.1));
  for (int step = 0; step < 2; ++step) {
    give_gradients(a, b, step);
    fused.step();
    reference.step();
  }
  // Each optimizer's state into a new optimizer of the other kind, over copies of the weights.
  auto save = [](torch::optim::Optimizer& o) {
    torch::serialize::OutputArchive archive;
    o.save(archive);
    std::ostringstream out;
    archive.save_to(out);
    return out.str();
  };
  auto load = [](torch::optim::Optimizer& o, const std::string& bytes) {
    torch::serialize::InputArchive archive;
    std::istringstream in(bytes);
    archive.load_from(in);
    o.load(archive);
  };
  auto a2 = copies(a), b2 = copies(b);
  torch::optim::SGD reference_from_fused(groups(a2), torch::optim::SGDOptions(0.1));
  FusedSGD fused_from_reference(groups(b2), torch::optim::SGDOptions(0.1));
  load(reference_from_fused, save(fused));
  load(fused_from_reference, save(reference));
  for (int step = 2; step < 4; ++step) {
    give_gradients(a2, b2, step);
    reference_from_fused.step();
    fused_from_reference.step();
  }
  EXPECT_LE(largest_difference(a2, b2), 1e-6);
  // Against no state at all the momentum would differ by far more.
  EXPECT_GT(largest_difference(a2, a), 1e-2);
}

TEST(FusedSGD, FallsBackToLibTorchsSgdWhereThePassDoesNotApply) {
  for (const bool nesterov : {true, false}) {
    auto fused_params = parameters(5), reference_params = copies(fused_params);
    FusedSGD fused(groups(fused_params, nesterov), torch::optim::SGDOptions(0.1));
    torch::optim::SGD reference(groups(reference_params, nesterov), torch::optim::SGDOptions(0.1));
    for (int step = 0; step < 3; ++step) {
      give_gradients(fused_params, reference_params, step);
      // Without Nesterov: the conv weight's gradient in NCHW while the weight is channels-last.
      if (!nesterov) fused_params[0].mutable_grad() = fused_params[0].grad().contiguous();
      EXPECT_GT(aten_calls_in([&] { fused.step(); }), 0);
      reference.step();
      EXPECT_LE(largest_difference(fused_params, reference_params), 1e-6) << "nesterov " << nesterov << " step " << step;
    }
  }
}

TEST(FusedSGD, ClearedGradientsAreFreshNotAccumulated) {
  auto params = parameters(6);
  FusedSGD sgd(groups(params), torch::optim::SGDOptions(0.1));
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
