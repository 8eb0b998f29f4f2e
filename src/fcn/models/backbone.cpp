#include "fcn/models/backbone.h"

#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/alexnet.h"
#include "fcn/models/googlenet.h"
#include "fcn/models/resnet.h"
#include "fcn/models/vgg.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

// What a name may carry after its depth: vgg16_bn's batch norm, resnext50_32x4d's groups and width per group,
// wide_resnet50_2's widening.
enum class Variant { kNone, kBatchNorm, kResNeXt, kWide };

struct Family {
  BackboneFamily family;
  const char* prefix;
  std::vector<int64_t> depths;  // empty: the name carries no depth
  Variant variant = Variant::kNone;
};

const std::vector<Family>& families() {
  static const std::vector<Family> table = {
      {BackboneFamily::kVGG, "vgg", {11, 13, 16, 19}, Variant::kBatchNorm},
      {BackboneFamily::kAlexNet, "alexnet", {}},
      {BackboneFamily::kResNet, "resnet", {18, 34, 50, 101, 152}},
      {BackboneFamily::kResNet, "resnext", {50, 101, 152}, Variant::kResNeXt},
      {BackboneFamily::kResNet, "wide_resnet", {50, 101, 152}, Variant::kWide},
      {BackboneFamily::kGoogLeNet, "googlenet", {}},
  };
  return table;
}

const Family& family_of(const BackboneOptions& options) {
  const bool resnext = options.groups() != 1, wide = !resnext && options.width_per_group() != 64;
  for (const auto& f : families())
    if (f.family == options.family() && (f.family != BackboneFamily::kResNet || (f.variant == Variant::kResNeXt) == resnext) &&
        (f.family != BackboneFamily::kResNet || (f.variant == Variant::kWide) == wide))
      return f;
  TORCH_CHECK(false, "unregistered backbone family");
}

[[noreturn]] void bad_name(const std::string& name) {
  fail("backbone", "'" + name + "' is not a backbone name like vgg16, vgg16_bn, alexnet, resnet50, resnext50_32x4d, wide_resnet50_2 or googlenet, "
                   "optionally -wWIDTH with WIDTH in (0, 4]");
}

// A positive whole number of at most 4 digits spelling all of `text`, else 0.
int64_t small_number(const std::string& text) {
  if (text.empty() || text.size() > 4 || text.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoll(text);
}

// The part of `depth` after the depth itself, read into `options` as `f` spells it ("_bn", "_32x4d", "_2"); `depth`
// keeps the number. False where it is not spelled so.
bool take_variant(const Family& f, std::string& depth, BackboneOptions& options) {
  const auto underscore = depth.find('_');
  const std::string suffix = underscore == std::string::npos ? "" : depth.substr(underscore + 1);
  if (underscore != std::string::npos) depth.resize(underscore);
  switch (f.variant) {
    case Variant::kNone: return underscore == std::string::npos;
    case Variant::kBatchNorm:
      if (underscore != std::string::npos && suffix != "bn") return false;
      options.batch_norm(underscore != std::string::npos);
      return true;
    case Variant::kResNeXt: {  // GxWd
      const auto x = suffix.find('x');
      if (x == std::string::npos || suffix.empty() || suffix.back() != 'd') return false;
      options.groups(small_number(suffix.substr(0, x))).width_per_group(small_number(suffix.substr(x + 1, suffix.size() - x - 2)));
      return options.groups() > 1 && options.width_per_group() > 0;
    }
    case Variant::kWide:
      options.width_per_group(64 * small_number(suffix));
      return options.width_per_group() > 64;
  }
  return false;
}

}  // namespace

bool has_fc_head(BackboneFamily family) { return family == BackboneFamily::kVGG || family == BackboneFamily::kAlexNet; }

int64_t scaled_channels(int64_t channels, double width) {
  return std::max<int64_t>(1, std::llround(static_cast<double>(channels) * width));
}

