#include "fcn/models/classifier.h"

#include <torch/torch.h>

#include "fcn/models/init.h"
#include "fcn/models/layers.h"
#include "fcn/util/error.h"

namespace fcn {

ClassifierImpl::ClassifierImpl(const ClassifierOptions& options_) : options(options_) {
  if (options.input_size() < 32 || options.input_size() % 32 != 0)
    fail("classifier", "input size " + std::to_string(options.input_size()) + " is not a positive multiple of 32");
  backbone = register_module("backbone", VGG(options.backbone()));
  const int64_t k = options.kernel();
  const int64_t c5 = backbone->channels(5);
  fc6 = register_module("fc6", torch::nn::Linear(c5 * k * k, options.fc_channels()));
  fc7 = register_module("fc7", torch::nn::Linear(options.fc_channels(), options.fc_channels()));
  fc8 = register_module("fc8", torch::nn::Linear(options.fc_channels(), options.num_classes()));
  dropout = register_module("dropout", torch::nn::Dropout(options.dropout()));
  init_normal(fc6);
  init_normal(fc7);
  init_normal(fc8);
}

torch::Tensor ClassifierImpl::dense_head(const torch::Tensor& flat_pool5) {
  auto x = dropout(torch::relu(linear(fc6, flat_pool5)));
  x = dropout(torch::relu(linear(fc7, x)));
  return linear(fc8, x);
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) {
  check_input(x, in_channels(), "classifier");
  if (x.size(2) < 32 || x.size(3) < 32)
    fail("classifier", "input " + std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) +
                           " is smaller than 32x32, the least that survives five 2x2 pools");
  auto pool5 = backbone->forward(x).pool5;
  const int64_t k = options.kernel();
  pool5 = torch::adaptive_avg_pool2d(pool5, {k, k});
  return dense_head(pool5.flatten(1));
}

}  // namespace fcn
