// U-Net's weight map against a brute-force PyTorch oracle (tests/oracle/unet_paper.py), and the
// instance tools it stands on: exact distance transform, connected components.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/data/instances.h"
#include "fcn/data/weight_map.h"
#include "fcn/formats/npy.h"
#include "test_util.h"

namespace fcn {
namespace {

TEST(WeightMap, MatchesBruteForceOracleOnTouchingObjects) {
  const auto labels = read_npy(test::golden("wmap_labels.npy"));
  const auto instances = read_npy(test::golden("wmap_instances.npy"));
  const auto class_weights = read_npy(test::golden("wmap_class_weights.npy"));
  const auto paper = unet_weight_map(labels, instances, WeightMapOptions(), class_weights);
  EXPECT_LE((paper - read_npy(test::golden("wmap_expected.npy"))).abs().max().item<float>(), 1e-4);
  const auto other = unet_weight_map(labels, instances, WeightMapOptions().w0(3).sigma(2));
  EXPECT_LE((other - read_npy(test::golden("wmap_expected_w3_s2.npy"))).abs().max().item<float>(), 1e-4);
  // The gap column between the touching objects (x = 7) weighs most: d1 = d2 = 1.
  EXPECT_NEAR(paper[4][7].item<float>(), 0.5 + 10 * std::exp(-4.0 / 50.0), 1e-4);
  EXPECT_EQ(paper[0][3].item<float>(), 0.0f);  // void
}

TEST(WeightMap, OneObjectHasNoBorderTerm) {
  auto instances = torch::zeros({8, 8}, torch::kLong);
  instances.slice(0, 2, 5).slice(1, 2, 5).fill_(1);
  const auto w = unet_weight_map(instances.clamp_max(1), instances);
  EXPECT_TRUE(torch::equal(w, torch::ones({8, 8})));
}

TEST(WeightMap, WithoutInstancesComponentsOfEachClassStandIn) {
  auto labels = torch::zeros({6, 9}, torch::kLong);
  labels.slice(1, 1, 3).fill_(1);
  labels.slice(1, 4, 6).fill_(1);  // a second component of class 1
  labels.slice(1, 7, 9).fill_(2);
  labels[0][0] = 255;
  const auto instances = instances_from_labels(labels);
  EXPECT_EQ(instances.max().item<int64_t>(), 3);
  EXPECT_EQ(instances[3][1].item<int64_t>(), 1);
  EXPECT_EQ(instances[3][4].item<int64_t>(), 2);
  EXPECT_EQ(instances[3][8].item<int64_t>(), 3);
  EXPECT_EQ(instances[0][0].item<int64_t>(), 0);
}

// Diagonal neighbours are one object 8-connected and two 4-connected; classes never merge.
TEST(WeightMap, InstancesFromLabelsTakeTheConnectivityAsked) {
  auto labels = torch::zeros({5, 5}, torch::kLong);
  labels[1][1] = 1, labels[2][2] = 1;  // touching at a corner
  labels[2][3] = 2;                    // beside them, another class
  labels[4][0] = 1;
  const auto four = instances_from_labels(labels), eight = instances_from_labels(labels, 255, 8);
  EXPECT_EQ(four.max().item<int64_t>(), 4);
  EXPECT_EQ(eight.max().item<int64_t>(), 3);
  EXPECT_EQ(eight[1][1].item<int64_t>(), eight[2][2].item<int64_t>());
  EXPECT_NE(eight[2][2].item<int64_t>(), eight[2][3].item<int64_t>());
  EXPECT_NE(eight[1][1].item<int64_t>(), eight[4][0].item<int64_t>());
}

TEST(DistanceTransform, IsExactEuclidean) {
  auto mask = torch::zeros({11, 13}, torch::kBool);
  mask[2][3] = true;
  mask[8][10] = true;
  const auto d = distance_transform(mask);
  for (int64_t y = 0; y < 11; ++y)
    for (int64_t x = 0; x < 13; ++x) {
      const double expected = std::min(std::hypot(y - 2.0, x - 3.0), std::hypot(y - 8.0, x - 10.0));
      ASSERT_NEAR(d[y][x].item<float>(), expected, 1e-5) << y << "," << x;
    }
  EXPECT_TRUE(std::isinf(distance_transform(torch::zeros({3, 3}, torch::kBool))[1][1].item<float>()));
}

TEST(ConnectedComponents, FourAndEightConnectivity) {
  // Two pixels touching only at a corner: two components 4-connected, one 8-connected.
  auto mask = torch::zeros({4, 4}, torch::kBool);
  mask[1][1] = true;
  mask[2][2] = true;
  mask[3][0] = true;
  EXPECT_EQ(connected_components(mask, 4).max().item<int64_t>(), 3);
  const auto eight = connected_components(mask, 8);
  EXPECT_EQ(eight.max().item<int64_t>(), 2);
  EXPECT_EQ(eight[1][1].item<int64_t>(), eight[2][2].item<int64_t>());
  // A U shape joins in the second pass (union of provisional labels).
  auto u = torch::zeros({3, 5}, torch::kBool);
  u.select(1, 0).fill_(true);
  u.select(1, 4).fill_(true);
  u[2].fill_(true);
  EXPECT_EQ(connected_components(u, 4).max().item<int64_t>(), 1);
}

}  // namespace
}  // namespace fcn
