#include "fcn/train/loss.h"

#include <torch/torch.h>

#include "fcn/util/error.h"

namespace fcn {

Reduction parse_reduction(const std::string& name) {
  if (name == "mean") return Reduction::kMean;
  if (name == "sum") return Reduction::kSum;
  fail("TrainOptions.reduction", "'" + name + "' is not one of mean, sum");
}

torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& class_weights,
                                Reduction reduction, int64_t ignore) {
  TORCH_CHECK(logits.dim() == 4 && targets.dim() == 3 && logits.size(0) == targets.size(0) &&
                  logits.size(2) == targets.size(1) && logits.size(3) == targets.size(2),
              "segmentation_loss: logits ", logits.sizes(), " do not match targets ", targets.sizes());
  namespace F = torch::nn::functional;
  auto options = F::CrossEntropyFuncOptions().ignore_index(ignore);
  if (class_weights.defined()) options.weight(class_weights.to(logits.device(), logits.scalar_type()));
  if (reduction == Reduction::kSum) options.reduction(torch::kSum);
  return F::cross_entropy(logits, targets, options);
}

}  // namespace fcn
