#include "fcn/models/coord_map.h"

#include <cmath>
#include <string>

#include "fcn/util/error.h"

namespace fcn {

CoordMap conv_map(int64_t kernel, int64_t stride, int64_t padding) {
  return {static_cast<double>(stride), static_cast<double>(kernel - 1) / 2.0 - static_cast<double>(padding)};
}

CoordMap transposed_map(int64_t kernel, int64_t stride, int64_t padding) {
  const auto forward = conv_map(kernel, stride, padding);
  return {1.0 / forward.scale, -forward.offset / forward.scale};
}

int64_t crop_offset(const CoordMap& from, const CoordMap& to) {
  if (std::abs(from.scale - to.scale) > 1e-9)
    fail("crop_offset", "maps of scale " + number_text(from.scale) + " and " + number_text(to.scale) +
                            " cannot be aligned by a crop");
  const double offset = (to.offset - from.offset) / from.scale;
  const double whole = std::round(offset);
  if (std::abs(offset - whole) > 1e-6 || whole < 0)
    fail("crop_offset", "offset " + number_text(offset) + " is not a whole, non-negative number of pixels");
  return static_cast<int64_t>(whole);
}

}  // namespace fcn
