#include "fcn/models/cost.h"

#include <torch/torch.h>

#include "fcn/models/layers.h"

namespace fcn {

int64_t parameter_count(const NetImpl& net) {
  int64_t count = 0;
  for (const auto& p : net.parameters()) count += p.numel();
  return count;
}

double forward_flops(NetImpl& net, int64_t height, int64_t width) {
  c10::InferenceMode guard;
  const bool was_training = net.is_training();
  net.eval();
  FlopCounter counter;
  net.forward(torch::zeros({1, net.in_channels(), height, width}));
  net.train(was_training);
  return counter.flops();
}

}  // namespace fcn
