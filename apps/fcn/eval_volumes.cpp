// fcn eval --predictions VOLUMES --truth VOLUMES: label volumes scored volume by volume (eval/volumes.h),
// as medical segmentation reports them; the table, --json and --markdown.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "eval_volumes.h"
#include "fcn/data/stacks.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"
#include "fcn/util/progress.h"

namespace fcn::cli {
namespace {

nlohmann::json or_null(double value) { return std::isnan(value) ? nlohmann::json(nullptr) : nlohmann::json(value); }

std::string number_cell(double value, int decimals) {
  if (std::isnan(value)) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

// A volume in mL to 4 significant digits (0.1284, 12.35, 1235): small structures and organs alike.
std::string ml_cell(double value) {
  if (std::isnan(value)) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

// Class names from a Medical Segmentation Decathlon dataset.json beside the truth folder ("labels":
// {"0": "background", "1": "left atrium"}, or nnU-Net v2's {"background": 0, ...}); else "label c".
std::vector<std::string> class_names(const std::string& truth, int64_t classes) {
  namespace fs = std::filesystem;
  const auto folder = fs::is_directory(truth) ? fs::path(truth) : fs::path(truth).parent_path();
  const auto task = task_names(folder.string(), "labels");
  std::vector<std::string> names;
  for (int64_t c = 0; c < classes; ++c) names.push_back(task.count(c) ? task.at(c) : c == 0 ? "background" : "label " + std::to_string(c));
  return names;
}

nlohmann::json scores_json(const VolumeScores& scores, const std::vector<std::string>& names, const std::string& predictions,
                           const std::string& truth) {
  auto volumes = nlohmann::json::array();
  const auto list = [](const std::vector<double>& values) {
    auto out = nlohmann::json::array();
    for (const double v : values) out.push_back(or_null(v));
    return out;
  };
  for (const auto& v : scores.volumes)
    volumes.push_back({{"name", v.name}, {"prediction", v.prediction}, {"truth", v.truth}, {"dice", list(v.metrics.dice)},
                       {"iou", list(v.metrics.iou)}, {"nsd", list(v.nsd)}, {"hd95_mm", list(v.hd95)}, {"true_ml", list(v.true_ml)}, {"predicted_ml", list(v.predicted_ml)},
                       {"voxel_mm", list({v.voxel_mm.begin(), v.voxel_mm.end()})},
                       {"objects", {{"true", v.true_objects}, {"found", v.found_objects}, {"predicted", v.predicted_objects}, {"false", v.false_objects}}},
                       {"void_voxels", v.void_voxels}, {"misalignment", v.misalignment.empty() ? nlohmann::json() : nlohmann::json(v.misalignment)}});
  const auto all = scores.all.metrics();
  return {{"predictions", predictions}, {"truth", truth}, {"classes", names}, {"volumes", volumes}, {"mean_dice", list(scores.mean_dice)},
          {"mean_nsd", list(scores.mean_nsd)}, {"nsd_tolerance_mm", scores.nsd_tolerance_mm}, {"mean_hd95_mm", list(scores.mean_hd95)},
          {"mean_foreground_dice", or_null(scores.mean_foreground_dice)},
          {"objects", {{"true", scores.true_objects}, {"found", scores.found_objects}, {"predicted", scores.predicted_objects},
                       {"false", scores.false_objects}, {"sensitivity", list(scores.object_sensitivity)}, {"precision", list(scores.object_precision)},
                       {"min_object", scores.min_object}, {"connectivity", scores.connectivity}}},
          {"all_voxels", {{"pixel_acc", or_null(all.pixel_acc)}, {"mean_iu", or_null(all.mean_iu)}, {"mean_dice", or_null(all.mean_dice)},
                          {"dice", list(all.dice)}, {"confusion", scores.all.rows()}}}};
}

// "found of true, N false": object-wise detection in a cell.
std::string objects_cell(int64_t found, int64_t truth, int64_t wrong) {
  return std::to_string(found) + " of " + std::to_string(truth) + ", " + std::to_string(wrong) + " false";
}

// The rows of the table: a row per volume (each foreground class's Dice, NSD, HD95, true / predicted mL and
// objects found), then the means (and the objects over all volumes).
std::vector<std::vector<std::string>> table_rows(const VolumeScores& scores, const std::vector<std::string>& names) {
  std::vector<std::vector<std::string>> rows(1, {"volume"});
  char tolerance[32];
  std::snprintf(tolerance, sizeof tolerance, "%g", scores.nsd_tolerance_mm);
  const auto nsd_header = "NSD " + std::string(tolerance) + " mm";
  const auto objects_header =
      (scores.min_object > 1 ? "objects of " + std::to_string(scores.min_object) + "+ voxels found" : std::string("objects found")) +
      (scores.connectivity != 26 ? " (" + std::to_string(scores.connectivity) + "-conn.)" : "");
  for (int64_t c = 1; c < scores.classes; ++c)
    rows[0].insert(rows[0].end(), {names[static_cast<size_t>(c)] + " Dice", nsd_header, "HD95 mm", "mL true / predicted", objects_header});
  for (const auto& v : scores.volumes) {
    rows.push_back({v.name});
    for (size_t c = 1; c < static_cast<size_t>(scores.classes); ++c)
      rows.back().insert(rows.back().end(), {number_cell(v.metrics.dice[c], 3), number_cell(v.nsd[c], 3), number_cell(v.hd95[c], 2),
                                             ml_cell(v.true_ml[c]) + " / " + ml_cell(v.predicted_ml[c]),
                                             objects_cell(v.found_objects[c], v.true_objects[c], v.false_objects[c])});
  }
  rows.push_back({"mean of " + std::to_string(scores.volumes.size()) + " volume(s)"});
  for (size_t c = 1; c < static_cast<size_t>(scores.classes); ++c)
    rows.back().insert(rows.back().end(), {number_cell(scores.mean_dice[c], 3), number_cell(scores.mean_nsd[c], 3), number_cell(scores.mean_hd95[c], 2), "",
                                           objects_cell(scores.found_objects[c], scores.true_objects[c], scores.false_objects[c])});
  return rows;
}

// The table, columns padded to their widest cell, or as Markdown.
std::string table(const VolumeScores& scores, const std::vector<std::string>& names, bool markdown) {
  const auto rows = table_rows(scores, names);
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  std::string out;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t i = 0; i < rows[r].size(); ++i) {
      const auto& cell = rows[r][i];
      const std::string pad(markdown ? 0 : width[i] - cell.size(), ' ');
      out += markdown ? "| " + cell + " " : i == 0 ? cell + pad : "  " + pad + cell;
    }
    if (!markdown) out.erase(out.find_last_not_of(' ') + 1);  // no trailing blanks where the last cells are empty
    out += markdown ? "|\n" : "\n";
    if (markdown && r == 0) {
      out += "|---|";
      for (size_t i = 1; i < rows[0].size(); ++i) out += "---:|";
      out += "\n";
    }
  }
  return out;
}

// What a reader of the scores should know: void voxels scored as background, distances in voxels where a
// header gives no size, and predictions over another voxel grid than their truth's.
void warn_about(const VolumeScores& scores) {
  for (const auto& v : scores.volumes) {
    if (v.void_voxels > 0)
      std::cerr << "fcn: warning: " << printable(v.prediction) << ": " << v.void_voxels << " void voxel(s) (slices predict could not segment) scored as background\n";
    std::string unknown;
    for (size_t axis = 0; axis < 3; ++axis)
      if (std::isnan(v.voxel_mm[axis])) unknown += std::string(unknown.empty() ? "" : ", ") + "xyz"[axis];
    if (!unknown.empty())
      std::cerr << "fcn: warning: " << printable(v.truth) << ": its header gives no voxel size along " << unknown
                << ": HD95 and NSD count one voxel as 1 mm there, and its mL are unknown\n";
    if (!v.misalignment.empty())
      std::cerr << "fcn: warning: " << printable(v.prediction) << ": " << printable(v.misalignment) << " (scored voxel for voxel all the same)\n";
    if (v.voxel_sizes_differ)
      std::cerr << "fcn: warning: " << printable(v.prediction) << ": its voxel sizes differ from its truth's (" << printable(v.truth)
                << "): its voxels are paired one for one and distances taken in the truth's sizes\n";
  }
}

}  // namespace

void run_volume_eval(const std::vector<std::string>& predictions, const std::string& truth, const VolumeScoreOptions& options, bool json_output,
                     const std::string& markdown) {
  if (predictions.size() != 1)
    fail("--truth", "scores one --predictions volume or folder of volumes against it, got " + std::to_string(predictions.size()));
  const auto pairs = pair_label_volumes(predictions[0], truth);
  std::optional<Progress> progress;
  const auto scores = score_label_volumes(pairs, options, [&](int64_t done, int64_t total) {
    if (!progress) progress.emplace("volumes", total, json_output || total < 2);
    progress->update(done);
  });
  if (progress) progress->finish();
  const auto names = class_names(truth, scores.classes);
  warn_about(scores);
  if (!markdown.empty()) {
    const auto text = table(scores, names, true);
    write_file_atomic(markdown, text.data(), text.size());
  }
  if (json_output) {
    std::cout << scores_json(scores, names, predictions[0], truth).dump(2) << "\n";
    return;
  }
  std::cout << table(scores, names, false);
  const auto all = scores.all.metrics();
  std::printf("foreground mean Dice %s (each class's Dice averaged over the volumes, then over the classes); all voxels together: "
              "pixel acc %s%%, mean IU %s%%, mean Dice %s%%\n",
              number_cell(scores.mean_foreground_dice, 4).c_str(), number_cell(100 * all.pixel_acc, 2).c_str(), number_cell(100 * all.mean_iu, 2).c_str(),
              number_cell(100 * all.mean_dice, 2).c_str());
}

}  // namespace fcn::cli
