// The touching-objects separation score on hand-made masks.
#include <cmath>
#include <tuple>

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

// The adapted Rand error by hand. Ground truth: instance 1 at (0,0), (0,1), (1,0), instance 2 at
// (0,2), (1,1), (1,2). Predicted foreground everywhere but (1,0): one 8-connected segment of 5 pixels,
// and (1,0) in the background segment. Contingency: instance 1 -> 2 in the segment, 1 in background;
// instance 2 -> 3 in the segment. Pairs (n(n-1)): joint 2 + 0 + 6 = 8, true 6 + 6 = 12, predicted
// 20 + 0 = 20; precision 8/20 = 0.4, recall 8/12 = 2/3, F = 0.5, error 0.5.
TEST(AdaptedRand, HandComputedMergeAndSplit) {
  const auto truth = torch::tensor({1, 1, 2, 1, 2, 2}, torch::kLong).view({2, 3});
  const auto predicted = torch::tensor({1, 1, 1, 0, 1, 1}, torch::kLong).view({2, 3});
  const auto score = adapted_rand(predicted, truth);
  EXPECT_DOUBLE_EQ(score.joint_pairs, 8);
  EXPECT_DOUBLE_EQ(score.true_pairs, 12);
  EXPECT_DOUBLE_EQ(score.predicted_pairs, 20);
  EXPECT_NEAR(score.error(), 0.5, 1e-12);
  const auto scores = instance_scores(predicted, truth);  // what evaluate() records: both from one labelling
  EXPECT_DOUBLE_EQ(scores.rand.joint_pairs, 8);
  EXPECT_DOUBLE_EQ(scores.rand.predicted_pairs, 20);
  EXPECT_EQ(scores.separation.touching_pairs, instance_separation(predicted, truth).touching_pairs);
  EXPECT_EQ(scores.separation.separated, instance_separation(predicted, truth).separated);
  // The instances exactly (kept apart by a background row: 8-connected components would merge them
  // otherwise): error 0. Pixels outside every instance do not count, whatever is predicted there.
  const auto apart = torch::tensor({1, 1, 1, 0, 0, 0, 2, 2, 2}, torch::kLong).view({3, 3});
  const auto exact = adapted_rand(apart.gt(0).to(torch::kLong) * 3, apart);
  EXPECT_NEAR(exact.error(), 0.0, 1e-12);
  // Merged: one segment of 6 instance pixels: joint 6 + 6 = 12, true 12, predicted 30 -> P 0.4, R 1, error 1 - 0.8/1.4.
  EXPECT_NEAR(adapted_rand(torch::ones({3, 3}, torch::kLong), apart).error(), 1 - 0.8 / 1.4, 1e-12);
  // Summed over images as one volume; NaN where no segment holds two pixels.
  RandScore both = score;
  both += exact;
  EXPECT_DOUBLE_EQ(both.joint_pairs, 8 + 12);
  EXPECT_TRUE(std::isnan(adapted_rand(torch::ones({1, 1}, torch::kLong), torch::ones({1, 1}, torch::kLong)).error()));
}

// Objects found, by hand on three_objects() (16 pixels each): exact, merged, cut at IoU 0.5, grown.
TEST(ObjectMatches, InstancesMatchedAboveHalfIoU) {
  const auto truth = three_objects();
  const auto exact = object_matches(truth.gt(0).to(torch::kLong), truth);
  EXPECT_EQ(std::make_tuple(exact.true_objects, exact.predicted_objects, exact.matched), std::make_tuple(3, 3, 3));
  EXPECT_DOUBLE_EQ(exact.f1(), 1.0);
  auto predicted = torch::zeros({10, 20}, torch::kLong);
  predicted.slice(0, 2, 6).slice(1, 1, 10).fill_(1);   // 1 and 2 merged (36 pixels): IoU 16/36 each
  predicted.slice(0, 2, 4).slice(1, 15, 19).fill_(1);  // half of 3: IoU 8/16, not above 0.5
  predicted[8][12] = 1;                                // a speck on background
  const auto merged = object_matches(predicted, truth);
  EXPECT_EQ(std::make_tuple(merged.true_objects, merged.predicted_objects, merged.matched), std::make_tuple(3, 3, 0));
  EXPECT_DOUBLE_EQ(merged.f1(), 0.0);
  predicted.slice(0, 2, 5).slice(1, 15, 19).fill_(1);  // three quarters of 3: IoU 12/16
  const auto one = object_matches(predicted, truth);
  EXPECT_EQ(one.matched, 1);
  EXPECT_DOUBLE_EQ(one.precision(), 1.0 / 3);
  EXPECT_DOUBLE_EQ(one.recall(), 1.0 / 3);
  EXPECT_DOUBLE_EQ(one.f1(), 1.0 / 3);
  predicted.slice(0, 1, 7).slice(1, 15, 19).fill_(1);  // 3 grown to 24 pixels: IoU 16/24
  EXPECT_EQ(object_matches(predicted, truth).matched, 1);
  const auto scores = instance_scores(predicted, truth);  // what evaluate() records
  EXPECT_EQ(std::make_tuple(scores.objects.true_objects, scores.objects.predicted_objects, scores.objects.matched), std::make_tuple(3, 3, 1));
  // Segments under min_pixels are not objects: the speck (1 pixel) goes at 2; at 25 the grown 3 (24 pixels)
  // goes too, its match with it; at 37 nothing is left. Instances are counted whatever their size.
  const auto count = [&](int64_t min) {
    const auto o = instance_scores(predicted, truth, 2, min).objects;
    EXPECT_EQ(object_matches(predicted, truth, min).matched, o.matched);
    return std::make_tuple(o.true_objects, o.predicted_objects, o.matched);
  };
  EXPECT_EQ(count(2), std::make_tuple(3, 2, 1));
  EXPECT_EQ(count(24), std::make_tuple(3, 2, 1));
  EXPECT_EQ(count(25), std::make_tuple(3, 1, 0));
  EXPECT_EQ(count(37), std::make_tuple(3, 0, 0));
  const auto tiny = object_matches(truth.eq(3).to(torch::kLong), truth.eq(3).to(torch::kLong), 17);  // 16 pixels, exact
  EXPECT_EQ(std::make_tuple(tiny.true_objects, tiny.predicted_objects, tiny.matched), std::make_tuple(1, 0, 0));
  // Summed over images; NaN where nothing is there, 0 where one side is empty.
  ObjectScore sum = exact;
  sum += one;
  EXPECT_EQ(std::make_tuple(sum.true_objects, sum.predicted_objects, sum.matched), std::make_tuple(6, 6, 4));
  const auto none = object_matches(torch::zeros({10, 20}, torch::kLong), truth);
  EXPECT_TRUE(std::isnan(none.precision()));
  EXPECT_DOUBLE_EQ(none.recall(), 0.0);
  EXPECT_DOUBLE_EQ(none.f1(), 0.0);
  EXPECT_TRUE(std::isnan(object_matches(torch::zeros({2, 2}, torch::kLong), torch::zeros({2, 2}, torch::kLong)).f1()));
}

