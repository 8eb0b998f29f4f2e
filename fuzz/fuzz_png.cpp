// Image decoding without OpenCV: PNG (every colour type and depth), the JPEG frame and
// end-of-image checks, empty and unknown formats.
#include <torch/torch.h>

#include "fcn/formats/image.h"
#include "fuzz_common.h"

FCN_FUZZ_TARGET({
  const auto image = fcn::decode_image(bytes, "fuzz.png");
  if (image.dim() != 3) __builtin_trap();
})
