#include "fcn/train/loss.h"

#include <torch/torch.h>

#include "fcn/util/error.h"

namespace fcn {

Reduction parse_reduction(const std::string& name) {
  if (name == "mean") return Reduction::kMean;
  if (name == "sum") return Reduction::kSum;
  fail("TrainOptions.reduction", "'" + name + "' is not one of mean, sum");
}

LossKind parse_loss_kind(const std::string& name) {
  if (name == "ce") return LossKind::kCrossEntropy;
  if (name == "dice") return LossKind::kDice;
  if (name == "ce+dice") return LossKind::kCrossEntropyDice;
  fail("TrainOptions.loss", "'" + name + "' is not one of ce, dice, ce+dice");
}

std::string loss_kind_name(LossKind kind) {
  switch (kind) {
    case LossKind::kCrossEntropy: return "ce";
    case LossKind::kDice: return "dice";
    case LossKind::kCrossEntropyDice: return "ce+dice";
  }
  return "ce";
}

namespace {

void check_shapes(const torch::Tensor& logits, const torch::Tensor& targets, const char* what) {
  TORCH_CHECK(logits.dim() == 4 && targets.dim() == 3 && logits.size(0) == targets.size(0) &&
                  logits.size(2) == targets.size(1) && logits.size(3) == targets.size(2),
              what, ": logits ", logits.sizes(), " do not match targets ", targets.sizes());
}

// Per-pixel loss terms, finite everywhere (the caller gives ignored pixels weight 0): softmax
// cross-entropy, or binary cross-entropy on a single logit channel.
torch::Tensor per_pixel_terms(const torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore) {
  namespace F = torch::nn::functional;
  if (logits.size(1) > 1)
    return F::cross_entropy(logits, targets, F::CrossEntropyFuncOptions().ignore_index(ignore).reduction(torch::kNone));
  const auto foreground = (targets == 1).to(logits.scalar_type());
  return F::binary_cross_entropy_with_logits(logits.select(1, 0), foreground,
                                             F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
}

// (sum of the weighted terms, sum of the weights) over the whole batch, as one tensor of two.
torch::Tensor whole_batch(const torch::Tensor& total, const torch::Tensor& weight_sum, const BatchSum& batch_sum) {
  const auto both = torch::stack({total, weight_sum.to(total.scalar_type())});
  return batch_sum ? batch_sum(both) : both;
}

torch::Tensor reduce(const torch::Tensor& sums, Reduction reduction) {
  return reduction == Reduction::kSum ? sums[0] : sums[0] / sums[1].clamp_min(1e-12);
}

}  // namespace

torch::Tensor loss_with_aux(const std::vector<torch::Tensor>& outputs, const std::function<torch::Tensor(const torch::Tensor&)>& loss_of) {
  auto loss = loss_of(outputs.at(0));
  for (size_t i = 1; i < outputs.size(); ++i) loss = loss + 0.5 * loss_of(outputs[i]);
  return loss;
}

torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& class_weights,
                                Reduction reduction, int64_t ignore, const torch::Tensor& pixel_weights, const BatchSum& batch_sum) {
  check_shapes(logits, targets, "segmentation_loss");
  const bool binary = logits.size(1) == 1;
  namespace F = torch::nn::functional;
  if (!binary && !pixel_weights.defined() && batch_sum) {  // the fused kernel's sum, the denominator beside it
    auto options = F::CrossEntropyFuncOptions().ignore_index(ignore).reduction(torch::kSum);
    const auto valid = targets != ignore;
    torch::Tensor weight_sum = valid.sum();
    if (class_weights.defined()) {
      const auto w = class_weights.to(logits.device(), logits.scalar_type());
      options.weight(w);
      weight_sum = (w.index({targets.masked_fill(~valid, 0)}) * valid.to(w.scalar_type())).sum();
    }
    return reduce(whole_batch(F::cross_entropy(logits, targets, options), weight_sum, batch_sum), reduction);
  }
  if (!binary && !pixel_weights.defined()) {  // LibTorch's fused kernel: the common case
    auto options = F::CrossEntropyFuncOptions().ignore_index(ignore);
    if (class_weights.defined()) options.weight(class_weights.to(logits.device(), logits.scalar_type()));
    if (reduction == Reduction::kSum) options.reduction(torch::kSum);
    return F::cross_entropy(logits, targets, options);
  }
  const auto valid = targets != ignore;
  if (binary) TORCH_CHECK(((targets == 0) | (targets == 1) | ~valid).all().item<bool>(), "segmentation_loss: a binary net needs labels 0 and 1");
  const auto terms = per_pixel_terms(logits, targets, ignore);
  torch::Tensor weights;
  if (pixel_weights.defined()) {
    TORCH_CHECK(pixel_weights.sizes() == targets.sizes(), "segmentation_loss: pixel weights ", pixel_weights.sizes(), " vs targets ",
                targets.sizes());
    weights = pixel_weights.to(logits.device(), logits.scalar_type());
  } else if (class_weights.defined()) {
    weights = class_weights.to(logits.device(), logits.scalar_type()).index({targets.masked_fill(~valid, 0)});
  } else {
    weights = torch::ones_like(terms);
  }
  weights = weights * valid.to(weights.scalar_type());
  return reduce(whole_batch((terms * weights).sum(), weights.sum(), batch_sum), reduction);
}

torch::Tensor dice_loss(const torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore, double smooth, const BatchSum& batch_sum) {
  check_shapes(logits, targets, "dice_loss");
  const auto valid = (targets != ignore).unsqueeze(1).to(logits.scalar_type());  // N x 1 x H x W
  const auto safe = targets.masked_fill(targets == ignore, 0);
  torch::Tensor probs, truth;
  if (logits.size(1) == 1) {
    probs = torch::sigmoid(logits);
    truth = (safe == 1).unsqueeze(1).to(logits.scalar_type());
  } else {
    probs = torch::softmax(logits, 1);
    truth = torch::one_hot(safe, logits.size(1)).permute({0, 3, 1, 2}).to(logits.scalar_type());
  }
  probs = probs * valid;
  truth = truth * valid;
  const std::vector<int64_t> pixels = {0, 2, 3};
  auto sums = torch::stack({(probs * truth).sum(pixels), probs.sum(pixels) + truth.sum(pixels)});  // intersection, sizes
  if (batch_sum) sums = batch_sum(sums);
  const auto dice = (2 * sums[0] + smooth) / (sums[1] + smooth);
  return 1 - dice.mean();
}

torch::Tensor training_loss(LossKind kind, const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& class_weights,
                            Reduction reduction, const torch::Tensor& pixel_weights, int64_t ignore, const BatchSum& batch_sum) {
  const auto ce = [&] { return segmentation_loss(logits, targets, class_weights, reduction, ignore, pixel_weights, batch_sum); };
  const auto dice = [&] { return dice_loss(logits, targets, ignore, 1.0, batch_sum); };
  switch (kind) {
    case LossKind::kCrossEntropy: return ce();
    case LossKind::kDice: return dice();
    case LossKind::kCrossEntropyDice: return ce() + dice();
  }
  return {};
}

}  // namespace fcn
