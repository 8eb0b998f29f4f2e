#include "fcn/models/model.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/formats/palette.h"
#include "fcn/util/error.h"

namespace fcn {

using nlohmann::json;

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

ModelMeta default_meta(int64_t num_classes, int64_t in_channels) {
  ModelMeta meta;
  if (num_classes == 1) num_classes = 2;
  for (int64_t c = 0; c < num_classes; ++c) meta.class_names.push_back("class_" + std::to_string(c));
  meta.palette = voc_palette(num_classes);
  if (in_channels == 3) {
    meta.normalization = {{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}};  // ImageNet (torchvision)
  } else {
    meta.normalization = {std::vector<double>(in_channels, 0.5), std::vector<double>(in_channels, 0.5)};
  }
  return meta;
}

torch::Tensor model_input(const Model& model, const torch::Tensor& image, const std::string& source) {
  return preprocess(image, model.net->in_channels(), model.meta.normalization, source);
}

}  // namespace fcn
