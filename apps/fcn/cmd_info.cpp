#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "fcn/models/cost.h"
#include "fcn/models/registry.h"
#include "fcn/serialize/model_file.h"
#include "fcn/serialize/weights.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"

namespace fcn::cli {
namespace {

// What `path` holds, read once: an fcn model file, or a weights file (safetensors, a legacy .pth, or a zip archive whose
// dict has no "format" entry: torch.save of a state dict). Anything else is load_model's error: a checkpoint, an image,
// a folder, a file fcn does not read.
std::variant<Model, StateDict> model_or_weights(const std::string& path) {
  const auto head = read_head(path, 24).value_or(std::vector<char>{});  // none of a folder: load_model says what it is
  if (is_torch_zip(head)) {
    std::optional<ArchiveDict> dict;
    try {
      dict = read_torch_archive_dict(path);
    } catch (const Error&) {  // not an archive fcn reads: load_model's error below
    }
    if (dict) {
      const bool has_format = std::any_of(dict->begin(), dict->end(), [](const auto& entry) { return entry.first == "format"; });
      try {
        if (has_format) return model_from_archive(*dict, path);
        return state_dict_of(*dict, path);
      } catch (const Error&) {  // load_model names what is wrong (a training checkpoint, say), reading it again
      }
    }
    return load_model(path);
  }
  if (is_safetensors(head) || is_legacy_torch(head)) return read_state_dict(path);
  return load_model(path);
}

// fcn info of a weights file: its tensors, and the torchvision model its keys show, with the command to import it.
void describe_weights(const std::string& path, const StateDict& weights, bool json_output) {
  const auto format = torchvision_format(weights);
  const auto other = torchvision_unimported(weights);
  int64_t values = 0;
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& [name, tensor] : weights) {
    values += tensor.numel();
    tensors.push_back({{"name", name}, {"shape", tensor.sizes().vec()}, {"dtype", std::string(c10::toString(tensor.scalar_type()))}});
  }
  if (json_output) {
    std::cout << nlohmann::json({{"weights", path}, {"values", values}, {"tensors", tensors}, {"torchvision_format", format}, {"torchvision_unimported", other}}).dump(2) << "\n";
    return;
  }
  std::printf("%s\n  weights     a state dict of %zu tensors, %.3f M values (not an fcn model file)\n", printable(path).c_str(), weights.size(),
              static_cast<double>(values) / 1e6);
  if (!other.empty())
    std::printf("  import      its keys are those of torchvision's %s, which fcn does not import (fcn import --help lists those it does)\n",
                other.c_str());
  else if (format.empty())
    std::printf("  import      its keys are none of the torchvision models fcn imports (fcn import --help)\n");
  else
    std::printf("  import      its keys are those of %s: fcn import %s %s --out MODEL.fcn\n", format.c_str(), format.c_str(), printable(path).c_str());
  for (const auto& tensor : tensors)
    std::printf("  %-40s %-22s %s\n", printable(tensor["name"].get<std::string>()).c_str(), tensor["shape"].dump().c_str(),
                tensor["dtype"].get<std::string>().c_str());
}

}  // namespace

void add_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Describe a model file: architecture, classes, parameters, FLOPs\n"
                                         "  example: fcn info fcn8s.fcn --size 500\n"
                                         "  Prints the net layer by layer as LibTorch does (fcn::FCN(...), its modules).");
  static std::string path, size;
  static bool json_output = false;
  cmd->add_option("MODEL", path, "model file (or a weights file, .pth or .safetensors: its tensors and the torchvision model they are)")->required();
  add_size_flag(cmd, size, "input size for FLOPs (default: the classifier's training size, else 224)");
  add_json_flag(cmd, json_output, "model, config, classes, parameters, size, gflops, net, training, slice_context (2.5-D nets), pixel_mm (nets trained on resampled slices), axes (on slices cut in an orientation)");
  add_max_pixels_flag(cmd);
  cmd->callback([] {
    auto read = model_or_weights(path);
    if (auto* weights = std::get_if<StateDict>(&read)) return describe_weights(path, *weights, json_output);
    const auto& model = std::get<Model>(read);
    auto& net = *model.net;
    const auto config = net_config(net);
    const int64_t default_size = config.value("input_size", int64_t{224});  // classifiers know their training size
    const auto [h, w] = size.empty() ? std::pair<int64_t, int64_t>{default_size, default_size} : parse_size(size, "--size");
    const double flops = forward_flops(net, h, w);
    nlohmann::json summary = {{"model", path},
                              {"config", net_config(net)},
                              {"classes", model.meta.class_names},
                              {"parameters", parameter_count(net)},
                              {"size", {h, w}},
                              {"gflops", flops / 1e9},
                              {"net", c10::str(net)}};
    const auto training = nlohmann::json::parse(model.meta.training, nullptr, false);  // how the file was made, where it says
    if (training.is_object() && !training.empty()) summary["training"] = training;
    if (model.meta.slice_context > 0) summary["slice_context"] = model.meta.slice_context;
    if (model.meta.pixel_mm) summary["pixel_mm"] = *model.meta.pixel_mm;
    if (!model.meta.axes.empty()) summary["axes"] = model.meta.axes;
    if (json_output) {
      std::cout << summary.dump(2) << "\n";
      return;
    }
    std::printf("%s\n  arch        %s\n  config      %s\n  classes     %zu (%s%s)\n  parameters  %.3f M\n"
                "  FLOPs       %.3f GFLOP at %ldx%ld (2 per multiply-add)\n",
                path.c_str(), net.arch().c_str(), net_config(net).dump().c_str(), model.meta.class_names.size(),
                model.meta.class_names.empty() ? "" : model.meta.class_names.front().c_str(),
                model.meta.class_names.size() > 1 ? ", ..." : "", parameter_count(net) / 1e6, flops / 1e9, h, w);
    if (summary.contains("training")) std::printf("  training    %s\n", printable(training.dump()).c_str());
    if (const long n = static_cast<long>(model.meta.slice_context); n > 0) {
      const long channels = static_cast<long>(net.in_channels() / slices_a_sample(n));
      const auto each = channels > 1 ? " of each of its " + std::to_string(channels) + " channels" : std::string();
      std::printf("  2.5-D       a volume's slices k-%ld..k+%ld%s as its inputs (fcn predict gives volumes so)\n", n, n, each.c_str());
    }
    if (model.meta.pixel_mm)
      std::printf("  pixels      %s mm (trained on slices resampled so; fcn predict resamples volumes to them)\n",
                  pixel_text(*model.meta.pixel_mm).c_str());
    if (!model.meta.axes.empty())
      std::printf("  slices      cut as %s (trained so; fcn predict cuts volumes alike, whatever their stored orientation)\n", model.meta.axes.c_str());
    std::cout << net << "\n";
  });
}

}  // namespace fcn::cli
