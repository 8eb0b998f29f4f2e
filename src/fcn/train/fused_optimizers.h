// The two optimizers fcn trains with — SGD with momentum (the FCN paper's solver) and AdamW —
// computed as LibTorch's torch::optim::SGD and AdamW compute them, in one pass over each
// parameter's memory.
//
// LibTorch 1.13 updates a parameter with a chain of tensor operations, each a pass over memory the
// size of the parameter: SGD four (the decayed gradient into a temporary, mul_ and add_ on the
// momentum buffer, add_ on the weight; 12 reads and writes per element), AdamW eight (decay, two
// moment updates of two operations each, sqrt, divide, add, addcdiv; ~22). One pass reads what the
// update needs and writes what it changes: 5 per element for SGD, 7 for AdamW. The update is
// memory-bound, and FCN's nets keep most parameters in fc6 (VGG16: 103 M of 134 M), so this is
// 5-10% of a training step. The state is LibTorch's own (SGDParamState, AdamWParamState), so a
// checkpoint saved by either optimizer loads into the other (state held in another memory layout
// than its weight is put in the weight's first); where the pass does not apply (Nesterov momentum,
// AMSGrad, a parameter that is not float on the CPU, a gradient in another layout than its weight)
// the step is LibTorch's.
#pragma once

#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

namespace fcn {

class FusedSGD : public torch::optim::SGD {
 public:
  using torch::optim::SGD::SGD;
  torch::Tensor step(LossClosure closure = nullptr) override;

 private:
  bool fusable();  // the one pass applies (state in another layout is put in the weight's first)
};

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;

 private:
  bool fusable();  // the one pass applies (state in another layout is put in the weight's first)
};

// Drops every parameter's gradient — PyTorch 2's zero_grad(set_to_none=True): the next backward
// hands its gradient to the parameter instead of adding it into a zeroed one, which saves a fill
// and an add of every parameter per step. A parameter that gets no gradient then has none, and
// optimizers skip it, as they do in PyTorch.
void clear_gradients(torch::optim::Optimizer& optimizer);

}  // namespace fcn
