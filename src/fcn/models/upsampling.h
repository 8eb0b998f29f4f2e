// How fcn runs its learnable upsamplers (transposed convolutions) on the CPU, process-wide. The
// fast-path tuner (fcn/infer/fast_path.h) times both on the machine at hand; the results are the
// same to float rounding (tests/models/layers_test.cpp).
#pragma once

namespace fcn {

enum class UpsamplingPath {
  kSubpixel,    // a stride-1 convolution + pixel_shuffle on oneDNN (the default; see layers.h)
  kTransposed,  // LibTorch's own conv_transpose2d
};
void set_upsampling_path(UpsamplingPath path);
UpsamplingPath upsampling_path();

}  // namespace fcn
