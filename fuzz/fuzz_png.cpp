// Image decoding without OpenCV: PNG (every colour type and depth), the JPEG frame and
// end-of-image checks and EXIF orientation, empty and unknown formats.
#include <torch/torch.h>

#include "fcn/formats/image.h"
#include "fuzz_common.h"

FCN_FUZZ_TARGET({
  const int orientation = fcn::exif_orientation(bytes);  // the Exif walk, on every input
  if (orientation < 1 || orientation > 8) __builtin_trap();
  const auto image = fcn::decode_image(bytes, "fuzz.png");
  if (image.dim() != 3) __builtin_trap();
})
