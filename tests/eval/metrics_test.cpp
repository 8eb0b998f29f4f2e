// The paper's four metrics: a hand-computed confusion matrix, and numpy's formulas (oracle) on
// random predictions with ignore pixels and absent classes, to 1e-9.
#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/eval/metrics.h"
#include "fcn/formats/npy.h"
#include "test_util.h"

namespace fcn {
namespace {

TEST(Metrics, HandComputedExample) {
  // Ground truth 0 0 0 1 | 1 2 255 2, prediction 0 0 1 1 | 2 2 0 2 (the 255 pixel is ignored).
  ConfusionMatrix confusion(3);
  confusion.update(torch::tensor({0, 0, 1, 1, 2, 2, 0, 2}), torch::tensor({0, 0, 0, 1, 1, 2, 255, 2}));
  // rows = truth: [[2,1,0],[0,1,1],[0,0,2]]
  EXPECT_EQ(confusion.matrix()[0][1].item<int64_t>(), 1);
  EXPECT_EQ(confusion.matrix()[1][2].item<int64_t>(), 1);
  EXPECT_EQ(confusion.rows(), (std::vector<std::vector<int64_t>>{{2, 1, 0}, {0, 1, 1}, {0, 0, 2}}));
  const auto m = confusion.metrics();
  EXPECT_NEAR(m.pixel_acc, 5.0 / 7.0, 1e-12);
  EXPECT_NEAR(m.mean_acc, (2.0 / 3 + 1.0 / 2 + 2.0 / 2) / 3, 1e-12);
  // IU: class 0: 2/(3+2-2)=2/3; class 1: 1/(2+2-1)=1/3; class 2: 2/(2+3-2)=2/3.
  EXPECT_NEAR(m.mean_iu, (2.0 / 3 + 1.0 / 3 + 2.0 / 3) / 3, 1e-12);
  EXPECT_NEAR(m.fw_iu, (3 * 2.0 / 3 + 2 * 1.0 / 3 + 2 * 2.0 / 3) / 7, 1e-12);
  // Dice = 2 TP / (2 TP + FP + FN): class 0: TP 2, FP 0, FN 1 -> 4/5; class 1: TP 1, FP 1, FN 1 -> 2/4;
  // class 2: TP 2, FP 1, FN 0 -> 4/5.
  EXPECT_NEAR(m.dice[0], 4.0 / 5, 1e-12);
  EXPECT_NEAR(m.dice[1], 2.0 / 4, 1e-12);
  EXPECT_NEAR(m.dice[2], 4.0 / 5, 1e-12);
  EXPECT_NEAR(m.mean_dice, (4.0 / 5 + 2.0 / 4 + 4.0 / 5) / 3, 1e-12);
}

TEST(Metrics, AllVoidIsUndefinedNotZero) {
  ConfusionMatrix confusion(3);
  confusion.update(torch::tensor({0, 1, 2}), torch::tensor({255, 255, 255}));
  const auto m = confusion.metrics();
  EXPECT_TRUE(std::isnan(m.pixel_acc));
  EXPECT_TRUE(std::isnan(m.mean_iu));
  EXPECT_TRUE(std::isnan(m.mean_dice));
}

// Integer labels on the CPU are counted in one pass as they lie, any integer type, any layout; other
// labels (floating, a GPU's) 4M elements at a time. Both give one bincount over everything (a CT
// volume's voxels), predictions out of range clamped to the first or last class as before.
TEST(Metrics, LargeInputsCountedInChunksAsInOne) {
  torch::manual_seed(2);
  const int64_t n = (int64_t{1} << 22) * 2 + 12347;  // a multiple of 5, not of the chunk
  auto targets = torch::randint(0, 4, {n}, torch::kInt);
  targets.slice(0, 0, n, 7).fill_(255);  // void every 7th
  auto predictions = torch::randint(0, 4, {n}, torch::kInt);
  predictions.slice(0, 3, n, 1001).fill_(-3), predictions.slice(0, 5, n, 997).fill_(9);
  const auto valid = targets.ne(255);
  const auto cells = targets.masked_select(valid).to(torch::kLong) * 4 + predictions.masked_select(valid).clamp(0, 3).to(torch::kLong);
  const auto expected = torch::bincount(cells, {}, 16);
  const auto counted = [](const torch::Tensor& p, const torch::Tensor& t) {
    ConfusionMatrix matrix(4);
    matrix.update(p, t);
    return matrix.matrix().flatten();
  };
  EXPECT_TRUE(torch::equal(counted(predictions.view({-1, 5}), targets.view({-1, 5})), expected));
  EXPECT_TRUE(torch::equal(counted(predictions.to(torch::kFloat), targets.to(torch::kFloat)), expected));  // in chunks
  EXPECT_TRUE(torch::equal(counted(predictions.to(torch::kShort), targets.to(torch::kByte)), expected));   // uint8 volume, int16 labels
  const auto p2 = predictions.view({5, -1}).t(), t2 = targets.view({5, -1}).t();  // not contiguous
  EXPECT_TRUE(torch::equal(counted(p2.to(torch::kLong), t2), expected));
}

TEST(Metrics, MatchNumpyOracleWithIgnoreAndAbsentClasses) {
  ConfusionMatrix confusion(6);
  const auto target = read_npy(test::golden("metrics_target.npy"));
  const auto pred = read_npy(test::golden("metrics_pred.npy"));
  // Accumulating in two halves equals one pass: the matrix is over the whole split.
  confusion.update(pred.slice(0, 0, 1), target.slice(0, 0, 1));
  confusion.update(pred.slice(0, 1), target.slice(0, 1));
  std::ifstream in(test::golden("metrics.json"));
  const auto expected = nlohmann::json::parse(in);
  const auto m = confusion.metrics();
  EXPECT_NEAR(m.pixel_acc, expected["pixel_acc"].get<double>(), 1e-9);
  EXPECT_NEAR(m.mean_acc, expected["mean_acc"].get<double>(), 1e-9);
  EXPECT_NEAR(m.mean_iu, expected["mean_iu"].get<double>(), 1e-9);
  EXPECT_NEAR(m.fw_iu, expected["fw_iu"].get<double>(), 1e-9);
  for (size_t c = 0; c < 6; ++c) {
    if (expected["iou"][c].is_null()) EXPECT_TRUE(std::isnan(m.iou[c])) << c;
    else EXPECT_NEAR(m.iou[c], expected["iou"][c].get<double>(), 1e-9) << c;
    for (size_t j = 0; j < 6; ++j) EXPECT_EQ(confusion.matrix()[c][j].item<int64_t>(), expected["confusion"][c][j].get<int64_t>());
  }
  EXPECT_TRUE(std::isnan(m.accuracy[4]));  // absent from ground truth
  EXPECT_EQ(m.iou[4], 0.0);                // ...but predicted: a real zero
}

}  // namespace
}  // namespace fcn

namespace fcn {
namespace {

TEST(Metrics, ConfusionPictureShadesRowShares) {
  const auto matrix = torch::tensor({{3, 1}, {0, 0}}, torch::kLong);
  const auto picture = confusion_picture(matrix, 4);
  ASSERT_EQ(picture.sizes(), (std::vector<int64_t>{8, 8, 3}));
  // Cell (0,0): 75% of row 0 -> 3/4 of the way to dark blue; the empty row stays white.
  EXPECT_EQ(picture[2][2][0].item<uint8_t>(), static_cast<uint8_t>(std::lround(255 + 0.75 * (8 - 255))));
  EXPECT_EQ(picture[6][6][2].item<uint8_t>(), 255);
  EXPECT_EQ(picture[0][2][0].item<uint8_t>(), 200);  // grid line
}

}  // namespace
}  // namespace fcn
