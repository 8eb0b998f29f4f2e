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

namespace fcn {
namespace {

// A batch split across two ranks, simulated in one process: the first pass records each rank's
// batch-wide sums (the collectives), the second gives every rank the whole batch's sums through
// BatchSum. The two ranks' gradients must add up to the whole batch's gradient, and each rank's
// loss value must be the whole batch's.
struct TwoRanks {
  std::vector<std::vector<torch::Tensor>> sums{2};  // per rank, per BatchSum call
  BatchSum recording(int rank) {
    return [this, rank](const torch::Tensor& local) {
      sums[static_cast<size_t>(rank)].push_back(local.detach().clone());
      return local;
    };
  }
  BatchSum whole(int rank) {
    auto call = std::make_shared<size_t>(0);
    return [this, rank, call](const torch::Tensor& local) {
      const auto& mine = sums[static_cast<size_t>(rank)][*call];
      const auto total = sums[0][*call] + sums[1][*call];
      ++*call;
      return local + (total - mine);
    };
  }
};

TEST(Loss, SplitAcrossRanksSumsToTheWholeBatchsGradient) {
  torch::manual_seed(3);
  // Rank 0 has 1 sample, rank 1 has 2 (uneven void, so per-rank means would be wrong).
  const auto logits = torch::randn({3, 4, 5, 6}, torch::kDouble);
  auto targets = torch::randint(0, 4, {3, 5, 6}, torch::kLong);
  targets.index_put_({0, torch::indexing::Slice(0, 4)}, 255);
  const auto pixel_weights = torch::rand({3, 5, 6}, torch::kDouble) + 0.5;
  const auto class_weights = torch::tensor({1.0, 2.0, 0.5, 3.0}, torch::kDouble);
  for (const auto kind : {LossKind::kCrossEntropy, LossKind::kDice, LossKind::kCrossEntropyDice}) {
    for (const int variant : {0, 1, 2, 3}) {  // plain mean, class weights, pixel weights, sum
      const auto cw = variant == 1 ? class_weights : torch::Tensor();
      const auto pw = variant == 2 ? pixel_weights : torch::Tensor();
      const auto reduction = variant == 3 ? Reduction::kSum : Reduction::kMean;
      auto whole = logits.clone().requires_grad_();
      const auto expected = training_loss(kind, whole, targets, cw, reduction, pw);
      expected.backward();
      TwoRanks ranks;
      const std::vector<std::pair<int64_t, int64_t>> parts = {{0, 1}, {1, 3}};
      auto part = [&](int rank, BatchSum batch_sum, torch::Tensor x) {
        const auto [a, b] = parts[static_cast<size_t>(rank)];
        return training_loss(kind, x, targets.slice(0, a, b), cw, reduction, pw.defined() ? pw.slice(0, a, b) : torch::Tensor(), 255, batch_sum);
      };
      for (int r = 0; r < 2; ++r) part(r, ranks.recording(r), logits.slice(0, parts[r].first, parts[r].second));
      torch::Tensor grad = torch::zeros_like(logits);
      for (int r = 0; r < 2; ++r) {
        auto x = logits.slice(0, parts[r].first, parts[r].second).clone().requires_grad_();
        const auto loss = part(r, ranks.whole(r), x);
        EXPECT_NEAR(loss.item<double>(), expected.item<double>(), 1e-12) << loss_kind_name(kind) << " variant " << variant;
        loss.backward();
        grad.slice(0, parts[r].first, parts[r].second) += x.grad();
      }
      EXPECT_LE((grad - whole.grad()).abs().max().item<double>(), 1e-12) << loss_kind_name(kind) << " variant " << variant;
    }
  }
}

}  // namespace
}  // namespace fcn
