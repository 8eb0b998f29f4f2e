// Geometry of a layer chain, as Caffe's coord_map.py derives it: every conv/pool maps an output
// coordinate y to the centre of the window it reads, x = scale * y + offset, and a transposed conv
// the inverse. Composing the maps along a net gives each feature map's position on the input, and
// from that the crops that align an upsampled map with a skip or with the input (FCN's Crop layers).
#pragma once

#include <cstdint>

namespace fcn {

struct CoordMap {
  double scale = 1;   // input pixels per output pixel
  double offset = 0;  // input coordinate of output pixel 0's centre

  // This map (layer A's output -> input) followed by `next` (a layer B reading A's output):
  // B's output -> input.
  CoordMap then(const CoordMap& next) const { return {scale * next.scale, scale * next.offset + offset}; }
};

// Convolution or pooling with this kernel, stride and padding (per side).
CoordMap conv_map(int64_t kernel, int64_t stride, int64_t padding);
// Transposed convolution (the inverse map of the conv with the same parameters).
CoordMap transposed_map(int64_t kernel, int64_t stride, int64_t padding);

// The crop offset that aligns map `from` with map `to` (same scale): pixel y of `to` sits where
// pixel y + offset of `from` does. Crop `from` by it (Caffe's Crop layer). Throws fcn::Error when
// the scales differ or the offset is negative or not whole: those layers cannot be aligned by a crop.
int64_t crop_offset(const CoordMap& from, const CoordMap& to);

}  // namespace fcn