// Two square objects meeting at one corner: 8-connected, the prediction of both is one segment (their union, IoU 1/2
// with each: no match, and the pair is not separated); 4-connected (fcn eval --connectivity 6), two segments, each
// its object. By class as well; anything else is refused.
TEST(ObjectMatches, FourConnectedPartsObjectsThatMeetAtACorner) {
  auto ids = torch::zeros({8, 8}, torch::kLong);
  ids.slice(0, 1, 4).slice(1, 1, 4).fill_(1);
  ids.slice(0, 4, 7).slice(1, 4, 7).fill_(2);  // its corner (4,4) on 1's (3,3)
  const auto predicted = ids.gt(0).to(torch::kLong);
  const auto eight = instance_scores(predicted, ids), four = instance_scores(predicted, ids, 2, 1, {}, 4);
  EXPECT_EQ(std::make_tuple(eight.objects.predicted_objects, eight.objects.matched), std::make_tuple(1, 0));
  EXPECT_EQ(std::make_tuple(four.objects.predicted_objects, four.objects.matched), std::make_tuple(2, 2));
  EXPECT_EQ(std::make_tuple(eight.separation.touching_pairs, eight.separation.separated), std::make_tuple(1, 0));
  EXPECT_EQ(std::make_tuple(four.separation.touching_pairs, four.separation.separated), std::make_tuple(1, 1));
  EXPECT_DOUBLE_EQ(four.rand.error(), 0.0);
  EXPECT_GT(eight.rand.error(), 0.0);
  EXPECT_EQ(instance_scores(predicted, ids, 2, 1, predicted, 4).objects.matched, 2);  // by class: the same
  EXPECT_THROW(instance_scores(predicted, ids, 2, 1, {}, 6), c10::Error);
}

// With the ground truth's classes: each class's components are the segments, and a match needs the
// instance's class. By hand: two touching objects of classes 1 and 2, then one of them predicted as the
// wrong class.
TEST(ObjectMatches, ByClassTouchingObjectsOfTwoClassesAreTwo) {
  auto truth = torch::zeros({6, 8}, torch::kLong), ids = torch::zeros({6, 8}, torch::kLong);
  truth.slice(0, 1, 5).slice(1, 1, 4).fill_(1), ids.slice(0, 1, 5).slice(1, 1, 4).fill_(1);  // 12 pixels of class 1
  truth.slice(0, 1, 5).slice(1, 4, 7).fill_(2), ids.slice(0, 1, 5).slice(1, 4, 7).fill_(2);  // 12 of class 2, touching it
  truth[1][1] = 255;                                                                          // void: no vote
  const auto exact = instance_scores(truth.where(truth != 255, torch::ones_like(truth)), ids, 2, 1, truth).objects;
  EXPECT_EQ(std::make_tuple(exact.true_objects, exact.predicted_objects, exact.matched), std::make_tuple(2, 2, 2));
  const auto blind = instance_scores(truth.where(truth != 255, torch::ones_like(truth)), ids).objects;  // the foreground: one segment
  EXPECT_EQ(std::make_tuple(blind.predicted_objects, blind.matched), std::make_tuple(1, 0));
  auto wrong = truth.where(truth != 255, torch::ones_like(truth));
  wrong.slice(0, 1, 5).slice(1, 4, 7).fill_(3);  // the second object as class 3: its own segment, the wrong class
  const auto swapped = instance_scores(wrong, ids, 2, 1, truth).objects;
  EXPECT_EQ(std::make_tuple(swapped.predicted_objects, swapped.matched), std::make_tuple(2, 1));
  const auto binary = instance_scores(ids.gt(0).to(torch::kLong), ids, 2, 1, ids.gt(0).to(torch::kLong)).objects;  // binary: as without
  const auto plain = object_matches(ids.gt(0).to(torch::kLong), ids);
  EXPECT_EQ(std::make_tuple(binary.predicted_objects, binary.matched), std::make_tuple(plain.predicted_objects, plain.matched));
  EXPECT_EQ(instance_scores(torch::zeros({6, 8}, torch::kLong), torch::zeros({6, 8}, torch::kLong), 2, 1, torch::zeros({6, 8}, torch::kLong))
                .objects.true_objects,
            0);  // nothing anywhere
}

}  // namespace
}  // namespace fcn
