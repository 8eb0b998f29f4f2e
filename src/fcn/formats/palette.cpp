#include "fcn/formats/palette.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "fcn/util/error.h"

namespace fcn {

std::array<uint8_t, 3> voc_color(int index) {
  // The VOC devkit's bit-interleaving: bits 0, 1, 2 of the label go to the top bits of R, G, B.
  std::array<uint8_t, 3> rgb{0, 0, 0};
  for (int bit = 7, c = index; c > 0; --bit, c >>= 3) {
    for (int channel = 0; channel < 3; ++channel) rgb[channel] |= static_cast<uint8_t>(((c >> channel) & 1) << bit);
  }
  return rgb;
}

const std::vector<std::string>& voc_class_names() {
  static const std::vector<std::string> names = {
      "background", "aeroplane", "bicycle", "bird",  "boat",        "bottle", "bus",   "car",  "cat",   "chair", "cow",
      "diningtable", "dog",      "horse",   "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"};
  return names;
}

std::vector<std::array<uint8_t, 3>> voc_palette(int64_t classes) {
  std::vector<std::array<uint8_t, 3>> palette;
  for (int64_t c = 0; c < classes; ++c) palette.push_back(voc_color(static_cast<int>(c % 256)));
  return palette;
}

std::vector<std::array<uint8_t, 3>> colors_from_json(const nlohmann::json& colors, const std::string& context) {
  if (!colors.is_array()) fail(context, "colors must be a list of [r, g, b]");
  std::vector<std::array<uint8_t, 3>> out;
  for (size_t i = 0; i < colors.size(); ++i) {
    const auto& c = colors[i];
    const bool ok = c.is_array() && c.size() == 3 &&
                    std::all_of(c.begin(), c.end(), [](const nlohmann::json& v) { return v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= 255; });
    if (!ok) fail(context, "colour " + std::to_string(i) + " is " + c.dump().substr(0, 60) + ", not [r, g, b] with integers 0..255");
    out.push_back({c[0].get<uint8_t>(), c[1].get<uint8_t>(), c[2].get<uint8_t>()});
  }
  return out;
}

}  // namespace fcn
