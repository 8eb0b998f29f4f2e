#include <utility>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "fcn/eval/evaluate.h"
#include "fcn/infer/predictor.h"
#include "fcn/formats/png.h"
#include "fcn/serialize/model_file.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/dtype.h"
#include "fcn/util/error.h"

namespace fcn::cli {
namespace {

// NaN (a class absent from ground truth and predictions) is null in JSON.
nlohmann::json nan_to_null(double value) { return std::isnan(value) ? nlohmann::json(nullptr) : nlohmann::json(value); }

// A metric from result_json: NaN where it is null (undefined).
double number(const nlohmann::json& value) { return value.is_null() ? std::nan("") : value.get<double>(); }

// A per-class score for the text table: "-" where undefined.
std::string cell(const nlohmann::json& value) { return value.is_null() ? "-" : std::to_string(value.get<double>()).substr(0, 6); }

// One model's metrics, per-class scores, confusion matrix and training provenance.
nlohmann::json result_json(const std::string& path, const std::string& split, const SegmentationDataset& dataset,
                           const ConfusionMatrix& confusion, const Model& model, const PredictOptions& options) {
  const auto m = confusion.metrics();
  auto per_class = nlohmann::json::array();
  for (size_t c = 0; c < m.iou.size(); ++c)
    per_class.push_back({{"class", dataset.class_names()[c]},
                         {"iou", nan_to_null(m.iou[c])},
                         {"accuracy", nan_to_null(m.accuracy[c])},
                         {"dice", nan_to_null(m.dice[c])}});
  std::vector<std::vector<int64_t>> matrix;
  for (int64_t i = 0; i < confusion.num_classes(); ++i) {
    matrix.emplace_back();
    for (int64_t j = 0; j < confusion.num_classes(); ++j) matrix.back().push_back(confusion.matrix()[i][j].item<int64_t>());
  }
  return {{"model", path},
          {"split", split},
          {"pixel_acc", nan_to_null(m.pixel_acc)},
          {"mean_acc", nan_to_null(m.mean_acc)},
          {"mean_iu", nan_to_null(m.mean_iu)},
          {"fw_iu", nan_to_null(m.fw_iu)},
          {"dice", nan_to_null(m.mean_dice)},
          {"per_class", per_class},
          {"confusion", matrix},
          {"inference", {{"tile", options.tile},
                         {"overlap", options.tile > 0 ? nlohmann::json(options.overlap) : nlohmann::json(nullptr)},
                         {"resize", options.resize_height > 0 ? nlohmann::json({options.resize_height, options.resize_width})
                                                              : nlohmann::json(nullptr)},
                         {"flip", options.flip},
                         {"rot90", options.rot90},
                         {"dtype", options.dtype == torch::kBFloat16 ? "bf16" : "fp32"},
                         {"text", describe_inference(options)}}},
          {"training", nlohmann::json::parse(model.meta.training)}};
}

nlohmann::json worst_json(const std::vector<ImageScore>& worst) {
  auto list = nlohmann::json::array();
  for (const auto& s : worst)
    list.push_back({{"image", s.image}, {"mean_iu", s.metrics.mean_iu}, {"pixel_acc", s.metrics.pixel_acc}, {"pixels", s.pixels}});
  return list;
}

void print_worst(const std::string& model, const std::vector<ImageScore>& worst) {
  std::printf("\n%s: the %zu image(s) with the lowest mean IU\n%9s %9s  %s\n", model.c_str(), worst.size(), "mean IU",
              "pixel acc", "image");
  for (const auto& s : worst) std::printf("%9.4f %9.4f  %s\n", s.metrics.mean_iu, s.metrics.pixel_acc, printable(s.image).c_str());
}

// The model's row of the --markdown table (docs/results.md's format).
std::string markdown_row(const nlohmann::json& r) {
  const auto& training = r["training"];
  const std::string how = training.contains("init") ? training.value("arch", "") + ", init " + training.value("init", "") + ", " +
                                                          std::to_string(training.value("epochs", 0)) + " epochs"
                                                    : "";
  char row[512];
  std::snprintf(row, sizeof row, "| %s | %s | %.0f s | %.2f%% | %.2f%% | %.2f%% | %.2f%% |\n",
                std::filesystem::path(r["model"].get<std::string>()).filename().c_str(), how.c_str(),
                training.value("train_seconds", 0.0), 100 * number(r["pixel_acc"]), 100 * number(r["mean_acc"]),
                100 * number(r["mean_iu"]), 100 * number(r["fw_iu"]));
  return row;
}

struct EvalFlags {
  std::vector<std::string> models;
  std::string data, split = "val", markdown, device = "cpu", confusion_png, dtype = "fp32";
  bool json_output = false;
  int64_t cache_mib = 1024, worst = 0;
  std::vector<int> threads;
  PredictOptions options = [] {
    PredictOptions o;
    o.batch = 8;  // small images share a pass (fcn predict's --batch counts tiles, default 1)
    return o;
  }();
  InferenceFlags inference;
};

void run_eval(const EvalFlags& f) {
  const auto& [models, data, split, markdown, device, confusion_png, dtype, json_output, cache_mib, worst, threads,
               flag_options, inference] = f;
  if (flag_options.batch < 1) fail("--batch", "must be at least 1, got " + std::to_string(flag_options.batch));
  PredictOptions options = flag_options;  // each image as fcn predict segments it with the same flags
  apply_inference_flags(inference, options);
  options.dtype = parse_dtype(dtype);
  options.fast_path = true;  // as fcn predict: fcn tune's choice for this CPU, else the ISA rule
  apply_threads(threads);
  SegmentationDataset dataset(data, split);
  if (!json_output && dataset.split() != split)
    std::printf("data: all %zu pairs of %s (images/ + masks/ without splits, so no '%s' split)\n", dataset.size(), data.c_str(),
                split.c_str());
  if (models.size() > 1) dataset.keep_decoded(static_cast<size_t>(cache_mib) << 20);  // one model reads each sample once
  const auto target = parse_device(device);
  auto results = nlohmann::json::array();
  int64_t failed = 0;
  std::vector<std::pair<std::string, std::vector<ImageScore>>> worst_lists;  // printed after the tables
  std::string table = "| model | training | train time | pixel acc | mean acc | mean IU | f.w. IU |\n|---|---|---:|---:|---:|---:|---:|\n";
  const std::string how = describe_inference(options);
  if (!json_output && how != "whole image") std::printf("inference: %s\n", how.c_str());
  if (!json_output) std::printf("%-28s %9s %9s %9s %9s %9s\n", "model", "pixel acc", "mean acc", "mean IU", "f.w. IU", "Dice");
  for (const auto& path : models) {
    const auto model = load_model(path);
    SeparationScore separation;
    std::vector<std::string> skipped;  // a bad sample is reported and left out; exit 1 at the end
    std::vector<ImageScore> per_image;
    const auto confusion =
        evaluate(model, dataset, options, target, json_output, {&separation, &skipped, worst > 0 ? &per_image : nullptr});
    const auto lowest = lowest_mean_iu(std::move(per_image), worst);
    for (const auto& why : skipped) std::fprintf(stderr, "fcn: error: %s (skipped)\n", printable(cli_message("", why)).c_str());
    failed += static_cast<int64_t>(skipped.size());
    results.push_back(result_json(path, dataset.split(), dataset, confusion, model, options));
    if (!skipped.empty()) results.back()["skipped"] = skipped;
    if (worst > 0) results.back()["worst"] = worst_json(lowest);
    if (worst > 0) worst_lists.emplace_back(path, lowest);
    if (dataset.has_instances())
      results.back()["separation"] = {{"score", nan_to_null(separation.score())},
                                      {"touching_pairs", separation.touching_pairs},
                                      {"separated", separation.separated}};
    const auto& r = results.back();
    if (!confusion_png.empty()) write_png(confusion_png, confusion_picture(confusion.matrix()));
    if (!json_output)
      std::printf("%-28s %9.4f %9.4f %9.4f %9.4f %9.4f\n", path.c_str(), number(r["pixel_acc"]), number(r["mean_acc"]),
                  number(r["mean_iu"]), number(r["fw_iu"]), number(r["dice"]));
    if (!json_output && r.contains("separation"))
      std::printf("%-28s touching pairs separated: %ld of %ld (%.4f)\n", "", static_cast<long>(separation.separated),
                  static_cast<long>(separation.touching_pairs), separation.score());
    table += markdown_row(r);
  }
  if (!json_output && models.size() == 1) {
    const auto& per_class = results[0]["per_class"];
    std::printf("\n%-16s %8s %8s %8s\n", "class", "IoU", "acc", "Dice");
    for (const auto& c : per_class)
      std::printf("%-16s %8s %8s %8s\n", c["class"].get<std::string>().c_str(), cell(c["iou"]).c_str(), cell(c["accuracy"]).c_str(),
                  cell(c["dice"]).c_str());
  }
  if (!json_output)
    for (const auto& [model, lowest] : worst_lists) print_worst(model, lowest);
  if (json_output) std::cout << (models.size() == 1 ? results[0] : results).dump(2) << "\n";
  if (!markdown.empty()) write_file_atomic(markdown, table.data(), table.size());
  if (failed > 0) {
    std::fprintf(stderr, "fcn: %ld sample(s) of %s could not be evaluated (left out of the metrics above)\n",
                 static_cast<long>(failed), split.c_str());
    throw CLI::RuntimeError(1);
  }
}

}  // namespace

void add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval", "Evaluate models on a dataset split: pixel acc, mean acc, mean IU, f.w. IU (the FCN paper's four), Dice\n"
              "  example: fcn eval fcn8s.fcn --data scenes --split val\n"
              "  example: fcn eval fcn32s.fcn fcn16s.fcn fcn8s.fcn --data scenes --markdown results.md\n"
              "  example: fcn eval unet.fcn --data scans --tile 256 --tta flip,rot90   (scored as fcn predict segments with those flags)\n"
              "  Classes absent from both ground truth and predictions are left out of the means.");
  static EvalFlags f;
  auto& [models, data, split, markdown, device, confusion_png, dtype, json_output, cache_mib, worst, threads, options,
         inference] = f;
  cmd->add_option("MODEL", models, "model file(s)")->required();
  cmd->add_option("--data", data, "dataset folder")->required();
  cmd->add_option("--split", split, "split to evaluate")->capture_default_str();
  cmd->add_option("--markdown", markdown, "also write the results as a Markdown table to this file");
  add_inference_flags(cmd, options, inference);
  cmd->add_option("--batch", options.batch,
                  "images of one size per forward pass (together at most 1 megapixel; 1: one at a time); with --tile: tiles per pass")
      ->capture_default_str();
  add_cache_flag(cmd, cache_mib, "the second and later models (with several)");
  add_device_flag(cmd, device);
  add_dtype_flag(cmd, dtype);
  cmd->add_option("--confusion", confusion_png, "draw the (row-normalised) confusion matrix of the last model to this PNG");
  cmd->add_option("--worst", worst, "list the N images with the lowest mean IU, each scored on its own (--json: worst)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->capture_default_str();
  add_threads_flag(cmd, threads, "LibTorch's");
  add_json_flag(cmd, json_output, "keys pixel_acc, mean_acc, mean_iu, fw_iu, dice, per_class, confusion, inference, worst");
  add_max_pixels_flag(cmd);
  cmd->callback([] { run_eval(f); });
}

}  // namespace fcn::cli
