// The training losses. The FCN loss: per-pixel softmax cross-entropy that ignores the void label,
// with optional class weights or a per-pixel weight map (U-Net's, data/weight_map.h); "mean"
// normalises by the (weighted) count of valid pixels, "sum" is the paper's unnormalised loss.
// U-Net users' soft Dice loss (and CE + Dice). A net with one output channel is binary: sigmoid
// and binary cross-entropy against labels 0 (background) and 1 (foreground).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

namespace fcn {

enum class Reduction { kMean, kSum };
Reduction parse_reduction(const std::string& name);  // "mean" | "sum"

enum class LossKind { kCrossEntropy, kDice, kCrossEntropyDice };
LossKind parse_loss_kind(const std::string& name);  // "ce" | "dice" | "ce+dice"
std::string loss_kind_name(LossKind kind);

// A batch split across ranks (train/distributed.h): given this rank's sum of a statistic over its
// samples, the sum over the whole batch, with the gradient of this rank's part. Empty: one process,
// the batch is all here (the identity). Losses pass every batch-wide sum through it, so that the
// gradients summed over ranks equal the whole batch's gradient.
using BatchSum = std::function<torch::Tensor(const torch::Tensor&)>;

// logits N x C x H x W (C = 1: binary), targets N x H x W int64 (class or `ignore`),
// class_weights C (binary: 2) or undefined, pixel_weights N x H x W float or undefined. With
// pixel weights, each valid pixel's term is multiplied by its weight (the weight map already holds
// the class-balancing term, so class_weights are not applied on top) and "mean" divides by the
// sum of the weights, as PyTorch's weighted cross_entropy does with class weights.
torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                const torch::Tensor& class_weights = {}, Reduction reduction = Reduction::kMean,
                                int64_t ignore = 255, const torch::Tensor& pixel_weights = {}, const BatchSum& batch_sum = {});

// The training loss of a net's outputs (NetImpl::forward_with_aux): loss_of(outputs[0]) plus each auxiliary head's
// (torchvision's FCN) at weight 0.5, as torchvision's references train it. The trainer's and fcn bench's step.
torch::Tensor loss_with_aux(const std::vector<torch::Tensor>& outputs, const std::function<torch::Tensor(const torch::Tensor&)>& loss_of);

// Soft Dice loss over the batch's valid pixels: 1 - mean_c (2 sum p_c g_c + s) / (sum p_c + sum g_c + s)
// with p = softmax(logits) and g the one-hot targets, every class in the mean (Pytorch-UNet's
// multi-class Dice); binary nets: p = sigmoid(logit), the foreground alone. `smooth` s keeps a class
// absent from both at Dice 1 and the gradient finite.
torch::Tensor dice_loss(const torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore = 255, double smooth = 1.0,
                        const BatchSum& batch_sum = {});

// The loss `kind` names: cross-entropy (segmentation_loss), Dice, or their sum.
torch::Tensor training_loss(LossKind kind, const torch::Tensor& logits, const torch::Tensor& targets,
                            const torch::Tensor& class_weights = {}, Reduction reduction = Reduction::kMean,
                            const torch::Tensor& pixel_weights = {}, int64_t ignore = 255, const BatchSum& batch_sum = {});

}  // namespace fcn
