#include "fcn/formats/png.h"

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

#include <torch/torch.h>

#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"

namespace fcn {
namespace {

struct ReadBuffer {
  const std::vector<char>* bytes;
  size_t offset;
};

void read_from_buffer(png_structp png, png_bytep out, png_size_t length) {
  auto* buffer = static_cast<ReadBuffer*>(png_get_io_ptr(png));
  if (buffer->offset + length > buffer->bytes->size()) png_error(png, "file ends early (truncated?)");
  std::memcpy(out, buffer->bytes->data() + buffer->offset, length);
  buffer->offset += length;
}

void write_to_vector(png_structp png, png_bytep data, png_size_t length) {
  auto* out = static_cast<std::vector<char>*>(png_get_io_ptr(png));
  out->insert(out->end(), reinterpret_cast<char*>(data), reinterpret_cast<char*>(data) + length);
}

void flush_nothing(png_structp) {}

// libpng reports errors by longjmp; the message is kept here and rethrown as fcn::Error.
void on_error(png_structp png, png_const_charp message) {
  auto* text = static_cast<std::string*>(png_get_error_ptr(png));
  *text = message;
  png_longjmp(png, 1);
}
void on_warning(png_structp, png_const_charp) {}

std::vector<char> encode(const std::string& path, int width, int height, int color_type,
                         const std::vector<std::array<uint8_t, 3>>* palette, const uint8_t* rows, int row_bytes,
                         int bit_depth = 8) {
  std::string message;
  std::vector<char> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &message, on_error, on_warning);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    fail(path, "cannot encode PNG: " + message);
  }
  png_set_write_fn(png, &out, write_to_vector, flush_nothing);
  png_set_IHDR(png, info, width, height, bit_depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  std::vector<png_color> colors;
  if (palette != nullptr) {
    for (const auto& c : *palette) colors.push_back({c[0], c[1], c[2]});
    png_set_PLTE(png, info, colors.data(), static_cast<int>(colors.size()));
  }
  png_write_info(png, info);
  for (int y = 0; y < height; ++y) png_write_row(png, const_cast<png_bytep>(rows + static_cast<size_t>(y) * row_bytes));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

}  // namespace

bool is_png(const std::vector<char>& bytes) {
  return bytes.size() >= 8 && png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) == 0;
}

bool is_jpeg(const std::vector<char>& bytes) {
  return bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xff && static_cast<unsigned char>(bytes[1]) == 0xd8 &&
         static_cast<unsigned char>(bytes[2]) == 0xff;
}

namespace {

// Frees libpng's read state on every way out (error longjmps land in read_png, whose frame holds it).
struct ReadState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~ReadState() { png_destroy_read_struct(&png, &info, nullptr); }
};

// The error for bytes that are no PNG; a mask saved as JPEG (its labels blurred into other values
// along every edge) is named as such.
[[noreturn]] void not_png(const std::vector<char>& bytes, const std::string& path) {
  if (is_jpeg(bytes))
    fail(path, "is a JPEG, not a PNG: masks must be lossless (JPEG changes the labels along every edge); save them as PNG");
  fail(path, "not a PNG file");
}

}  // namespace

PngContent read_png(const std::string& path) { return parse_png(read_file(path), path); }

