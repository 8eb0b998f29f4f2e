#include "fcn/formats/palette.h"

namespace fcn {

std::array<uint8_t, 3> voc_color(int index) {
  // The VOC devkit's bit-interleaving: bits 0, 1, 2 of the label go to the top bits of R, G, B.
  std::array<uint8_t, 3> rgb{0, 0, 0};
  for (int bit = 7, c = index; c > 0; --bit, c >>= 3) {
    for (int channel = 0; channel < 3; ++channel) rgb[channel] |= static_cast<uint8_t>(((c >> channel) & 1) << bit);
  }
  return rgb;
}

std::vector<std::array<uint8_t, 3>> voc_palette(int64_t classes) {
  std::vector<std::array<uint8_t, 3>> palette;
  for (int64_t c = 0; c < classes; ++c) palette.push_back(voc_color(static_cast<int>(c % 256)));
  return palette;
}

}  // namespace fcn
