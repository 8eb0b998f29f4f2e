#include "fcn/eval/volumes.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include <torch/torch.h>

#include "fcn/data/instances.h"
#include "fcn/formats/image.h"
#include "fcn/formats/nifti.h"
#include "fcn/util/error.h"
#include "fcn/util/quantile.h"

namespace fcn {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kVoid = 255;
constexpr int64_t kMostClasses = 1024;  // a K x K confusion per volume: label volumes of objects are not classes

bool ends_with(const std::string& text, const std::string& end) {
  return text.size() >= end.size() && text.compare(text.size() - end.size(), end.size(), end) == 0;
}

// The NIfTI volumes of a folder by stem (hidden files left out), or the one file given.
std::map<std::string, std::string> volumes_in(const std::string& path, const std::string& what) {
  std::map<std::string, std::string> found;
  if (!fs::is_directory(path)) {
    if (!is_nifti_path(path)) fail(path, "is not a NIfTI label volume (.nii, .nii.gz) or a folder of them (" + what + ")");
    found[nifti_stem(path)] = path;
    return found;
  }
  for (const auto& entry : fs::directory_iterator(path)) {
    const auto file = entry.path().string();
    if (is_hidden(file) || !is_nifti_path(file) || entry.is_directory()) continue;
    if (const auto [at, added] = found.emplace(nifti_stem(file), file); !added) fail(file, "and " + at->second + " are one volume by name: keep one");
  }
  if (found.empty()) fail(path, "holds no NIfTI label volume (.nii, .nii.gz) (" + what + ")");
  return found;
}

// A label volume's voxels as class indices, checked: integers, 0..65535. Integer voxels are used as
// they lie (a CT volume is tens of millions of voxels: int32 copies of both volumes were 2 x 4 bytes a
// voxel); int64 and float voxels (labels stored as float) become int32.
torch::Tensor labels_of(const NiftiVolume& volume, const std::string& path) {
  const auto& v = volume.voxels;
  if (v.is_floating_point() && !torch::equal(v, v.round()))
    fail(path, "holds fractional values: a label volume holds class indices (is it a scan or probabilities?)");
  if (v.numel() == 0) return v.to(torch::kInt);
  const auto [low, high] = torch::aminmax(v);
  if (low.item<double>() < 0 || high.item<double>() > 65535) fail(path, "holds values outside 0..65535: a label volume holds class indices");
  return v.is_floating_point() || v.scalar_type() == torch::kLong ? v.to(torch::kInt) : v;
}

// Voxels per label value (0..the largest; void's entry included): one pass, no copy of the volume.
std::vector<int64_t> label_counts(const torch::Tensor& labels) {
  const auto counts = torch::bincount(labels.flatten()).contiguous();
  return {counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.numel()};
}

// Classes 0..classes-1's voxels (`counts` from label_counts, void's taken out), times `ml`.
std::vector<double> volumes_ml(const std::vector<int64_t>& counts, int64_t classes, double ml) {
  std::vector<double> out(static_cast<size_t>(classes), 0.0);
  for (size_t c = 0; c < std::min(out.size(), counts.size()); ++c) out[c] = static_cast<double>(counts[c]) * ml;
  return out;
}

// The largest label with a voxel, void's left out; 0 where there is none.
int64_t largest_label(const std::vector<int64_t>& counts) {
  for (auto c = static_cast<int64_t>(counts.size()) - 1; c > 0; --c)
    if (counts[static_cast<size_t>(c)] > 0 && c != kVoid) return c;
  return 0;
}

// The voxels of `mask` (D x H x W bool) with a 6-neighbour outside it (past the volume's edge counts as
// outside): one pass, one tensor made (six shifted copies of the box were ten).
torch::Tensor surface(const torch::Tensor& mask) {
  const auto m = mask.contiguous();
  const int64_t d = m.size(0), h = m.size(1), w = m.size(2), plane = h * w;
  auto out = torch::zeros(m.sizes(), torch::kBool);
  const bool* in = m.data_ptr<bool>();
  bool* edge = out.data_ptr<bool>();
  at::parallel_for(0, d, 1, [&](int64_t from, int64_t to) {
    for (int64_t z = from; z < to; ++z)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const int64_t i = z * plane + y * w + x;
          edge[i] = in[i] && (z == 0 || z == d - 1 || y == 0 || y == h - 1 || x == 0 || x == w - 1 || !in[i - plane] || !in[i + plane] ||
                              !in[i - w] || !in[i + w] || !in[i - 1] || !in[i + 1]);
        }
  });
  return out;
}

