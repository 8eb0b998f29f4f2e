// PNG files through libpng, without OpenCV: masks must be read as stored (a palette PNG's pixels
// are class indices, which OpenCV would turn into colours) and written as palette PNGs (open as a
// colour picture, keep the class indices). 8- and 16-bit gray, gray+alpha, RGB, RGBA, palette.
#pragma once

#include <array>
#include <string>
#include <vector>

#include <torch/types.h>

namespace fcn {

struct PngContent {
  torch::Tensor pixels;  // H x W x C; uint8 for 8-bit (and palette indices), int32 for 16-bit
  bool indexed = false;  // a palette PNG: pixels are indices into `palette`
  std::vector<std::array<uint8_t, 3>> palette;
};

// Throws fcn::Error naming the file; the declared size is checked against Limits.max_pixels and
// against what the file's bytes can hold before the pixels are allocated.
PngContent read_png(const std::string& path);
PngContent parse_png(const std::vector<char>& bytes, const std::string& path);  // the same from memory
bool is_png(const std::vector<char>& bytes);  // by signature
bool is_jpeg(const std::vector<char>& bytes);  // by its start-of-image marker and the marker after it (FF D8 FF)

// H x W uint8 indices + palette (<= 256 colours) -> palette PNG. Atomic.
void write_png_indexed(const std::string& path, const torch::Tensor& indices,
                       const std::vector<std::array<uint8_t, 3>>& palette);
// H x W x C (C = 1 or 3) uint8 -> gray or RGB PNG. Atomic.
void write_png(const std::string& path, const torch::Tensor& pixels);
// The same picture as PNG bytes (for embedding, e.g. in an HTML report).
std::vector<char> encode_png(const torch::Tensor& pixels);
// H x W integers in 0..65535 -> 16-bit gray PNG (e.g. probabilities scaled by 65535); H x W x C, C of
// 1..4 -> gray, gray + alpha, RGB, RGBA samples (a slice's channels: MRI modalities). Atomic.
void write_png16(const std::string& path, const torch::Tensor& values);

}  // namespace fcn
