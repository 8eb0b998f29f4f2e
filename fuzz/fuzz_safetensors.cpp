// safetensors: header length, JSON header, declared shapes and offsets.
#include <torch/torch.h>

#include "fcn/formats/safetensors.h"
#include "fuzz_common.h"

FCN_FUZZ_TARGET({ fcn::parse_safetensors(bytes, "fuzz.safetensors"); })
