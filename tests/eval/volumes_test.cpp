// Label volumes scored volume by volume (eval/volumes.h) against counts by hand: each volume's 3-D
// Dice per class, the class means over the volumes where a class is present, mL from the voxel size,
// void voxels, and the pairing of fcn predict's NAME-labels volumes with NAME truths and its errors.
#include <cmath>
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
  EXPECT_NE(test::error_of([&] { pair_label_volumes(root + "/masks", root + "/truth/a.nii"); }).find("masks: is a folder and"), std::string::npos);
  fs::create_directories(root + "/empty");
  EXPECT_NE(test::error_of([&] { pair_label_volumes(root + "/empty", root + "/truth"); }).find("holds no NIfTI label volume"), std::string::npos);
}

}  // namespace
}  // namespace fcn
