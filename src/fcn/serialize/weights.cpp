#include "fcn/serialize/weights.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/vgg.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"

namespace fcn {
namespace {

std::string shape_string(torch::IntArrayRef sizes) {
  std::ostringstream out;
  out << sizes;
  return out.str();
}

// An error naming `key` where the floating-point `tensor` holds NaN or infinite values: a net with
// them scores NaN, which every argmax turns into class 0 without a word. One pass, no copy
// (aminmax carries NaN through); the count only on the error path.
void check_finite(const torch::Tensor& tensor, const std::string& key, const std::string& source) {
  if (!tensor.is_floating_point() || tensor.numel() == 0) return;
  const auto [low, high] = torch::aminmax(tensor);
  if (std::isfinite(low.item<double>()) && std::isfinite(high.item<double>())) return;
  const auto nan = torch::isnan(tensor).sum().item<int64_t>();
  const auto inf = torch::isinf(tensor).sum().item<int64_t>();
  fail(source, "key '" + key + "' holds " + std::to_string(nan) + " NaN and " + std::to_string(inf) + " infinite value(s) of " +
                   std::to_string(tensor.numel()) + " as " + c10::toString(tensor.scalar_type()) +
                   " (saved from a training that diverged?): a net with them scores NaN, which reads as class 0");
}

}  // namespace

StateDict read_state_dict(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) fail(path, "is a folder, not a weights file");
  const auto opened = read_head(path, 24);
  if (!opened) fail(path, "cannot open");
  const auto& head = *opened;
  if (is_torch_zip(head)) return read_torch_archive(path);
  if (is_safetensors(head)) return read_safetensors(path);
  if (is_legacy_torch(head)) return state_dict_of(read_torch_legacy_dict(path), path);
  if (!head.empty() && static_cast<unsigned char>(head[0]) == 0x80)
    fail(path, "a pickle, but not as torch.save writes one (a legacy file saved with another pickle_protocol?); re-save it with torch.save(sd, f)");
  fail(path, "neither a PyTorch .pth archive nor a safetensors file");
}

void write_torch_state_dict(const std::string& path, const StateDict& weights) {
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [name, tensor] : weights) dict.insert(name, tensor.detach().to(torch::kCPU).contiguous());
  write_torch_archive(path, dict, Durability::kDurable);
}

StateDict state_dict(const torch::nn::Module& module) {
  StateDict out;
  for (const auto& item : module.named_parameters()) out.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers()) out.emplace_back(item.key(), item.value());
  return out;
}

void load_state_dict(torch::nn::Module& module, const StateDict& weights, const std::string& source) {
  std::map<std::string, torch::Tensor> given(weights.begin(), weights.end());
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : state_dict(module)) {
    const auto it = given.find(name);
    if (it == given.end()) fail(source, "missing key '" + name + "' of shape " + shape_string(target.sizes()));
    if (it->second.sizes() != target.sizes())
      fail(source, "key '" + name + "' has shape " + shape_string(it->second.sizes()) + ", expected " +
                       shape_string(target.sizes()));
    if (!it->second.is_floating_point() && target.is_floating_point())
      fail(source, "key '" + name + "' holds " + c10::toString(it->second.scalar_type()) + ", expected floating point");
    target.copy_(it->second);
    check_finite(target, name, source);  // after the copy: a float64 value past float32's range is infinite there
    used.insert(name);
  }
  for (const auto& [name, tensor] : weights)
    if (!used.count(name)) fail(source, "unexpected key '" + name + "' (not a parameter of this net)");
}

