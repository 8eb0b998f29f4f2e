// NIfTI-1 volumes (fcn/formats/nifti.h): both byte orders, every data type, scaling, 4-D series,
// NIfTI-2 and .hdr/.img headers, vox_offset anywhere, sizes past the limits, voxels cut short.
#include <torch/torch.h>

#include "fcn/formats/nifti.h"
#include "fuzz_common.h"

FCN_FUZZ_TARGET({
  const auto volume = fcn::parse_nifti(bytes, "fuzz.nii");
  if (volume.voxels.dim() != 3 || volume.voxels.size(0) != volume.slices || volume.voxels.size(1) != volume.height ||
      volume.voxels.size(2) != volume.width || volume.header.size() != 348)
    __builtin_trap();
  const auto window = fcn::nifti_window(volume);
  const auto image = fcn::nifti_slice_image(volume, 0, window);
  if (image.numel() > 0 && !(image.min().item<float>() >= 0 && image.max().item<float>() <= 1)) __builtin_trap();
})
