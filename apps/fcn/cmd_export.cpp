#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "fcn/models/cost.h"
#include "fcn/serialize/model_file.h"
#include "fcn/serialize/weights.h"
#include "fcn/util/error.h"
#ifdef FCN_WITH_ONNX
#include "fcn/serialize/onnx_export.h"
#endif

namespace fcn::cli {

void add_export(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "export", "Export a model for deployment: ONNX (OpenCV DNN, ONNX Runtime, TensorRT) or a PyTorch state_dict\n"
                "  example: fcn export fcn8s.fcn --onnx fcn8s.onnx --size 500\n"
                "  example: fcn export unet.fcn --onnx unet.onnx --dynamic\n"
                "  example: fcn export fcn8s.fcn --pth fcn8s.pth\n"
                "  ONNX: opset 13, preprocessing (mean/std), class names and palette in metadata_props.\n"
                "  .pth: torch.load()-able; parameter names as in tests/oracle/nets.py (the PyTorch definition).");
  static std::string path, onnx_path, pth_path, size = "512";
  static bool dynamic = false;
  static int64_t opset = 13;
  cmd->add_option("MODEL", path, "model file")->required();
  output_file(cmd->add_option("--onnx", onnx_path, "ONNX file to write"));
  output_file(cmd->add_option("--pth", pth_path, "PyTorch state_dict (.pth) to write"));
  add_size_flag(cmd, size, "input size of the ONNX graph (with --dynamic: the probe size)");
  cmd->add_flag("--dynamic", dynamic, "symbolic batch, height and width (not for the reference FCN geometry)");
  cmd->add_option("--opset", opset, "ONNX opset (>= 11)")->capture_default_str();
  add_max_pixels_flag(cmd);
  cmd->callback([cmd] {
    if (onnx_path.empty() && pth_path.empty()) fail("export", "nothing to do: give --onnx FILE and/or --pth FILE");
    for (const char* flag : {"--size", "--dynamic", "--opset"})  // the .pth alone: they would shape nothing
      if (onnx_path.empty() && cmd->get_option(flag)->count() > 0) fail(flag, "shapes the ONNX graph, and no --onnx FILE is written");
    check_not_input(onnx_path, "--onnx", path);
    check_not_input(pth_path, "--pth", path);
    const auto model = load_model(path);
    if (!pth_path.empty()) {
      write_torch_state_dict(pth_path, state_dict(*model.net));
      std::cout << "wrote " << pth_path << ": " << state_dict(*model.net).size() << " tensors, "
                << parameter_count(*model.net) << " parameters\n";
    }
    if (!onnx_path.empty()) {
#ifdef FCN_WITH_ONNX
      OnnxExportOptions options;
      std::tie(options.height, options.width) = parse_size(size, "--size");
      options.dynamic = dynamic;
      options.opset = opset;
      const auto summary = export_onnx(model, onnx_path, options);
      const auto shape = [](const std::vector<int64_t>& s) {
        std::string text;
        for (const auto d : s) text += (text.empty() ? "" : "x") + (d < 0 ? std::string("?") : std::to_string(d));
        return text;
      };
      std::cout << "wrote " << onnx_path << ": " << summary.nodes << " nodes, input " << shape(summary.input_shape)
                << ", logits " << shape(summary.output_shape) << ", opset " << opset << "; checked by onnx::checker, "
                << "max |graph - model| " << summary.max_abs_error << "\n";
#else
      fail("--onnx", "this fcn was built without ONNX (libonnx-dev not found at configure time)");
#endif
    }
  });
}

}  // namespace fcn::cli