// The values of `grid` (float) where `mask` (bool, the same shape, both contiguous) is set, in raster
// order: masked_select, without the int64 copy and prefix sum of the mask it makes (16 bytes a voxel).
torch::Tensor values_on(const torch::Tensor& grid, const torch::Tensor& mask) {
  const float* value = grid.data_ptr<float>();
  const bool* set = mask.data_ptr<bool>();
  const int64_t n = mask.numel();
  auto out = torch::empty({static_cast<int64_t>(std::count(set, set + n, true))}, torch::kFloat);
  float* to = out.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i)
    if (set[i]) *to++ = value[i];
  return out;
}

struct SurfaceScores {
  double hd95 = std::nan(""), nsd = std::nan("");
};

// How the surfaces of class `c`, present in both label volumes `predicted_labels` and `truth_labels`
// (voxels `spacing` {z, y, x} apart), lie to each other: the 95th-percentile Hausdorff distance, the
// larger of the two directed 95th percentiles of each surface voxel's distance to the other surface (as
// MONAI computes it), and the normalised surface Dice at `tolerance` (VolumeScore::nsd).
SurfaceScores surface_scores(const torch::Tensor& predicted_labels, const torch::Tensor& truth_labels, int64_t c, std::array<double, 3> spacing,
                             double tolerance) {
  // Both masks lie in their joint bounding box, found a slab of slices at a time (no mask of the whole
  // volume is made): the transform there is exact.
  const int64_t slices = truth_labels.size(0), plane = truth_labels.size(1) * truth_labels.size(2);
  const int64_t slab = std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(plane, 1));
  std::vector<torch::Tensor> in_slices;
  auto in_rows = torch::zeros({truth_labels.size(1)}, torch::kBool), in_columns = torch::zeros({truth_labels.size(2)}, torch::kBool);
  for (int64_t from = 0; from < slices; from += slab) {
    const int64_t to = std::min(slices, from + slab);
    const auto either = predicted_labels.slice(0, from, to).eq(c) | truth_labels.slice(0, from, to).eq(c);
    const auto rows = either.any(2);  // slab x H
    in_slices.push_back(rows.any(1)), in_rows |= rows.any(0), in_columns |= either.any(1).any(0);
  }
  const std::array<torch::Tensor, 3> present = {torch::cat(in_slices).nonzero(), in_rows.nonzero(), in_columns.nonzero()};
  auto p = predicted_labels, t = truth_labels;
  for (int64_t axis = 0; axis < 3; ++axis) {
    const auto& at = present[static_cast<size_t>(axis)];
    const int64_t from = at.min().item<int64_t>(), to = at.max().item<int64_t>() + 1;
    p = p.slice(axis, from, to), t = t.slice(axis, from, to);
  }
  p = p.eq(c), t = t.eq(c);
  const auto surface_p = surface(p), surface_t = surface(t);
  const auto to_truth = values_on(distance_transform_3d(surface_t, spacing), surface_p);
  const auto to_predicted = values_on(distance_transform_3d(surface_p, spacing), surface_t);
  // float32 distances: a distance equal to the tolerance (2 mm at 2 mm spacing) counts, rounding aside.
  const double within = tolerance * (1 + 1e-6);
  const auto agreeing = to_truth.le(within).sum().item<int64_t>() + to_predicted.le(within).sum().item<int64_t>();
  return {std::max(linear_quantiles(to_truth, {0.95})[0], linear_quantiles(to_predicted, {0.95})[0]),
          static_cast<double>(agreeing) / static_cast<double>(to_truth.numel() + to_predicted.numel())};
}

