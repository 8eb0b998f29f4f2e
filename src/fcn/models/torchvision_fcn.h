// torchvision's segmentation FCN (torchvision.models.segmentation.fcn_resnet50 / fcn_resnet101),
// exactly: a ResNet whose layer3 and layer4 are dilated (output stride 8), an FCNHead on layer4
// (3x3 conv -> batch norm -> ReLU -> dropout 0.1 -> 1x1 conv to the classes), logits upsampled
// bilinearly to the input size, and optionally the auxiliary FCNHead on layer3 that training adds
// to the loss (weight 0.5, as torchvision's references/segmentation). Module names are torchvision's
// (backbone.*, classifier.{0,1,4}, aux_classifier.{0,1,4}) so its weights import as they are.
#pragma once

#include <torch/arg.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>

#include "fcn/models/net.h"
#include "fcn/models/resnet.h"

namespace fcn {

struct TorchvisionFCNOptions {
  TORCH_ARG(BackboneOptions, backbone) = BackboneOptions().family(BackboneFamily::kResNet).depth(50);
  TORCH_ARG(int64_t, num_classes) = 21;
  TORCH_ARG(bool, aux) = false;  // torchvision's aux_loss
};

// torchvision.models.segmentation.fcn.FCNHead.
class FCNHeadImpl : public torch::nn::Module {
 public:
  FCNHeadImpl(int64_t in, int64_t classes);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr}, score{nullptr};  // torchvision's .0 and .4
  torch::nn::BatchNorm2d bn{nullptr};              // .1
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(FCNHead);

class TorchvisionFCNImpl : public NetImpl {
 public:
  explicit TorchvisionFCNImpl(const TorchvisionFCNOptions& options = {});
  // N x C x H x W -> N x classes x H x W ("out").
  torch::Tensor forward(const torch::Tensor& x) override;
  // {out, aux} (aux when the net has the auxiliary head), both at the input size.
  std::vector<torch::Tensor> forward_with_aux(const torch::Tensor& x) override;
  std::string arch() const override { return "torchvision-fcn"; }
  int64_t in_channels() const override { return options.backbone().in_channels(); }
  int64_t num_classes() const override { return options.num_classes(); }
  nlohmann::json config() const override;
  static std::shared_ptr<NetImpl> from_config(const nlohmann::json& config);
  void pretty_print(std::ostream& stream) const override;
  int64_t input_alignment() const override { return 8; }  // any size works; tiles keep the stride-8 phase

  TorchvisionFCNOptions options;
  std::shared_ptr<ResNetImpl> backbone;
  FCNHead classifier{nullptr}, aux_classifier{nullptr};
};
TORCH_MODULE(TorchvisionFCN);

}  // namespace fcn