namespace {

// fcn name prefix <-> torchvision key prefix, first match wins (an empty torchvision prefix matches all).
using Renames = std::vector<std::pair<std::string, std::string>>;

std::string renamed(const std::string& key, const Renames& renames, bool to_fcn) {
  for (const auto& [fcn_prefix, tv_prefix] : renames) {
    const auto& from = to_fcn ? tv_prefix : fcn_prefix;
    const auto& to = to_fcn ? fcn_prefix : tv_prefix;
    if (key.rfind(from, 0) == 0) return to + key.substr(from.size());
  }
  return "";
}

// Strict import under torchvision's names: every key must be one of the net's (renamed), with its
// shape, and every tensor of the net must be given; errors name torchvision's key and `what`.
void load_torchvision(torch::nn::Module& net, const StateDict& weights, const std::string& source, const std::string& what,
                      const Renames& renames) {
  const auto expected = state_dict(net);
  std::map<std::string, torch::Tensor> want(expected.begin(), expected.end());
  StateDict named;
  std::set<std::string> given;
  for (const auto& [key, tensor] : weights) {
    const auto name = renamed(key, renames, true);
    const auto it = want.find(name);
    if (name.empty() || it == want.end()) fail(source, "unexpected key '" + key + "' (not part of " + what + ")");
    if (tensor.sizes() != it->second.sizes())
      fail(source, "key '" + key + "' has shape " + shape_string(tensor.sizes()) + ", expected " + shape_string(it->second.sizes()) +
                       " (" + what + ")");
    named.emplace_back(name, tensor);
    given.insert(name);
  }
  for (const auto& [name, tensor] : expected)
    if (!given.count(name)) fail(source, "missing key '" + renamed(name, renames, false) + "' (" + what + ")");
  load_state_dict(net, named, source);
}

// The tensor under `key` with `dims` dimensions, or an error naming the key and `what`.
torch::IntArrayRef shape_of(const StateDict& weights, const std::string& key, int64_t dims, const std::string& source,
                            const std::string& what) {
  for (const auto& [name, tensor] : weights) {
    if (name != key) continue;
    if (tensor.dim() != dims)
      fail(source, "key '" + key + "' has shape " + shape_string(tensor.sizes()) + ", expected " + std::to_string(dims) +
                       " dimensions (" + what + ")");
    return tensor.sizes();
  }
  fail(source, "missing key '" + key + "' (" + what + ")");
}

}  // namespace

Classifier import_torchvision_vgg(const StateDict& weights, const std::string& source, int64_t depth, bool batch_norm) {
  const std::string what = "torchvision vgg" + std::to_string(depth) + (batch_norm ? "_bn" : "");
  // Read the variant off the shapes, then let the strict copy check every other key.
  const auto first = shape_of(weights, "features.0.weight", 4, source, what);
  const auto fc6 = shape_of(weights, "classifier.0.weight", 2, source, what);
  const auto fc8 = shape_of(weights, "classifier.6.weight", 2, source, what);
  const auto backbone =
      BackboneOptions().depth(depth).batch_norm(batch_norm).width(static_cast<double>(first[0]) / 64.0).in_channels(first[1]);
  const int64_t c5 = make_backbone(backbone)->channels(32);
  const auto k = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(fc6[1]) / static_cast<double>(c5))));
  if (k < 1 || k * k * c5 != fc6[1])
    fail(source, "key 'classifier.0.weight' has " + std::to_string(fc6[1]) + " inputs, not " + std::to_string(c5) +
                     " x k x k for any k (pool5 has " + std::to_string(c5) + " channels)");
  Classifier net(ClassifierOptions().backbone(backbone).input_size(32 * k).fc_channels(fc6[0]).num_classes(fc8[0]));
  Renames renames = {{"fc6.", "classifier.0."}, {"fc7.", "classifier.3."}, {"fc8.", "classifier.6."}};
  for (const auto& conv : dynamic_cast<const VGGImpl&>(*net->backbone).convs()) {
    renames.emplace_back("backbone." + conv.name + ".", "features." + std::to_string(conv.torchvision_index) + ".");
    if (conv.bn) renames.emplace_back("backbone.bn" + conv.name.substr(4) + ".", "features." + std::to_string(conv.torchvision_index + 1) + ".");
  }
  load_torchvision(*net, weights, source, what, renames);
  return net;
}

Classifier import_torchvision_alexnet(const StateDict& weights, const std::string& source) {
  const std::string what = "torchvision alexnet";
  const auto first = shape_of(weights, "features.0.weight", 4, source, what);
  const auto fc6 = shape_of(weights, "classifier.1.weight", 2, source, what);
  const auto fc8 = shape_of(weights, "classifier.6.weight", 2, source, what);
  const auto backbone =
      BackboneOptions().family(BackboneFamily::kAlexNet).depth(8).width(static_cast<double>(first[0]) / 64.0).in_channels(first[1]);
  Classifier net(ClassifierOptions().backbone(backbone).input_size(224).fc_channels(fc6[0]).num_classes(fc8[0]));
  load_torchvision(*net, weights, source, what,
                   {{"fc6.", "classifier.1."}, {"fc7.", "classifier.4."}, {"fc8.", "classifier.6."}, {"backbone.features.", "features."}});
  return net;
}

Classifier import_torchvision_resnet(const StateDict& weights, const std::string& source, int64_t depth, int64_t groups,
                                     int64_t width_per_group) {
  auto backbone = BackboneOptions().family(BackboneFamily::kResNet).depth(depth).groups(groups).width_per_group(width_per_group);
  const std::string what = "torchvision " + backbone_name(backbone);
  const auto first = shape_of(weights, "conv1.weight", 4, source, what);
  const auto fc = shape_of(weights, "fc.weight", 2, source, what);
  backbone.width(static_cast<double>(first[0]) / 64.0).in_channels(first[1]);
  Classifier net(ClassifierOptions().backbone(backbone).input_size(224).fc_channels(0).num_classes(fc[0]));
  load_torchvision(*net, weights, source, what, {{"fc8.", "fc."}, {"backbone.", ""}});
  return net;
}

