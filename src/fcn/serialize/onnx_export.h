// ONNX export from C++ (LibTorch's C++ frontend has no ONNX exporter). The graph is written op by
// op while the same ops run in LibTorch on a probe input, so every shape is known and the export
// is checked against the model's own forward pass before it is written. Preprocessing (mean/std),
// class names and palette go into metadata_props, so the file is enough to deploy the model.
#pragma once

#include <string>

#include "fcn/models/model.h"

namespace fcn {

struct OnnxExportOptions {
  int64_t height = 0, width = 0;  // the input size (static export); with `dynamic`, the probe size
  bool dynamic = false;           // batch, height and width symbolic (not for the reference geometry)
  int64_t opset = 13;
};

struct OnnxExportSummary {
  int64_t nodes = 0;
  std::vector<int64_t> input_shape, output_shape;  // of the probe; -1 where symbolic
  double max_abs_error = 0;                        // graph (run in LibTorch) vs the model's forward
  int64_t input_multiple = 1;                      // dynamic: H and W must be multiples of this
};

// Why export_onnx refuses this model's net (a classifier); empty for the fcn, unet and torchvision-fcn nets it takes.
std::string onnx_refusal(const Model& model);

// Writes `path` atomically after onnx::checker accepts the model. fcn::Error on unsupported
// models (onnx_refusal's reason) or options.
OnnxExportSummary export_onnx(const Model& model, const std::string& path, const OnnxExportOptions& options);

}  // namespace fcn
