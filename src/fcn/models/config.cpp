#include "fcn/models/config.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/classifier.h"
#include "fcn/models/convolutionalize.h"
#include "fcn/models/fcn.h"
#include "fcn/models/layers.h"
#include "fcn/models/unet.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

using nlohmann::json;

json backbone_json(const VGGOptions& o) {
  return {{"name", backbone_name(o)}, {"in_channels", o.in_channels()}};
}

VGGOptions backbone_from(const json& j, const std::string& context) {
  auto o = parse_backbone(j.at("name").get<std::string>());
  o.in_channels(j.at("in_channels").get<int64_t>());
  if (o.in_channels() < 1) fail(context, "backbone.in_channels must be positive");
  return o;
}

json classifier_json(const ClassifierOptions& o) {
  return {{"backbone", backbone_json(o.backbone())}, {"input_size", o.input_size()},
          {"fc_channels", o.fc_channels()},          {"num_classes", o.num_classes()},
          {"dropout", o.dropout()}};
}

ClassifierOptions classifier_from(const json& j, const std::string& context) {
  return ClassifierOptions()
      .backbone(backbone_from(j.at("backbone"), context))
      .input_size(j.at("input_size").get<int64_t>())
      .fc_channels(j.at("fc_channels").get<int64_t>())
      .num_classes(j.at("num_classes").get<int64_t>())
      .dropout(j.at("dropout").get<double>());
}

}  // namespace

json net_config(const NetImpl& net) {
  if (auto* c = dynamic_cast<const ClassifierImpl*>(&net)) {
    auto j = classifier_json(c->options);
    j["arch"] = "classifier";
    return j;
  }
  if (auto* c = dynamic_cast<const ConvClassifierImpl*>(&net)) {
    auto j = classifier_json(c->options);
    j["arch"] = "conv-classifier";
    return j;
  }
  if (auto* f = dynamic_cast<const FCNImpl*>(&net)) {
    const auto& o = f->options;
    return {{"arch", "fcn"},
            {"stride", o.stride()},
            {"num_classes", o.num_classes()},
            {"backbone", backbone_json(o.backbone())},
            {"geometry", geometry_name(o.geometry())},
            {"fc_channels", o.fc_channels()},
            {"fc_kernel", o.fc_kernel()},
            {"dropout", o.dropout()},
            {"learnable_upsampling", o.learnable_upsampling()}};
  }
  if (auto* u = dynamic_cast<const UNetImpl*>(&net)) {
    const auto& o = u->options;
    return {{"arch", "unet"},
            {"depth", o.depth()},
            {"base_channels", o.base_channels()},
            {"in_channels", o.in_channels()},
            {"num_classes", o.num_classes()},
            {"padding", padding_name(o.padding())},
            {"upsample", upsample_name(o.upsample())},
            {"batch_norm", o.batch_norm()}};
  }
  TORCH_CHECK(false, "net_config: unregistered architecture ", net.arch());
}

std::shared_ptr<NetImpl> build_net(const json& j, const std::string& context) {
  try {
    const auto arch = j.at("arch").get<std::string>();
    if (arch == "classifier") return std::make_shared<ClassifierImpl>(classifier_from(j, context));
    if (arch == "conv-classifier") return std::make_shared<ConvClassifierImpl>(classifier_from(j, context));
    if (arch == "fcn") {
      return std::make_shared<FCNImpl>(FCNOptions()
                                           .stride(j.at("stride").get<int64_t>())
                                           .num_classes(j.at("num_classes").get<int64_t>())
                                           .backbone(backbone_from(j.at("backbone"), context))
                                           .geometry(parse_geometry(j.at("geometry").get<std::string>()))
                                           .fc_channels(j.at("fc_channels").get<int64_t>())
                                           .fc_kernel(j.at("fc_kernel").get<int64_t>())
                                           .dropout(j.at("dropout").get<double>())
                                           .learnable_upsampling(j.at("learnable_upsampling").get<bool>()));
    }
    if (arch == "unet") {
      return std::make_shared<UNetImpl>(UNetOptions()
                                            .depth(j.at("depth").get<int64_t>())
                                            .base_channels(j.at("base_channels").get<int64_t>())
                                            .in_channels(j.at("in_channels").get<int64_t>())
                                            .num_classes(j.at("num_classes").get<int64_t>())
                                            .padding(parse_padding(j.at("padding").get<std::string>()))
                                            .upsample(parse_upsample(j.at("upsample").get<std::string>()))
                                            .batch_norm(j.at("batch_norm").get<bool>()));
    }
    fail(context, "unknown arch '" + arch + "' (known: classifier, conv-classifier, fcn, unet)");
  } catch (const json::exception& e) {
    fail(context, std::string("bad model config: ") + e.what());
  } catch (const Error& e) {
    fail(context, e.what());
  }
}

json meta_to_json(const ModelMeta& meta) {
  return {{"class_names", meta.class_names},
          {"palette", meta.palette},
          {"normalization", {{"mean", meta.normalization.mean}, {"std", meta.normalization.std}}},
          {"training", json::parse(meta.training)}};
}

ModelMeta meta_from_json(const json& j, const std::string& context) {
  try {
    ModelMeta meta;
    meta.class_names = j.at("class_names").get<std::vector<std::string>>();
    meta.palette = j.at("palette").get<std::vector<std::array<uint8_t, 3>>>();
    meta.normalization.mean = j.at("normalization").at("mean").get<std::vector<double>>();
    meta.normalization.std = j.at("normalization").at("std").get<std::vector<double>>();
    if (j.contains("training")) meta.training = j.at("training").dump();
    return meta;
  } catch (const json::exception& e) {
    fail(context, std::string("bad model metadata: ") + e.what());
  }
}

std::array<uint8_t, 3> voc_color(int index) {
  std::array<uint8_t, 3> rgb{0, 0, 0};
  for (int bit = 7, c = index; c > 0; --bit, c >>= 3) {
    for (int channel = 0; channel < 3; ++channel) rgb[channel] |= static_cast<uint8_t>(((c >> channel) & 1) << bit);
  }
  return rgb;
}

ModelMeta default_meta(int64_t num_classes, int64_t in_channels) {
  ModelMeta meta;
  for (int64_t c = 0; c < num_classes; ++c) {
    meta.class_names.push_back("class_" + std::to_string(c));
    meta.palette.push_back(voc_color(static_cast<int>(c % 256)));
  }
  if (in_channels == 3) {
    meta.normalization = {{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}};  // ImageNet (torchvision)
  } else {
    meta.normalization = {std::vector<double>(in_channels, 0.5), std::vector<double>(in_channels, 0.5)};
  }
  return meta;
}

int64_t parameter_count(const NetImpl& net) {
  int64_t count = 0;
  for (const auto& p : net.parameters()) count += p.numel();
  return count;
}

double forward_flops(NetImpl& net, int64_t height, int64_t width) {
  c10::InferenceMode guard;
  const bool was_training = net.is_training();
  net.eval();
  FlopCounter counter;
  net.forward(torch::zeros({1, net.in_channels(), height, width}));
  net.train(was_training);
  return counter.flops();
}

}  // namespace fcn
