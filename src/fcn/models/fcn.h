// FCN (Long, Shelhamer, Darrell): a convolutionalized classifier (VGG, AlexNet, ResNet: backbone.h)
// whose class scores are upsampled back to
// the input by transposed convolutions initialised to bilinear interpolation, with skips from
// pool4 (FCN-16s) and pool3 (FCN-8s) fused by summation. One class; the stride is an option.
//
// Two geometries, both returning logits of exactly the input's H x W for any input size:
//  - kReference: the Caffe voc-fcn{32,16,8}s nets (conv1_1 padding 100, ceil pooling, valid fc6,
//    and the Crop layers that align the maps: for VGG16 19 / 27 / 31 on the output and 5 / 9 on
//    the skips, derived here from the layers' geometry as Caffe's coord_map does), weight-compatible. Fusion at stride 16
//    and 8 (upscore2, upscore_pool4) then a final upscore16 / upscore8, as in the paper.
//  - kSame: input zero-padded to a multiple of 32 and cropped back; 'same'-padded fc6. Each score
//    map goes to full resolution through its own bilinear transposed conv (upscore x32,
//    upscore16 x16, upscore8 x8, all centre-aligned) and the results are summed: the linear
//    expansion of the paper's fuse-then-upsample, which makes from_coarser() exact.
#pragma once

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>

#include "fcn/models/backbone.h"
#include "fcn/models/convolutionalize.h"
#include "fcn/models/net.h"

namespace fcn {

enum class Geometry { kReference, kSame };
Geometry parse_geometry(const std::string& name);  // "reference" | "same"
std::string geometry_name(Geometry geometry);

struct FCNOptions {
  TORCH_ARG(int64_t, stride) = 32;           // 32, 16 or 8: FCN-32s, FCN-16s, FCN-8s
  TORCH_ARG(int64_t, num_classes) = 21;
  TORCH_ARG(BackboneOptions, backbone);      // family/depth/width/in_channels; the layout follows the geometry
  TORCH_ARG(Geometry, geometry) = Geometry::kSame;
  TORCH_ARG(int64_t, fc_channels) = 4096;    // fc6/fc7 width; 0: score the stride-32 map directly (ResNet)
  TORCH_ARG(int64_t, fc_kernel) = 7;         // fc6 kernel: the classifier's k
  TORCH_ARG(double, dropout) = 0.5;
  TORCH_ARG(bool, learnable_upsampling) = true;
  // The reference's at-once FCN-8s: all strides trained together from the classifier, the skips
  // scaled (pool4 x 0.01, pool3 x 0.0001) before their score layers so they start small.
  TORCH_ARG(bool, at_once) = false;
};

// voc-fcn8s-atonce's fixed Scale layers on pool4 and pool3.
constexpr double kAtOnceScalePool4 = 0.01, kAtOnceScalePool3 = 0.0001;

// Crop offsets of the reference geometry (Caffe's Crop layers): score_pool4 and score_pool3
// against the upsampled coarser scores, and the final upsampled scores against the input.
struct FCNCrops {
  int64_t pool4 = 0, pool3 = 0, output = 0;
};

class FCNImpl : public NetImpl {
 public:
  explicit FCNImpl(const FCNOptions& options = {});
  // N x C x H x W -> N x num_classes x H x W logits.
  torch::Tensor forward(const torch::Tensor& x) override;
  std::string arch() const override { return "fcn"; }
  int64_t in_channels() const override { return options.backbone().in_channels(); }
  int64_t num_classes() const override { return options.num_classes(); }
  nlohmann::json config() const override;
  static std::shared_ptr<NetImpl> from_config(const nlohmann::json& config);
  void pretty_print(std::ostream& stream) const override;
  // Any input side works; padding to the pooling grid (32) keeps every tile in the same phase.
  int64_t input_alignment() const override { return 32; }

  // The reference geometry's crops, from coord_map over this net's layers (all zero for kSame).
  const FCNCrops& crops() const { return crops_; }

  // Freezes (or unfreezes) every upsampling layer at its current weights.
  void set_upsampling_learnable(bool learnable);

  FCNOptions options;
  std::shared_ptr<BackboneImpl> backbone;
  torch::nn::Conv2d fc6{nullptr}, fc7{nullptr}, score_fr{nullptr};  // fc6, fc7 empty when fc_channels is 0
  torch::nn::Conv2d score_pool4{nullptr}, score_pool3{nullptr};
  // Reference: upscore (32s) | upscore2, upscore16 (16s) | upscore2, upscore_pool4, upscore8 (8s).
  // Same: upscore (score_fr), upscore16 (score_pool4), upscore8 (score_pool3).
  torch::nn::ConvTranspose2d upscore{nullptr}, upscore2{nullptr}, upscore_pool4{nullptr};
  torch::nn::ConvTranspose2d upscore16{nullptr}, upscore8{nullptr};
  torch::nn::Dropout dropout{nullptr};

 private:
  FCNCrops crops_;
  torch::nn::ConvTranspose2d make_upsampling(const std::string& name, int64_t factor);
  FCNCrops derive_crops() const;
  torch::Tensor skip(const torch::Tensor& features, double at_once_scale) const;  // at-once scaling
  torch::Tensor forward_reference(const Features& f, const torch::Tensor& score, int64_t h, int64_t w);
  torch::Tensor forward_same(const Features& f, const torch::Tensor& score, int64_t h, int64_t w);
};

class FCN : public torch::nn::ModuleHolder<FCNImpl> {
 public:
  using torch::nn::ModuleHolder<FCNImpl>::ModuleHolder;
  // Staged training (paper, 4.2): a finer net (stride 16 from 32, 8 from 16 or 32) that starts
  // from the coarser one's weights. New skip score layers start at zero and new upsamplers at
  // bilinear, so in the kSame geometry the finer net computes exactly the coarser one's logits.
  static FCN from_coarser(FCNImpl& coarser, int64_t stride);
  // Transfer learning: backbone, fc6 and fc7 from a convolutionalized classifier (at-once FCN-8s:
  // options.at_once(true) and stride 8); a new (zero)
  // score layer for options.num_classes(). Backbone and fc sizes come from the classifier.
  static FCN from_classifier(ConvClassifierImpl& classifier, FCNOptions options);
};

}  // namespace fcn
