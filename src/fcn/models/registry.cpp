#include "fcn/models/registry.h"

#include <cmath>
#include <utility>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/classifier.h"
#include "fcn/models/convolutionalize.h"
#include "fcn/models/fcn.h"
#include "fcn/models/model.h"
#include "fcn/models/torchvision_fcn.h"
#include "fcn/models/unet.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

using nlohmann::json;
using Factory = std::shared_ptr<NetImpl> (*)(const json&);

// The registry: one line per architecture.
const std::vector<std::pair<std::string, Factory>>& registered() {
  static const std::vector<std::pair<std::string, Factory>> table = {
      {"classifier", &ClassifierImpl::from_config},
      {"conv-classifier", &ConvClassifierImpl::from_config},
      {"fcn", &FCNImpl::from_config},
      {"unet", &UNetImpl::from_config},
      {"torchvision-fcn", &TorchvisionFCNImpl::from_config},
  };
  return table;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

int64_t fcn_stride(const std::string& arch) {
  if (arch == "fcn32s") return 32;
  if (arch == "fcn16s") return 16;
  if (arch == "fcn8s") return 8;
  return 0;
}

json net_config(const NetImpl& net) {
  auto config = net.config();
  config["arch"] = net.arch();
  return config;
}

std::vector<std::string> architectures() {
  std::vector<std::string> names;
  for (const auto& entry : registered()) names.push_back(entry.first);
  return names;
}

std::shared_ptr<NetImpl> build_net(const json& config, const std::string& context) {
  try {
    validate_net_config(config, context);
    const auto arch = config.at("arch").get<std::string>();
    for (const auto& [name, factory] : registered())
      if (name == arch) return factory(config);
    fail(context, "unknown arch '" + printable(arch.substr(0, 40)) + "' (known: " + joined(architectures()) + ")");
  } catch (const json::exception& e) {
    fail(context, std::string("bad model config: ") + first_line(e.what()));
  } catch (const std::bad_alloc&) {
    fail(context, "the model config asks for a net too large to allocate (corrupt file?)");
  } catch (const c10::Error& e) {
    fail(context, "bad model config: " + first_line(e.what_without_backtrace()));
  } catch (const Error& e) {
    if (e.subject() == context) throw;
    fail(context, e.what());
  }
}

std::shared_ptr<NetImpl> make_net(const NetRecipe& recipe) {
  if (recipe.in_channels < 1) fail("NetRecipe.in_channels", "must be positive, got " + std::to_string(recipe.in_channels));
  if (recipe.classes < 0) fail("NetRecipe.classes", "must be positive, got " + std::to_string(recipe.classes));
  const auto classes_or = [&](int64_t usual) { return recipe.classes > 0 ? recipe.classes : usual; };
  if (recipe.arch == "unet") {
    return std::make_shared<UNetImpl>(UNetOptions()
                                          .depth(recipe.depth)
                                          .base_channels(recipe.base_channels)
                                          .in_channels(recipe.in_channels)
                                          .num_classes(classes_or(2))
                                          .padding(parse_padding(recipe.padding))
                                          .upsample(parse_upsample(recipe.upsample))
                                          .batch_norm(recipe.batch_norm)
                                          .dropout(recipe.dropout));
  }
  const int64_t stride = fcn_stride(recipe.arch);
  if (stride == 0 && recipe.arch != "classifier" && recipe.arch != "torchvision-fcn")
    fail("NetRecipe.arch", "'" + recipe.arch + "' is not one of fcn32s, fcn16s, fcn8s, unet, classifier, torchvision-fcn");
  const auto backbone = parse_backbone(recipe.backbone).in_channels(recipe.in_channels);
  if (recipe.arch == "torchvision-fcn")
    return std::make_shared<TorchvisionFCNImpl>(TorchvisionFCNOptions().backbone(backbone).num_classes(classes_or(21)).aux(recipe.aux));
  if (recipe.fc_channels < 0) fail("NetRecipe.fc_channels", "must be positive (or 0 for the backbone's own)");
  // The classifier head the backbone came with: VGG's and AlexNet's 4096-wide fc6/fc7 (scaled),
  // none for ResNet and GoogLeNet (their FCNs score the last map with a 1x1 conv).
  const bool fc_head = has_fc_head(backbone.family());
  const int64_t fc = recipe.fc_channels > 0 ? recipe.fc_channels : fc_head ? scaled_channels(4096, backbone.width()) : 0;
  if (stride == 0) {
    return std::make_shared<ClassifierImpl>(
        ClassifierOptions().backbone(backbone).input_size(recipe.input_size).fc_channels(fc).num_classes(classes_or(1000)));
  }
  if (recipe.fc_kernel < 0) fail("NetRecipe.fc_kernel", "must be at least 1 (or 0 for the classifier's k), got " + std::to_string(recipe.fc_kernel));
  const int64_t k = recipe.fc_kernel > 0 ? recipe.fc_kernel : fc > 0 ? backbone_output_side(backbone, 224) : 1;
  return std::make_shared<FCNImpl>(FCNOptions()
                                       .stride(stride)
                                       .num_classes(classes_or(21))
                                       .backbone(backbone)
                                       .geometry(parse_geometry(recipe.geometry))
                                       .fc_channels(fc)
                                       .fc_kernel(k)
                                       .learnable_upsampling(!recipe.frozen_upsampling)
                                       .at_once(recipe.at_once));
}

}  // namespace fcn
