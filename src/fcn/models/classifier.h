// Classifier: a backbone with the dense head it came with, as torchvision's classifiers: VGG and
// AlexNet average-pool the stride-32 map to k x k and run fc6 (over the k x k x C map), fc7, fc8
// (VGG16 at 224: k = 7; AlexNet: 6); ResNet pools globally and has one dense layer (fc8 here, `fc`
// in torchvision). It is the transfer-learning source of an FCN.
#pragma once

#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include "fcn/models/backbone.h"
#include "fcn/models/net.h"

namespace fcn {

struct ClassifierOptions {
  // Side k of the stride-32 map fc6 reads at the training size (1 without fc6: a global pool).
  int64_t kernel() const { return fc_channels_ > 0 ? backbone_output_side(backbone_, input_size_) : 1; }
  TORCH_ARG(BackboneOptions, backbone);
  TORCH_ARG(int64_t, input_size) = 224;     // training size (VGG: k = input_size / 32)
  TORCH_ARG(int64_t, fc_channels) = 4096;   // fc6 and fc7 outputs; 0: no fc6/fc7 (ResNet's head)
  TORCH_ARG(int64_t, num_classes) = 1000;
  TORCH_ARG(double, dropout) = 0.5;
};

// ClassifierOptions <-> JSON (shared by Classifier and its convolutionalized form).
nlohmann::json classifier_config(const ClassifierOptions& options);
ClassifierOptions classifier_options_from(const nlohmann::json& config);

class ClassifierImpl : public NetImpl {
 public:
  explicit ClassifierImpl(const ClassifierOptions& options = {});
  // N x C x H x W (H, W >= 32) -> N x num_classes logits. pool5 is average-pooled to k x k
  // first, like torchvision; on the training size that pooling is the identity.
  torch::Tensor forward(const torch::Tensor& x) override;
  std::string arch() const override { return "classifier"; }
  int64_t in_channels() const override { return options.backbone().in_channels(); }
  int64_t num_classes() const override { return options.num_classes(); }
  nlohmann::json config() const override;
  static std::shared_ptr<NetImpl> from_config(const nlohmann::json& config);
  void pretty_print(std::ostream& stream) const override;

  // fc6 -> ReLU -> dropout -> fc7 -> ReLU -> dropout -> fc8 on flattened k x k stride-32 windows
  // (just fc8 without fc6/fc7).
  torch::Tensor dense_head(const torch::Tensor& flat_pool5);

  ClassifierOptions options;
  std::shared_ptr<BackboneImpl> backbone;
  torch::nn::Linear fc6{nullptr}, fc7{nullptr}, fc8{nullptr};  // fc6, fc7 empty when fc_channels is 0
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(Classifier);

}  // namespace fcn