BackboneOptions parse_backbone(const std::string& name) {
  for (const auto& f : families()) {
    if (name.rfind(f.prefix, 0) != 0) continue;
    BackboneOptions options;
    options.family(f.family).depth(f.family == BackboneFamily::kGoogLeNet ? 22 : f.depths.empty() ? 8 : 0);
    std::string rest = name.substr(std::string(f.prefix).size());
    const auto dash = rest.find("-w");
    std::string depth = rest.substr(0, dash);
    if (!take_variant(f, depth, options)) bad_name(name);
    try {
      size_t used = 0;
      if (!f.depths.empty()) options.depth(std::stoi(depth, &used));
      if (used != depth.size()) bad_name(name);
      if (dash != std::string::npos) {
        const std::string width = rest.substr(dash + 2);
        options.width(std::stod(width, &used));
        if (used != width.size() || !(options.width() > 0) || options.width() > 4) bad_name(name);
      }
    } catch (const std::logic_error&) {
      bad_name(name);
    }
    if (!f.depths.empty() && std::find(f.depths.begin(), f.depths.end(), options.depth()) == f.depths.end())
      fail("backbone", "'" + name + "': " + f.prefix + " depth " + std::to_string(options.depth()) + " is not one of " +
                           [&] {
                             std::string out;
                             for (auto d : f.depths) out += (out.empty() ? "" : ", ") + std::to_string(d);
                             return out;
                           }());
    return options;
  }
  bad_name(name);
}

std::string backbone_name(const BackboneOptions& options) {
  const auto& f = family_of(options);
  std::ostringstream out;
  out << f.prefix;
  if (!f.depths.empty()) out << options.depth();
  if (options.batch_norm()) out << "_bn";
  if (f.variant == Variant::kResNeXt) out << "_" << options.groups() << "x" << options.width_per_group() << "d";
  if (f.variant == Variant::kWide) out << "_" << options.width_per_group() / 64;
  if (options.width() != 1.0) out << "-w" << options.width();
  return out.str();
}

nlohmann::json backbone_config(const BackboneOptions& options) {
  nlohmann::json config = {{"name", backbone_name(options)}, {"in_channels", options.in_channels()}};
  if (options.transform_input()) config["transform_input"] = true;
  return config;
}

BackboneOptions backbone_from_config(const nlohmann::json& config) {
  auto options = parse_backbone(config.at("name").get<std::string>());
  options.in_channels(config.at("in_channels").get<int64_t>());
  options.transform_input(config.value("transform_input", false));
  if (options.transform_input() && (options.family() != BackboneFamily::kGoogLeNet || options.in_channels() != 3))
    fail("backbone.transform_input", "is torchvision GoogLeNet's, for 3 input channels");
  if (options.in_channels() < 1) fail("backbone.in_channels", "must be positive");
  return options;
}

std::shared_ptr<BackboneImpl> make_backbone(const BackboneOptions& options) {
  switch (options.family()) {
    case BackboneFamily::kVGG: return std::make_shared<VGGImpl>(options);
    case BackboneFamily::kAlexNet: return std::make_shared<AlexNetImpl>(options);
    case BackboneFamily::kResNet: return std::make_shared<ResNetImpl>(options);
    case BackboneFamily::kGoogLeNet: return std::make_shared<GoogLeNetImpl>(options);
  }
  TORCH_CHECK(false, "unregistered backbone family");
}

int64_t BackboneImpl::output_side(int64_t input_side) const { return backbone_output_side(options, input_side); }

int64_t backbone_output_side(const BackboneOptions& options, int64_t input_side) {
  switch (options.family()) {
    case BackboneFamily::kVGG: return VGGImpl::output_side_of(options, input_side);
    case BackboneFamily::kAlexNet: return AlexNetImpl::output_side_of(options, input_side);
    case BackboneFamily::kResNet: return ResNetImpl::output_side_of(options, input_side);
    case BackboneFamily::kGoogLeNet: return GoogLeNetImpl::output_side_of(options, input_side);
  }
  TORCH_CHECK(false, "unregistered backbone family");
}

}  // namespace fcn
