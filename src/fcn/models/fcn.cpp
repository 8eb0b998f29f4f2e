#include "fcn/models/fcn.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/init.h"
#include "fcn/models/layers.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

CoordMap layer_map(const torch::nn::ConvTranspose2d& layer) {
  const auto& o = layer->options;
  return transposed_map((*o.kernel_size())[0], (*o.stride())[0], explicit_padding(o)->at(0));
}

}  // namespace

Geometry parse_geometry(const std::string& name) {
  if (name == "reference") return Geometry::kReference;
  if (name == "same") return Geometry::kSame;
  fail("FCNOptions.geometry", "'" + name + "' is not one of reference, same");
}

std::string geometry_name(Geometry geometry) { return geometry == Geometry::kReference ? "reference" : "same"; }

FCNImpl::FCNImpl(const FCNOptions& options_) : options(options_) {
  const int64_t stride = options.stride();
  if (stride != 32 && stride != 16 && stride != 8)
    fail("fcn", "stride " + std::to_string(stride) + " is not one of 32, 16, 8");
  if (options.num_classes() < 1) fail("fcn", "needs at least one class");
  const bool reference = options.geometry() == Geometry::kReference;
  options.backbone().layout(reference ? BackboneLayout::kCaffe : BackboneLayout::kSame);
  if (options.fc_channels() < 0) fail("fcn", "fc_channels must be >= 0");

  backbone = register_module("backbone", make_backbone(options.backbone()));
  const int64_t fc = options.fc_channels();
  const int64_t classes = options.num_classes();
  if (fc > 0) {
    fc6 = register_module("fc6", torch::nn::Conv2d(torch::nn::Conv2dOptions(backbone->channels(32), fc, options.fc_kernel())));
    fc7 = register_module("fc7", torch::nn::Conv2d(torch::nn::Conv2dOptions(fc, fc, 1)));
    init_kaiming(fc6);
    init_kaiming(fc7);
  }
  dropout = register_module("dropout", torch::nn::Dropout(options.dropout()));
  // Score layers start at zero (paper, 4.2): a new skip changes nothing until it is trained.
  score_fr = register_module("score_fr", torch::nn::Conv2d(torch::nn::Conv2dOptions(fc > 0 ? fc : backbone->channels(32), classes, 1)));
  init_zero(score_fr);
  if (stride <= 16) {
    score_pool4 = register_module("score_pool4", torch::nn::Conv2d(torch::nn::Conv2dOptions(backbone->channels(16), classes, 1)));
    init_zero(score_pool4);
  }
  if (stride == 8) {
    score_pool3 = register_module("score_pool3", torch::nn::Conv2d(torch::nn::Conv2dOptions(backbone->channels(8), classes, 1)));
    init_zero(score_pool3);
  }
  if (reference && stride == 32) {
    upscore = make_upsampling("upscore", 32);
  } else if (reference) {
    upscore2 = make_upsampling("upscore2", 2);
    if (stride == 16) upscore16 = make_upsampling("upscore16", 16);
    if (stride == 8) upscore_pool4 = make_upsampling("upscore_pool4", 2);
    if (stride == 8) upscore8 = make_upsampling("upscore8", 8);
  } else {
    upscore = make_upsampling("upscore", 32);
    if (stride <= 16) upscore16 = make_upsampling("upscore16", 16);
    if (stride == 8) upscore8 = make_upsampling("upscore8", 8);
  }
  set_upsampling_learnable(options.learnable_upsampling());
  if (reference) crops_ = derive_crops();
}

