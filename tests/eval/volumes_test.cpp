// Label volumes scored volume by volume (eval/volumes.h) against counts by hand: each volume's 3-D
// Dice per class, the class means over the volumes where a class is present, mL from the voxel size,
// void voxels, and the pairing of fcn predict's NAME-labels volumes with NAME truths and its errors.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/eval/volumes.h"
#include "test_util.h"

namespace fcn {
namespace {

namespace fs = std::filesystem;

void save(const std::string& file, const std::vector<int64_t>& labels, int16_t slices) {
  const auto bytes = test::nifti_file(2, 1, labels, 4, 3, slices);  // uint8, 4 x 3 x slices
  std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Dice of class c by hand: 2 |P = c and T = c| / (|P = c| + |T = c|), T's void (255) voxels left out.
double dice_by_hand(const std::vector<int64_t>& predicted, const std::vector<int64_t>& truth, int64_t c) {
  double both = 0, p = 0, t = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] == 255) continue;
    const int64_t guess = predicted[i] == 255 ? 0 : predicted[i];
    both += guess == c && truth[i] == c, p += guess == c, t += truth[i] == c;
  }
  return p + t == 0 ? std::nan("") : 2 * both / (p + t);
}

struct SurfacesByHand {
  double hd95, nsd;
};

// HD95 and NSD by brute force: the surface voxels of each mask (a 6-neighbour outside it, past the edge
// too), every surface voxel's distance to the other surface (voxels 2 x 0.75 x 0.5 mm apart: z, y, x);
// HD95 the larger of the two directed 95th percentiles (linear interpolation, numpy's percentile), NSD
// the share of both surfaces' voxels within `tolerance` of the other (0 where one surface is empty).
SurfacesByHand surfaces_by_hand(const std::vector<int64_t>& predicted, const std::vector<int64_t>& truth, int64_t c, int64_t slices,
                                int64_t h = 3, int64_t w = 4, double tolerance = 2) {
  const auto mask = [&](const std::vector<int64_t>& labels) {
    std::vector<int64_t> m(labels.size());
    for (size_t i = 0; i < labels.size(); ++i) m[i] = labels[i] == c;
    return torch::tensor(m).view({slices, h, w});
  };
  const auto surface_points = [&](const torch::Tensor& m) {
    std::vector<std::array<int64_t, 3>> points;
    for (int64_t z = 0; z < slices; ++z)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          if (!m[z][y][x].item<int64_t>()) continue;
          bool edge = false;
          for (const auto& [dz, dy, dx] : std::vector<std::array<int64_t, 3>>{{1, 0, 0}, {-1, 0, 0}, {0, 1, 0}, {0, -1, 0}, {0, 0, 1}, {0, 0, -1}}) {
            const int64_t nz = z + dz, ny = y + dy, nx = x + dx;
            edge = edge || nz < 0 || nz >= slices || ny < 0 || ny >= h || nx < 0 || nx >= w || !m[nz][ny][nx].item<int64_t>();
          }
          if (edge) points.push_back({z, y, x});
        }
    return points;
  };
  const auto p = surface_points(mask(predicted)), t = surface_points(mask(truth));
  if (p.empty() || t.empty()) return {std::nan(""), p.empty() && t.empty() ? std::nan("") : 0.0};
  double within = 0;
  const auto directed = [&](const std::vector<std::array<int64_t, 3>>& from, const std::vector<std::array<int64_t, 3>>& to) {
    std::vector<double> d;
    for (const auto& a : from) {
      double best = std::numeric_limits<double>::infinity();
      for (const auto& b : to) best = std::min(best, std::hypot((a[0] - b[0]) * 2.0, (a[1] - b[1]) * 0.75, (a[2] - b[2]) * 0.5));
      d.push_back(best);
      within += best <= tolerance + 1e-9;
    }
    std::sort(d.begin(), d.end());
    const double at = 0.95 * static_cast<double>(d.size() - 1);
    const auto low = static_cast<size_t>(std::floor(at)), high = static_cast<size_t>(std::ceil(at));
    return d[low] + (d[high] - d[low]) * (at - static_cast<double>(low));
  };
  const double hd95 = std::max(directed(p, t), directed(t, p));
  return {hd95, within / static_cast<double>(p.size() + t.size())};
}

