// Tensors derived from a layer's parameters for inference, made once and reused while the parameters stay as they
// are. Why: a transposed convolution runs as a stride-1 convolution on its weights rearranged (layers.h), and
// rearranging them on every call cost a small net more than its convolutions: FCN-8s ResNet-18-w0.25 at 128x128 spent
// 5.6 of its 15.3 ms per image flipping and copying 32x upsampling weights (AVX-512 Zen 5, 1 thread;
// docs/benchmarks.md, "Small nets").
//
//   auto k = fcn::derived_weight("subpixel", {layer->weight}, [&] { return rearranged(layer->weight); });
//
// An entry is used while each of its sources is the same live tensor (the same TensorImpl, data and version counter:
// an optimizer step, copy_, load or set_data makes a new entry); entries of tensors that died are dropped at the next
// insertion. Only for grad mode off (the result records no autograd history of the sources); in grad mode, for
// inference tensors (no version counter) or results over kDerivedWeightMaxBytes, `make` runs on every call and
// nothing is kept. The cache holds at most kDerivedWeightBudgetBytes, oldest entries leaving first. Thread-safe.
#pragma once

#include <torch/types.h>

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <string>

namespace fcn {

constexpr size_t kDerivedWeightMaxBytes = size_t{64} << 20;
constexpr size_t kDerivedWeightBudgetBytes = size_t{256} << 20;

// `kind` names the derivation (its key with the sources, so one tensor may have several derived forms:
// "subpixel 32 out-major channels_last" and "subpixel 32 phase-major channels_last").
torch::Tensor derived_weight(const std::string& kind, std::initializer_list<torch::Tensor> sources,
                             const std::function<torch::Tensor()>& make);

struct DerivedWeightStats {
  size_t entries = 0, bytes = 0, hits = 0, misses = 0;
};
DerivedWeightStats derived_weight_stats();
void clear_derived_weights();  // drops every entry and zeroes the counts

}  // namespace fcn
