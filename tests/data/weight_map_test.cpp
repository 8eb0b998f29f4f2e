// U-Net's weight map against a brute-force PyTorch oracle (tests/oracle/unet_paper.py), and the
// instance tools it stands on: exact distance transform, connected components.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <tuple>
#include <vector>

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

// Through a volume of anisotropic voxels: each voxel's distance to the nearest true one, by brute force.
TEST(DistanceTransform, ThreeDimensionalWithSpacingIsExact) {
  torch::manual_seed(11);
  const auto mask = torch::rand({5, 7, 6}) > 0.93;
  ASSERT_GT(mask.sum().item<int64_t>(), 1);
  const std::array<double, 3> spacing = {2.5, 0.8, 0.6};
  const auto d = distance_transform_3d(mask, spacing);
  const auto points = mask.nonzero();
  for (int64_t z = 0; z < 5; ++z)
    for (int64_t y = 0; y < 7; ++y)
      for (int64_t x = 0; x < 6; ++x) {
        double best = std::numeric_limits<double>::infinity();
        for (int64_t i = 0; i < points.size(0); ++i)
          best = std::min(best, std::hypot((z - points[i][0].item<int64_t>()) * spacing[0], (y - points[i][1].item<int64_t>()) * spacing[1],
                                           (x - points[i][2].item<int64_t>()) * spacing[2]));
        ASSERT_NEAR(d[z][y][x].item<float>(), best, 1e-4) << z << "," << y << "," << x;
      }
  EXPECT_TRUE(std::isinf(distance_transform_3d(torch::zeros({2, 2, 2}, torch::kBool))[1][1][1].item<float>()));
  // Large enough that the threads share each axis's lines: still exact everywhere.
  const int64_t depth = 23, height = 41, width = 57;
  auto big = torch::zeros({depth, height, width}, torch::kBool);
  const std::vector<std::array<int64_t, 3>> seeds = {{0, 0, 0}, {22, 40, 56}, {11, 3, 50}, {5, 30, 9}, {17, 20, 28}};
  for (const auto& [z, y, x] : seeds) big[z][y][x] = true;
  const auto far = distance_transform_3d(big, spacing);
  const auto at = far.accessor<float, 3>();
  for (int64_t z = 0; z < depth; ++z)
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x) {
        double best = std::numeric_limits<double>::infinity();
        for (const auto& [sz, sy, sx] : seeds) best = std::min(best, std::hypot((z - sz) * spacing[0], (y - sy) * spacing[1], (x - sx) * spacing[2]));
        ASSERT_NEAR(at[z][y][x], best, 1e-4 * std::max(1.0, best)) << z << "," << y << "," << x;
      }
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

// Instances in one scan against a flood fill of each class by hand (breadth first from each unvisited pixel in
// raster order, classes ascending): the same ids on random label maps of several classes, void and negative
// values included, 4- and 8-connected, wide, tall and one-pixel shapes.
TEST(ConnectedComponents, InstancesEqualAFloodFillOfEachClass) {
  const auto flood = [](const torch::Tensor& labels, int64_t ignore, int connectivity) {
    const auto v = labels.to(torch::kLong).contiguous();
    const int64_t h = v.size(0), w = v.size(1);
    const int64_t* in = v.data_ptr<int64_t>();
    auto ids = torch::zeros({h, w}, torch::kLong);
    int64_t* id = ids.data_ptr<int64_t>();
    int64_t next = 0;
    std::vector<int64_t> classes(in, in + h * w);
    std::sort(classes.begin(), classes.end());
    classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
    for (const int64_t c : classes) {
      if (c == 0 || c == ignore) continue;
      for (int64_t start = 0; start < h * w; ++start) {
        if (in[start] != c || id[start] != 0) continue;
        std::vector<int64_t> queue{start};
        id[start] = ++next;
        for (size_t q = 0; q < queue.size(); ++q) {
          const int64_t y = queue[q] / w, x = queue[q] % w;
          for (int64_t dy = -1; dy <= 1; ++dy)
            for (int64_t dx = -1; dx <= 1; ++dx) {
              const int64_t ny = y + dy, nx = x + dx;
              if ((dy == 0 && dx == 0) || (connectivity == 4 && dy != 0 && dx != 0) || ny < 0 || nx < 0 || ny >= h || nx >= w) continue;
              if (in[ny * w + nx] == c && id[ny * w + nx] == 0) id[ny * w + nx] = next, queue.push_back(ny * w + nx);
            }
        }
      }
    }
    return ids;
  };
  torch::manual_seed(11);
  const auto values = torch::tensor({0, 1, 2, 7, 255, -3}, torch::kLong);
  for (const auto& size : std::vector<std::vector<int64_t>>{{23, 31}, {1, 40}, {40, 1}, {1, 1}, {64, 64}})
    for (const int64_t choices : {2, 6}) {
      const auto labels = values.index({torch::randint(0, choices, size, torch::kLong)});
      for (const int connectivity : {4, 8}) {
        EXPECT_TRUE(torch::equal(instances_from_labels(labels, 255, connectivity), flood(labels, 255, connectivity))) << size << " " << connectivity;
        EXPECT_TRUE(torch::equal(instances_from_labels(labels.to(torch::kInt), -1, connectivity), flood(labels, -1, connectivity)));
        EXPECT_TRUE(torch::equal(connected_components(labels == 2, connectivity), flood((labels == 2).to(torch::kLong), -1, connectivity)));
      }
    }
}

