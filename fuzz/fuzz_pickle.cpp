// The pickle program of a torch.save archive (data.pkl), with storages as the archive reader gives
// them: their size is the record's, bounded by the file, so here by 1 MiB.
#include <torch/torch.h>

#include "fcn/formats/torch_archive.h"
#include "fuzz_common.h"

namespace {
torch::Tensor storage(const std::string& key, torch::ScalarType dtype, int64_t numel) {
  if (numel > (int64_t{1} << 18)) fcn::fail("fuzz.pkl", "record '" + key + "' larger than the file");
  return torch::zeros({numel}, torch::TensorOptions().dtype(dtype));
}
}  // namespace

FCN_FUZZ_TARGET({ fcn::state_dict_of(fcn::parse_pickle_dict(bytes, storage, "fuzz.pkl"), "fuzz.pkl"); })
