// TIFF's directory chain (fcn/formats/tiff.h), walked for the page table of every TIFF fcn reads:
// both byte orders, BigTIFF, offsets past the end, chains that loop, directories cut short.
#include "fcn/formats/tiff.h"
#include "fuzz_common.h"

FCN_FUZZ_TARGET({
  const auto pages = fcn::tiff_pages(bytes, "fuzz.tif");
  if (pages.empty()) __builtin_trap();
  for (const auto& page : pages)
    if (page.height <= 0 || page.width <= 0 || page.directory < 0) __builtin_trap();
})