// 3-D objects by hand: links to the page before through the 9 pixels over a pixel, one class at a time;
// numbered by first page, then class, then raster order.
// Each chosen class's largest object kept, its others background, by hand: class 1 in blobs of 3 and 5
// pixels, class 2 in two of 2 (a tie: the lower id, the first in raster order, stays); void 255 untouched.
TEST(KeepLargestObjects, EachClassItsLargestObjectByHand) {
  const auto labels = torch::tensor({1, 1, 0, 1, 1, 0,  //
                                     1, 0, 0, 1, 1, 1,  //
                                     0, 2, 2, 0, 0, 0,  //
                                     255, 0, 0, 0, 2, 2}, torch::kByte).view({4, 6});
  const auto ids = instances_from_labels(labels, 255, 8);
  const auto all = keep_largest_objects(labels, ids);
  const auto expected = torch::tensor({0, 0, 0, 1, 1, 0,  //
                                       0, 0, 0, 1, 1, 1,  //
                                       0, 2, 2, 0, 0, 0,  //
                                       255, 0, 0, 0, 0, 0}, torch::kByte).view({4, 6});
  EXPECT_TRUE(torch::equal(all, expected)) << all;
  EXPECT_EQ(all.scalar_type(), torch::kByte);
  const auto only_two = keep_largest_objects(labels, ids, {2});  // class 1 left as it was
  EXPECT_TRUE(torch::equal(only_two.slice(0, 0, 2), labels.slice(0, 0, 2)));
  EXPECT_EQ(only_two[3][4].item<int>(), 0);
  EXPECT_TRUE(torch::equal(keep_largest_objects(labels, ids, {3}), labels));  // a class with no object
}

TEST(VolumeObjects, JoinsEachClassAcrossPagesByHand) {
  std::vector<torch::Tensor> pages(3, torch::zeros({6, 6}, torch::kLong));
  for (auto& page : pages) page = page.clone();
  pages[0].slice(0, 0, 2).slice(1, 0, 2).fill_(1);  // A (class 1)
  pages[0].slice(0, 4, 6).slice(1, 4, 6).fill_(2);  // B (class 2)
  pages[1][2][2] = 1;                               // diagonal to A's (1,1): A
  pages[1].slice(0, 4, 6).slice(1, 4, 6).fill_(1);  // over B but of class 1: C
  pages[1][0][5] = 2;                               // far from B: D
  pages[2][0][0] = 1;                               // nothing of class 1 over it on page 1: E
  pages[2][2][1] = 1;                               // beside page 1's (2,2): A
  VolumeObjects objects;
  for (const auto& page : pages) objects.add(page);
  EXPECT_EQ(objects.count(), 5);
  EXPECT_EQ(objects.per_class(3), (std::vector<int64_t>{0, 3, 2}));
  auto expected = torch::zeros({3, 6, 6}, torch::kLong);
  expected[0].slice(0, 0, 2).slice(1, 0, 2).fill_(1);
  expected[0].slice(0, 4, 6).slice(1, 4, 6).fill_(2);
  expected[1][2][2] = 1;
  expected[1].slice(0, 4, 6).slice(1, 4, 6).fill_(3);
  expected[1][0][5] = 4;
  expected[2][0][0] = 5;
  expected[2][2][1] = 1;
  for (int64_t k = 0; k < 3; ++k) EXPECT_TRUE(torch::equal(objects.page(k, pages[k]), expected[k])) << k;
  objects.add(torch::ones({5, 5}, torch::kLong));  // another size: not joined to the page before
  EXPECT_EQ(objects.count(), 6);
  EXPECT_EQ(objects.page(3, torch::ones({5, 5}, torch::kLong)).max().item<int64_t>(), 6);
  VolumeObjects with_void(255);  // a void page between two objects keeps them apart
  for (const int64_t value : {1, 255, 1}) with_void.add(torch::full({2, 2}, value, torch::kLong));
  EXPECT_EQ(with_void.count(), 2);
  EXPECT_EQ(with_void.per_class(2), (std::vector<int64_t>{0, 2}));
  // Each object's class and voxels by id (A: 4 + 1 + 1, B: 4, C: 4, D: 1, E: 1, the 5 x 5 page: 25), and
  // largest_objects_kept's choice from them as keep_largest_objects makes it over the stacked ids.
  EXPECT_EQ(objects.object_classes(), (std::vector<int64_t>{0, 1, 2, 1, 2, 1, 1}));
  EXPECT_EQ(objects.object_voxels(), (std::vector<int64_t>{0, 6, 4, 4, 1, 1, 25}));
  EXPECT_TRUE(torch::equal(largest_objects_kept(objects.object_classes(), objects.object_voxels()),
                           torch::tensor({true, false, true, false, false, false, true})));
  const auto first_three = torch::stack({pages[0], pages[1], pages[2]});
  VolumeObjects three;
  for (const auto& page : pages) three.add(page);
  const auto ids = torch::stack({three.page(0, pages[0]), three.page(1, pages[1]), three.page(2, pages[2])});
  auto by_table = first_three.clone();
  by_table.masked_fill_(largest_objects_kept(three.object_classes(), three.object_voxels(), {1}).logical_not().index({ids}), 0);
  EXPECT_TRUE(torch::equal(by_table, keep_largest_objects(first_three, ids, {1})));
  EXPECT_EQ(by_table.sum().item<int64_t>(), 6 * 1 + (4 + 1) * 2);  // A (class 1) kept, C and E not; B and D (class 2, not filtered)
}

