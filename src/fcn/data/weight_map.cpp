#include "fcn/data/weight_map.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "fcn/data/instances.h"
#include "fcn/util/error.h"

namespace fcn {

void validate(const WeightMapOptions& options) {
  if (!(options.w0() >= 0) || !(options.sigma() > 0) || !std::isfinite(options.w0()) || !std::isfinite(options.sigma()))
    fail("WeightMapOptions", "needs w0 >= 0 and sigma > 0 (the paper: w0=10, sigma=5), got w0=" + number_text(options.w0()) +
                                 ", sigma=" + number_text(options.sigma()));
}

torch::Tensor unet_weight_map(const torch::Tensor& labels, const torch::Tensor& instances, const WeightMapOptions& options,
                              const torch::Tensor& class_weights, int64_t ignore) {
  TORCH_CHECK(labels.dim() == 2 && labels.sizes() == instances.sizes(), "unet_weight_map: labels ", labels.sizes(), " vs instances ",
              instances.sizes());
  validate(options);
  const auto classes = labels.to(torch::kCPU, torch::kLong);
  const auto objects = instances.to(torch::kCPU, torch::kLong);
  const auto valid = classes != ignore;
  const auto safe = classes.masked_fill(~valid, 0);
  auto weights = class_weights.defined() ? class_weights.to(torch::kCPU, torch::kFloat).index({safe}) : torch::ones(classes.sizes());
  const auto ids = std::get<0>(torch::_unique(objects.masked_select(objects > 0)));
  if (ids.size(0) >= 2 && options.w0() > 0) {
    const float inf = std::numeric_limits<float>::infinity();
    auto d1 = torch::full(classes.sizes(), inf), d2 = torch::full(classes.sizes(), inf);
    for (int64_t i = 0; i < ids.size(0); ++i) {  // keep the two smallest distances per pixel
      const auto d = distance_transform(objects == ids[i].item<int64_t>());
      const auto second = torch::maximum(d1, d);
      d1 = torch::minimum(d1, d);
      d2 = torch::minimum(d2, second);
    }
    const auto border = options.w0() * torch::exp(-(d1 + d2).square() / (2 * options.sigma() * options.sigma()));
    weights = weights + torch::where(objects == 0, border, torch::zeros_like(border));
  }
  return (weights * valid.to(torch::kFloat)).contiguous();
}

}  // namespace fcn