FCNCrops FCNImpl::derive_crops() const {
  // Caffe's coord_map: where each map's pixels sit on the input, composed layer by layer.
  // fc6 is a valid k x k conv over the stride-32 map; fc7 and the score layers are 1x1 and move nothing.
  CoordMap score = backbone->coord_map(32);
  if (!fc6.is_empty()) score = score.then(conv_map(options.fc_kernel(), 1, 0));
  const CoordMap input;
  FCNCrops crops;
  if (options.stride() == 32) {
    crops.output = crop_offset(score.then(layer_map(upscore)), input);
    return crops;
  }
  CoordMap fused = score.then(layer_map(upscore2));  // stride 16
  crops.pool4 = crop_offset(backbone->coord_map(16), fused);
  if (options.stride() == 16) {
    crops.output = crop_offset(fused.then(layer_map(upscore16)), input);
    return crops;
  }
  fused = fused.then(layer_map(upscore_pool4));  // stride 8
  crops.pool3 = crop_offset(backbone->coord_map(8), fused);
  crops.output = crop_offset(fused.then(layer_map(upscore8)), input);
  return crops;
}

nlohmann::json FCNImpl::config() const {
  const auto& o = options;
  return {{"stride", o.stride()},
          {"num_classes", o.num_classes()},
          {"backbone", backbone_config(o.backbone())},
          {"geometry", geometry_name(o.geometry())},
          {"fc_channels", o.fc_channels()},
          {"fc_kernel", o.fc_kernel()},
          {"dropout", o.dropout()},
          {"learnable_upsampling", o.learnable_upsampling()},
          {"at_once", o.at_once()}};
}

std::shared_ptr<NetImpl> FCNImpl::from_config(const nlohmann::json& j) {
  return std::make_shared<FCNImpl>(FCNOptions()
                                       .stride(j.at("stride").get<int64_t>())
                                       .num_classes(j.at("num_classes").get<int64_t>())
                                       .backbone(backbone_from_config(j.at("backbone")))
                                       .geometry(parse_geometry(j.at("geometry").get<std::string>()))
                                       .fc_channels(j.at("fc_channels").get<int64_t>())
                                       .fc_kernel(j.at("fc_kernel").get<int64_t>())
                                       .dropout(j.at("dropout").get<double>())
                                       .learnable_upsampling(j.at("learnable_upsampling").get<bool>())
                                       .at_once(j.value("at_once", false)));  // absent in files before at-once
}

void FCNImpl::pretty_print(std::ostream& stream) const {
  stream << "fcn::FCN(stride=" << options.stride() << ", classes=" << options.num_classes()
         << ", backbone=" << backbone_name(options.backbone()) << ", geometry=" << geometry_name(options.geometry())
         << ", fc_channels=" << options.fc_channels() << ", fc_kernel=" << options.fc_kernel()
         << (options.at_once() ? ", at_once" : "") << ")";
}

torch::nn::ConvTranspose2d FCNImpl::make_upsampling(const std::string& name, int64_t factor) {
  // Kernel 2f, stride f. Same geometry pads f/2 so input cell i's centre maps to output pixel
  // f*i + (f-1)/2 (cell centres aligned) and the output is exactly f times the input.
  const int64_t padding = options.geometry() == Geometry::kSame ? factor / 2 : 0;
  const int64_t classes = options.num_classes();
  auto layer = register_module(
      name, torch::nn::ConvTranspose2d(
                torch::nn::ConvTranspose2dOptions(classes, classes, 2 * factor).stride(factor).padding(padding).bias(false)));
  init_bilinear(layer);
  return layer;
}

void FCNImpl::set_upsampling_learnable(bool learnable) {
  options.learnable_upsampling(learnable);
  for (auto* layer : {&upscore, &upscore2, &upscore_pool4, &upscore16, &upscore8})
    if (!layer->is_empty()) (*layer)->weight.set_requires_grad(learnable);
}

