#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "fcn/data/dataset.h"
#include "fcn/formats/palette.h"
#include "fcn/models/registry.h"
#include "fcn/serialize/model_file.h"
#include "fcn/serialize/weights.h"
#include "fcn/util/error.h"

namespace fcn::cli {
namespace {

const std::vector<std::string>& formats() {
  static const std::vector<std::string> names = {"torchvision-vgg11",     "torchvision-vgg13",     "torchvision-vgg16",
                                                 "torchvision-vgg19",     "torchvision-vgg11_bn",  "torchvision-vgg13_bn",
                                                 "torchvision-vgg16_bn",  "torchvision-vgg19_bn",  "torchvision-alexnet",   "torchvision-resnet18",
                                                 "torchvision-resnet34",  "torchvision-resnet50",  "torchvision-resnet101", "torchvision-resnet152",
                                                 "torchvision-resnext50_32x4d", "torchvision-resnext101_32x8d", "torchvision-resnext101_64x4d",
                                                 "torchvision-wide_resnet50_2", "torchvision-wide_resnet101_2",
                                                 "torchvision-googlenet", "torchvision-fcn-resnet50", "torchvision-fcn-resnet101"};
  return names;
}

// The net in `weights` (from `file`), read as the torchvision model `format` names.
std::shared_ptr<NetImpl> import_weights(const std::string& format, const StateDict& weights, const std::string& file, bool transform_input) {
  const std::string model = format.substr(std::string("torchvision-").size());
  if (model == "alexnet") return import_torchvision_alexnet(weights, file).ptr();
  if (model == "googlenet") return import_torchvision_googlenet(weights, file, transform_input).ptr();
  if (model.rfind("fcn-resnet", 0) == 0) return import_torchvision_fcn(weights, file, std::stoi(model.substr(10))).ptr();
  // The rest are backbone names: resnext50_32x4d is depth 50 in 32 groups of 4 channels, vgg16_bn VGG16 with batch norm.
  const auto backbone = parse_backbone(model);
  if (backbone.family() == BackboneFamily::kResNet)
    return import_torchvision_resnet(weights, file, backbone.depth(), backbone.groups(), backbone.width_per_group()).ptr();
  return import_torchvision_vgg(weights, file, backbone.depth(), backbone.batch_norm()).ptr();
}

// The net in `file`, read as the torchvision model `format` names, or as the one its keys show (`auto`). Where
// the format asked for fails and the keys show another, the error says which: "vgg.pth: missing key
// 'classifier.1.weight' (torchvision alexnet); its keys are those of torchvision-vgg16".
std::shared_ptr<NetImpl> import_net(std::string format, const std::string& file, bool transform_input) {
  if (format != "auto" && std::find(formats().begin(), formats().end(), format) == formats().end()) {
    std::string known;
    for (const auto& name : formats()) known += (known.empty() ? "" : ", ") + name;
    const bool swapped = std::find(formats().begin(), formats().end(), file) != formats().end() || file == "auto";
    fail("FORMAT", "'" + format + "' is not one of " + known + ", nor auto" +
                       (swapped ? " (the format comes first: fcn import " + file + " " + format + " --out MODEL.fcn)" : ""));
  }
  if (transform_input && format != "auto" && format != "torchvision-googlenet")  // before a large file is read
    fail("--transform-input", "is torchvision-googlenet's, and " + format + " has no such step: leave it out");
  const auto weights = read_state_dict(file);
  const auto seen = torchvision_format(weights);
  if (format == "auto") {
    if (seen.empty()) {
      const auto other = torchvision_unimported(weights);
      fail(file, (other.empty() ? "holds no torchvision model fcn imports, by its keys"
                                : "holds torchvision's " + other + " (by its keys), which fcn does not import (fcn import --help lists those it does)") +
                     " (" + std::to_string(weights.size()) + " tensors; fcn info " + file + " lists them)");
    }
    std::cout << file << ": its keys are those of " << seen << "\n";
    format = seen;
  }
  if (transform_input && format != "torchvision-googlenet")
    fail("--transform-input", "is torchvision-googlenet's, and " + format + " has no such step: leave it out");
  if (!transform_input && format == "torchvision-googlenet")  // the file cannot say; torchvision's pretrained weights want it
    std::fprintf(stderr, "fcn: note: imported without --transform-input: torchvision's pretrained GoogLeNet weights want it "
                         "(torchvision.models.googlenet(weights=...) turns it on); weights trained without it do not\n");
  try {
    return import_weights(format, weights, file, transform_input);
  } catch (const Error& e) {
    if (seen == format) throw;
    if (seen.empty()) {
      const auto other = torchvision_unimported(weights);
      if (other.empty()) throw;
      throw Error(e.subject(), e.message() + "; its keys are those of torchvision's " + other + ", which fcn does not import");
    }
    throw Error(e.subject(), e.message() + "; its keys are those of " + seen + " (fcn import " + seen + " or auto)");
  }
}

// The class names (and colours) `given` names for `meta`'s classes: a classes.json as a dataset's ({"names": [...],
// "colors": [...]}) where it is a file, else names separated by commas. Their count is the net's.
void name_classes(ModelMeta& meta, const std::string& given) {
  std::error_code error;
  ClassTable table;
  if (std::filesystem::is_regular_file(given, error)) {
    table = read_classes_json(given);
  } else {
    for (size_t start = 0; start <= given.size();) {
      const auto comma = std::min(given.find(',', start), given.size());
      const auto name = given.substr(start, comma - start);
      const auto first = name.find_first_not_of(" \t");
      if (first == std::string::npos) fail("--class-names", "has an empty name in '" + given + "' (names separated by commas, or a classes.json)");
      table.names.push_back(name.substr(first, name.find_last_not_of(" \t") - first + 1));
      start = comma + 1;
    }
  }
  if (table.names.size() != meta.class_names.size())
    fail("--class-names", "gives " + std::to_string(table.names.size()) + " names, and the net has " + std::to_string(meta.class_names.size()) +
                              " classes");
  meta.class_names = table.names;
  if (!table.colors.empty()) meta.palette = table.colors;
}

}  // namespace

void add_import(CLI::App& app) {
  auto* cmd = app.add_subcommand("import", "Import a classifier's weights from PyTorch (.pth) or safetensors\n"
                                           "  example: fcn import torchvision-vgg16 vgg16.pth --out vgg16.fcn\n"
                                           "  example: fcn import torchvision-resnet50 resnet50.safetensors --out resnet50.fcn\n"
                                           "  example: fcn import auto weights.pth --out model.fcn   (the torchvision model its keys show)\n"
                                           "  (vgg16.pth as written by torch.save(torchvision.models.vgg16().state_dict(), f))");
  static std::string format, file, out, class_names;
  static bool transform_input = false;
  cmd->add_option("FORMAT", format,
                  "torchvision-vgg11|13|16|19, torchvision-vgg11_bn|13_bn|16_bn|19_bn, torchvision-alexnet, torchvision-resnet18|34|50|101|152, torchvision-resnext50_32x4d|101_32x8d|101_64x4d, torchvision-wide_resnet50_2|101_2, torchvision-googlenet, torchvision-fcn-resnet50|101, "
                  "or auto (the one the file's keys show)")
      ->required();
  cmd->add_option("FILE", file, "weights: .pth/.pt (torch.save) or .safetensors")->required();
  add_out_flag(cmd, out, "model file to write")->required();
  cmd->add_flag("--transform-input", transform_input, "googlenet: torchvision's transform_input (its pretrained weights want it)");
  cmd->add_option("--class-names", class_names,
                  "the classes' names: NAME,NAME,... or a classes.json ({\"names\": [...], \"colors\": [[r,g,b], ...]}, as a dataset's); "
                  "default: PASCAL VOC's for torchvision's 21-class segmentation FCNs, class_0.. otherwise");
  cmd->callback([] {
    check_not_input(out, "--out", file);
    Model model;
    model.net = import_net(format, file, transform_input);
    model.meta = default_meta(model.net->num_classes(), model.net->in_channels());
    if (!class_names.empty()) {
      name_classes(model.meta, class_names);
    } else if (model.net->arch() == "torchvision-fcn" && model.net->num_classes() == 21) {  // torchvision's pretrained weights
      model.meta.class_names = voc_class_names();
      std::cout << "classes: PASCAL VOC's 21 (background, aeroplane, ..., tvmonitor), as torchvision's pretrained FCNs predict "
                   "them; --class-names names others\n";
    }
    save_model(out, model);
    std::cout << "wrote " << out << ": " << model.net->arch() << " from " << file << ", " << net_config(*model.net).dump() << "\n";
  });
}

}  // namespace fcn::cli