PngContent parse_png(const std::vector<char>& bytes, const std::string& path) {
  if (!is_png(bytes)) not_png(bytes, path);
  std::string message;
  ReadState state;
  state.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &message, on_error, on_warning);
  state.info = png_create_info_struct(state.png);
  png_structp png = state.png;
  png_infop info = state.info;
  ReadBuffer buffer{&bytes, 0};
  PngContent content;
  // Everything libpng may longjmp over is created before setjmp and owned by plain objects.
  std::vector<png_bytep> rows;
  std::vector<uint8_t> data;
  std::string refused;  // a limit exceeded, reported after libpng's state is left
  if (setjmp(png_jmpbuf(png))) {
    if (!refused.empty()) fail(path, refused);
    fail(path, "corrupt PNG: " + printable(message));
  }
  png_set_read_fn(png, &buffer, read_from_buffer);
  png_read_info(png, info);
  const auto width = png_get_image_width(png, info);
  const auto height = png_get_image_height(png, info);
  const int color_type = png_get_color_type(png, info);
  int bit_depth = png_get_bit_depth(png, info);
  refused = image_size_problem(height, width);
  if (!refused.empty()) png_error(png, "limit");
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    content.indexed = true;
    png_colorp colors = nullptr;
    int count = 0;
    png_get_PLTE(png, info, &colors, &count);
    for (int i = 0; i < count; ++i) content.palette.push_back({colors[i].red, colors[i].green, colors[i].blue});
    if (bit_depth < 8) png_set_packing(png);
    bit_depth = 8;
  } else if (bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(png);
    bit_depth = 8;
  }
  if (bit_depth == 16) png_set_swap(png);  // host (little-endian) order
  png_read_update_info(png, info);
  const int channels = png_get_channels(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  // Deflate expands at most ~1032:1, so pixels the file cannot hold mean a bomb or a lie: refuse
  // them before allocating (a 2 KB file claiming 100000 x 20000 would otherwise take 2 GB).
  const double stored = static_cast<double>(row_bytes) * static_cast<double>(height);
  if (stored / 1032.0 > static_cast<double>(bytes.size()) + 65536.0) {
    refused = "declares " + std::to_string(width) + "x" + std::to_string(height) + " pixels, more than its " +
              std::to_string(bytes.size()) + " bytes can hold (a decompression bomb or a truncated file)";
    png_error(png, "limit");
  }
  data.resize(row_bytes * height);
  rows.resize(height);
  for (size_t y = 0; y < height; ++y) rows[y] = data.data() + y * row_bytes;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  const int64_t h = height, w = width;
  if (bit_depth == 16) {
    content.pixels = torch::from_blob(data.data(), {h, w, channels}, torch::kShort).to(torch::kInt).bitwise_and(0xffff);
  } else {
    content.pixels = torch::from_blob(data.data(), {h, w, channels}, torch::kByte).clone();
  }
  return content;
}

void write_png_indexed(const std::string& path, const torch::Tensor& indices,
                       const std::vector<std::array<uint8_t, 3>>& palette) {
  TORCH_CHECK(indices.dim() == 2 && indices.scalar_type() == torch::kByte, "write_png_indexed: H x W uint8 expected");
  TORCH_CHECK(!palette.empty() && palette.size() <= 256, "write_png_indexed: 1..256 colours");
  auto full = palette;
  full.resize(256, {0, 0, 0});  // every index a byte can hold is defined
  if (palette.size() < 256) full[255] = {224, 224, 192};  // VOC's void colour
  const auto rows = indices.contiguous();
  write_file_atomic(path, encode(path, static_cast<int>(rows.size(1)), static_cast<int>(rows.size(0)),
                                 PNG_COLOR_TYPE_PALETTE, &full, rows.data_ptr<uint8_t>(), static_cast<int>(rows.size(1))));
}

std::vector<char> encode_png(const torch::Tensor& pixels) {
  TORCH_CHECK(pixels.dim() == 3 && pixels.scalar_type() == torch::kByte && (pixels.size(2) == 1 || pixels.size(2) == 3),
              "encode_png: H x W x {1,3} uint8 expected");
  const auto rows = pixels.contiguous();
  const int channels = static_cast<int>(rows.size(2));
  return encode("png", static_cast<int>(rows.size(1)), static_cast<int>(rows.size(0)),
                channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, nullptr, rows.data_ptr<uint8_t>(),
                static_cast<int>(rows.size(1) * channels));
}

void write_png(const std::string& path, const torch::Tensor& pixels) { write_file_atomic(path, encode_png(pixels)); }

void write_png16(const std::string& path, const torch::Tensor& values) {
  TORCH_CHECK(values.dim() == 2 || (values.dim() == 3 && values.size(2) >= 1 && values.size(2) <= 4), "write_png16: H x W or H x W x 1..4 expected");
  // PNG stores 16-bit samples big-endian.
  const auto v = (values.dim() == 2 ? values.unsqueeze(2) : values).to(torch::kInt).clamp(0, 65535).contiguous();
  const int64_t channels = v.size(2);
  const auto bytes = torch::stack({v.div(256, "floor"), v.remainder(256)}, 3).to(torch::kByte).contiguous();
  const int types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  write_file_atomic(path, encode(path, static_cast<int>(v.size(1)), static_cast<int>(v.size(0)), types[channels - 1], nullptr,
                                 bytes.data_ptr<uint8_t>(), static_cast<int>(v.size(1) * channels * 2), 16));
}

}  // namespace fcn
