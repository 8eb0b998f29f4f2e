// The interface every fcn architecture implements (Classifier, ConvClassifier, FCN, UNet), so that
// model files, the CLI, training and inference can hold any of them behind one pointer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
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
  // The classes its labels distinguish: a binary net (one logit channel, sigmoid) labels 0 and 1.
  int64_t label_classes() const { return num_classes() == 1 ? 2 : num_classes(); }
  // The options that rebuild this net, as JSON (registry.h's net_config adds "arch"). Each
  // architecture also has a static `from_config(json)`, registered under arch() in registry.cpp.
  virtual nlohmann::json config() const = 0;
  // The logits and any auxiliary logits training adds to the loss (torchvision's FCN: the layer3
  // head); most nets have none.
  virtual std::vector<torch::Tensor> forward_with_aux(const torch::Tensor& x) { return {forward(x)}; }

  // Segmentation nets (FCN, U-Net) say how input sides map to output sides; the Predictor pads,
  // crops and tiles by it. input_alignment() is the net's total pooling (FCN 32, U-Net 2^depth),
  // 0 for nets that do not segment (classifiers).
  virtual int64_t input_alignment() const { return 0; }
  // Output side for a legal input side (input-sized nets: the input itself).
  virtual int64_t output_side(int64_t input) const { return input; }
  // Smallest legal input side >= side.
  virtual int64_t legal_input_at_least(int64_t side) const { return round_up(side); }
  // Smallest legal input side whose output covers `side` output pixels.
  virtual int64_t input_for_output(int64_t side) const { return round_up(side); }

 private:
  int64_t round_up(int64_t side) const {
    const int64_t a = std::max<int64_t>(1, input_alignment());
    return (side + a - 1) / a * a;
  }
};

}  // namespace fcn
