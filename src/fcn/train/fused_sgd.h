// SGD with momentum and weight decay — the FCN paper's solver — computed as LibTorch's
// torch::optim::SGD computes it, in one pass over each parameter's memory.
//
// LibTorch 1.13's SGD::step runs four tensor operations per parameter (the decayed gradient into a
// temporary, then mul_ and add_ on the momentum buffer, then add_ on the weight): twelve reads and
// writes of the parameter's size. One pass reads the weight, gradient and buffer and writes the
// buffer and weight: five. The update is memory-bound, and on FCN's nets most parameters sit in
// fc6 (VGG16: 103 M of 134 M), so this is a few percent of a training step; on the demo's small
// FCN-8s at 64², ~10%. The state is SGD's own (SGDParamState's momentum_buffer), so a checkpoint
// saved by either optimizer loads into the other.
#pragma once

#include <torch/optim/sgd.h>

namespace fcn {

class FusedSGD : public torch::optim::SGD {
 public:
  using torch::optim::SGD::SGD;
  // SGD::step's result; where the pass does not apply (Nesterov momentum, a parameter that is not
  // float on the CPU, a gradient or buffer in another layout than its weight), SGD::step itself.
  torch::Tensor step(LossClosure closure = nullptr) override;

 private:
  bool fusable() const;
};

// Drops every parameter's gradient — PyTorch 2's zero_grad(set_to_none=True): the next backward
// hands its gradient to the parameter instead of adding it into a zeroed one, which saves a fill
// and an add of every parameter per step. A parameter that gets no gradient then has none, and
// optimizers skip it, as they do in PyTorch.
void clear_gradients(torch::optim::Optimizer& optimizer);

}  // namespace fcn
