// The loss equals torch.nn.functional.cross_entropy(..., ignore_index=255, weight=w) for both
// reductions, and so do its gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/formats/npy.h"
#include "fcn/train/loss.h"
#include "test_util.h"

namespace fcn {
namespace {

TEST(Loss, MatchesPyTorchCrossEntropyAndGradient) {
  const auto targets = read_npy(test::golden("loss_targets.npy"));
  const auto weights = read_npy(test::golden("loss_weights.npy"));
  for (const std::string reduction : {"mean", "sum"}) {
    for (const bool weighted : {false, true}) {
      const std::string name = "loss_" + reduction + "_" + (weighted ? "weighted" : "plain");
      auto logits = read_npy(test::golden("loss_logits.npy")).requires_grad_();
      const auto loss = segmentation_loss(logits, targets, weighted ? weights : torch::Tensor(), parse_reduction(reduction));
      loss.backward();
      const double expected = read_npy(test::golden(name + ".npy")).item<double>();
      EXPECT_NEAR(loss.item<double>(), expected, 1e-5 * std::max(1.0, std::abs(expected))) << name;
      EXPECT_LE(test::relative_error(logits.grad(), read_npy(test::golden(name + "_grad.npy"))), 1e-5) << name;
    }
  }
}

TEST(Loss, IgnoredPixelsGetNoGradient) {
  auto logits = torch::randn({1, 3, 2, 2}).requires_grad_();
  const auto targets = torch::tensor({0, 255, 2, 255}).view({1, 2, 2});
  segmentation_loss(logits, targets).backward();
  EXPECT_EQ(logits.grad().select(3, 1).select(2, 0).abs().sum().item<float>(), 0.0f);
  EXPECT_GT(logits.grad().select(3, 0).select(2, 0).abs().sum().item<float>(), 0.0f);
}

}  // namespace
}  // namespace fcn