double hd95_by_hand(const std::vector<int64_t>& predicted, const std::vector<int64_t>& truth, int64_t c, int64_t slices, int64_t h = 3,
                    int64_t w = 4) {
  return surfaces_by_hand(predicted, truth, c, slices, h, w).hd95;
}

TEST(LabelVolumes, DicePerVolumeAndTheMeansByHand) {
  const auto root = test::temp_dir() + "/label_volumes";
  fs::remove_all(root);
  fs::create_directories(root + "/masks"), fs::create_directories(root + "/truth");
  std::vector<int64_t> truth_a(24), predicted_a(24), truth_b(12), predicted_b(12);
  for (size_t i = 0; i < 24; ++i) truth_a[i] = i % 3, predicted_a[i] = (i * 7) % 3;
  truth_a[5] = 255;       // void in the truth: not counted
  predicted_a[9] = 255;   // void in the prediction (a slice predict could not segment): background
  for (size_t i = 0; i < 12; ++i) truth_b[i] = i < 6, predicted_b[i] = i < 4;  // no class 2 in either: left out of its mean
  save(root + "/truth/a.nii", truth_a, 2), save(root + "/masks/a-labels.nii", predicted_a, 2);
  save(root + "/truth/b.nii", truth_b, 1), save(root + "/masks/b-labels.nii", predicted_b, 1);
  save(root + "/masks/a-instances.nii", predicted_a, 2);  // fcn predict's objects beside the labels: not scored
  std::ofstream(root + "/masks/._a-labels.nii") << "resource fork";
  const auto pairs = pair_label_volumes(root + "/masks", root + "/truth");
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0], (std::pair<std::string, std::string>{root + "/masks/a-labels.nii", root + "/truth/a.nii"}));
  const auto scores = score_label_volumes(pairs);
  EXPECT_EQ(scores.classes, 3);
  ASSERT_EQ(scores.volumes.size(), 2u);
  const auto& a = scores.volumes[0];
  const auto& b = scores.volumes[1];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.void_voxels, 1);
  for (int64_t c = 0; c < 3; ++c) EXPECT_NEAR(a.metrics.dice[static_cast<size_t>(c)], dice_by_hand(predicted_a, truth_a, c), 1e-12) << c;
  EXPECT_NEAR(b.metrics.dice[1], dice_by_hand(predicted_b, truth_b, 1), 1e-12);
  EXPECT_TRUE(std::isnan(b.metrics.dice[2]));
  EXPECT_NEAR(scores.mean_dice[1], (a.metrics.dice[1] + b.metrics.dice[1]) / 2, 1e-12);
  EXPECT_NEAR(scores.mean_dice[2], a.metrics.dice[2], 1e-12);  // b has none of class 2
  EXPECT_NEAR(scores.mean_foreground_dice, (scores.mean_dice[1] + scores.mean_dice[2]) / 2, 1e-12);
  const double voxel_ml = 0.5 * 0.75 * 2 / 1000;
  EXPECT_NEAR(a.true_ml[1], 8 * voxel_ml, 1e-12);                 // i % 3 == 1 for 8 of 24, none void
  EXPECT_NEAR(b.predicted_ml[1], 4 * voxel_ml, 1e-12);
  EXPECT_NEAR(b.true_ml[2], 0, 1e-12);
  EXPECT_EQ(scores.all.matrix().sum().item<int64_t>(), 23 + 12);  // every voxel but the truth's void one
  auto predicted_a_bg = predicted_a;  // the void voxel is background in the prediction
  predicted_a_bg[9] = 0;
  for (int64_t c = 1; c < 3; ++c) EXPECT_NEAR(a.hd95[static_cast<size_t>(c)], hd95_by_hand(predicted_a_bg, truth_a, c, 2), 1e-5) << c;
  EXPECT_NEAR(b.hd95[1], hd95_by_hand(predicted_b, truth_b, 1, 1), 1e-5);
  EXPECT_NEAR(b.hd95[1], 0.75, 1e-6);  // truth row 1's two voxels 0.75 mm from the prediction's row 0
  EXPECT_TRUE(std::isnan(a.hd95[0]) && std::isnan(b.hd95[2]));  // background; absent from both
  EXPECT_NEAR(scores.mean_hd95[1], (a.hd95[1] + b.hd95[1]) / 2, 1e-12);
  EXPECT_EQ(scores.nsd_tolerance_mm, 2.0);  // the default
  for (int64_t c = 1; c < 3; ++c)
    EXPECT_NEAR(a.nsd[static_cast<size_t>(c)], surfaces_by_hand(predicted_a_bg, truth_a, c, 2).nsd, 1e-12) << c;
  EXPECT_NEAR(b.nsd[1], 1.0, 1e-12);  // every surface voxel within 0.75 mm of the other surface
  EXPECT_TRUE(std::isnan(a.nsd[0]) && std::isnan(b.nsd[2]));
  EXPECT_NEAR(scores.mean_nsd[1], (a.nsd[1] + b.nsd[1]) / 2, 1e-12);
  EXPECT_NEAR(scores.mean_nsd[2], a.nsd[2], 1e-12);
  VolumeScoreOptions tight;  // b at half a millimetre: truth row 1's two voxels lie 0.75 mm from the prediction
  tight.nsd_tolerance_mm = 0.5;
  const auto strict = score_label_volumes(pairs, tight);
  EXPECT_NEAR(strict.volumes[1].nsd[1], surfaces_by_hand(predicted_b, truth_b, 1, 1, 3, 4, 0.5).nsd, 1e-12);
  EXPECT_NEAR(strict.volumes[1].nsd[1], 8.0 / 10.0, 1e-12);  // one slice: every voxel is surface; 4 + 6 of them, truth row 1's 2 too far
  EXPECT_EQ(strict.volumes[1].metrics.dice[1], b.metrics.dice[1]);
}