// VolumeScore's object-wise detection for classes 0..k-1 of the two label volumes (truth void: no object; the
// prediction's void already background): each volume's slices labelled once (VolumeObjects), and each pair of a
// true and a predicted component that share a voxel of one class noted; after the last slice, the pair's two
// objects mark each other where both are objects (not specks under min_object: as if they were background). No
// volume of ids is held, and no slice labelled twice.
void score_objects(const torch::Tensor& predicted, const torch::Tensor& truth, int64_t k, const VolumeScoreOptions& options, VolumeScore& score) {
  VolumeObjects truth_objects(kVoid, options.min_object, options.connectivity), predicted_objects(kVoid, options.min_object, options.connectivity);
  const int64_t slices = truth.size(0);
  auto truth_components = torch::empty({truth.size(1), truth.size(2)}, torch::kInt), predicted_components = torch::empty_like(truth_components);
  std::vector<std::array<int64_t, 3>> pairs;  // (slice, true component, predicted component) sharing a voxel of a class
  for (int64_t d = 0; d < slices; ++d) {
    truth_objects.add(truth[d], &truth_components), predicted_objects.add(predicted[d], &predicted_components);
    const auto agree = predicted[d].eq(truth[d]).logical_and_(truth[d].ne(0)).logical_and_(truth[d].ne(kVoid)).contiguous();
    const bool* same = agree.data_ptr<bool>();
    const int32_t *t = truth_components.data_ptr<int32_t>(), *p = predicted_components.data_ptr<int32_t>();
    std::set<std::pair<int32_t, int32_t>> seen;
    std::pair<int32_t, int32_t> last{0, 0};
    for (int64_t i = 0, n = truth_components.numel(); i < n; ++i) {
      if (!same[i] || (t[i] == last.first && p[i] == last.second)) continue;  // runs of one pair: looked up once
      last = {t[i], p[i]};
      if (seen.insert(last).second) pairs.push_back({d, t[i], p[i]});
    }
  }
  std::vector<char> truth_hit(static_cast<size_t>(truth_objects.count() + 1), 0), predicted_hit(static_cast<size_t>(predicted_objects.count() + 1), 0);
  for (const auto& [d, t, p] : pairs) {
    const int64_t true_id = truth_objects.object_of(d, t), predicted_id = predicted_objects.object_of(d, p);
    if (true_id > 0 && predicted_id > 0) truth_hit[static_cast<size_t>(true_id)] = predicted_hit[static_cast<size_t>(predicted_id)] = 1;
  }
  for (auto* counts : {&score.true_objects, &score.found_objects, &score.predicted_objects, &score.false_objects}) counts->assign(static_cast<size_t>(k), 0);
  const auto tally = [k](const std::vector<int64_t>& classes, const std::vector<char>& hit, std::vector<int64_t>& all, std::vector<int64_t>& marked, bool count_hit) {
    for (size_t id = 1; id < classes.size(); ++id)
      if (classes[id] > 0 && classes[id] < k) ++all[static_cast<size_t>(classes[id])], marked[static_cast<size_t>(classes[id])] += (hit[id] != 0) == count_hit;
  };
  tally(truth_objects.object_classes(), truth_hit, score.true_objects, score.found_objects, true);
  tally(predicted_objects.object_classes(), predicted_hit, score.predicted_objects, score.false_objects, false);
}

// One pair scored with its own class count; its confusion returned for the whole.
VolumeScore score_pair(const std::string& prediction_path, const std::string& truth_path, const VolumeScoreOptions& options,
                       torch::Tensor& confusion) {
  const auto truth_volume = read_nifti(truth_path);
  auto truth = labels_of(truth_volume, truth_path);
  const auto predicted_volume = read_nifti(prediction_path);  // its voxels are the labels below (void made 0 in place)
  auto predicted = labels_of(predicted_volume, prediction_path);
  if (predicted.sizes() != truth.sizes())
    fail(prediction_path, "is " + std::to_string(predicted.size(2)) + "x" + std::to_string(predicted.size(1)) + "x" + std::to_string(predicted.size(0)) +
                              " voxels but its truth " + truth_path + " is " + std::to_string(truth.size(2)) + "x" + std::to_string(truth.size(1)) +
                              "x" + std::to_string(truth.size(0)));
  VolumeScore score;
  score.name = nifti_stem(truth_path), score.prediction = prediction_path, score.truth = truth_path;
  // Counts by label (bool sums would cast the volume to int64: 8 bytes a voxel).
  auto predicted_counts = label_counts(predicted), truth_counts = label_counts(truth);
  if (predicted_counts.size() > kVoid) {  // a slice predict could not segment: background
    score.void_voxels = predicted_counts[kVoid];
    if (score.void_voxels > 0) predicted.masked_fill_(predicted.eq(kVoid), 0);
    predicted_counts[0] += predicted_counts[kVoid], predicted_counts[kVoid] = 0;
  }
  if (truth_counts.size() > kVoid) truth_counts[kVoid] = 0;  // not scored
  const int64_t most_predicted = largest_label(predicted_counts);
  const int64_t most = std::max(most_predicted, largest_label(truth_counts));
  if (most >= kMostClasses)
    fail(most == most_predicted ? prediction_path : truth_path,
         "holds label " + std::to_string(most) + ": per-class scores go up to " + std::to_string(kMostClasses) + " classes (is it a volume of object ids?)");
  const int64_t k = std::max(options.classes, most + 1);
  ConfusionMatrix matrix(k);
  matrix.update(predicted, truth, kVoid);
  confusion = matrix.matrix();  // its metrics over every volume's classes: score_label_volumes
  const double ml = nifti_voxel_ml(truth_volume);
  score.true_ml = volumes_ml(truth_counts, k, ml);
  score.predicted_ml = volumes_ml(predicted_counts, k, ml);
  const auto mm = nifti_voxel_mm(truth_volume);  // {x, y, z}; unknown sizes as 1
  const auto predicted_mm = nifti_voxel_mm(predicted_volume);
  score.voxel_mm = mm;
  score.misalignment = nifti_misalignment(predicted_volume, truth_volume, truth_path);
  for (size_t axis = 0; axis < 3; ++axis)
    score.voxel_sizes_differ |= !std::isnan(mm[axis]) && !std::isnan(predicted_mm[axis]) && std::abs(mm[axis] - predicted_mm[axis]) > 1e-4 * mm[axis];
  const std::array<double, 3> spacing = {std::isnan(mm[2]) ? 1 : mm[2], std::isnan(mm[1]) ? 1 : mm[1], std::isnan(mm[0]) ? 1 : mm[0]};
  score.hd95.assign(static_cast<size_t>(k), std::nan("")), score.nsd.assign(static_cast<size_t>(k), std::nan(""));
  const auto has = [](const std::vector<int64_t>& counts, int64_t c) {
    return c < static_cast<int64_t>(counts.size()) && counts[static_cast<size_t>(c)] > 0;
  };
  for (int64_t c = 1; c < k; ++c) {
    // A class one volume lacks is scored by its counts (no surface; and eq(c) past a uint8 volume's 255 would wrap).
    const bool in_predicted = has(predicted_counts, c), in_truth = has(truth_counts, c);
    const auto surfaces = in_predicted && in_truth ? surface_scores(predicted, truth, c, spacing, options.nsd_tolerance_mm)
                          : in_predicted || in_truth ? SurfaceScores{std::nan(""), 0.0}
                                                     : SurfaceScores{};
    score.hd95[static_cast<size_t>(c)] = surfaces.hd95, score.nsd[static_cast<size_t>(c)] = surfaces.nsd;
  }
  score_objects(predicted, truth, k, options, score);
  return score;
}