// A 3-D flood fill of a D x H x W int64 label volume, one class at a time (0 none): neighbours at most
// `hops` unit steps away (1: 6-connected, 2: 18, 3: 26). The regions numbered 1.. in raster order of their first voxel.
torch::Tensor flood_fill(const torch::Tensor& volume, int hops, int64_t& filled) {
  const int64_t d = volume.size(0), h = volume.size(1), w = volume.size(2);
  auto flood = torch::zeros({d, h, w}, torch::kLong);
  const auto* v = volume.data_ptr<int64_t>();
  auto* f = flood.data_ptr<int64_t>();
  filled = 0;
  for (int64_t start = 0; start < d * h * w; ++start) {
    if (v[start] == 0 || f[start] != 0) continue;
    f[start] = ++filled;
    std::vector<int64_t> todo{start};
    while (!todo.empty()) {
      const int64_t at = todo.back(), z = at / (h * w), y = at / w % h, x = at % w;
      todo.pop_back();
      for (int64_t dz = -1; dz <= 1; ++dz)
        for (int64_t dy = -1; dy <= 1; ++dy)
          for (int64_t dx = -1; dx <= 1; ++dx) {
            const int64_t nz = z + dz, ny = y + dy, nx = x + dx, n = (nz * h + ny) * w + nx;
            if (std::abs(dz) + std::abs(dy) + std::abs(dx) > hops) continue;
            if (nz < 0 || nz >= d || ny < 0 || ny >= h || nx < 0 || nx >= w || f[n] != 0 || v[n] != v[at]) continue;
            f[n] = filled;
            todo.push_back(n);
          }
    }
  }
  return flood;
}

// VolumeObjects' ids through the volume, page by page.
torch::Tensor object_ids(VolumeObjects& objects, const torch::Tensor& volume) {
  for (int64_t k = 0; k < volume.size(0); ++k) objects.add(volume[k]);
  std::vector<torch::Tensor> pages;
  for (int64_t k = 0; k < volume.size(0); ++k) pages.push_back(objects.page(k, volume[k]));
  return torch::stack(pages);
}

