// Pictures people look at instead of numbers: label maps in a palette, overlays on the image, a
// legend with class names, and heat maps. Pictures are H x W x 3 uint8 RGB tensors (fcn::write_png
// writes them). Text (legends) needs OpenCV; without it legends show the colour swatches only.
#pragma once

#include <array>
#include <string>
#include <vector>

#include <torch/types.h>

namespace fcn {

// H x W integer labels -> H x W x 3 uint8 in `palette` (labels beyond it, e.g. 255, are grey).
torch::Tensor colorize(const torch::Tensor& labels, const std::vector<std::array<uint8_t, 3>>& palette);
// C x H x W float in [0, 1] -> H x W x 3 uint8: gray (1, or 2: gray + alpha), RGB (3, or 4: alpha dropped);
// past 4 channels (bands, MRI sequences, slices: not colour) the first in gray.
torch::Tensor to_rgb8(const torch::Tensor& image);
// (1 - alpha) * picture + alpha * colors, both H x W x 3 uint8.
torch::Tensor blend(const torch::Tensor& picture, const torch::Tensor& colors, double alpha);
// Nearest-neighbour enlargement by an integer factor so the shorter side is at least `min_side`.
torch::Tensor enlarge(const torch::Tensor& picture, int64_t min_side);
// The picture with the outline of every object of `ids` (H x W integers, 0: none; the picture's
// size) drawn in `colour`: each object's pixels with a 4-neighbour of another id, so objects that
// touch show the line between them.
torch::Tensor with_outlines(const torch::Tensor& picture, const torch::Tensor& ids, std::array<uint8_t, 3> colour = {255, 255, 255});
// The picture with a legend panel on its right: one swatch and name per listed class.
torch::Tensor with_legend(const torch::Tensor& picture, const std::vector<int64_t>& classes,
                          const std::vector<std::string>& names, const std::vector<std::array<uint8_t, 3>>& palette);
// Values in [0, 1] (H x W) -> H x W x 3 uint8 through a perceptual dark-blue -> yellow colour map.
torch::Tensor colormap(const torch::Tensor& values);
// Pictures side by side with a `gap` pixel white gutter (all the same height).
torch::Tensor hconcat(const std::vector<torch::Tensor>& pictures, int64_t gap = 4);
// Pictures of one size in rows of `columns`, white gutters of `gap` pixels between them (a last row
// that is short is filled with white).
torch::Tensor grid(const std::vector<torch::Tensor>& pictures, int64_t columns, int64_t gap = 4);

}  // namespace fcn
