// Reads name -> tensor state dicts from PyTorch's zip archives (what `torch.save(model.state_dict())`
// writes since PyTorch 1.6). LibTorch's own torch::pickle_load turns collections.OrderedDict into
// None, so state dicts need this small unpickler: it runs the pickle opcodes a state dict uses and
// rebuilds tensors from the archive's storage records; anything else is a clear error.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace fcn {

using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;  // in file order

// Accepts a flat {name: tensor} dict, or a checkpoint dict holding one under "state_dict" or "model".
StateDict read_torch_archive(const std::string& path);

}  // namespace fcn