// Object-wise detection (lesion-wise) by hand, 26-connected: a true object found by one voxel of its class, one
// missed, a predicted object of no true voxel, one lying on a true object of another class (false), void no object;
// then 18- and 6-connected, where a corner no longer joins.
TEST(LabelVolumes, ObjectsFoundAndFalseByHand) {
  const std::string root = test::fresh_dir("label_objects");
  const int64_t w = 8, h = 6, slices = 4;
  std::vector<int64_t> truth(static_cast<size_t>(w * h * slices), 0), predicted(truth.size(), 0);
  const auto at = [&](int64_t s, int64_t r, int64_t c) { return static_cast<size_t>((s * h + r) * w + c); };
  for (int64_t s = 0; s < 2; ++s)
    for (int64_t r = 1; r < 3; ++r)
      for (int64_t c = 1; c < 3; ++c) truth[at(s, r, c)] = 1;  // A: a 2 x 2 x 2 block
  truth[at(2, 3, 3)] = 1;                                      // A too: a corner away from (1, 2, 2)
  truth[at(3, 4, 6)] = 1;                                      // B: one voxel, missed
  truth[at(0, 4, 5)] = truth[at(0, 5, 6)] = truth[at(0, 4, 6)] = 2;  // D, class 2
  truth[at(3, 0, 0)] = 255;                                    // void: no object
  predicted[at(2, 3, 3)] = 1;                                  // finds A through its corner
  predicted[at(3, 0, 7)] = 1;                                  // false: no truth there
  predicted[at(0, 4, 5)] = 1;                                  // false: on D, of another class
  predicted[at(0, 5, 6)] = 2;                                  // finds D
  const auto save_volume = [&](const std::string& file, const std::vector<int64_t>& labels) {
    const auto bytes = test::nifti_file(2, 1, labels, static_cast<int16_t>(w), static_cast<int16_t>(h), static_cast<int16_t>(slices));
    std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  save_volume(root + "/p.nii", predicted), save_volume(root + "/t.nii", truth);
  const auto scores = score_label_volumes({{root + "/p.nii", root + "/t.nii"}, {root + "/p.nii", root + "/t.nii"}});
  const auto& v = scores.volumes[0];
  EXPECT_EQ(v.true_objects, (std::vector<int64_t>{0, 2, 1}));
  EXPECT_EQ(v.found_objects, (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(v.predicted_objects, (std::vector<int64_t>{0, 3, 1}));
  EXPECT_EQ(v.false_objects, (std::vector<int64_t>{0, 2, 0}));
  EXPECT_EQ(scores.true_objects, (std::vector<int64_t>{0, 4, 2}));  // two volumes summed
  EXPECT_EQ(scores.false_objects, (std::vector<int64_t>{0, 4, 0}));
  EXPECT_TRUE(std::isnan(scores.object_sensitivity[0]));
  EXPECT_DOUBLE_EQ(scores.object_sensitivity[1], 0.5);
  EXPECT_DOUBLE_EQ(scores.object_precision[1], 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(scores.object_sensitivity[2], 1.0);
  EXPECT_DOUBLE_EQ(scores.object_precision[2], 1.0);
  // min_object 2: the one-voxel objects are specks, as if background: true B, and every predicted object (each one
  // voxel); A (9 voxels) and D (3) stay, found by none now. With a predicted voxel added beside the one on A, that
  // object (2 voxels) counts and finds A.
  VolumeScoreOptions large;
  large.min_object = 2;
  const auto big = score_label_volumes({{root + "/p.nii", root + "/t.nii"}}, large).volumes[0];
  EXPECT_EQ(big.true_objects, (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(big.predicted_objects, (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(big.found_objects, (std::vector<int64_t>{0, 0, 0}));
  predicted[at(2, 4, 4)] = 1;
  save_volume(root + "/p2.nii", predicted);
  const auto grown = score_label_volumes({{root + "/p2.nii", root + "/t.nii"}}, large).volumes[0];
  EXPECT_EQ(grown.predicted_objects, (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(grown.found_objects, (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(grown.false_objects, (std::vector<int64_t>{0, 0, 0}));
  large.min_object = 0;
  EXPECT_NE(test::error_of([&] { score_label_volumes({{root + "/p.nii", root + "/t.nii"}}, large); }).find("min_object must be at least 1"),
            std::string::npos);
  // 18- or 6-connected: A's corner voxel (2, 3, 3) is an object of its own, found by the predicted voxel on it, and
  // the block is missed; D's voxels touch by faces, one object still.
  for (const int connectivity : {18, 6}) {
    VolumeScoreOptions faces;
    faces.connectivity = connectivity;
    const auto split = score_label_volumes({{root + "/p.nii", root + "/t.nii"}}, faces);
    EXPECT_EQ(split.connectivity, connectivity);
    EXPECT_EQ(split.volumes[0].true_objects, (std::vector<int64_t>{0, 3, 1})) << connectivity;
    EXPECT_EQ(split.volumes[0].found_objects, (std::vector<int64_t>{0, 1, 1})) << connectivity;
    EXPECT_EQ(split.volumes[0].predicted_objects, v.predicted_objects) << connectivity;
    EXPECT_EQ(split.volumes[0].false_objects, v.false_objects) << connectivity;
  }
  large.min_object = 1, large.connectivity = 8;
  EXPECT_NE(test::error_of([&] { score_label_volumes({{root + "/p.nii", root + "/t.nii"}}, large); }).find("connectivity must be 6, 18 or 26"),
            std::string::npos);
}

// Balls with interiors (only their surfaces count), the prediction shifted and dented, in a volume
// larger than both (the distances are taken in their joint bounding box): HD95 as brute force gives it.
TEST(LabelVolumes, HausdorffOfBallsAgainstBruteForce) {
  const std::string root = test::fresh_dir("label_volume_balls");
  const int64_t d = 7, h = 14, w = 16;
  std::vector<int64_t> truth(static_cast<size_t>(d * h * w)), predicted(truth.size());
  for (int64_t z = 0; z < d; ++z)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const auto i = static_cast<size_t>((z * h + y) * w + x);
        truth[i] = std::hypot((z - 3) * 2.0, (y - 6) * 0.75, (x - 7) * 0.5) <= 3.2;
        predicted[i] = std::hypot((z - 3) * 2.0, (y - 7) * 0.75, (x - 10) * 0.5) <= 3.0 && !(z == 3 && y == 7);
        if (z == 0 && y < 2 && x < 2) predicted[i] = 2;  // a class the truth lacks: Dice and NSD 0, no HD95
      }
  const auto save_big = [&](const std::string& file, const std::vector<int64_t>& labels) {
    const auto bytes = test::nifti_file(2, 1, labels, w, h, d);
    std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  save_big(root + "/p.nii", predicted), save_big(root + "/t.nii", truth);
  VolumeScoreOptions options;
  options.nsd_tolerance_mm = 1.0;
  const auto scores = score_label_volumes({{root + "/p.nii", root + "/t.nii"}}, options);
  const auto expected = surfaces_by_hand(predicted, truth, 1, d, h, w, 1.0);
  EXPECT_GT(expected.hd95, 0.5);
  EXPECT_NEAR(scores.volumes[0].hd95[1], expected.hd95, 1e-5);
  EXPECT_GT(expected.nsd, 0.2);  // some surface voxels near, some far
  EXPECT_LT(expected.nsd, 0.9);
  EXPECT_NEAR(scores.volumes[0].nsd[1], expected.nsd, 1e-12);
  EXPECT_EQ(scores.volumes[0].nsd[2], 0.0);
  EXPECT_EQ(scores.volumes[0].metrics.dice[2], 0.0);
  EXPECT_TRUE(std::isnan(scores.volumes[0].hd95[2]));
  options.classes = 258;  // classes past the uint8 volumes' 255: none of their voxels (257 is not 1 wrapped)
  const auto wide = score_label_volumes({{root + "/p.nii", root + "/t.nii"}}, options);
  EXPECT_NEAR(wide.volumes[0].hd95[1], expected.hd95, 1e-5);
  EXPECT_TRUE(std::isnan(wide.volumes[0].hd95[257]) && std::isnan(wide.volumes[0].nsd[257]));
  EXPECT_EQ(wide.volumes[0].predicted_ml[257], 0.0);
}

// The distances and mL are in the truth header's voxel sizes: those sizes are reported, an axis whose size
// the header lacks counts a voxel as 1 mm (and mL unknown), and a prediction over other sizes is flagged.
TEST(LabelVolumes, VoxelSizesFromTheTruthHeader) {
  const std::string root = test::fresh_dir("label_volume_sizes");
  std::vector<int64_t> truth(24, 0), predicted(24, 0);
  truth[0] = 1, predicted[4 * 3 * 1 + 0] = 1;  // one voxel, one slice apart: 2 mm along z
  const auto write = [&](const std::string& file, const std::vector<int64_t>& labels, size_t pixdim_at, float size) {
    auto bytes = test::nifti_file(2, 1, labels, 4, 3, 2);
    std::memcpy(bytes.data() + pixdim_at, &size, sizeof size);  // pixdim[1..3] at 80, 84, 88 (little-endian)
    std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  write(root + "/t.nii", truth, 80, 0.5f), write(root + "/p.nii", predicted, 80, 0.5f);
  const auto same = score_label_volumes({{root + "/p.nii", root + "/t.nii"}}).volumes[0];
  EXPECT_EQ(same.voxel_mm, (std::array<double, 3>{0.5, 0.75, 2}));
  EXPECT_FALSE(same.voxel_sizes_differ);
  EXPECT_NEAR(same.hd95[1], 2.0, 1e-6);
  write(root + "/p.nii", predicted, 80, 0.6f);  // the prediction over other sizes: flagged, scored in the truth's
  const auto other = score_label_volumes({{root + "/p.nii", root + "/t.nii"}}).volumes[0];
  EXPECT_TRUE(other.voxel_sizes_differ);
  EXPECT_NEAR(other.hd95[1], 2.0, 1e-6);
  write(root + "/p.nii", predicted, 80, 0.5f);
  write(root + "/t.nii", truth, 88, 0.0f);  // the truth lacks the slice spacing: a voxel is 1 mm along z
  const auto unknown = score_label_volumes({{root + "/p.nii", root + "/t.nii"}}).volumes[0];
  EXPECT_TRUE(std::isnan(unknown.voxel_mm[2]));
  EXPECT_FALSE(unknown.voxel_sizes_differ);  // an unknown size differs from nothing
  EXPECT_NEAR(unknown.hd95[1], 1.0, 1e-6);
  EXPECT_TRUE(std::isnan(unknown.true_ml[1]));
  EXPECT_EQ(unknown.misalignment, "");  // test::nifti_file's sform maps only x: nothing to compare
  // Whole sforms: the prediction's first voxel 3 mm along x from the truth's is named, scored all the same.
  const auto placed = [&](const std::string& file, const std::vector<int64_t>& labels, float x0) {
    auto bytes = test::nifti_file(2, 1, labels, 4, 3, 2);
    const float rows[12] = {0.5F, 0, 0, x0, 0, 0.75F, 0, 0, 0, 0, 2, 0};
    for (size_t i = 0; i < 12; ++i) test::put<float>(bytes, 280 + 4 * i, rows[i]);
    std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  placed(root + "/t.nii", truth, 0), placed(root + "/p.nii", predicted, 0);
  EXPECT_EQ(score_label_volumes({{root + "/p.nii", root + "/t.nii"}}).volumes[0].misalignment, "");
  placed(root + "/p.nii", predicted, 3);
  const auto shifted = score_label_volumes({{root + "/p.nii", root + "/t.nii"}}).volumes[0];
  EXPECT_EQ(shifted.misalignment, "its first voxel lies 3 mm from that of " + root + "/t.nii: voxel for voxel, they do not pair the same places");
  EXPECT_NEAR(shifted.hd95[1], 2.0, 1e-6);
}

TEST(LabelVolumes, PairingAndBadVolumesAreErrorsNamingTheFile) {
  const auto root = test::temp_dir() + "/label_volume_errors";
  fs::remove_all(root);
  fs::create_directories(root + "/masks"), fs::create_directories(root + "/truth");
  const std::vector<int64_t> labels(12, 1);
  save(root + "/masks/a.nii", labels, 1), save(root + "/truth/a.nii", labels, 1), save(root + "/truth/b.nii", labels, 1);
  EXPECT_NE(test::error_of([&] { pair_label_volumes(root + "/masks", root + "/truth"); }).find("truth/b.nii: has no prediction in"), std::string::npos);
  save(root + "/masks/c.nii", labels, 1);
  EXPECT_NE(test::error_of([&] { pair_label_volumes(root + "/masks", root + "/truth"); }).find("masks/c.nii: has no ground truth c.nii.gz"), std::string::npos);
  // nnU-Net's channel 0: predict names imagesTs/c_0000.nii's labels c_0000-labels; its truth is c.
  fs::remove(root + "/masks/a.nii"), fs::remove(root + "/masks/c.nii");
  save(root + "/masks/a_0000-labels.nii", labels, 1), save(root + "/masks/b-labels.nii", labels, 1);
  const auto nn = pair_label_volumes(root + "/masks", root + "/truth");
  ASSERT_EQ(nn.size(), 2u);
  EXPECT_EQ(nn[0], (std::pair<std::string, std::string>{root + "/masks/a_0000-labels.nii", root + "/truth/a.nii"}));
  save(root + "/masks/c.nii", labels, 1);
  // Two files are paired as given, whatever their names.
  EXPECT_EQ(pair_label_volumes(root + "/masks/c.nii", root + "/truth/b.nii").size(), 1u);
  save(root + "/masks/wide.nii", std::vector<int64_t>(24, 1), 2);
  const auto sizes = test::error_of([&] { score_label_volumes({{root + "/masks/wide.nii", root + "/truth/a.nii"}}); });
  EXPECT_NE(sizes.find("wide.nii: is 4x3x2 voxels but its truth"), std::string::npos) << sizes;
  const auto scan = test::nifti_file(16, 4, std::vector<int64_t>(12, 0x3f000000), 4, 3, 1);  // float32 0.5: a scan, not labels
  std::ofstream(root + "/masks/scan.nii", std::ios::binary).write(scan.data(), static_cast<std::streamsize>(scan.size()));
  const auto fractional = test::error_of([&] { score_label_volumes({{root + "/masks/scan.nii", root + "/truth/a.nii"}}); });
  EXPECT_NE(fractional.find("scan.nii: holds fractional values"), std::string::npos) << fractional;
  VolumeScoreOptions negative;
  negative.nsd_tolerance_mm = -1;
  EXPECT_NE(test::error_of([&] { score_label_volumes({{root + "/masks/c.nii", root + "/truth/a.nii"}}, negative); }).find("NSD tolerance must be"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { pair_label_volumes(root + "/masks", root + "/truth/a.nii"); }).find("masks: is a folder and"), std::string::npos);
  fs::create_directories(root + "/empty");
  EXPECT_NE(test::error_of([&] { pair_label_volumes(root + "/empty", root + "/truth"); }).find("holds no NIfTI label volume"), std::string::npos);
}

}  // namespace
}  // namespace fcn
