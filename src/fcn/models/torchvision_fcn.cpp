#include "fcn/models/torchvision_fcn.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/layers.h"
#include "fcn/util/error.h"

namespace fcn {

FCNHeadImpl::FCNHeadImpl(int64_t in, int64_t classes) {
  const int64_t inter = std::max<int64_t>(1, in / 4);
  conv = register_module("0", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, inter, 3).padding(1).bias(false)));
  bn = register_module("1", torch::nn::BatchNorm2d(inter));
  dropout = register_module("dropout", torch::nn::Dropout(0.1));
  score = register_module("4", torch::nn::Conv2d(torch::nn::Conv2dOptions(inter, classes, 1)));
}

torch::Tensor FCNHeadImpl::forward(const torch::Tensor& x) { return fcn::conv(score, dropout(conv_bn(conv, bn, x, true))); }

TorchvisionFCNImpl::TorchvisionFCNImpl(const TorchvisionFCNOptions& options_) : options(options_) {
  if (options.backbone().family() != BackboneFamily::kResNet || options.backbone().depth() < 50)
    fail("backbone", "torchvision's FCN is on resnet50 or resnet101, not " + backbone_name(options.backbone()));
  if (options.num_classes() < 1) fail("torchvision-fcn", "needs at least one class");
  options.backbone().output_stride(8).layout(BackboneLayout::kClassifier);
  backbone = register_module("backbone", std::make_shared<ResNetImpl>(options.backbone()));
  classifier = register_module("classifier", FCNHead(backbone->channels(32), options.num_classes()));
  if (options.aux()) aux_classifier = register_module("aux_classifier", FCNHead(backbone->channels(16), options.num_classes()));
}

std::vector<torch::Tensor> TorchvisionFCNImpl::forward_with_aux(const torch::Tensor& x) {
  check_input(x, in_channels(), "torchvision-fcn");
  const auto features = backbone->forward(x);
  const std::vector<int64_t> size = {x.size(2), x.size(3)};
  std::vector<torch::Tensor> out = {torch::upsample_bilinear2d(classifier(features.stride32), size, false)};
  if (!aux_classifier.is_empty()) out.push_back(torch::upsample_bilinear2d(aux_classifier(features.stride16), size, false));
  return out;
}

torch::Tensor TorchvisionFCNImpl::forward(const torch::Tensor& x) {
  check_input(x, in_channels(), "torchvision-fcn");
  const std::vector<int64_t> size = {x.size(2), x.size(3)};
  return torch::upsample_bilinear2d(classifier(backbone->forward(x).stride32), size, false);
}

nlohmann::json TorchvisionFCNImpl::config() const {
  auto name = options.backbone();
  return {{"backbone", backbone_config(name)}, {"num_classes", options.num_classes()}, {"aux", options.aux()}};
}

std::shared_ptr<NetImpl> TorchvisionFCNImpl::from_config(const nlohmann::json& j) {
  return std::make_shared<TorchvisionFCNImpl>(TorchvisionFCNOptions()
                                                  .backbone(backbone_from_config(j.at("backbone")))
                                                  .num_classes(j.at("num_classes").get<int64_t>())
                                                  .aux(j.at("aux").get<bool>()));
}

void TorchvisionFCNImpl::pretty_print(std::ostream& stream) const {
  stream << "fcn::TorchvisionFCN(backbone=" << backbone_name(options.backbone()) << ", classes=" << options.num_classes()
         << (options.aux() ? ", aux" : "") << ")";
}

}  // namespace fcn
