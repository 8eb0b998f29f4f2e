// .npy headers and data (what `fcn forward` and --class-weights read).
#include <torch/torch.h>

#include "fcn/formats/npy.h"
#include "fuzz_common.h"

FCN_FUZZ_TARGET({ fcn::parse_npy(bytes, "fuzz.npy"); })