Classifier import_torchvision_googlenet(const StateDict& weights, const std::string& source, bool transform_input) {
  const std::string what = "torchvision googlenet";
  const auto first = shape_of(weights, "conv1.conv.weight", 4, source, what);
  const auto fc = shape_of(weights, "fc.weight", 2, source, what);
  StateDict kept;  // the paper keeps only the final classifier: the auxiliary heads go
  for (const auto& item : weights)
    if (item.first.rfind("aux1.", 0) != 0 && item.first.rfind("aux2.", 0) != 0) kept.push_back(item);
  const auto backbone = BackboneOptions()
                            .family(BackboneFamily::kGoogLeNet)
                            .depth(22)
                            .width(static_cast<double>(first[0]) / 64.0)
                            .in_channels(first[1])
                            .transform_input(transform_input);
  Classifier net(ClassifierOptions().backbone(backbone).input_size(224).fc_channels(0).num_classes(fc[0]));
  load_torchvision(*net, kept, source, what, {{"fc8.", "fc."}, {"backbone.", ""}});
  return net;
}

TorchvisionFCN import_torchvision_fcn(const StateDict& weights, const std::string& source, int64_t depth) {
  const std::string what = "torchvision fcn_resnet" + std::to_string(depth);
  const auto first = shape_of(weights, "backbone.conv1.weight", 4, source, what);
  const auto score = shape_of(weights, "classifier.4.weight", 4, source, what);
  const bool aux = std::any_of(weights.begin(), weights.end(), [](const auto& item) { return item.first.rfind("aux_classifier.", 0) == 0; });
  const auto backbone = BackboneOptions()
                            .family(BackboneFamily::kResNet)
                            .depth(depth)
                            .width(static_cast<double>(first[0]) / 64.0)
                            .in_channels(first[1]);
  TorchvisionFCN net(TorchvisionFCNOptions().backbone(backbone).num_classes(score[0]).aux(aux));
  load_torchvision(*net, weights, source, what, {{"", ""}});  // fcn uses torchvision's names here
  return net;
}

namespace {

// A state dict's keys and shapes, asked as torchvision_format and torchvision_unimported read them.
class Keys {
 public:
  explicit Keys(const StateDict& weights) {
    for (const auto& [key, tensor] : weights) shapes_[key] = tensor.sizes().vec();
  }
  bool has(const std::string& key) const { return shapes_.count(key) > 0; }
  bool any_from(const std::string& prefix) const {
    const auto it = shapes_.lower_bound(prefix);
    return it != shapes_.end() && it->first.rfind(prefix, 0) == 0;
  }
  int64_t size(const std::string& key, size_t dim) const {  // -1 where the key or the dimension is absent
    const auto it = shapes_.find(key);
    return it == shapes_.end() || it->second.size() <= dim ? -1 : it->second[dim];
  }
  // Distinct N of keys "PREFIXN.rest" (blocks of a layer, indices of a Sequential), with `suffix` after them.
  int64_t count(const std::string& prefix, const std::string& suffix) const {
    std::set<std::string> seen;
    for (auto it = shapes_.lower_bound(prefix); it != shapes_.end() && it->first.rfind(prefix, 0) == 0; ++it) {
      const auto& key = it->first;
      if (key.size() >= suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0)
        seen.insert(key.substr(prefix.size(), key.find('.', prefix.size()) - prefix.size()));
    }
    return static_cast<int64_t>(seen.size());
  }
  // A ResNet's depth by its blocks (basic or bottleneck, layer3's count); 0 where no torchvision depth has them.
  int64_t resnet_depth(const std::string& prefix) const {
    const int64_t blocks = count(prefix + "layer3.", ".conv1.weight");
    if (!has(prefix + "layer1.0.conv3.weight")) return blocks == 2 ? 18 : blocks == 6 ? 34 : 0;
    return blocks == 6 ? 50 : blocks == 23 ? 101 : blocks == 36 ? 152 : 0;
  }
  // ResNet's own 3x3 convs, not ResNeXt's grouped ones nor Wide ResNet's doubled ones.
  bool plain_resnet(const std::string& prefix) const {
    const int64_t out = size(prefix + "layer1.0.conv2.weight", 0);
    return out == size(prefix + "layer1.0.conv2.weight", 1) && out == size(prefix + "conv1.weight", 0);
  }
  // "resnet50", "resnext50_32x4d", "wide_resnet50_2" (the backbone names), by layer1's first 3x3 conv against the
  // stem: its groups, and its channels per group at the stem's width; "" where no depth fits.
  std::string resnet_name(const std::string& prefix) const {
    const int64_t depth = resnet_depth(prefix), stem = size(prefix + "conv1.weight", 0);
    const int64_t out = size(prefix + "layer1.0.conv2.weight", 0), in = size(prefix + "layer1.0.conv2.weight", 1);
    if (depth == 0 || stem <= 0 || out <= 0 || in <= 0 || out % in != 0) return "";
    const int64_t groups = out / in, per_group = in * 64 / stem;
    if (groups > 1) return "resnext" + std::to_string(depth) + "_" + std::to_string(groups) + "x" + std::to_string(per_group) + "d";
    if (per_group != 64) return per_group % 64 == 0 ? "wide_resnet" + std::to_string(depth) + "_" + std::to_string(per_group / 64) : "";
    return "resnet" + std::to_string(depth);
  }
  // The VGG of `convs` convolutions (11, 13, 16, 19), 0 for another count.
  static int64_t vgg_depth(int64_t convs) { return convs == 8 ? 11 : convs == 10 ? 13 : convs == 13 ? 16 : convs == 16 ? 19 : 0; }

