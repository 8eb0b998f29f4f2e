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

namespace fcn {
namespace {

// Soft Dice (multi-class softmax and binary sigmoid) and its gradient against the PyTorch oracle.
TEST(DiceLoss, MatchesPyTorchOracleAndGradient) {
  for (const std::string name : {"dice_c4", "dice_c1"}) {
    auto logits = read_npy(test::golden(name + "_logits.npy")).requires_grad_();
    const auto loss = dice_loss(logits, read_npy(test::golden(name + "_targets.npy")));
    loss.backward();
    EXPECT_NEAR(loss.item<double>(), read_npy(test::golden(name + "_loss.npy")).item<double>(), 1e-5) << name;
    EXPECT_LE(test::relative_error(logits.grad(), read_npy(test::golden(name + "_grad.npy"))), 1e-5) << name;
  }
}

TEST(DiceLoss, PerfectPredictionIsZeroAndCeDiceIsTheSum) {
  auto targets = torch::randint(0, 3, {2, 5, 5}, torch::kLong);
  const auto logits = torch::one_hot(targets, 3).permute({0, 3, 1, 2}).to(torch::kFloat) * 60.0f;
  EXPECT_NEAR(dice_loss(logits, targets).item<double>(), 0.0, 1e-6);
  const auto noisy = torch::randn({2, 3, 5, 5});
  EXPECT_NEAR(training_loss(LossKind::kCrossEntropyDice, noisy, targets).item<double>(),
              segmentation_loss(noisy, targets).item<double>() + dice_loss(noisy, targets).item<double>(), 1e-6);
}

// Binary nets: sigmoid + binary cross-entropy, with per-pixel weights (a weighted mean).
TEST(BinaryLoss, WeightedBceMatchesPyTorchOracle) {
  auto logits = read_npy(test::golden("bce_logits.npy")).requires_grad_();
  const auto loss = segmentation_loss(logits, read_npy(test::golden("bce_targets.npy")), {}, Reduction::kMean, 255,
                                      read_npy(test::golden("bce_weights.npy")));
  loss.backward();
  EXPECT_NEAR(loss.item<double>(), read_npy(test::golden("bce_loss.npy")).item<double>(), 1e-5);
  EXPECT_LE(test::relative_error(logits.grad(), read_npy(test::golden("bce_grad.npy"))), 1e-5);
}

TEST(PixelWeights, OnesEqualTheUnweightedLossAndClassWeightsEqualPyTorchs) {
  const auto logits = torch::randn({2, 4, 6, 7});
  auto targets = torch::randint(0, 4, {2, 6, 7}, torch::kLong);
  targets[0][0].fill_(255);
  const auto plain = segmentation_loss(logits, targets);
  EXPECT_NEAR(segmentation_loss(logits, targets, {}, Reduction::kMean, 255, torch::ones({2, 6, 7})).item<double>(),
              plain.item<double>(), 1e-6);
  const auto class_weights = torch::tensor({0.5f, 1.0f, 2.0f, 3.0f});
  const auto as_pixels = class_weights.index({targets.clamp_max(3)});
  EXPECT_NEAR(segmentation_loss(logits, targets, {}, Reduction::kMean, 255, as_pixels).item<double>(),
              segmentation_loss(logits, targets, class_weights).item<double>(), 1e-6);
}

}  // namespace
}  // namespace fcn
