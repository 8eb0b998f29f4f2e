#include "fcn/models/unet.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/init.h"
#include "fcn/models/layers.h"
#include "fcn/util/error.h"

namespace fcn {

Padding parse_padding(const std::string& name) {
  if (name == "valid") return Padding::kValid;
  if (name == "same") return Padding::kSame;
  fail("UNetOptions.padding", "'" + name + "' is not one of valid, same");
}
Upsample parse_upsample(const std::string& name) {
  if (name == "transposed") return Upsample::kTransposed;
  if (name == "bilinear") return Upsample::kBilinear;
  fail("UNetOptions.upsample", "'" + name + "' is not one of transposed, bilinear");
}
std::string padding_name(Padding padding) { return padding == Padding::kValid ? "valid" : "same"; }
std::string upsample_name(Upsample upsample) { return upsample == Upsample::kTransposed ? "transposed" : "bilinear"; }

nlohmann::json UNetImpl::config() const {
  const auto& o = options;
  return {{"depth", o.depth()},
          {"base_channels", o.base_channels()},
          {"in_channels", o.in_channels()},
          {"num_classes", o.num_classes()},
          {"padding", padding_name(o.padding())},
          {"upsample", upsample_name(o.upsample())},
          {"batch_norm", o.batch_norm()},
          {"dropout", o.dropout()}};
}

std::shared_ptr<NetImpl> UNetImpl::from_config(const nlohmann::json& j) {
  return std::make_shared<UNetImpl>(UNetOptions()
                                        .depth(j.at("depth").get<int64_t>())
                                        .base_channels(j.at("base_channels").get<int64_t>())
                                        .in_channels(j.at("in_channels").get<int64_t>())
                                        .num_classes(j.at("num_classes").get<int64_t>())
                                        .padding(parse_padding(j.at("padding").get<std::string>()))
                                        .upsample(parse_upsample(j.at("upsample").get<std::string>()))
                                        .batch_norm(j.at("batch_norm").get<bool>())
                                        .dropout(j.value("dropout", 0.0)));  // files before dropout: none
}

void UNetImpl::pretty_print(std::ostream& stream) const {
  stream << "fcn::UNet(depth=" << options.depth() << ", base_channels=" << options.base_channels()
         << ", in_channels=" << options.in_channels() << ", classes=" << options.num_classes()
         << ", padding=" << padding_name(options.padding()) << ", upsample=" << upsample_name(options.upsample())
         << (options.batch_norm() ? ", batch_norm" : "")
         << (options.dropout() > 0 ? ", dropout=" + std::to_string(options.dropout()).substr(0, 4) : std::string()) << ")";
}

DoubleConvImpl::DoubleConvImpl(int64_t in, int64_t out, int64_t padding, bool batch_norm) {
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(padding).bias(!batch_norm)));
  conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(out, out, 3).padding(padding).bias(!batch_norm)));
  init_kaiming(conv1);
  init_kaiming(conv2);
  if (batch_norm) {
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(out));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(out));
  }
}

torch::Tensor DoubleConvImpl::forward(const torch::Tensor& input) {
  if (bn1.is_empty()) return conv_relu(conv2, conv_relu(conv1, input));
  return conv_bn(conv2, bn2, conv_bn(conv1, bn1, input, true), true);
}