// A K x K confusion padded with zeros to `classes`.
torch::Tensor padded(const torch::Tensor& matrix, int64_t classes) {
  auto out = torch::zeros({classes, classes}, torch::kLong);
  out.slice(0, 0, matrix.size(0)).slice(1, 0, matrix.size(1)).copy_(matrix);
  return out;
}

// Each class's score (`of` a volume) averaged over the volumes where it is defined (not NaN); NaN where none.
template <typename Of>
std::vector<double> mean_over_volumes(const std::vector<VolumeScore>& volumes, int64_t classes, Of&& of) {
  std::vector<double> means(static_cast<size_t>(classes), std::nan(""));
  for (size_t c = 0; c < means.size(); ++c) {
    double sum = 0;
    int64_t n = 0;
    for (const auto& volume : volumes)
      if (const double value = of(volume)[c]; !std::isnan(value)) sum += value, ++n;
    if (n > 0) means[c] = sum / static_cast<double>(n);
  }
  return means;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> pair_label_volumes(const std::string& predictions, const std::string& truth) {
  if (fs::is_directory(predictions) != fs::is_directory(truth))
    fail(fs::is_directory(predictions) ? predictions : truth, "is a folder and " + (fs::is_directory(predictions) ? truth : predictions) +
                                                                 " one volume: score a folder against a folder, a volume against a volume");
  auto predicted = volumes_in(predictions, "the predictions");
  const auto truths = volumes_in(truth, "the ground truth");
  const bool from_predict = std::any_of(predicted.begin(), predicted.end(), [](const auto& p) { return ends_with(p.first, "-labels"); });
  std::map<std::string, std::string> by_name;  // truth stem -> prediction
  for (const auto& [stem, path] : predicted) {
    if (from_predict && !ends_with(stem, "-labels")) continue;  // fcn predict's -instances and -probs volumes
    by_name[from_predict ? stem.substr(0, stem.size() - 7) : stem] = path;
  }
  if (!fs::is_directory(predictions)) return {{predicted.begin()->second, truths.begin()->second}};  // two files: paired as given
  std::vector<std::pair<std::string, std::string>> pairs;
  std::map<std::string, std::string> scored;  // truth name -> prediction
  for (const auto& [name, path] : by_name) {
    auto found = truths.find(name);
    if (const auto [case_name, channel] = nnunet_channel(name); found == truths.end() && channel == 0) found = truths.find(case_name);
    if (found == truths.end()) fail(path, "has no ground truth " + name + ".nii.gz or " + name + ".nii in " + truth);
    if (const auto [at, added] = scored.emplace(found->first, path); !added) fail(path, "and " + at->second + " both predict " + found->second);
    pairs.emplace_back(path, found->second);
  }
  for (const auto& [name, path] : truths)
    if (!scored.count(name))
      fail(path, "has no prediction in " + predictions + " (" + name + (from_predict ? "-labels" : "") + ".nii.gz): every volume is scored or none");
  return pairs;
}

VolumeScores score_label_volumes(const std::vector<std::pair<std::string, std::string>>& pairs, const VolumeScoreOptions& options,
                                 const std::function<void(int64_t, int64_t)>& progress) {
  if (pairs.empty()) fail("score_label_volumes", "no volumes to score");
  if (options.classes < 0 || options.classes > kMostClasses)
    fail("score_label_volumes", "classes must be 0..1024, got " + std::to_string(options.classes));
  if (options.min_object < 1) fail("score_label_volumes", "min_object must be at least 1 voxel, got " + std::to_string(options.min_object));
  if (!is_volume_connectivity(options.connectivity))
    fail("score_label_volumes", "connectivity must be 6, 18 or 26, got " + std::to_string(options.connectivity));
  if (!std::isfinite(options.nsd_tolerance_mm) || options.nsd_tolerance_mm < 0)
    fail("score_label_volumes", "the NSD tolerance must be a finite number of mm >= 0, got " + std::to_string(options.nsd_tolerance_mm));
  VolumeScores scores;
  scores.nsd_tolerance_mm = options.nsd_tolerance_mm, scores.min_object = options.min_object, scores.connectivity = options.connectivity;
  std::vector<torch::Tensor> confusions;
  for (const auto& [prediction, truth] : pairs) {
    confusions.emplace_back();
    scores.volumes.push_back(score_pair(prediction, truth, options, confusions.back()));
    scores.classes = std::max(scores.classes, confusions.back().size(0));
    if (progress) progress(static_cast<int64_t>(scores.volumes.size()), static_cast<int64_t>(pairs.size()));
  }
  const int64_t k = scores.classes;
  scores.all = ConfusionMatrix(k);
  for (size_t v = 0; v < scores.volumes.size(); ++v) {
    auto& volume = scores.volumes[v];
    scores.all.add(padded(confusions[v], k));
    ConfusionMatrix own(k);  // the volume's scores again, every class listed
    own.add(padded(confusions[v], k));
    volume.metrics = own.metrics();
    volume.true_ml.resize(static_cast<size_t>(k), 0.0), volume.predicted_ml.resize(static_cast<size_t>(k), 0.0);
    volume.hd95.resize(static_cast<size_t>(k), std::nan("")), volume.nsd.resize(static_cast<size_t>(k), std::nan(""));
    for (auto [own, all] : {std::make_pair(&volume.true_objects, &scores.true_objects), std::make_pair(&volume.found_objects, &scores.found_objects),
                            std::make_pair(&volume.predicted_objects, &scores.predicted_objects), std::make_pair(&volume.false_objects, &scores.false_objects)}) {
      own->resize(static_cast<size_t>(k), 0), all->resize(static_cast<size_t>(k), 0);
      for (size_t c = 0; c < own->size(); ++c) (*all)[c] += (*own)[c];
    }
  }
  const auto ratio = [](int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : std::nan(""); };
  for (size_t c = 0; c < static_cast<size_t>(k); ++c) {
    scores.object_sensitivity.push_back(c == 0 ? std::nan("") : ratio(scores.found_objects[c], scores.true_objects[c]));
    scores.object_precision.push_back(c == 0 ? std::nan("") : ratio(scores.predicted_objects[c] - scores.false_objects[c], scores.predicted_objects[c]));
  }
  scores.mean_hd95 = mean_over_volumes(scores.volumes, k, [](const VolumeScore& v) -> const std::vector<double>& { return v.hd95; });
  scores.mean_nsd = mean_over_volumes(scores.volumes, k, [](const VolumeScore& v) -> const std::vector<double>& { return v.nsd; });
  scores.mean_dice = mean_over_volumes(scores.volumes, k, [](const VolumeScore& v) -> const std::vector<double>& { return v.metrics.dice; });
  double foreground = 0;
  int64_t defined = 0;
  for (size_t c = 1; c < scores.mean_dice.size(); ++c)
    if (!std::isnan(scores.mean_dice[c])) foreground += scores.mean_dice[c], ++defined;
  scores.mean_foreground_dice = defined > 0 ? foreground / static_cast<double>(defined) : std::nan("");
  return scores;
}

}  // namespace fcn
