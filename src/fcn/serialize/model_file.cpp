#include "fcn/serialize/model_file.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

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
  write_file_atomic(path, torch::pickle_save(root));
}

Model load_model(const std::string& path) {
  const auto bytes = read_file(path);
  if (bytes.size() < 4 || std::string(bytes.data(), 4) != "PK\x03\x04")
    fail(path, "not an fcn model file (expected a zip archive; make one with `fcn init` or `fcn import`)");
  c10::IValue root;
  try {
    root = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    fail(path, "unreadable model file (truncated or corrupt?): " + first_line(e.what_without_backtrace()));
  }
  if (!root.isGenericDict()) fail(path, "not an fcn model file (no top-level dict)");
  const auto dict = root.toGenericDict();
  auto get = [&](const char* key) {
    if (!dict.contains(key)) fail(path, std::string("not an fcn model file (no '") + key + "' entry)");
    return dict.at(key);
  };
  if (!get("format").isString() || get("format").toStringRef() != kFormatName) fail(path, "not an fcn model file (format is not fcn-model)");
  const int64_t version = get("version").toInt();
  if (version > kModelFormatVersion)
    fail(path, "model format version " + std::to_string(version) + " is newer than this fcn reads (" +
                   std::to_string(kModelFormatVersion) + "); upgrade fcn");
  Model model;
  try {
    model.net = build_net(nlohmann::json::parse(get("config").toStringRef()), path);
    model.meta = meta_from_json(nlohmann::json::parse(get("meta").toStringRef()), path);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("model config is not valid JSON: ") + e.what());
  }
  StateDict weights;
  for (const auto& item : get("state_dict").toGenericDict()) weights.emplace_back(item.key().toStringRef(), item.value().toTensor());
  load_state_dict(*model.net, weights, path);
  const auto classes = static_cast<size_t>(model.net->label_classes());
  if (model.meta.class_names.size() != classes || model.meta.palette.size() != classes)
    fail(path, "metadata lists " + std::to_string(model.meta.class_names.size()) + " class names and " +
                   std::to_string(model.meta.palette.size()) + " colours for a net with " + std::to_string(classes) + " classes");
  const auto channels = static_cast<size_t>(model.net->in_channels());
  if (model.meta.normalization.mean.size() != channels || model.meta.normalization.std.size() != channels)
    fail(path, "normalisation has the wrong number of channels for a net with " + std::to_string(channels) + " inputs");
  model.net->eval();
  return model;
}

}  // namespace fcn