UNetImpl::UNetImpl(const UNetOptions& options_) : options(options_) {
  if (options.depth() < 1 || options.depth() > 8) fail("unet", "depth " + std::to_string(options.depth()) + " is not in 1..8");
  if (options.base_channels() < 1 || options.num_classes() < 1 || options.in_channels() < 1)
    fail("unet", "base_channels, num_classes and in_channels must be positive");
  if (!(options.dropout() >= 0 && options.dropout() < 1)) fail("UNetOptions.dropout", "must be in [0, 1) (the paper: 0.5)");
  const int64_t padding = options.padding() == Padding::kSame ? 1 : 0;
  const bool bn = options.batch_norm();
  int64_t in = options.in_channels();
  int64_t channels = options.base_channels();
  for (int64_t d = 0; d < options.depth(); ++d) {
    encoder.push_back(register_module("enc" + std::to_string(d), DoubleConv(in, channels, padding, bn)));
    in = channels;
    channels *= 2;
  }
  bottom = register_module("bottom", DoubleConv(in, channels, padding, bn));
  // Decoder level d (deepest first) halves the channels, concatenates enc d, and convolves.
  for (int64_t d = options.depth() - 1; d >= 0; --d) {
    const int64_t out = channels / 2;
    const std::string level = std::to_string(d);
    if (options.upsample() == Upsample::kTransposed) {
      up_transposed.push_back(register_module(
          "up" + level, torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(channels, out, 2).stride(2))));
    } else {
      up_convs.push_back(register_module("up" + level, torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, out, 1))));
    }
    decoder.push_back(register_module("dec" + level, DoubleConv(2 * out, out, padding, bn)));
    channels = out;
  }
  score = register_module("score", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, options.num_classes(), 1)));
}

int64_t UNetImpl::output_size(int64_t size) const {
  if (size < 1) return -1;
  if (options.padding() == Padding::kSame) return size;
  for (int64_t d = 0; d < options.depth(); ++d) {
    size -= 4;
    if (size <= 0 || size % 2 != 0) return -1;
    size /= 2;
  }
  size -= 4;
  if (size <= 0) return -1;
  for (int64_t d = 0; d < options.depth(); ++d) size = 2 * size - 4;
  return size > 0 ? size : -1;
}

int64_t UNetImpl::input_size_for(int64_t wanted) const {
  if (options.padding() == Padding::kSame) return wanted;
  for (int64_t size = 1;; ++size) {
    const int64_t out = output_size(size);
    if (out >= wanted) return size;
  }
}

std::pair<int64_t, int64_t> UNetImpl::nearest_legal_sizes(int64_t size) const {
  int64_t below = size;
  while (below > 0 && output_size(below) < 0) --below;
  int64_t above = std::max<int64_t>(size, 1);
  while (output_size(above) < 0) ++above;
  return {below, above};
}

int64_t UNetImpl::legal_input_at_least(int64_t side) const {
  return options.padding() == Padding::kValid ? nearest_legal_sizes(side).second : NetImpl::legal_input_at_least(side);
}

int64_t UNetImpl::input_for_output(int64_t side) const {
  return options.padding() == Padding::kValid ? input_size_for(side) : NetImpl::input_for_output(side);
}

torch::Tensor UNetImpl::forward(const torch::Tensor& input) {
  check_input(input, in_channels(), "unet");
  const int64_t h = input.size(2), w = input.size(3);
  const bool same = options.padding() == Padding::kSame;
  if (!same) {
    for (const int64_t side : {h, w}) {
      if (output_size(side) >= 0) continue;
      const auto legal = nearest_legal_sizes(side);
      fail("unet", "input side " + std::to_string(side) + " is not legal for a valid-padding U-Net of depth " +
                       std::to_string(options.depth()) + "; nearest legal sides: " +
                       (legal.first > 0 ? std::to_string(legal.first) + " and " : std::string()) + std::to_string(legal.second));
    }
  }
  auto x = same ? pad_to_multiple(input, int64_t{1} << options.depth()) : input;
  std::vector<torch::Tensor> skips;
  for (auto& level : encoder) {
    x = level(x);
    skips.push_back(x);
    x = torch::max_pool2d(x, 2, 2);
  }
  x = bottom(x);
  if (options.dropout() > 0) x = torch::dropout(x, options.dropout(), is_training());
  for (size_t i = 0; i < decoder.size(); ++i) {
    if (options.upsample() == Upsample::kTransposed) {
      x = conv(up_transposed[i], x);
    } else {
      x = torch::upsample_bilinear2d(x, {2 * x.size(2), 2 * x.size(3)}, /*align_corners=*/false);
      x = conv(up_convs[i], x);
    }
    const auto& skip = skips[skips.size() - 1 - i];
    x = decoder[i](torch::cat({center_crop(skip, x.size(2), x.size(3)), x}, 1));
  }
  x = conv(score, x);
  return same ? crop(x, 0, 0, h, w) : x;
}

}  // namespace fcn
