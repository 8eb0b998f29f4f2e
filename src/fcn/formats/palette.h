// Colour tables for label maps: PASCAL VOC's colour map, which fcn uses for every model and dataset
// that does not bring its own colours (class 0 black, 1 maroon, 2 green, ...).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace fcn {

// VOC's colour of label `index` (0..255; 255, the void label, is cream 224,224,192).
std::array<uint8_t, 3> voc_color(int index);
// PASCAL VOC's 21 class names, background first: those of a VOC dataset without classes.json, and of torchvision's
// pretrained segmentation FCNs (COCO images with VOC's labels).
const std::vector<std::string>& voc_class_names();
// The first `classes` VOC colours (repeating after 256).
std::vector<std::array<uint8_t, 3>> voc_palette(int64_t classes);
// [[r, g, b], ...] with every value an integer in 0..255 (300 is an error, not 44); errors name
// `context` and the colour.
std::vector<std::array<uint8_t, 3>> colors_from_json(const nlohmann::json& colors, const std::string& context);

}  // namespace fcn