torch::Tensor FCNImpl::forward(const torch::Tensor& input) {
  check_input(input, in_channels(), "fcn");
  const int64_t h = input.size(2), w = input.size(3);
  const bool reference = options.geometry() == Geometry::kReference;
  const auto features = backbone->forward(reference ? input : pad_to_multiple(input, 32));
  torch::Tensor x = features.stride32;
  if (!fc6.is_empty()) {
    if (!reference) {
      const int64_t k = options.fc_kernel();  // 'same' padding, asymmetric for even k
      x = torch::constant_pad_nd(x, {(k - 1) / 2, k / 2, (k - 1) / 2, k / 2}, 0.0);
    } else if (x.size(2) < options.fc_kernel() || x.size(3) < options.fc_kernel()) {
      fail("fcn", "pool5 map " + std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) +
                      " is smaller than fc6's kernel " + std::to_string(options.fc_kernel()));
    }
    x = dropout(conv_relu(fc6, x));
    x = dropout(conv_relu(fc7, x));
  }
  const auto score = conv(score_fr, x);
  return reference ? forward_reference(features, score, h, w) : forward_same(features, score, h, w);
}

torch::Tensor FCNImpl::skip(const torch::Tensor& features, double at_once_scale) const {
  return options.at_once() ? features * at_once_scale : features;
}

torch::Tensor FCNImpl::forward_reference(const Features& f, const torch::Tensor& score, int64_t h, int64_t w) {
  const int64_t stride = options.stride();
  torch::Tensor x;
  if (stride == 32) {
    x = conv(upscore, score);
  } else {
    auto up = conv(upscore2, score);  // stride 16
    x = up + crop(conv(score_pool4, skip(f.stride16, kAtOnceScalePool4)), crops_.pool4, crops_.pool4, up.size(2), up.size(3));
    if (stride == 16) {
      x = conv(upscore16, x);
    } else {
      up = conv(upscore_pool4, x);  // stride 8
      x = up + crop(conv(score_pool3, skip(f.stride8, kAtOnceScalePool3)), crops_.pool3, crops_.pool3, up.size(2), up.size(3));
      x = conv(upscore8, x);
    }
  }
  return crop(x, crops_.output, crops_.output, h, w);
}

torch::Tensor FCNImpl::forward_same(const Features& f, const torch::Tensor& score, int64_t h, int64_t w) {
  auto x = conv(upscore, score);
  if (!score_pool4.is_empty()) x = conv_add(upscore16, conv(score_pool4, skip(f.stride16, kAtOnceScalePool4)), x);
  if (!score_pool3.is_empty()) x = conv_add(upscore8, conv(score_pool3, skip(f.stride8, kAtOnceScalePool3)), x);
  return crop(x, 0, 0, h, w);
}

FCN FCN::from_coarser(FCNImpl& coarser, int64_t stride) {
  if (stride >= coarser.options.stride())
    fail("fcn", "from_coarser: stride " + std::to_string(stride) + " is not finer than the source's " +
                    std::to_string(coarser.options.stride()));
  auto options = coarser.options;
  FCN finer(options.stride(stride));
  torch::NoGradGuard no_grad;
  // Every layer the two nets share (by name and shape) carries over, batch-norm statistics
  // included; the rest keep their init.
  const auto parameters = coarser.named_parameters();
  for (auto& item : finer->named_parameters()) {
    const auto* from = parameters.find(item.key());
    if (from != nullptr && from->sizes() == item.value().sizes()) item.value().copy_(*from);
  }
  const auto buffers = coarser.named_buffers();
  for (auto& item : finer->named_buffers()) {
    const auto* from = buffers.find(item.key());
    if (from != nullptr && from->sizes() == item.value().sizes()) item.value().copy_(*from);
  }
  finer->train(coarser.is_training());
  return finer;
}

FCN FCN::from_classifier(ConvClassifierImpl& classifier, FCNOptions options) {
  const auto& c = classifier.options;
  options.backbone(c.backbone());
  options.fc_channels(c.fc_channels()).fc_kernel(c.kernel()).dropout(c.dropout());
  FCN net(options);
  copy_state(*net->backbone, *classifier.backbone);
  if (!net->fc6.is_empty()) {
    copy_state(*net->fc6, *classifier.fc6);
    copy_state(*net->fc7, *classifier.fc7);
  }
  return net;
}

}  // namespace fcn
