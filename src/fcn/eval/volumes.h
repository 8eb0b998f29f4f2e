// Predicted label volumes scored against ground-truth label volumes, volume by volume, as medical
// segmentation reports them (the Medical Segmentation Decathlon, nnU-Net, MONAI): each volume's 3-D Dice,
// IoU, normalised surface Dice (NSD) at a tolerance in mm and 95th-percentile Hausdorff distance (mm) per
// class, its true and predicted volume per class in millilitres, then each class's Dice, NSD and HD95
// averaged over the volumes (a class absent from both a volume's truth and prediction is left out of that
// mean: 0/0), besides the FCN paper's metrics over all voxels together.
//
//   const auto pairs = fcn::pair_label_volumes("masks/", "labelsTs/");  // NAME-labels.nii.gz <-> NAME.nii.gz
//   fcn::VolumeScoreOptions options;
//   options.nsd_tolerance_mm = 1.0;
//   const fcn::VolumeScores scores = fcn::score_label_volumes(pairs, options);
//   scores.mean_dice[1];  // class 1's Dice, the mean over the volumes
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "fcn/eval/metrics.h"

namespace fcn {

// {prediction, truth} file pairs. `predictions` and `truth` are each a NIfTI label volume (.nii,
// .nii.gz) or a folder of them (hidden files left out). Folders pair by name: a prediction
// NAME-labels.nii.gz (fcn predict's, whose -instances and -probs volumes beside it are not scored) or
// NAME.nii(.gz) with the truth NAME.nii(.gz) (NAME_0000, nnU-Net's channel 0, with NAME). fcn::Error naming the file: a prediction without its truth,
// a truth without its prediction (a subset would pass for the whole), a folder with no volume.
std::vector<std::pair<std::string, std::string>> pair_label_volumes(const std::string& predictions, const std::string& truth);

struct VolumeScore {
  std::string name, prediction, truth;
  SegmentationMetrics metrics;                 // this volume's voxels: dice, iou per class (NaN: 0/0)
  std::vector<double> true_ml, predicted_ml;   // each class's volume (NaN where the header gives no voxel size)
  // Each class's 95th-percentile Hausdorff distance between the predicted and true surfaces, in mm (in
  // voxels along an axis whose size the header lacks); NaN for background and where either is empty.
  std::vector<double> hd95;
  // Each class's normalised surface Dice (Nikolov et al. 2021): the fraction of both surfaces' voxels
  // that lie within the tolerance of the other surface, (|S_P within tau of S_T| + |S_T within tau of
  // S_P|) / (|S_P| + |S_T|); 0 where one of them is empty, NaN for background and where both are.
  // Surface voxels count alike, as MONAI's compute_surface_dice (use_subvoxels off) and nnU-Net's
  // normalized_surface_dice count them, not weighted by their surface area as DeepMind's surface-distance
  // package weights them: compare with the former.
  std::vector<double> nsd;
  // The truth header's voxel sides {x, y, z} in mm, which the distances and mL are in (NaN: the header
  // lacks that size); and whether the prediction's header gives other sizes (a volume resampled or from
  // another scan: scored on the truth's grid all the same, as its voxels are paired one for one).
  std::array<double, 3> voxel_mm{};
  bool voxel_sizes_differ = false;
  // Where both headers place their voxels and the prediction's do not lie over the truth's (a turned or
  // flipped axis, first voxels apart): nifti_misalignment's words, naming the truth; "" where they do.
  std::string misalignment;
  int64_t void_voxels = 0;                     // voxels the prediction left void (255: a slice it could not segment)
  // Object-wise detection per class (lesion-wise, as LiTS and BraTS score tumours): the objects (26-connected, or
  // as VolumeScoreOptions::connectivity says) of each class in the truth and in the prediction (VolumeObjects'); a
  // true object is found where a predicted voxel of its class lies in it, a predicted object is false where no true
  // voxel of its class lies in it.
  // Objects of fewer than VolumeScoreOptions::min_object voxels are not counted. 0 for background.
  std::vector<int64_t> true_objects, found_objects, predicted_objects, false_objects;
};

struct VolumeScores {
  std::vector<VolumeScore> volumes;  // in pair order
  int64_t classes = 0;               // the largest label in any volume + 1 (void 255 left out)
  std::vector<double> mean_dice;     // per class over the volumes where it is defined (NaN: none)
  double mean_foreground_dice = 0;   // classes 1.. of mean_dice, averaged (NaN: none defined)
  std::vector<double> mean_hd95;     // per class over the volumes where it is defined (NaN: none)
  std::vector<double> mean_nsd;      // the same for the NSD
  // Object-wise detection summed over the volumes (VolumeScore's), and from them each class's sensitivity
  // (found / true objects) and precision ((predicted - false) / predicted objects); NaN where 0/0.
  std::vector<int64_t> true_objects, found_objects, predicted_objects, false_objects;
  std::vector<double> object_sensitivity, object_precision;
  int64_t min_object = 1;            // the smallest object counted, in voxels (VolumeScoreOptions')
  int connectivity = 26;             // how voxels joined into objects (VolumeScoreOptions')
  double nsd_tolerance_mm = 0;       // the tolerance the NSD was taken at
  ConfusionMatrix all{1};            // every voxel of every volume: the FCN paper's metrics over them
};

struct VolumeScoreOptions {
  int64_t classes = 0;            // 0: from the labels (the largest + 1)
  // The NSD's tolerance: how far (mm) a surface may lie from the other and still count as agreeing. No
  // one value fits every structure (the Decathlon chose one per task, from how far two raters' outlines
  // lie apart); 2 mm is what several CT challenges used. Voxels along an axis whose size the header
  // lacks count as 1 mm there.
  double nsd_tolerance_mm = 2.0;
  // Objects of fewer voxels (through the volume) are not objects in the object-wise counts, true or predicted
  // (specks: a one-voxel false positive then does not count; fcn predict --min-object leaves such out alike).
  int64_t min_object = 1;
  // Voxels of a class that touch by a face, edge or corner are one object (26), by a face or edge (18), or by a
  // face alone (6): a challenge's own rule, where it names one (VolumeObjects).
  int connectivity = 26;
};

// Reads each pair (one volume pair in memory at a time), checks the sizes agree and the labels are
// integers 0..65535, and scores it; truth voxels labelled 255 are void (not counted) where 255 is
// not a class, and void (255) predicted voxels count as background. progress(done, total) after each
// pair. fcn::Error for classes outside 0..1024 or a tolerance that is not a finite number >= 0.
VolumeScores score_label_volumes(const std::vector<std::pair<std::string, std::string>>& pairs, const VolumeScoreOptions& options = {},
                                 const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace fcn
