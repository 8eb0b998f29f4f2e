#include <iostream>

#include "commands.h"
#include "fcn/infer/predictor.h"
#include "fcn/report/report.h"

namespace fcn::cli {

void add_report(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "report", "One HTML page for a training run: curves, metrics, IoU per class, confusion matrix, examples\n"
                "  example: fcn report fcn8s.run --out fcn8s-report.html\n"
                "  RUN_DIR is the folder fcn train writes beside the model (MODEL.run). The best model is\n"
                "  evaluated on the dataset recorded in it (or --data). No external scripts; opens offline.");
  static std::string run_dir, out, data, split = "val", device = "cpu";
  static int64_t examples = 8;
  static PredictOptions predict = scoring_options();  // as fcn eval: small images share a forward pass
  static InferenceFlags inference;
  cmd->add_option("RUN_DIR", run_dir, "run directory (metrics.jsonl, best.fcn)")->required();
  add_out_flag(cmd, out, "HTML file to write")->required();
  cmd->add_option("--data", data, "dataset folder (default: the one the model was trained on)");
  cmd->add_option("--split", split, "split to evaluate and show")->capture_default_str();
  cmd->add_option("--examples", examples, "example rows (image | truth | prediction)")->capture_default_str();
  add_inference_flags(cmd, predict, inference);
  add_device_flag(cmd, device);
  cmd->callback([] {
    for (const char* read : {"best.fcn", "last.fcn", "checkpoint.pt", "metrics.jsonl"}) check_not_input(out, "--out", run_dir + "/" + read);
    ReportOptions options;
    options.data = data;
    options.split = split;
    options.examples = examples;
    options.device = parse_device(device);
    options.quiet = false;
    options.predict = predict;           // the metrics and examples as fcn eval scores with the same flags
    apply_inference_flags(inference, options.predict);
    options.predict.fast_path = true;    // fcn tune's choice for this CPU, else the ISA rule
    write_report(run_dir, out, options);
    std::cout << "wrote " << out << "\n";
  });
}

}  // namespace fcn::cli
