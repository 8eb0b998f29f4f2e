// Whole .pth / .fcn zip archives: central directory checks, LibTorch's zip reader, the pickle; and .pth files in
// torch.save's legacy format (pickles one after another, then the storages).
#include <torch/torch.h>

#include "fcn/formats/torch_archive.h"
#include "fuzz_common.h"

FCN_FUZZ_TARGET({
  const auto dict = fcn::is_legacy_torch(bytes) ? fcn::parse_torch_legacy_dict(bytes, "fuzz.pth") : fcn::parse_torch_archive_dict(bytes, "fuzz.pth");
  fcn::state_dict_of(dict, "fuzz.pth");
})
