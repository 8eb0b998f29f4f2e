// Whole .pth / .fcn zip archives: central directory checks, LibTorch's zip reader, the pickle.
#include <torch/torch.h>

#include "fcn/formats/torch_archive.h"
#include "fuzz_common.h"

FCN_FUZZ_TARGET({ fcn::state_dict_of(fcn::parse_torch_archive_dict(bytes, "fuzz.pth"), "fuzz.pth"); })
