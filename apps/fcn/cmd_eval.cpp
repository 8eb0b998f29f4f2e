#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <utility>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "eval_volumes.h"
#include "fcn/data/instances.h"
#include "fcn/eval/evaluate.h"
#include "fcn/formats/png.h"
#include "fcn/infer/predictor.h"
#include "fcn/serialize/model_file.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/dtype.h"
#include "fcn/util/error.h"
#include "predict.h"

namespace fcn::cli {
namespace {

// NaN (a class absent from ground truth and predictions) is null in JSON.
nlohmann::json nan_to_null(double value) { return std::isnan(value) ? nlohmann::json(nullptr) : nlohmann::json(value); }

// A metric from result_json: NaN where it is null (undefined).
double number(const nlohmann::json& value) { return value.is_null() ? std::nan("") : value.get<double>(); }

// A per-class score for the text table: "-" where undefined.
std::string cell(const nlohmann::json& value) { return value.is_null() ? "-" : std::to_string(value.get<double>()).substr(0, 6); }

// The inference options as --json reports them.
nlohmann::json inference_json(const PredictOptions& options) {
  return {{"tile", options.tile},
          {"overlap", options.tile > 0 ? nlohmann::json(options.overlap) : nlohmann::json(nullptr)},
          {"resize", options.resize_height > 0 ? nlohmann::json({options.resize_height, options.resize_width}) : nlohmann::json(nullptr)},
          {"flip", options.flip},
          {"rot90", options.rot90},
          {"scales", options.scales},
          {"dtype", options.dtype == torch::kBFloat16 ? "bf16" : "fp32"},
          {"text", describe_inference(options)}};
}

// One model's (or folder of predicted masks') metrics, per-class scores and confusion matrix; a
// model's inference options and training provenance (null and {} for predicted masks).
nlohmann::json result_json(const std::string& path, const SegmentationDataset& dataset, const ConfusionMatrix& confusion,
                           const Model* model, const PredictOptions& options) {
  const auto m = confusion.metrics();
  auto per_class = nlohmann::json::array();
  for (size_t c = 0; c < m.iou.size(); ++c)
    per_class.push_back({{"class", dataset.class_names()[c]},
                         {"iou", nan_to_null(m.iou[c])},
                         {"accuracy", nan_to_null(m.accuracy[c])},
                         {"dice", nan_to_null(m.dice[c])}});
  return {{"model", path},
          {"split", dataset.split()},
          {"pixel_acc", nan_to_null(m.pixel_acc)},
          {"mean_acc", nan_to_null(m.mean_acc)},
          {"mean_iu", nan_to_null(m.mean_iu)},
          {"fw_iu", nan_to_null(m.fw_iu)},
          {"dice", nan_to_null(m.mean_dice)},
          {"per_class", per_class},
          {"confusion", confusion.rows()},
          {"inference", model != nullptr ? inference_json(options) : nlohmann::json(nullptr)},
          {"training", model != nullptr ? nlohmann::json::parse(model->meta.training) : nlohmann::json::object()}};
}

nlohmann::json worst_json(const std::vector<ImageScore>& worst) {
  auto list = nlohmann::json::array();
  for (const auto& s : worst)
    list.push_back({{"image", s.image}, {"mean_iu", s.metrics.mean_iu}, {"pixel_acc", s.metrics.pixel_acc}, {"pixels", s.pixels}});
  return list;
}

void print_worst(const nlohmann::json& result) {
  const auto& worst = result["worst"];
  std::printf("\n%s: the %zu image(s) with the lowest mean IU\n%9s %9s  %s\n", result["model"].get<std::string>().c_str(),
              worst.size(), "mean IU", "pixel acc", "image");
  for (const auto& w : worst)
    std::printf("%9.4f %9.4f  %s\n", w["mean_iu"].get<double>(), number(w["pixel_acc"]),
                printable(w["image"].get<std::string>()).c_str());
}

// The model's row of the --markdown table (docs/results.md's format).
std::string markdown_row(const nlohmann::json& r) {
  const auto& training = r["training"];
  // "3 of 10 epochs" where early stopping ended the run (epochs_done: what ran; epochs: what was asked for).
  const int64_t asked = training.value("epochs", int64_t{0}), ran = training.value("epochs_done", asked);
  const std::string epochs = ran == asked ? std::to_string(asked) : std::to_string(ran) + " of " + std::to_string(asked);
  const std::string how =
      training.contains("init") ? training.value("arch", "") + ", init " + training.value("init", "") + ", " + epochs + " epochs" : "";
  char row[512];
  std::snprintf(row, sizeof row, "| %s | %s | %.0f s | %.2f%% | %.2f%% | %.2f%% | %.2f%% |\n",
                std::filesystem::path(r["model"].get<std::string>()).filename().c_str(), how.c_str(),
                training.value("train_seconds", 0.0), 100 * number(r["pixel_acc"]), 100 * number(r["mean_acc"]),
                100 * number(r["mean_iu"]), 100 * number(r["fw_iu"]));
  return row;
}

struct EvalFlags {
  std::vector<std::string> models, predictions;
  std::string data, split = "val", markdown, device = "cpu", confusion_png, dtype = "fp32", truth;
  bool json_output = false;
  int64_t cache_mib = 1024, worst = 0, min_object = 1;
  std::vector<int> threads;
  PredictOptions options = scoring_options();
  InferenceFlags inference;
  VolumeScoreOptions volumes;
  std::string largest;
};

// What one model or folder of predictions left in the sinks, added to its result; its line of the
// text table printed (the first: the header above it); bad samples reported and counted in `failed`.
struct Scored {
  SeparationScore separation;
  RandScore rand;
  ObjectScore objects;
  std::vector<std::string> skipped;  // a bad sample is reported and left out; exit 1 at the end
  std::vector<ImageScore> per_image;
  EvalSinks sinks(const EvalFlags& f) {
    return {&separation, &skipped, f.worst > 0 ? &per_image : nullptr, &rand, &objects, f.min_object, plane_connectivity(f.volumes.connectivity)};
  }
};

nlohmann::json report(nlohmann::json r, Scored& scored, const ConfusionMatrix& confusion, const EvalFlags& f,
                      const SegmentationDataset& dataset, const std::string& how, bool first, int64_t& failed) {
  for (const auto& why : scored.skipped) std::fprintf(stderr, "fcn: error: %s (skipped)\n", printable(cli_message("", why)).c_str());
  failed += static_cast<int64_t>(scored.skipped.size());
  if (!scored.skipped.empty()) r["skipped"] = scored.skipped;
  if (f.worst > 0) r["worst"] = worst_json(lowest_mean_iu(std::move(scored.per_image), f.worst));
  if (dataset.has_instances()) {
    const auto& s = scored.separation;
    r["separation"] = {{"score", nan_to_null(s.score())}, {"touching_pairs", s.touching_pairs}, {"separated", s.separated}};
    r["rand_error"] = nan_to_null(scored.rand.error());
    const auto& o = scored.objects;
    r["objects"] = {{"true", o.true_objects}, {"predicted", o.predicted_objects}, {"matched", o.matched}, {"min_object", f.min_object},
                    {"connectivity", plane_connectivity(f.volumes.connectivity)},
                    {"precision", nan_to_null(o.precision())}, {"recall", nan_to_null(o.recall())}, {"f1", nan_to_null(o.f1())}};
  }
  if (!f.confusion_png.empty()) write_png(f.confusion_png, confusion_picture(confusion.matrix()));
  if (f.json_output) return r;
  if (first) {  // after the first model's options were accepted: no header above an error
    if (how != "whole image") std::printf("inference: %s\n", how.c_str());
    std::printf("%-28s %9s %9s %9s %9s %9s\n", "model", "pixel acc", "mean acc", "mean IU", "f.w. IU", "Dice");
  }
  std::printf("%-28s %9.4f %9.4f %9.4f %9.4f %9.4f\n", r["model"].get<std::string>().c_str(), number(r["pixel_acc"]),
              number(r["mean_acc"]), number(r["mean_iu"]), number(r["fw_iu"]), number(r["dice"]));
  if (r.contains("separation"))
    std::printf("%-28s touching pairs separated: %ld of %ld (%.4f); adapted Rand error %.4f\n", "",
                static_cast<long>(scored.separation.separated), static_cast<long>(scored.separation.touching_pairs),
                scored.separation.score(), scored.rand.error());
  if (r.contains("objects"))
    std::printf("%-28s objects found (IoU > 0.5%s%s): F1 %.4f, %ld of %ld true matched, %ld predicted (precision %.4f, recall %.4f)\n", "",
                f.min_object > 1 ? (", " + std::to_string(f.min_object) + "+ pixels").c_str() : "",
                plane_connectivity(f.volumes.connectivity) == 4 ? ", 4-connected" : "", scored.objects.f1(), static_cast<long>(scored.objects.matched), static_cast<long>(scored.objects.true_objects),
                static_cast<long>(scored.objects.predicted_objects), scored.objects.precision(), scored.objects.recall());
  return r;
}

// One model scored on the split, each image as fcn predict segments it with `options`.
nlohmann::json score_model(const std::string& path, const EvalFlags& f, const SegmentationDataset& dataset,
                           const PredictOptions& options, torch::Device target, bool first, int64_t& failed) {
  const auto model = load_model(path);
  warn_unread_threshold(f.inference, *model.net, path);
  Scored scored;
  auto sinks = scored.sinks(f);
  if (!f.largest.empty()) sinks.largest = parse_largest(f.largest, model.meta.class_names);
  const auto confusion = evaluate(model, dataset, options, target, f.json_output, sinks);
  return report(result_json(path, dataset, confusion, &model, options), scored, confusion, f, dataset, describe_inference(options),
                first, failed);
}

// Masks that fcn predict wrote (its record, FOLDER/.fcn-predict.json, names the model's classes) by a model whose
// classes the dataset names in another order: an fcn::Error naming the folder, as the masks would be scored against
// another class's truth (check_class_order). Folders without the record (made elsewhere) are scored as they are.
void check_predicted_classes(const std::string& folder, const SegmentationDataset& dataset) {
  const auto record = record_path(folder);
  if (std::error_code error; !std::filesystem::is_regular_file(record, error)) return;
  const auto json = nlohmann::json::parse(read_file(record), nullptr, false);
  if (!json.is_object() || !json.contains("model") || !json["model"].is_object() || !json["model"].contains("classes")) return;
  ModelMeta meta;
  try {
    meta.class_names = json["model"]["classes"].get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception&) {
    return;
  }
  try {
    check_class_order(dataset, meta);
  } catch (const Error& e) {
    fail(folder, "holds the masks of " + json["model"].value("path", std::string("a model")) + ", and " + e.what());
  }
}

// One folder of predicted masks (ID.png per image), or one label stack (page k: image ID k), scored on the split.
nlohmann::json score_predictions(const std::string& folder, const EvalFlags& f, const SegmentationDataset& dataset, bool first,
                                 int64_t& failed) {
  check_predicted_classes(folder, dataset);
  Scored scored;
  const auto confusion = evaluate_masks(folder, dataset, f.json_output, scored.sinks(f));
  return report(result_json(folder, dataset, confusion, nullptr, {}), scored, confusion, f, dataset, "whole image", first, failed);
}

void print_per_class(const nlohmann::json& result) {
  std::printf("\n%-16s %8s %8s %8s\n", "class", "IoU", "acc", "Dice");
  for (const auto& c : result["per_class"])
    std::printf("%-16s %8s %8s %8s\n", c["class"].get<std::string>().c_str(), cell(c["iou"]).c_str(), cell(c["accuracy"]).c_str(),
                cell(c["dice"]).c_str());
}

void run_eval(const EvalFlags& f) {
  for (const auto& model : f.models) {
    check_not_input(f.markdown, "--markdown", model);
    check_not_input(f.confusion_png, "--confusion", model);
  }
  if (!f.truth.empty()) {
    if (!f.models.empty()) fail("--truth", "scores --predictions label volumes; a model is scored on --data");
    if (!f.data.empty()) fail("--truth", "takes the ground truth as label volumes, in place of --data");
    if (f.predictions.empty()) fail("--truth", "scores --predictions label volumes (fcn predict's NAME-labels.nii.gz) against it: give --predictions");
    auto options = f.volumes;
    options.min_object = f.min_object;  // objects of fewer voxels are specks in the object counts
    return run_volume_eval(f.predictions, f.truth, options, f.json_output, f.markdown);
  }
  if (f.data.empty()) fail("--data", "give the dataset folder to score on (or --truth with label volumes)");
  if (f.models.empty() && f.predictions.empty())
    fail("MODEL", "give model files to evaluate, or --predictions folders of masks (or label stacks) to score");
  if (f.options.batch < 1) fail("--batch", "must be at least 1, got " + std::to_string(f.options.batch));
  for (const auto& model : f.models) {  // a slip in the second of several (a folder, a missing file) named before the first is scored
    std::error_code error;
    if (!std::filesystem::is_regular_file(model, error)) load_model(model);  // its error: missing, a folder (a run's, a dataset's)
  }
  PredictOptions options = f.options;  // each image as fcn predict segments it with the same flags
  apply_inference_flags(f.inference, options);
  options.dtype = parse_dtype(f.dtype);
  options.fast_path = true;  // as fcn predict: fcn tune's choice for this CPU, else the ISA rule
  apply_threads(f.threads);
  SegmentationDataset dataset(f.data, f.split);
  if (f.min_object > 1 && !dataset.has_instances())
    fail("--min-object", "sets the smallest predicted object eval counts against instance masks, and " + f.data + " has none");
  if (f.volumes.connectivity != 26 && !dataset.has_instances() && f.largest.empty())
    fail("--connectivity", "joins pixels into objects for the object counts against instance masks (and --largest), and " + f.data + " has no instance masks");
  if (!f.json_output && dataset.split() != f.split)
    std::printf("data: all %zu pairs of %s (images/ + masks/ without splits, so no '%s' split)\n", dataset.size(),
                f.data.c_str(), f.split.c_str());
  if (f.models.size() + f.predictions.size() > 1) dataset.keep_decoded(static_cast<size_t>(f.cache_mib) << 20);  // one model reads each sample once
  const auto target = parse_device(f.device);
  auto results = nlohmann::json::array();
  int64_t failed = 0;
  std::string table = "| model | training | train time | pixel acc | mean acc | mean IU | f.w. IU |\n|---|---|---:|---:|---:|---:|---:|\n";
  for (const auto& path : f.models) {
    results.push_back(score_model(path, f, dataset, options, target, results.empty(), failed));
    table += markdown_row(results.back());
  }
  for (const auto& folder : f.predictions) {
    results.push_back(score_predictions(folder, f, dataset, results.empty(), failed));
    table += markdown_row(results.back());
  }
  if (!f.json_output && results.size() == 1) print_per_class(results[0]);
  if (!f.json_output && f.worst > 0)
    for (const auto& r : results) print_worst(r);
  if (f.json_output) std::cout << (results.size() == 1 ? results[0] : results).dump(2) << "\n";
  if (!f.markdown.empty()) write_file_atomic(f.markdown, table.data(), table.size());
  if (failed > 0) {
    std::fprintf(stderr, "fcn: %ld sample(s) of %s could not be evaluated (left out of the metrics above)\n",
                 static_cast<long>(failed), dataset.split().c_str());
    throw CLI::RuntimeError(1);
  }
}

// Without a model, the flags that say how a model segments go unread: one line naming the flag (--predictions
// masks and --truth volumes are scored as they are; --tta, --tile, --dtype, --largest, ... did nothing there).
void check_model_flags(const CLI::App& cmd, const EvalFlags& f) {
  if (!f.models.empty()) return;
  for (const char* flag : {"--tile", "--overlap", "--tta", "--scales", "--threshold", "--resize", "--batch", "--device", "--dtype", "--largest"})
    if (cmd.get_option(flag)->count() > 0)
      fail(flag, "says how a model segments, and no model is given: --predictions masks (and --truth volumes) are scored as they are");
}

// --truth and the flags that score label volumes against it.
void add_truth_flags(CLI::App* cmd, std::string& truth, VolumeScoreOptions& volumes) {
  auto* truth_flag = cmd->add_option("--truth", truth,
                  "ground-truth NIfTI label volumes (a .nii/.nii.gz, or a folder of them: a Decathlon task's labelsTs/) to score "
                  "--predictions label volumes against, volume by volume (NAME-labels.nii.gz, as fcn predict writes them, against "
                  "NAME.nii.gz): each volume's 3-D Dice, normalised surface Dice (NSD), HD95 (mm), true / predicted mL and objects "
                  "found (lesion-wise: 26-connected unless --connectivity, found where a predicted voxel of its class lies in it) per class, each class's "
                  "Dice, NSD and HD95 averaged over the volumes (--json: volumes, mean_dice, mean_nsd, mean_hd95_mm, "
                  "mean_foreground_dice, objects, all_voxels)");
  cmd->add_option("--nsd-tolerance", volumes.nsd_tolerance_mm,
                  "with --truth: the NSD's tolerance in mm, how far a predicted surface voxel may lie from the true surface (and the "
                  "other way round) and still agree; choose it per structure, from how far two raters' outlines differ")
      ->needs(truth_flag)
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--connectivity", volumes.connectivity,
                  "with --truth: a class's voxels that touch by a face, edge or corner are one object in the objects found (26), by "
                  "a face or edge (18), by a face alone (6); a challenge's own rule where it names one, as fcn predict --connectivity. "
                  "On images (instance masks' object counts, separation and Rand error; --largest): 6 joins pixels by their sides "
                  "alone (4-connected), 18 or 26 by sides and corners (8), as fcn predict --connectivity joins an image's")
      ->check(CLI::IsMember({6, 18, 26}))
      ->capture_default_str();
}

}  // namespace

