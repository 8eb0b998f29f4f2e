// The FCN training loss: per-pixel softmax cross-entropy that ignores the void label, with optional
// class weights; "mean" normalises by the (weighted) count of valid pixels, "sum" is the paper's
// unnormalised loss. A thin, validated wrapper over LibTorch's cross_entropy.
#pragma once

#include <string>

#include <torch/types.h>

namespace fcn {

enum class Reduction { kMean, kSum };
Reduction parse_reduction(const std::string& name);  // "mean" | "sum"

// logits N x C x H x W, targets N x H x W int64 (class or `ignore`), weights C (or undefined).
torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                const torch::Tensor& class_weights = {}, Reduction reduction = Reduction::kMean,
                                int64_t ignore = 255);

}  // namespace fcn
