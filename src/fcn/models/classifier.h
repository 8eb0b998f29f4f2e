// Classifier: a VGG backbone with a dense head (fc6 over the k x k pool5 map, fc7, fc8), as
// torchvision's vgg (k = 7 for 224x224 inputs). It is the transfer-learning source of an FCN.
#pragma once

#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include "fcn/models/backbone.h"
#include "fcn/models/net.h"

namespace fcn {

struct ClassifierOptions {
  int64_t kernel() const { return input_size_ / 32; }  // side of the pool5 map fc6 reads
  TORCH_ARG(VGGOptions, backbone);
  TORCH_ARG(int64_t, input_size) = 224;     // training size, a multiple of 32: k = input_size / 32
  TORCH_ARG(int64_t, fc_channels) = 4096;   // fc6 and fc7 outputs
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

  // fc6 -> ReLU -> dropout -> fc7 -> ReLU -> dropout -> fc8 on flattened k x k pool5 windows.
  torch::Tensor dense_head(const torch::Tensor& flat_pool5);

  ClassifierOptions options;
  VGG backbone{nullptr};
  torch::nn::Linear fc6{nullptr}, fc7{nullptr}, fc8{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(Classifier);

}  // namespace fcn
