// The touching-objects separation score on hand-made masks.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/eval/separation.h"

namespace fcn {
namespace {

// Objects 1 and 2 one background column apart, object 3 far away.
torch::Tensor three_objects() {
  auto ids = torch::zeros({10, 20}, torch::kLong);
  ids.slice(0, 2, 6).slice(1, 1, 5).fill_(1);
  ids.slice(0, 2, 6).slice(1, 6, 10).fill_(2);
  ids.slice(0, 2, 6).slice(1, 15, 19).fill_(3);
  return ids;
}

TEST(Separation, TouchingPairsWithinTheGap) {
  const auto pairs = touching_pairs(three_objects(), 2);
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0], (std::pair<int64_t, int64_t>{1, 2}));
  EXPECT_TRUE(touching_pairs(three_objects(), 0).empty());  // not adjacent: the column between
}

TEST(Separation, MergedPredictionIsNotSeparatedAndAGapIs) {
  const auto ids = three_objects();
  auto merged = (ids > 0).to(torch::kLong);
  merged.slice(0, 2, 6).select(1, 5).fill_(1);  // the prediction fills the gap: one blob
  auto score = instance_separation(merged, ids);
  EXPECT_EQ(score.touching_pairs, 1);
  EXPECT_EQ(score.separated, 0);
  score += instance_separation((ids > 0).to(torch::kLong), ids);  // the gap kept
  EXPECT_EQ(score.touching_pairs, 2);
  EXPECT_EQ(score.separated, 1);
  EXPECT_DOUBLE_EQ(score.score(), 0.5);
  // A diagonal bridge of one pixel joins them 8-connected: not separated by a background pixel.
  auto bridged = (ids > 0).to(torch::kLong);
  bridged[1][5] = 1;
  EXPECT_EQ(instance_separation(bridged, ids).separated, 0);
  // An object predicted nowhere is not separated.
  EXPECT_EQ(instance_separation(torch::where(ids == 2, torch::zeros_like(ids), (ids > 0).to(torch::kLong)), ids).separated, 0);
  EXPECT_TRUE(std::isnan(SeparationScore().score()));
}

}  // namespace
}  // namespace fcn