 private:
  std::map<std::string, std::vector<int64_t>> shapes_;
};

}  // namespace

std::string torchvision_format(const StateDict& weights) {
  const Keys keys(weights);
  // torchvision's FCNHead: classifier.0 the 3x3 conv, .4 the 1x1 (DeepLabV3's head has a .4 too, after its ASPP).
  if (keys.has("backbone.conv1.weight") && keys.has("classifier.0.weight") && keys.has("classifier.4.weight")) {
    const int64_t depth = keys.resnet_depth("backbone.");
    return (depth == 50 || depth == 101) && keys.plain_resnet("backbone.") ? "torchvision-fcn-resnet" + std::to_string(depth) : "";
  }
  if (keys.has("inception3a.branch1.conv.weight") && keys.has("fc.weight")) return "torchvision-googlenet";
  if (keys.has("conv1.weight") && keys.has("layer1.0.conv1.weight") && keys.has("fc.weight")) {
    const auto name = keys.resnet_name("");  // ResNet, ResNeXt, Wide ResNet
    return name.empty() ? "" : "torchvision-" + name;
  }
  const int64_t convs = keys.count("features.", ".weight");  // VGG's and AlexNet's features hold convs alone (no batch norm)
  if (keys.has("classifier.6.weight") && keys.has("classifier.1.weight") && convs == 5) return "torchvision-alexnet";
  if (keys.has("classifier.6.weight") && keys.has("classifier.0.weight")) {
    const bool bn = keys.has("features.1.running_var");  // torchvision's vgg*_bn: a batch norm after each conv
    const int64_t depth = Keys::vgg_depth(bn ? keys.count("features.", ".running_var") : convs);
    if (depth > 0) return "torchvision-vgg" + std::to_string(depth) + (bn ? "_bn" : "");
  }
  return "";
}

std::string torchvision_unimported(const StateDict& weights) {
  if (!torchvision_format(weights).empty()) return "";
  const Keys keys(weights);
  const auto segmenter = [&](const std::string& head) {  // torchvision's segmentation nets on a ResNet
    const auto backbone = keys.resnet_name("backbone.");
    return backbone.empty() ? std::string() : head + "_" + backbone;
  };
  if (keys.has("classifier.0.convs.0.0.weight")) return keys.has("backbone.conv1.weight") ? segmenter("deeplabv3") : "deeplabv3_mobilenet_v3_large";
  if (keys.has("backbone.conv1.weight") && keys.has("classifier.0.weight") && keys.has("classifier.4.weight")) return segmenter("fcn");
  // Models with nothing of fcn's: known by a key of their own.
  static const std::vector<std::pair<const char*, const char*>> marks = {
      {"classifier.cbr.", "lraspp_mobilenet_v3_large"}, {"features.denseblock1.", "densenet"},  {"Conv2d_1a_3x3.", "inception_v3"},
      {"features.3.squeeze.", "squeezenet"},             {"class_token", "vit"},                 {"stage2.0.", "shufflenet_v2"},
      {"trunk_output.", "regnet"},                       {"layers.0.weight", "mnasnet"},         {"features.1.conv.", "mobilenet_v2"},
      {"features.1.block.", "mobilenet_v3"},             {"features.1.0.layer_scale", "convnext"}, {"features.1.0.attn.", "swin"},
      {"features.1.0.block.", "efficientnet"}};
  for (const auto& [prefix, name] : marks)
    if (keys.any_from(prefix)) return name;
  return "";
}

}  // namespace fcn
