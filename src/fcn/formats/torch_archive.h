// Reads name -> tensor state dicts from PyTorch's zip archives (what `torch.save(model.state_dict())`
// writes since PyTorch 1.6), and writes fcn's own. LibTorch's own torch::pickle_load turns collections.OrderedDict into
// None, so state dicts need this small unpickler: it runs the pickle opcodes a state dict uses and
// rebuilds tensors from the archive's storage records; anything else is a clear error.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "fcn/util/atomic_file.h"

namespace fcn {

using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;  // in file order

// Accepts a flat {name: tensor} dict, or a checkpoint dict holding one under "state_dict" or "model".
StateDict read_torch_archive(const std::string& path);

// One entry of the top-level dict of a pickle: what fcn's files hold (fcn model files, checkpoints
// saved from Python): strings, numbers, tensors and {name: tensor} dicts; anything else is kOther.
struct ArchiveEntry {
  enum class Kind { kOther, kString, kInt, kFloat, kTensor, kTensorDict };
  Kind kind = Kind::kOther;
  std::string text;
  int64_t integer = 0;
  double real = 0;
  torch::Tensor tensor;
  StateDict dict;
};
using ArchiveDict = std::vector<std::pair<std::string, ArchiveEntry>>;  // in file order

// Every record size the zip declares is checked against the file's size and Limits.max_tensor_bytes
// before it is read; the pickle runs in an arena (self-references and deep nesting are inert).
ArchiveDict read_torch_archive_dict(const std::string& path);
ArchiveDict parse_torch_archive_dict(const std::vector<char>& bytes, const std::string& path);  // the same from memory
// PyTorch's format before 1.6, still written by torch.save(..., _use_new_zipfile_serialization=False) and
// found in files saved before 1.6 (torchvision's VGG and AlexNet weights among them): pickles one after
// another (the magic number, the protocol version, the system's info, the object, its storage keys), then
// each storage's int64 element count and elements. Tensors as in the zip format (_rebuild_tensor_v2, and
// _rebuild_tensor of files before PyTorch 0.4); little-endian files only; every count checked against the
// pickle's, the file's size and Limits.max_tensor_bytes before a storage is read.
bool is_torch_zip(const std::vector<char>& head);     // torch.save's zip format (since 1.6), fcn's model files: "PK\3\4"
bool is_legacy_torch(const std::vector<char>& head);  // by the magic number's pickle at the start (its first 24 bytes)
ArchiveDict read_torch_legacy_dict(const std::string& path);
ArchiveDict parse_torch_legacy_dict(const std::vector<char>& bytes, const std::string& path);  // the same from memory
// The state dict of an archive's top-level dict (see read_torch_archive).
StateDict state_dict_of(const ArchiveDict& dict, const std::string& path);

// `value` as torch::pickle_save writes it (the same bytes: a zip of data.pkl and one record per storage), streamed
// into `path` atomically (write_file_atomic): the tensors go from their own memory into the file, never through
// a whole-archive buffer, so that saving a 550 MB VGG16 costs no more memory than the net.
void write_torch_archive(const std::string& path, const c10::IValue& value, Durability durability);

// The pickle program alone (data.pkl), with storages from `storages(key, dtype, numel)`: for tests
// and the fuzzer.
using StorageReader = std::function<torch::Tensor(const std::string& key, torch::ScalarType dtype, int64_t numel)>;
ArchiveDict parse_pickle_dict(std::vector<char> pickle, const StorageReader& storages, const std::string& path);

}  // namespace fcn
