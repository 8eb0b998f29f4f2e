// Convolutionalization (FCN paper, section 3.1): a classifier's fully connected layers become
// convolutions with the same weights: fc6 a k x k conv over the stride-32 map (pool5), fc7 and fc8
// 1x1 convs. The result takes any input of at least the training size and returns a coarse class
// heatmap (stride 32) whose cell (i, j) is the classifier's output on the k x k window at (i, j).
// A ResNet's global-pool head becomes a 1x1 conv per cell: the heatmap's mean is the classifier's logits.
#pragma once

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>

#include "fcn/models/classifier.h"

namespace fcn {

class ConvClassifierImpl : public NetImpl {
 public:
  explicit ConvClassifierImpl(const ClassifierOptions& options = {});
  // N x C x H x W -> N x classes x (H/32 - k + 1) x (W/32 - k + 1) logits.
  torch::Tensor forward(const torch::Tensor& x) override;
  std::string arch() const override { return "conv-classifier"; }
  int64_t in_channels() const override { return options.backbone().in_channels(); }
  int64_t num_classes() const override { return options.num_classes(); }
  nlohmann::json config() const override;
  static std::shared_ptr<NetImpl> from_config(const nlohmann::json& config);
  void pretty_print(std::ostream& stream) const override;
  // The least input side whose stride-32 map holds one k x k window.
  int64_t min_input_size() const;

  ClassifierOptions options;  // of the classifier it was made from
  std::shared_ptr<BackboneImpl> backbone;
  torch::nn::Conv2d fc6{nullptr}, fc7{nullptr}, fc8{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(ConvClassifier);

// Same weights, reshaped (fc6: out x (C*k*k) -> out x C x k x k); nothing retrained.
ConvClassifier convolutionalize(ClassifierImpl& classifier);

}  // namespace fcn
