// The interface every fcn architecture implements (Classifier, ConvClassifier, FCN, UNet), so that
// model files, the CLI, training and inference can hold any of them behind one pointer.
#pragma once

#include <string>

#include <torch/nn/module.h>

namespace fcn {

class NetImpl : public torch::nn::Module {
 public:
  // N x in_channels x H x W -> logits (N x classes, or N x classes x h x w).
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  // Registry name of the architecture, as stored in model files ("fcn", "unet", ...).
  virtual std::string arch() const = 0;
  virtual int64_t in_channels() const = 0;
  virtual int64_t num_classes() const = 0;
};

}  // namespace fcn
