#include "fcn/models/init.h"

#include <torch/torch.h>

namespace fcn {

torch::Tensor bilinear_kernel(int64_t size) {
  const int64_t factor = (size + 1) / 2;
  const double center = size % 2 == 1 ? factor - 1 : factor - 0.5;
  auto og = torch::arange(size, torch::kDouble);
  auto filt = 1 - (og - center).abs() / factor;
  return torch::outer(filt, filt).to(torch::kFloat);
}

void init_bilinear(torch::nn::ConvTranspose2d layer) {
  torch::NoGradGuard no_grad;
  auto& w = layer->weight;  // in x out x k x k
  TORCH_CHECK(w.size(0) == w.size(1) && w.size(2) == w.size(3),
              "init_bilinear: expected a square C x C x k x k kernel, got ", w.sizes());
  const auto kernel = bilinear_kernel(w.size(2));
  w.zero_();
  for (int64_t c = 0; c < w.size(0); ++c) w[c][c].copy_(kernel);
  if (layer->bias.defined()) layer->bias.zero_();
}

void init_zero(torch::nn::Conv2d layer) {
  torch::NoGradGuard no_grad;
  layer->weight.zero_();
  if (layer->bias.defined()) layer->bias.zero_();
}

void init_kaiming(torch::nn::Conv2d layer) {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(layer->weight, 0.0, torch::kFanOut, torch::kReLU);
  if (layer->bias.defined()) layer->bias.zero_();
}

void init_normal(torch::nn::Linear layer) {
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(layer->weight, 0.0, 0.01);
  layer->bias.zero_();
}

}  // namespace fcn
