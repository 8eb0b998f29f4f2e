#include "fcn/serialize/model_file.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/formats/png.h"
#include "fcn/formats/tiff.h"
#include "fcn/models/registry.h"
#include "fcn/serialize/weights.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {
constexpr char kFormatName[] = "fcn-model";
}  // namespace

void save_model(const std::string& path, const Model& model) {
  c10::Dict<std::string, torch::Tensor> weights;
  for (const auto& [name, tensor] : state_dict(*model.net)) weights.insert(name, tensor.detach().to(torch::kCPU).contiguous());
  c10::impl::GenericDict root(c10::StringType::get(), c10::AnyType::get());
  root.insert("format", std::string(kFormatName));
  root.insert("version", kModelFormatVersion);
  root.insert("config", net_config(*model.net).dump());
  root.insert("meta", meta_to_json(model.meta).dump());
  root.insert("state_dict", weights);
  write_torch_archive(path, root, Durability::kDurable);
}

namespace {
// What to do with a weights file given where a model file belongs.
std::string import_hint(const std::string& path) {
  return "fcn import auto " + path + " --out MODEL.fcn makes one of a torchvision model's weights (fcn info " + path + ": which model its keys are)";
}
}  // namespace

Model load_model(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    // A training run's folder (fcn train's NAME.run): name the models in it.
    std::string inside;
    for (const char* name : {"best.fcn", "last.fcn"})
      if (std::filesystem::is_regular_file(std::filesystem::path(path) / name, error))
        inside += (inside.empty() ? "" : " or ") + (std::filesystem::path(path) / name).string();
    const auto folder = std::filesystem::path(path);  // a dataset given where the model belongs: fcn eval m.fcn scenes
    const bool dataset = std::filesystem::is_directory(folder / "images", error) || std::filesystem::is_directory(folder / "JPEGImages", error);
    fail(path, "is a folder, not a model file" + (!inside.empty() ? ": a training run's, give its model " + inside
                                                  : dataset     ? std::string(": a dataset's, which --data takes")
                                                                : std::string()));
  }
  const auto run = std::filesystem::path(path).parent_path();  // fcn train's RUN/checkpoint.pt beside RUN/last.fcn
  if (std::filesystem::path(path).filename() == "checkpoint.pt" && std::filesystem::is_regular_file(run / "last.fcn", error))
    fail(path, "is a training run's checkpoint (what --resume takes), not a model file: give its model " + (run / "best.fcn").string() + " or " +
                   (run / "last.fcn").string());
  const auto opened = read_head(path, 24);
  if (!opened) fail(path, "cannot open (missing or unreadable)");
  const auto& head = *opened;
  if (is_png(head) || is_jpeg(head) || is_tiff(head))  // fcn predict photo.png model.fcn: the arguments swapped
    fail(path, "is an image, not a model file: the model comes first (fcn predict MODEL IMAGES..., fcn heatmap MODEL IMAGE)");
  const bool safetensors = is_safetensors(head);
  if (safetensors || is_legacy_torch(head))
    fail(path, std::string("is a weights file (") + (safetensors ? "safetensors" : "a state dict in torch.save's legacy format") +
                   "), not an fcn model file: " + import_hint(path));
  if (!is_torch_zip(head))
    fail(path, "not an fcn model file (expected a zip archive; make one with `fcn init` or `fcn import`)");
  return model_from_archive(read_torch_archive_dict(path), path);
}

Model model_from_archive(const ArchiveDict& dict, const std::string& path) {
  const auto get = [&](const char* key, ArchiveEntry::Kind kind, const char* what) -> const ArchiveEntry& {
    for (const auto& [name, entry] : dict) {
      if (name != key) continue;
      if (entry.kind != kind) fail(path, std::string("not an fcn model file ('") + key + "' is not " + what + ")");
      return entry;
    }
    // torch.save(model.state_dict()): tensors alone, or a checkpoint holding them under "state_dict" or "model".
    const bool state_dict = std::all_of(dict.begin(), dict.end(), [](const auto& e) { return e.second.kind == ArchiveEntry::Kind::kTensor; }) ||
                            std::any_of(dict.begin(), dict.end(), [](const auto& e) {
                              return (e.first == "state_dict" || e.first == "model") && e.second.kind == ArchiveEntry::Kind::kTensorDict;
                            });
    if (std::string(key) == "format" && !dict.empty() && state_dict)
      fail(path, "is a weights file (a PyTorch state dict), not an fcn model file: " + import_hint(path));
    fail(path, std::string("not an fcn model file (no '") + key + "' entry)");
  };
  if (get("format", ArchiveEntry::Kind::kString, "a string").text != kFormatName) fail(path, "not an fcn model file (format is not fcn-model)");
  const int64_t version = get("version", ArchiveEntry::Kind::kInt, "an integer").integer;
  if (version < 1) fail(path, "model format version " + std::to_string(version) + " is not valid (1.." + std::to_string(kModelFormatVersion) + ")");
  if (version > kModelFormatVersion)
    fail(path, "model format version " + std::to_string(version) + " is newer than this fcn reads (" +
                   std::to_string(kModelFormatVersion) + "); upgrade fcn");
  const auto& weights = get("state_dict", ArchiveEntry::Kind::kTensorDict, "a dict of tensors").dict;
  Model model;
  try {
    model.net = build_net(nlohmann::json::parse(get("config", ArchiveEntry::Kind::kString, "a string").text), path);
    model.meta = meta_from_json(nlohmann::json::parse(get("meta", ArchiveEntry::Kind::kString, "a string").text), path);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("model config is not valid JSON: ") + first_line(e.what()));
  }
  load_state_dict(*model.net, weights, path);
  const auto classes = static_cast<size_t>(model.net->label_classes());
  if (model.meta.class_names.size() != classes || model.meta.palette.size() != classes)
    fail(path, "metadata lists " + std::to_string(model.meta.class_names.size()) + " class names and " +
                   std::to_string(model.meta.palette.size()) + " colours for a net with " + std::to_string(classes) + " classes");
  const auto channels = static_cast<size_t>(model.net->in_channels());
  if (model.meta.normalization.mean.size() != channels || model.meta.normalization.std.size() != channels)
    fail(path, "normalisation has the wrong number of channels for a net with " + std::to_string(channels) + " inputs");
  if (model.meta.slice_context > 0 && static_cast<int64_t>(channels) % slices_a_sample(model.meta.slice_context) != 0)
    fail(path, "slice_context " + std::to_string(model.meta.slice_context) + " gives a net " + std::to_string(slices_a_sample(model.meta.slice_context)) +
                   " slices of each channel as its inputs, but it has " + std::to_string(channels) + " inputs");
  model.net->eval();
  return model;
}

}  // namespace fcn
