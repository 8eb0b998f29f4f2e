#include "fcn/models/model.h"

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/formats/nifti.h"
#include "fcn/formats/palette.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"

namespace fcn {

using nlohmann::json;

namespace {

// Sane bounds on the numbers of a config (a model file's config is user input: 1e12 classes must
// be refused before a net of that size is allocated), and which are counts: a count given as 3.5
// is refused, not truncated to 3 by the factory. Keys not listed: finite, |x| <= 1e6.
struct Bound {
  const char* key;
  double low, high;
  bool whole;
};
constexpr Bound kBounds[] = {{"num_classes", 1, 65536, true}, {"in_channels", 1, 1024, true}, {"fc_channels", 0, 65536, true},
                             {"fc_kernel", 0, 32, true},      {"width", 1e-3, 8, false},      {"base_channels", 1, 4096, true},
                             {"input_size", 1, 8192, true},   {"depth", 0, 200, true},        {"stride", 1, 64, true},
                             {"dropout", 0, 1, false}};

void check_bounds(const json& config, const std::string& context, int level) {
  if (level > 4) fail(context, "model config is nested too deeply");
  if (!config.is_object()) return;
  for (const auto& [key, value] : config.items()) {
    if (value.is_object()) check_bounds(value, context, level + 1);
    if (!value.is_number()) continue;
    const double x = value.get<double>();
    double low = -1e6, high = 1e6;
    bool whole = false;
    for (const auto& b : kBounds)
      if (key == b.key) low = b.low, high = b.high, whole = b.whole;
    if (whole && !value.is_number_integer())
      fail(context, "model config key '" + printable(key.substr(0, 40)) + "' is " + value.dump() + ", not a whole number");
    const auto number = [](double v) { return v == std::floor(v) ? std::to_string(static_cast<long long>(v)) : json(v).dump(); };
    if (!std::isfinite(x) || x < low || x > high)
      fail(context, "model config key '" + printable(key.substr(0, 40)) + "' is " + value.dump() + ", outside " + number(low) + ".." +
                        number(high));
  }
}

}  // namespace

void validate_net_config(const json& config, const std::string& context) {
  if (!config.is_object()) fail(context, "model config is not a JSON object");
  check_bounds(config, context, 0);
  // Each number may be sane and their product not: fc6 is fc_channels x (pool5 channels x k x k),
  // pool5 at most 2048 x width channels (ResNet; VGG 512). Bounded like one tensor read from a file.
  const auto number = [](const json& j, const char* key, double otherwise) {  // a non-number is the factory's error
    return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : otherwise;
  };
  const double width = config.contains("backbone") ? number(config["backbone"], "width", 1.0) : 1.0;
  const double fc = number(config, "fc_channels", 0.0);
  const double k = number(config, "fc_kernel", 0.0) > 0 ? number(config, "fc_kernel", 0.0) : number(config, "input_size", 224.0) / 32.0;
  const double fc6_bytes = fc * k * k * 2048.0 * width * 4.0;
  if (fc6_bytes > static_cast<double>(limits().max_tensor_bytes))
    fail(context, "model config asks for an fc6 layer of up to " + std::to_string(static_cast<long long>(fc6_bytes / (1 << 20))) +
                      " MiB (fc_channels x fc_kernel^2 x width), over Limits.max_tensor_bytes");
}

json meta_to_json(const ModelMeta& meta) {
  json out = {{"class_names", meta.class_names},
              {"palette", meta.palette},
              {"normalization", {{"mean", meta.normalization.mean}, {"std", meta.normalization.std}}},
              {"training", json::parse(meta.training)}};
  if (meta.slice_context > 0) out["slice_context"] = meta.slice_context;  // absent: one slice, as files before it
  if (meta.pixel_mm) out["pixel_mm"] = *meta.pixel_mm;  // absent: slices as stored, as files before it
  if (!meta.axes.empty()) out["axes"] = meta.axes;
  return out;
}

ModelMeta meta_from_json(const json& j, const std::string& context) {
  try {
    ModelMeta meta;
    meta.class_names = j.at("class_names").get<std::vector<std::string>>();
    meta.palette = colors_from_json(j.at("palette"), context);
    meta.normalization.mean = j.at("normalization").at("mean").get<std::vector<double>>();
    meta.normalization.std = j.at("normalization").at("std").get<std::vector<double>>();
    for (const double m : meta.normalization.mean)
      if (!std::isfinite(m)) fail(context, "normalisation mean " + number_text(m) + " is not finite");
    for (const double sd : meta.normalization.std)
      if (!std::isfinite(sd) || sd <= 0) fail(context, "normalisation std " + number_text(sd) + " must be positive");
    if (j.contains("training")) meta.training = j.at("training").dump();
    if (j.contains("slice_context")) {
      meta.slice_context = j.at("slice_context").get<int64_t>();
      if (meta.slice_context < 0 || meta.slice_context > kMostSliceContext)
        fail(context, "slice_context " + std::to_string(meta.slice_context) + " is not 0.." + std::to_string(kMostSliceContext));
    }
    if (j.contains("pixel_mm")) {
      meta.pixel_mm = j.at("pixel_mm").get<std::array<double, 2>>();
      if (const auto problem = pixel_mm_problem(*meta.pixel_mm); !problem.empty()) fail(context, "pixel_mm: " + problem);
    }
    if (j.contains("axes")) {
      meta.axes = j.at("axes").get<std::string>();
      if (!valid_axis_codes(meta.axes)) fail(context, "axes '" + meta.axes + "' is not an orientation (three letters, one of R/L, A/P and S/I each)");
    }
    return meta;
  } catch (const json::exception& e) {
    fail(context, std::string("bad model metadata: ") + first_line(e.what()));
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
  const int64_t context = model.meta.slice_context;
  const int64_t inputs = model.net->in_channels();
  if (context > 0 && image.defined() && image.dim() >= 3 && image.size(-3) != inputs)  // gray would pass as 3 equal slices
    fail(source, "has " + std::to_string(image.size(-3)) + " channel(s), and the model is a 2.5-D net that takes " + std::to_string(inputs) +
                     ": a volume's slices k-" + std::to_string(context) + "..k+" + std::to_string(context) +
                     (inputs > slices_a_sample(context) ? " of each of its " + std::to_string(inputs / slices_a_sample(context)) + " channels" : "") +
                     " together: give it the NIfTI volume, or the slices fcn data unstack --context wrote");
  return preprocess(image, model.net->in_channels(), model.meta.normalization, source);
}

}  // namespace fcn