// Against a 3-D flood fill (26-connected, one class at a time) over random labels: the same partition.
TEST(VolumeObjects, PartitionOfA26ConnectedFloodFill) {
  torch::manual_seed(3);
  const int64_t d = 5, h = 9, w = 11;
  const auto volume = torch::randint(0, 3, {d, h, w}, torch::kLong);
  VolumeObjects objects;
  const auto ids = object_ids(objects, volume);
  int64_t filled = 0;
  const auto flood = flood_fill(volume, 3, filled);
  EXPECT_EQ(objects.count(), filled);
  EXPECT_GT(filled, 3);
  // Components written by add() and numbered in place: the ids page() gives, each page labelled once.
  VolumeObjects written;
  auto in_place = torch::full({d, h, w}, -7, torch::kInt);
  for (int64_t k = 0; k < d; ++k) {
    auto page = in_place[k];
    written.add(volume[k], &page);
  }
  for (int64_t k = 0; k < d; ++k) {
    auto page = in_place[k];
    written.number_page(k, page);
  }
  EXPECT_TRUE(torch::equal(in_place.to(torch::kLong), ids));
  auto wrong = torch::full({h, w}, static_cast<int>(h * w), torch::kInt);  // more components than page 0 has
  EXPECT_THROW(written.number_page(0, wrong), c10::Error);
  // One id for one flood region and back: the pairs (id, flood) are as many as either's distinct values.
  const auto inside = volume > 0;
  const auto pairs = std::get<0>(torch::_unique(ids.masked_select(inside) * (filled + 1) + flood.masked_select(inside)));
  EXPECT_EQ(pairs.size(0), filled);
  EXPECT_TRUE(torch::equal(ids.gt(0), inside));
  EXPECT_EQ(ids.max().item<int64_t>(), filled);
  // With a minimum size: the flood regions of fewer voxels are 0 and uncounted, the others the same partition.
  const auto sizes = torch::bincount(flood.flatten(), {}, filled + 1);
  const int64_t min_voxels = 6;
  const auto kept = sizes.ge(min_voxels).index({flood}).logical_and(inside);
  const int64_t big = sizes.slice(0, 1).ge(min_voxels).sum().item<int64_t>();
  ASSERT_GT(big, 0);
  ASSERT_LT(big, filled);  // the threshold leaves some out
  VolumeObjects large(-1, min_voxels);
  for (int64_t k = 0; k < d; ++k) large.add(volume[k]);
  std::vector<torch::Tensor> large_pages;
  for (int64_t k = 0; k < d; ++k) large_pages.push_back(large.page(k, volume[k]));
  const auto large_ids = torch::stack(large_pages);
  EXPECT_EQ(large.count(), big);
  const auto per_class = large.per_class(3);
  EXPECT_EQ(per_class[0] + per_class[1] + per_class[2], big);
  EXPECT_TRUE(torch::equal(large_ids.gt(0), kept));
  EXPECT_EQ(large_ids.max().item<int64_t>(), big);
  const auto large_pairs = std::get<0>(torch::_unique(large_ids.masked_select(kept) * (filled + 1) + flood.masked_select(kept)));
  EXPECT_EQ(large_pairs.size(0), big);
}

// 18- and 6-connected objects (a challenge's rule where it names one): the partitions of flood fills of 2 and 1
// hops over random labels, and by hand: voxels meeting at a corner across pages, at an edge, and diagonally
// within a page.
TEST(VolumeObjects, EighteenAndSixConnectedAsTheirFloodFills) {
  torch::manual_seed(4);
  const auto volume = torch::randint(0, 3, {6, 10, 12}, torch::kLong);
  std::map<int, int64_t> counts;
  for (const auto& [connectivity, hops] : std::vector<std::pair<int, int>>{{26, 3}, {18, 2}, {6, 1}}) {
    VolumeObjects objects(-1, 1, connectivity);
    const auto ids = object_ids(objects, volume);
    int64_t filled = 0;
    const auto flood = flood_fill(volume, hops, filled);
    EXPECT_EQ(objects.count(), filled) << connectivity;
    const auto inside = volume > 0;
    const auto pairs = std::get<0>(torch::_unique(ids.masked_select(inside) * (filled + 1) + flood.masked_select(inside)));
    EXPECT_EQ(pairs.size(0), filled) << connectivity;  // one id for one flood region and back
    counts[connectivity] = filled;
  }
  EXPECT_LT(counts[26], counts[18]);
  EXPECT_LT(counts[18], counts[6]);
  // By hand, pages of 3 x 3 (page, row, column): (0,0,0) and (1,1,1) meet at a corner, (0,2,0) and (1,2,1) at an
  // edge, (0,0,0) and (0,1,1) at a corner within one page (an edge of the volume's voxels: 18-connected, not 6).
  auto corner = torch::zeros({2, 3, 3}, torch::kLong), edge = corner.clone(), diagonal = torch::zeros({1, 3, 3}, torch::kLong);
  corner[0][0][0] = 1, corner[1][1][1] = 1;
  edge[0][2][0] = 1, edge[1][2][1] = 1;
  diagonal[0][0][0] = 1, diagonal[0][1][1] = 1;
  const auto count = [](const torch::Tensor& labels, int connectivity) {
    VolumeObjects objects(-1, 1, connectivity);
    for (int64_t k = 0; k < labels.size(0); ++k) objects.add(labels[k]);
    return objects.count();
  };
  EXPECT_EQ(std::make_tuple(count(corner, 26), count(corner, 18), count(corner, 6)), std::make_tuple(1, 2, 2));
  EXPECT_EQ(std::make_tuple(count(edge, 26), count(edge, 18), count(edge, 6)), std::make_tuple(1, 1, 2));
  EXPECT_EQ(std::make_tuple(count(diagonal, 26), count(diagonal, 18), count(diagonal, 6)), std::make_tuple(1, 1, 2));
  EXPECT_THROW(VolumeObjects(-1, 1, 8), c10::Error);
}

}  // namespace
}  // namespace fcn