void add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval", "Evaluate models on a dataset split: pixel acc, mean acc, mean IU, f.w. IU (the FCN paper's four), Dice\n"
              "  example: fcn eval fcn8s.fcn --data scenes --split val\n"
              "  example: fcn eval fcn32s.fcn fcn16s.fcn fcn8s.fcn --data scenes --markdown results.md\n"
              "  example: fcn eval unet.fcn --data scans --tile 256 --tta flip,rot90   (scored as fcn predict segments with those flags)\n"
              "  example: fcn eval --predictions torch_masks/ --data scenes   (masks made elsewhere, ID.png per image, scored the same way)\n"
              "  example: fcn eval --predictions masks/volume-labels.tif --data em   (a label stack, page k as image k of unstack's folder)\n"
              "  example: fcn eval --predictions masks/ --truth labelsTs/   (label volumes, NAME-labels.nii.gz against NAME.nii.gz: 3-D Dice per volume)\n"
              "  Classes absent from both ground truth and predictions are left out of the means.");
  static EvalFlags f;
  auto& [models, predictions, data, split, markdown, device, confusion_png, dtype, truth, json_output, cache_mib, worst, min_object, threads,
         options, inference, volumes, largest] = f;
  cmd->add_option("MODEL", models, "model file(s)");
  cmd->add_option("--predictions", predictions,
                  "a folder of predicted masks to score instead of (or beside) models: ID.png per image, as fcn predict writes them "
                  "or any mask format the data reads (or ID.npy, ID.tif); from another framework, run or annotator (repeat the flag for several); "
                  "or a label stack (multi-page TIFF, fcn predict --label-stack's; or a NIfTI label volume, slice k) against the folder fcn data unstack made of "
                  "the image stack, page k as image ID k")
      ->allow_extra_args(false);  // one folder a flag: a model after it stays a model
  cmd->add_option("--data", data, "dataset folder (required unless --truth)");
  add_truth_flags(cmd, truth, volumes);
  cmd->add_option("--split", split, "split to evaluate")->capture_default_str();
  output_file(cmd->add_option("--markdown", markdown, "also write the results as a Markdown table to this file"));
  add_inference_flags(cmd, options, inference);
  cmd->add_option("--batch", options.batch,
                  "images of one size per forward pass (together at most 1 megapixel; 1: one at a time); with --tile: tiles per pass")
      ->capture_default_str();
  add_cache_flag(cmd, cache_mib, "the second and later models (with several)");
  add_device_flag(cmd, device);
  add_dtype_flag(cmd, dtype);
  output_file(cmd->add_option("--confusion", confusion_png, "draw the (row-normalised) confusion matrix of the last model to this PNG"));
  cmd->add_option("--worst", worst, "list the N images with the lowest mean IU, each scored on its own (--json: worst)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--largest", largest, std::string("models: their labels as fcn predict --largest writes them, before they are scored: ") +
                                          kLargestHelp);
  cmd->add_option("--min-object", min_object,
                  "with instance masks: predicted segments of fewer pixels are not objects in 'objects found' (specks; "
                  "as fcn predict --instances --min-object leaves them out); with --truth: true and predicted objects of fewer "
                  "voxels are not counted")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  add_threads_flag(cmd, threads, "LibTorch's");
  add_json_flag(cmd, json_output, "keys pixel_acc, mean_acc, mean_iu, fw_iu, dice, per_class, confusion, inference, worst; with instance masks separation, rand_error, objects");
  add_max_pixels_flag(cmd);
  cmd->callback([cmd] {
    check_model_flags(*cmd, f);
    run_eval(f);
  });
}

}  // namespace fcn::cli
