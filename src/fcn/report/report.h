// A training run as one self-contained HTML page (no external scripts, pictures inline): loss and
// validation curves (SVG), the best model's metrics, per-class IoU bars, the confusion matrix, and
// a grid of image / ground truth / prediction overlays of the split's images with the lowest mean IU.
#pragma once

#include <string>

#include <torch/types.h>

#include "fcn/infer/predictor.h"

namespace fcn {

struct ReportOptions {
  std::string data;            // dataset folder; default: the one recorded in the model file
  std::string split = "val";
  int64_t examples = 8;        // rows in the image / ground truth / prediction grid: the lowest mean IU first
  torch::Device device = torch::kCPU;
  bool quiet = true;
  // How the split is segmented, for the metrics and the examples (fcn report: as fcn eval does with
  // the same inference flags, 8 small images per pass on fcn tune's or the rule's fast path).
  PredictOptions predict;
};

// Reads RUN_DIR/metrics.jsonl and RUN_DIR/best.fcn (the run directory `fcn train` writes),
// evaluates the model on the split and writes the page to `out` (atomic). fcn::Error names a
// missing or malformed file.
void write_report(const std::string& run_dir, const std::string& out, const ReportOptions& options);

}  // namespace fcn
