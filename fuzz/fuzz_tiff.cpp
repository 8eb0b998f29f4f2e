// TIFF's directory chain (fcn/formats/tiff.h), walked for the page table of every TIFF fcn reads:
// both byte orders, BigTIFF, offsets past the end, chains that loop, directories cut short; and the
// first page's calibration (resolution rationals, ImageJ's description), read past any thumbnail; and a
// single page of several samples apart (a multispectral image) decoded by libtiff from memory; a single page
// read as a label image (decode_tiff_labels: signed, 32-bit and float samples as stored).
#include <cmath>

#include <torch/torch.h>

#include "fcn/formats/image.h"
#include "fcn/formats/tiff.h"
#include "fuzz_common.h"

FCN_FUZZ_TARGET({
  const auto calibration = fcn::tiff_calibration(bytes);  // never throws: none where it cannot be read
  if (!std::isfinite(calibration.x_resolution) || calibration.x_resolution < 0 || !(calibration.spacing >= 0) ||
      !std::isfinite(calibration.spacing) || calibration.unit.size() > 64 || calibration.resolution_unit > 3)
    __builtin_trap();
  const auto pages = fcn::tiff_pages(bytes, "fuzz.tif");
  if (pages.empty()) __builtin_trap();
  for (const auto& page : pages)
    if (page.height <= 0 || page.width <= 0 || page.directory < 0) __builtin_trap();
  if (pages.size() == 1 && pages[0].directory == 0 && pages[0].read_by_libtiff()) {
    const auto image = fcn::decode_image(bytes, "fuzz.tif");  // throws fcn::Error on anything it cannot read
    if (image.dim() != 3 || image.size(0) != pages[0].samples || image.size(1) != pages[0].height || image.size(2) != pages[0].width)
      __builtin_trap();
  }
  if (pages.size() == 1) {  // a label image (mask, instance mask): integers as stored, by libtiff
    try {
      const auto labels = fcn::decode_tiff_labels(bytes, "fuzz.tif");
      if (labels.dim() != 3 || labels.scalar_type() != torch::kLong || labels.size(1) != pages[0].height || labels.size(2) != pages[0].width ||
          (labels.numel() > 0 && labels.min().item<int64_t>() < 0))
        __builtin_trap();
    } catch (const fcn::Error&) {
    }
  }
})
