#include "fcn/formats/image.h"

#include <glob.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <streambuf>

#include <torch/torch.h>

#include "fcn/formats/nifti.h"
#include "fcn/formats/npy.h"
#include "fcn/formats/opencv_quiet.h"
#include "fcn/formats/png.h"
#include "fcn/formats/tiff.h"
#include "fcn/formats/video.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"

#ifdef FCN_WITH_OPENCV
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif
// libtiff comes with OpenCV's build; the fuzzers (fuzz/) build the multi-sample TIFF reader with it alone.
#if defined(FCN_WITH_OPENCV) || defined(FCN_WITH_LIBTIFF)
#define FCN_READS_TIFF_SAMPLES 1
#include <tiffio.h>
#endif

namespace fcn {
namespace {

#ifdef FCN_WITH_OPENCV
torch::Tensor to_tensor(cv::Mat image, const std::string& path);
#endif

#ifdef FCN_READS_TIFF_SAMPLES
// libtiff's error lines while fcn decodes on this thread. OpenCV's TIFF decoder drops them (its own
// handler prints nothing at its usual log level) and returns what it has: a strip that does not
// inflate came back as zeros, a corrupt file as a picture. libtiff calls the extended handler fcn
// installs beside OpenCV's, so fcn hears them and a corrupt TIFF is an error.
thread_local std::vector<std::string>* tiff_errors = nullptr;

void on_tiff_error(thandle_t, const char* module, const char* format, va_list args) {
  if (tiff_errors == nullptr) return;
  char line[512];
  std::vsnprintf(line, sizeof line, format, args);
  tiff_errors->push_back(std::string(module != nullptr ? module : "libtiff") + ": " + line);
}

// libtiff's printed lines — its warnings (on every page of a GeoTIFF: "Unknown field with tag 33550") and the
// plain copy of each error — dropped while fcn decodes on this thread (the errors are heard above and become
// fcn's one-line error); otherwise passed to the handlers there were before (libtiff's own print to stderr).
TIFFErrorHandler earlier_warning_handler = nullptr, earlier_error_handler = nullptr;
void on_tiff_warning(const char* module, const char* format, va_list args) {
  if (tiff_errors == nullptr && earlier_warning_handler != nullptr) earlier_warning_handler(module, format, args);
}
void on_tiff_error_line(const char* module, const char* format, va_list args) {
  if (tiff_errors == nullptr && earlier_error_handler != nullptr) earlier_error_handler(module, format, args);
}

// The handlers above put in once for the process (not once per decode_heard instantiation: a second time would
// take fcn's own handlers for the earlier ones, and each would call itself).
void install_tiff_handlers() {
  static const bool installed = [] {
    TIFFSetErrorHandlerExt(on_tiff_error);
    earlier_warning_handler = TIFFSetWarningHandler(on_tiff_warning);
    earlier_error_handler = TIFFSetErrorHandler(on_tiff_error_line);
    return true;
  }();
  (void)installed;
}

// `decode` run with libtiff heard: an error it reported fails `subject` ("corrupt TIFF: ZIPDecode: ...").
template <class Decode>
void decode_heard(const std::string& subject, Decode&& decode) {
  install_tiff_handlers();
  std::vector<std::string> errors;
  const Listening<std::vector<std::string>> listening(tiff_errors, errors);
#ifdef FCN_WITH_OPENCV
  try {
    decode();
  } catch (const cv::Exception& e) {
    fail(subject, "cannot decode image: " + printable(first_line(e.msg)));
  }
#else
  decode();
#endif
  if (!errors.empty()) fail(subject, "corrupt TIFF: " + printable(first_line(errors.front())));
}

// libtiff reading a TIFF in memory (TIFFClientOpen's procedures; never written, never mapped).
struct MemoryTiff {
  const std::vector<char>* bytes;
  uint64_t at = 0;
};
tmsize_t memory_read(thandle_t handle, void* out, tmsize_t n) {
  auto* m = static_cast<MemoryTiff*>(handle);
  const uint64_t size = m->bytes->size();
  if (n <= 0 || m->at >= size) return 0;
  const auto k = std::min<uint64_t>(static_cast<uint64_t>(n), size - m->at);
  std::memcpy(out, m->bytes->data() + m->at, k);
  m->at += k;
  return static_cast<tmsize_t>(k);
}
tmsize_t memory_write(thandle_t, void*, tmsize_t) { return -1; }
toff_t memory_seek(thandle_t handle, toff_t offset, int whence) {
  auto* m = static_cast<MemoryTiff*>(handle);
  const uint64_t base = whence == SEEK_CUR ? m->at : whence == SEEK_END ? m->bytes->size() : 0;
  return m->at = base + offset;
}
int memory_close(thandle_t) { return 0; }
toff_t memory_size(thandle_t handle) { return static_cast<MemoryTiff*>(handle)->bytes->size(); }
int memory_map(thandle_t, void**, toff_t*) { return 0; }
void memory_unmap(thandle_t, void*, toff_t) {}

// The samples of `tif`'s current page, read by strips' scanlines or by tiles, into `raw`: H x W x C where
// the samples are interleaved, C x H x W where each has its plane.
void read_samples(TIFF* tif, const TiffPage& page, std::vector<unsigned char>& raw, const std::string& subject) {
  const int64_t c = page.samples, h = page.height, w = page.width, size = page.bits / 8;
  const bool chunky = page.planar != 2;
  const int64_t pixel = chunky ? c * size : size, planes = chunky ? 1 : c;  // bytes a pixel in a plane; planes
  if (!TIFFIsTiled(tif)) {
    if (TIFFScanlineSize64(tif) != static_cast<uint64_t>(w * pixel)) fail(subject, "TIFF rows of an unexpected size (corrupt?)");
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t y = 0; y < h; ++y)
        if (TIFFReadScanline(tif, raw.data() + (p * h + y) * w * pixel, static_cast<uint32_t>(y), static_cast<uint16_t>(p)) < 0)
          fail(subject, "corrupt TIFF: row " + std::to_string(y) + " cannot be read");
    return;
  }
  uint32_t tile_w = 0, tile_h = 0;
  TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tile_w), TIFFGetField(tif, TIFFTAG_TILELENGTH, &tile_h);
  if (tile_w == 0 || tile_h == 0 || TIFFTileSize64(tif) != uint64_t{tile_w} * tile_h * static_cast<uint64_t>(pixel))
    fail(subject, "TIFF tiles of an unexpected size (corrupt?)");
  // A tile may overhang the page (its sides are multiples of 16), not dwarf it: a few bytes declaring 2 GiB
  // tiles for a small page were allocated before a byte was decoded (found by fuzz_tiff).
  if (TIFFTileSize64(tif) > std::max<uint64_t>(4 * raw.size(), uint64_t{16} << 20))
    fail(subject, "TIFF tiles of " + std::to_string(tile_w) + "x" + std::to_string(tile_h) + " pixels for a page of " + std::to_string(w) + "x" +
                      std::to_string(h) + " (corrupt?)");
  std::vector<unsigned char> tile(static_cast<size_t>(TIFFTileSize64(tif)));
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t y0 = 0; y0 < h; y0 += tile_h)
      for (int64_t x0 = 0; x0 < w; x0 += tile_w) {
        if (TIFFReadTile(tif, tile.data(), static_cast<uint32_t>(x0), static_cast<uint32_t>(y0), 0, static_cast<uint16_t>(p)) < 0)
          fail(subject, "corrupt TIFF: the tile at column " + std::to_string(x0) + ", row " + std::to_string(y0) + " cannot be read");
        const int64_t across = std::min<int64_t>(tile_w, w - x0);
        for (int64_t y = y0; y < std::min<int64_t>(y0 + tile_h, h); ++y)
          std::memcpy(raw.data() + ((p * h + y) * w + x0) * pixel, tile.data() + (y - y0) * tile_w * pixel, static_cast<size_t>(across * pixel));
      }
}

// Refuses a page the sample reader cannot take, before a byte of it is read: samples of no known scale, more
// channels than an image may have, or more bytes than the file's `file_size` can hold (LZW, TIFF's most
// expanding coding, gives at most 4096 bytes a 12-bit code: a small file claiming gigabytes is refused before
// allocating). Returns the bytes the page's samples take. `labels`: integers signed or unsigned of 8, 16 or 32
// bits too (label images, read as stored).
int64_t check_sample_page(const TiffPage& page, uint64_t file_size, const std::string& subject, bool labels = false) {
  if (page.samples > kMostImageChannels)
    fail(subject, "has " + std::to_string(page.samples) + " samples a pixel, past the " + std::to_string(kMostImageChannels) + " channels an image may have");
  const bool floating = page.sample_format == 3 && page.bits == 32;
  const bool integers = (page.bits == 8 || page.bits == 16) && page.sample_format == 1;
  const bool label_integers = (page.bits == 8 || page.bits == 16 || page.bits == 32) && (page.sample_format == 1 || page.sample_format == 2);
  if (!floating && !integers && !(labels && label_integers))
    fail(subject, "holds " + std::to_string(page.bits) + "-bit samples of format " + std::to_string(page.sample_format) +
                      ": a TIFF of several samples a pixel is read as 8- or 16-bit unsigned integers or 32-bit floats");
  const int64_t need = page.samples * page.height * page.width * (page.bits / 8);
  if (need > limits().max_tensor_bytes || static_cast<uint64_t>(need) > file_size * 2731 + (uint64_t{1} << 20))
    fail(subject, "TIFF page of " + std::to_string(page.samples) + " samples of " + std::to_string(page.width) + "x" + std::to_string(page.height) +
                      " pixels (" + std::to_string(need >> 20) + " MiB) in a file of " + std::to_string(file_size) + " bytes: truncated, or a bomb");
  return need;
}

// The page `tif` is at (TiffPage::read_by_libtiff: a multispectral image), each sample a channel: C x H x W
// float32, 8-bit / 255, 16-bit / 65535 (as PNGs by their depth), 32-bit float as stored (finite); `stored`:
// integers as stored, int64 (check_sample_page's `labels`). Run heard (decode_heard), after check_sample_page.
torch::Tensor read_sample_page(TIFF* tif, const TiffPage& page, int64_t need, const std::string& subject, bool stored = false) {
  uint32_t width = 0, height = 0;
  uint16_t samples = 0, bits = 0;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &width), TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &height);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &samples), TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
  if (width != page.width || height != page.height || samples != page.samples || bits != page.bits)
    fail(subject, "corrupt TIFF: libtiff reads its directory otherwise than its page table");  // never a buffer of the wrong size
  std::vector<unsigned char> raw(static_cast<size_t>(need));
  read_samples(tif, page, raw, subject);
  const bool floating = page.sample_format == 3, is_signed = page.sample_format == 2;
  const auto type = floating ? torch::kFloat : page.bits == 32 ? torch::kInt : page.bits == 16 ? torch::kShort : is_signed ? torch::kChar : torch::kByte;
  auto values = torch::from_blob(raw.data(), {need / (page.bits / 8)}, type).clone();
  values = page.planar == 2 ? values.view({page.samples, page.height, page.width})
                            : values.view({page.height, page.width, page.samples}).permute({2, 0, 1});
  if (floating) {
    if (!values.isfinite().all().item<bool>()) fail(subject, "holds samples that are not finite (NaN or infinite)");
    return values.contiguous();
  }
  if (stored) {
    auto wide = values.to(torch::kLong);
    if (!is_signed && page.bits > 8) wide.bitwise_and_(page.bits == 16 ? int64_t{0xffff} : int64_t{0xffffffff});
    return wide.contiguous();
  }
  return page.bits == 16 ? values.to(torch::kInt).bitwise_and_(0xffff).to(torch::kFloat).div_(65535.0f).contiguous()
                         : values.to(torch::kFloat).div_(255.0f).contiguous();
}

// read_sample_page for a TIFF in memory.
torch::Tensor decode_tiff_samples(const std::vector<char>& bytes, const TiffPage& page, const std::string& subject, bool stored = false) {
  const int64_t need = check_sample_page(page, bytes.size(), subject, stored);
  torch::Tensor image;
  decode_heard(subject, [&] {
    MemoryTiff source{&bytes};
    TIFF* tif = TIFFClientOpen(subject.c_str(), "rm", &source, memory_read, memory_write, memory_seek, memory_close, memory_size, memory_map,
                               memory_unmap);
    if (tif == nullptr) fail(subject, "corrupt TIFF: libtiff cannot open it");
    const std::unique_ptr<TIFF, void (*)(TIFF*)> closing(tif, TIFFClose);
    if (!TIFFSetDirectory(tif, static_cast<tdir_t>(page.directory))) fail(subject, "corrupt TIFF: its directory cannot be read");
    image = read_sample_page(tif, page, need, subject, stored);
  });
  return image;
}
#endif  // FCN_READS_TIFF_SAMPLES

#ifdef FCN_WITH_OPENCV
// ": OpenCV: REASON" for a failure's message, where OpenCV said why in `quiet`'s scope; "" otherwise.
std::string opencv_reason(const OpenCvQuiet& quiet) {
  const auto heard = quiet.heard();
  return heard.empty() ? "" : ": OpenCV: " + heard;
}

torch::Tensor decode_with_opencv(const std::vector<char>& bytes, const std::string& path) {
  const OpenCvQuiet quiet;
  cv::Mat image;
  decode_heard(path, [&] {
    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    image = cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
  });
  if (image.empty())
    fail(path, "cannot decode image (empty, corrupt or not an image format OpenCV knows)" + opencv_reason(quiet));
  return to_tensor(image, path);
}

// OpenCV's 8- or 16-bit (or float) gray, BGR or BGRA image as read_image gives images; signed integers refused.
torch::Tensor to_tensor(cv::Mat image, const std::string& path) {
  check_image_size(path, image.rows, image.cols);
  const int depth = image.depth();
  if (depth == CV_8S || depth == CV_16S || depth == CV_32S)  // a CT slice's Hounsfield units as int16, say
    fail(path, std::string("holds signed ") + (depth == CV_8S ? "8" : depth == CV_16S ? "16" : "32") +
                   "-bit samples, which have no scale to read them on (unsigned 8- and 16-bit samples are read as 0..1 of their "
                   "range): save the values as float32 (TIFF or .npy: taken as stored, the net's normalisation scales them) or as "
                   "unsigned integers");
  if (depth != CV_8U && depth != CV_16U && depth != CV_32F && depth != CV_64F)
    fail(path, "holds samples of a kind fcn does not read (OpenCV depth " + std::to_string(depth) + "): 8- or 16-bit unsigned, or float");
  if (image.channels() == 3) cv::cvtColor(image, image, cv::COLOR_BGR2RGB);
  if (image.channels() == 4) cv::cvtColor(image, image, cv::COLOR_BGRA2RGBA);
  cv::Mat as_float;  // float images (Radiance .hdr, float TIFFs OpenCV reads) as stored, as libtiff's float pages
  image.convertTo(as_float, CV_32F, depth == CV_8U ? 1.0 / 255.0 : depth == CV_16U ? 1.0 / 65535.0 : 1.0);
  if (depth == CV_32F || depth == CV_64F) {
    if (!cv::checkRange(as_float)) fail(path, "holds samples that are not finite (NaN or infinite)");
  }
  return torch::from_blob(as_float.data, {as_float.rows, as_float.cols, as_float.channels()}, torch::kFloat)
      .permute({2, 0, 1})
      .clone();
}
#endif

torch::Tensor png_to_tensor(const PngContent& png) {
  if (png.indexed) {
    auto palette = torch::empty({static_cast<int64_t>(std::max<size_t>(png.palette.size(), 1)), 3}, torch::kByte).zero_();
    for (size_t i = 0; i < png.palette.size(); ++i)
      for (int c = 0; c < 3; ++c) palette[static_cast<int64_t>(i)][c] = png.palette[i][c];
    const auto indices = png.pixels.select(2, 0).to(torch::kLong).clamp_max(palette.size(0) - 1);
    return palette.index_select(0, indices.flatten()).view({indices.size(0), indices.size(1), 3}).permute({2, 0, 1}).to(torch::kFloat).div(255.0f);
  }
  const float max_value = png.pixels.scalar_type() == torch::kByte ? 255.0f : 65535.0f;
  return png.pixels.permute({2, 0, 1}).to(torch::kFloat).div(max_value).contiguous();
}

std::string shape_text(const torch::Tensor& array) {
  std::string text;
  for (const auto d : array.sizes()) text += (text.empty() ? "" : " x ") + std::to_string(d);
  return text;
}

// A .npy array as an image (npy.h has the rules): C x H x W float32.
torch::Tensor npy_image(const std::vector<char>& bytes, const std::string& path) {
  std::string stored;
  const auto array = parse_npy(bytes, path, &stored);
  if (array.dim() != 2 && array.dim() != 3)
    fail(path, "is a .npy array of " + shape_text(array) + ": an image is H x W (one channel) or C x H x W (channels first, as PyTorch)");
  const auto image = array.dim() == 2 ? array.unsqueeze(0) : array;
  const int64_t c = image.size(0), h = image.size(1), w = image.size(2);
  if ((w <= 4 && h > 4 && c > 4) || c > kMostImageChannels)  // at most 4 wide: colour samples, by the look of it
    fail(path, "is a .npy array of " + shape_text(array) + (w <= kMostImageChannels ? ", channels last (H x W x C) by the look of it" : "") +
                   ": fcn reads C x H x W (channels first, as PyTorch), up to " + std::to_string(kMostImageChannels) +
                   " channels" + (w <= kMostImageChannels ? " (numpy: np.save(f, a.transpose(2, 0, 1)))" : ""));
  check_image_size(path, h, w);
  if (h == 0 || w == 0) fail(path, "is empty (a .npy array of " + shape_text(array) + ")");
  switch (image.scalar_type()) {
    case torch::kByte: return image.to(torch::kFloat).div(255.0f).contiguous();
    case torch::kInt:  // uint16, widened by parse_npy; an int32 array has no scale to read
      if (stored == "<u2") return image.to(torch::kFloat).div(65535.0f).contiguous();
      break;
    case torch::kBool: return image.to(torch::kFloat);
    case torch::kHalf:
    case torch::kFloat:
    case torch::kDouble: {
      auto values = image.to(torch::kFloat).contiguous();
      const auto bad = values.isfinite().logical_not_().nonzero();
      if (bad.size(0) > 0)
        fail(path, "holds " + std::to_string(bad.size(0)) + " value(s) that are not finite (NaN or infinite), the first at channel " +
                       std::to_string(bad[0][0].item<int64_t>()) + ", row " + std::to_string(bad[0][1].item<int64_t>()) + ", column " +
                       std::to_string(bad[0][2].item<int64_t>()));
      return values;
    }
    default: break;
  }
  const auto type = image.scalar_type() == torch::kShort ? "int16" : image.scalar_type() == torch::kInt ? "int32" : "int64";
  fail(path, "holds " + std::string(type) + " values: an image in .npy is uint8 (0..255), uint16 (0..65535), " +
                 "bool, or float (taken as stored; the other image formats give 0..1)");
}

}  // namespace

int exif_orientation(const std::vector<char>& bytes) {
  if (!is_jpeg(bytes)) return 1;
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  for (size_t pos = 2; pos + 4 <= n;) {
    const unsigned char marker = b[pos + 1];
    if (b[pos] != 0xff || marker == 0xda || marker == 0xd9) return 1;  // no Exif before the image data
    if (marker == 0xff || marker == 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker == 0x01) {
      pos += marker == 0xff ? 1 : 2;
      continue;
    }
    const size_t length = (size_t{b[pos + 2]} << 8) | b[pos + 3];
    if (length < 2 || pos + 2 + length > n) return 1;
    if (marker == 0xe1 && length >= 8 && std::memcmp(b + pos + 4, "Exif\0\0", 6) == 0) {  // a TIFF structure follows
      const int64_t value = tiff_first_short(bytes.data() + pos + 10, length - 8, 0x0112, 1);  // Orientation
      return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
    }
    pos += 2 + length;
  }
  return 1;
}

int exif_orientation(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) return 1;
  std::ifstream in(path, std::ios::binary);
  std::vector<char> head(3);
  if (!in.read(head.data(), 3) || !is_jpeg(head)) return 1;  // a PNG folder reads 3 bytes a file
  head.resize(size_t{1} << 17);  // Exif lives in APP1, at most 64 KB, before the image data
  in.read(head.data() + 3, static_cast<std::streamsize>(head.size() - 3));
  head.resize(3 + static_cast<size_t>(in.gcount()));
  return exif_orientation(head);
}

std::string orientation_words(int orientation) {
  static const char* const words[] = {"as stored", "as stored", "mirrored", "turned 180 degrees", "mirrored top to bottom",
                                      "mirrored and turned 90 degrees", "turned 90 degrees clockwise",
                                      "mirrored and turned 90 degrees", "turned 90 degrees counter-clockwise"};
  return words[orientation >= 1 && orientation <= 8 ? orientation : 1];
}

void check_jpeg(const std::vector<char>& bytes, const std::string& path) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  // The frame header (SOFn) gives the size: checked before the decoder allocates it.
  size_t pos = 2;
  bool sized = false;
  while (pos + 4 <= n && !sized) {
    if (b[pos] != 0xff) fail(path, "corrupt JPEG: no marker at byte " + std::to_string(pos));
    const unsigned char marker = b[pos + 1];
    if (marker == 0xff) {
      ++pos;
      continue;
    }
    if (marker == 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker == 0x01) {
      pos += 2;
      continue;
    }
    const size_t length = (size_t{b[pos + 2]} << 8) | b[pos + 3];
    if (length < 2) fail(path, "corrupt JPEG: segment length " + std::to_string(length) + " at byte " + std::to_string(pos));
    const bool sof = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (sof) {
      if (pos + 9 > n) break;
      const int64_t height = (int64_t{b[pos + 5]} << 8) | b[pos + 6], width = (int64_t{b[pos + 7]} << 8) | b[pos + 8];
      if (height > 0) check_image_size(path, height, width);  // height 0: given later by DNL, checked after decoding
      sized = true;
    }
    if (marker == 0xda) break;  // scan data follows: no frame header came before it
    pos += 2 + length;
  }
  if (!sized) fail(path, "corrupt or truncated JPEG: no frame header (SOF) before the image data");
  // The image ends with EOI (FF D9) after its last scan; a file cut short lacks it, and libjpeg
  // would only print a warning and fill the rest grey.
  const char sos[] = {'\xff', '\xda'}, eoi[] = {'\xff', '\xd9'};
  const auto last_scan = std::find_end(bytes.begin(), bytes.end(), sos, sos + 2);
  if (last_scan == bytes.end() || std::search(last_scan, bytes.end(), eoi, eoi + 2) == bytes.end())
    fail(path, "truncated JPEG: the file ends before the end-of-image marker (incomplete download or copy?)");
}

torch::Tensor decode_image(const std::vector<char>& bytes, const std::string& path) {
  if (is_png(bytes)) return png_to_tensor(parse_png(bytes, path));
  if (is_npy(bytes)) return npy_image(bytes, path);
  if (is_jpeg(bytes)) check_jpeg(bytes, path);
  if (bytes.empty()) fail(path, "is empty (0 bytes)");
  if (is_tiff(bytes)) {  // OpenCV would decode a stack's first page alone, without a word
    const auto pages = tiff_pages(bytes, path);
    if (pages.size() > 1)
      fail(path, "holds " + std::to_string(pages.size()) + " pages (a multi-page TIFF stack): read it page by page (fcn predict " +
                     "segments every page; fcn data unstack writes one image per page)");
    check_image_size(path, pages[0].height, pages[0].width);
    // OpenCV decodes the first directory; here a thumbnail stands before the full image.
    if (pages[0].directory != 0)
      fail(path, "its full image is TIFF directory " + std::to_string(pages[0].directory) +
                     ", after a reduced-resolution one (a thumbnail): read it from its file (read_image)");
#ifdef FCN_READS_TIFF_SAMPLES
    if (pages[0].read_by_libtiff()) return decode_tiff_samples(bytes, pages[0], path);
#endif
  }
#ifdef FCN_WITH_OPENCV
  return decode_with_opencv(bytes, path);
#else
  fail(path, "not a PNG; other image formats need fcn built with OpenCV (FCN_WITH_OPENCV)");
#endif
}

namespace {
torch::Tensor decode_page(const std::string& path, const std::vector<TiffPage>& pages, int64_t page);
}  // namespace

torch::Tensor read_image(const std::string& path) {
  if (is_nifti_path(path))
    fail(path, "is a NIfTI volume, not one image: fcn predict segments it slice by slice, fcn data unstack writes a PNG per slice");
  const auto bytes = read_file(path);
  // A TIFF whose one full page comes after a thumbnail (cameras, scanners): that page, not the thumbnail.
  if (is_tiff(bytes)) {
    const auto pages = tiff_pages(bytes, path);
    if (pages.size() == 1 && pages[0].directory != 0) return decode_page(path, pages, 0);
  }
  return decode_image(bytes, path);
}

int64_t image_pages(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) return 1;  // not read here: a pipe could block (read_image names it)
  std::ifstream in(path, std::ios::binary);
  std::vector<char> head(4);
  if (!in || !in.read(head.data(), 4) || !is_tiff(head)) return 1;
  return static_cast<int64_t>(tiff_pages(path).size());
}

namespace {

// Page `page` of the TIFF at `path` whose page table is `pages`, decoded alone.
torch::Tensor decode_page(const std::string& path, const std::vector<TiffPage>& pages, int64_t page) {
  if (page < 0 || page >= static_cast<int64_t>(pages.size()))
    fail(path, "has no page " + std::to_string(page) + " (pages 0.." + std::to_string(pages.size() - 1) + ")");
  const auto& wanted = pages[static_cast<size_t>(page)];
  const auto subject = path + " page " + std::to_string(page);
  check_image_size(subject, wanted.height, wanted.width);
#ifdef FCN_WITH_OPENCV
  if (wanted.read_by_libtiff()) return decode_tiff_samples(read_file(path), wanted, subject);
  std::vector<cv::Mat> read;
  const OpenCvQuiet quiet;
  decode_heard(subject, [&] { cv::imreadmulti(path, read, static_cast<int>(wanted.directory), 1, cv::IMREAD_UNCHANGED); });
  if (read.size() != 1 || read[0].empty())
    fail(subject, "cannot decode (corrupt, or a TIFF compression OpenCV lacks)" + opencv_reason(quiet));
  if (read[0].rows != wanted.height || read[0].cols != wanted.width)
    fail(subject, "decoded as " + std::to_string(read[0].cols) + "x" + std::to_string(read[0].rows) + ", its directory says " +
                      std::to_string(wanted.width) + "x" + std::to_string(wanted.height));
  return to_tensor(read[0], subject);
#else
  fail(path, "TIFF pages need fcn built with OpenCV (FCN_WITH_OPENCV)");
#endif
}

// How many pages from `first` one pass decodes: at most kChunkPages and kChunkValues samples together (128
// MiB decoded), each within the image limits (a page past them is read alone, and refused there by name).
constexpr int64_t kChunkPages = 256, kChunkValues = int64_t{1} << 25;
int64_t chunk_pages(const std::string& path, const std::vector<TiffPage>& pages, int64_t first) {
  int64_t count = 0, values = 0;
  for (auto k = static_cast<size_t>(first); k < pages.size() && count < kChunkPages; ++k, ++count) {
    values += pages[k].height * pages[k].width * std::clamp<int64_t>(pages[k].samples, 1, kMostImageChannels);
    if (count > 0 && values > kChunkValues) break;
    try {
      check_image_size(path, pages[k].height, pages[k].width);
    } catch (const Error&) {
      return std::max<int64_t>(count, 1);
    }
  }
  return count;
}

}  // namespace

torch::Tensor read_image_page(const std::string& path, int64_t page) { return decode_page(path, tiff_pages(path), page); }

TiffStackReader::TiffStackReader(std::string path) : path_(std::move(path)), pages_(tiff_pages(path_)) {}

torch::Tensor TiffStackReader::page(int64_t index) {
  const int64_t at = index - first_;
  if (at < 0 || at >= static_cast<int64_t>(chunk_.size())) {
    if (index < 0 || index >= size()) return decode_page(path_, pages_, index);  // the error naming the pages there are
    read_chunk(index);
    return page(index);
  }
  auto image = std::move(chunk_[static_cast<size_t>(at)]);  // handed over: the chunk holds no copy
  return image.defined() ? image : decode_page(path_, pages_, index);
}

torch::Tensor TiffStackReader::page_values(int64_t index) {
  if (index < 0 || index >= size()) return page(index);  // the error naming the pages there are
  const auto subject = path_ + " page " + std::to_string(index);
  check_label_page(pages_[static_cast<size_t>(index)], subject, false);
  return label_values(page(index), pages_[static_cast<size_t>(index)], subject);
}

void check_label_page(const TiffPage& page, const std::string& subject, bool wide) {
  const int64_t bits = page.bits == 0 ? 1 : page.bits;  // TIFF's default: bilevel (PIL's mode "1" leaves the tag out)
  if ((page.sample_format == 1 && (bits == 1 || bits == 8 || bits == 16)) || (page.sample_format == 3 && bits == 32)) return;
  if (wide && (page.sample_format == 1 || page.sample_format == 2) && (bits == 8 || bits == 16 || bits == 32)) return;
  const std::string kind = page.sample_format == 2 ? "signed" : page.sample_format == 3 ? "floating-point" : page.sample_format == 1 ? "unsigned" : "format " + std::to_string(page.sample_format);
  fail(subject, "holds " + std::to_string(bits) + "-bit " + kind + " samples: labels (class indices, object ids) in a TIFF are read as " +
                    (wide ? "8-, 16- or 32-bit integers (unsigned 1-bit too), or 32-bit floats of whole numbers"
                          : "unsigned 1-, 8- or 16-bit integers, or 32-bit floats of whole numbers, in a stack (a single mask may hold 32-bit or signed integers)"));
}

torch::Tensor label_values(const torch::Tensor& image, const TiffPage& page, const std::string& subject) {
  if (page.sample_format != 3) return image.mul(page.bits == 16 ? 65535.0 : page.bits <= 1 ? 1.0 : 255.0).round().to(torch::kLong);
  const auto bad = ((image != image.round()) | (image < 0) | (image > 16777216)).nonzero();  // float32's exact whole numbers
  if (bad.size(0) > 0) {
    const int64_t c = bad[0][0].item<int64_t>(), y = bad[0][1].item<int64_t>(), x = bad[0][2].item<int64_t>();
    std::ostringstream value;
    value << image[c][y][x].item<float>();
    fail(subject, "holds " + value.str() + " at (" + std::to_string(y) + "," + std::to_string(x) + ")" +
                      (image.size(0) > 1 ? " of sample " + std::to_string(c) : "") +
                      ": labels in a float TIFF are whole numbers 0..16777216 (class indices, object ids)");
  }
  return image.to(torch::kLong);
}

torch::Tensor decode_tiff_labels(const std::vector<char>& bytes, const std::string& path) {
  const auto pages = tiff_pages(bytes, path);
  if (pages.size() > 1)
    fail(path, "holds " + std::to_string(pages.size()) + " pages (a multi-page TIFF stack), where a mask is one picture: fcn data unstack "
               "IMAGES.tif --masks " + std::filesystem::path(path).filename().string() + " --out DIR writes a mask per page");
  const auto& page = pages[0];
#ifdef FCN_READS_TIFF_SAMPLES
  check_label_page(page, path, true);
  torch::Tensor values;
  if (page.bits > 1) {  // libtiff, samples as stored: a palette page's indices, 32-bit and signed integers
    check_image_size(path, page.height, page.width);
    values = page.sample_format == 3 ? label_values(decode_tiff_samples(bytes, page, path), page, path) : decode_tiff_samples(bytes, page, path, true);
  } else {
    values = label_values(decode_image(bytes, path), page, path);
  }
  const auto negative = (values < 0).nonzero();
  if (negative.size(0) > 0)
    fail(path, "holds " + std::to_string(values.index({negative[0][0], negative[0][1], negative[0][2]}).item<int64_t>()) + " at (" +
                   std::to_string(negative[0][1].item<int64_t>()) + "," + std::to_string(negative[0][2].item<int64_t>()) +
                   "): labels (class indices, object ids) are 0 or more");
  return values;
#else
  return label_values(decode_image(bytes, path), page, path);  // decode_image's error: TIFFs need OpenCV
#endif
}

#ifdef FCN_WITH_OPENCV
namespace {

// The pages of `chunk` (pages first.. of `pages`) decoded by OpenCV in one imreadmulti call (which walks the
// directory chain from its start on every call). A page it cannot give cleanly is left undefined.
void read_opencv_chunk(const std::string& path, const std::vector<TiffPage>& pages, int64_t first, std::vector<torch::Tensor>& chunk) {
  const auto count = static_cast<int64_t>(chunk.size());
  const auto& start = pages[static_cast<size_t>(first)];
  const int64_t directories = pages[static_cast<size_t>(first + count - 1)].directory - start.directory + 1;
  std::vector<cv::Mat> read;
  try {
    const OpenCvQuiet quiet;
    decode_heard(path, [&] {
      cv::imreadmulti(path, read, static_cast<int>(start.directory), static_cast<int>(directories), cv::IMREAD_UNCHANGED);
    });
  } catch (const Error&) {
    return;  // each page of the chunk alone
  }
  for (int64_t k = 0; k < count; ++k) {
    const auto& page = pages[static_cast<size_t>(first + k)];
    const auto d = static_cast<size_t>(page.directory - start.directory);
    if (d >= read.size() || read[d].rows != page.height || read[d].cols != page.width) continue;
    try {
      chunk[static_cast<size_t>(k)] = to_tensor(read[d], path + " page " + std::to_string(first + k));
    } catch (const Error&) {
    }
    read[d].release();
  }
}

// The pages of `chunk` that libtiff reads (TiffPage::read_by_libtiff: multispectral stacks) from one open
// file, each directory reached from the one before: decode_page reads the whole file for each page, and
// TIFFSetDirectory walks the chain from its start. A page that fails is left undefined.
void read_sample_chunk(const std::string& path, const std::vector<TiffPage>& pages, int64_t first, std::vector<torch::Tensor>& chunk) {
  std::error_code error;
  const auto file_size = std::filesystem::file_size(path, error);
  if (error) return;
  std::unique_ptr<TIFF, void (*)(TIFF*)> tif(nullptr, TIFFClose);
  int64_t at = pages[static_cast<size_t>(first)].directory;  // the directory tif is at
  for (size_t k = 0; k < chunk.size(); ++k) {
    const auto& page = pages[static_cast<size_t>(first) + k];
    const auto subject = path + " page " + std::to_string(first + static_cast<int64_t>(k));
    try {
      decode_heard(subject, [&] {
        if (!tif) {  // a failure's own words come when the page is read alone
          tif.reset(TIFFOpen(path.c_str(), "rm"));
          if (!tif || !TIFFSetDirectory(tif.get(), static_cast<tdir_t>(at))) fail(subject, "cannot be opened");
        }
        for (; at < page.directory; ++at)
          if (!TIFFReadDirectory(tif.get())) fail(subject, "its directory cannot be read");
      });
    } catch (const Error&) {
      return;  // where libtiff is in the file is unknown: the rest each alone
    }
    try {
      const int64_t need = check_sample_page(page, file_size, subject);
      decode_heard(subject, [&] { chunk[k] = read_sample_page(tif.get(), page, need, subject); });
    } catch (const Error&) {
      chunk[k] = torch::Tensor();
    }
  }
}

}  // namespace
#endif

// Decodes pages first.. in one pass over the directory chain: by OpenCV, or where every page of the chunk is
// libtiff's, by libtiff (pages of both kinds are read each alone). A page it cannot give cleanly — a decoding
// error, libtiff's complaint, a size other than its directory's — is left undefined, and page() decodes it
// alone for its own error.
void TiffStackReader::read_chunk(int64_t first) {
  const int64_t count = chunk_pages(path_, pages_, first);
  first_ = first;
  chunk_.assign(static_cast<size_t>(count), torch::Tensor());
#ifdef FCN_WITH_OPENCV
  if (count < 2) return;
  const auto begin = pages_.begin() + first;
  const auto by_libtiff = std::count_if(begin, begin + count, [](const TiffPage& page) { return page.read_by_libtiff(); });
  if (by_libtiff == count) return read_sample_chunk(path_, pages_, first, chunk_);
  if (by_libtiff == 0) read_opencv_chunk(path_, pages_, first, chunk_);
#endif
}

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> known = {".jpg", ".png", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".webp", ".npy"};
  return known;
}

bool has_image_extension(const std::string& path) {
  const auto& known = image_extensions();
  return std::find(known.begin(), known.end(), lower_extension(path)) != known.end();
}

bool is_npy_path(const std::string& path) { return lower_extension(path) == ".npy"; }

namespace {
// The first page of the TIFF at `path` (by its extension); nothing for other files and for TIFFs that cannot be
// read (their reader gives that error).
std::optional<TiffPage> first_tiff_page(const std::string& path) {
  const auto extension = lower_extension(path);
  if (extension != ".tif" && extension != ".tiff") return std::nullopt;
  try {
    return tiff_pages(path).front();
  } catch (const Error&) {
    return std::nullopt;
  }
}
}  // namespace

bool channels_are_data(const std::string& path) {
  if (is_npy_path(path)) return true;
  const auto page = first_tiff_page(path);
  return page && page->samples_are_data();
}

int64_t tiff_colour_channels(const std::string& path) {
  const auto page = first_tiff_page(path);
  if (!page) return 0;
  return page->photometric == 0 || page->photometric == 1 ? 1 : page->photometric == 2 ? 3 : 0;
}

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

#ifdef FCN_WITH_OPENCV
namespace {
std::mutex quiet_mutex;
int quiet_scopes = 0;  // OpenCvQuiet scopes alive, on every thread
cv::utils::logging::LogLevel level_before = cv::utils::logging::LOG_LEVEL_WARNING;
thread_local std::string* cerr_heard = nullptr;  // the innermost OpenCvQuiet's lines on this thread

// std::cerr's buffer, wrapped: a thread's writes go to its OpenCvQuiet while it holds one, else on to the
// buffer there was. Unbuffered, so the wrapped buffer's own locking is all there is.
class CerrHeard : public std::streambuf {
 public:
  explicit CerrHeard(std::streambuf* onward) : onward_(onward) {}

 protected:
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    if (cerr_heard == nullptr) return onward_->sputc(traits_type::to_char_type(c));
    cerr_heard->push_back(traits_type::to_char_type(c));
    return c;
  }
  std::streamsize xsputn(const char* text, std::streamsize n) override {
    if (cerr_heard == nullptr) return onward_->sputn(text, n);
    cerr_heard->append(text, static_cast<size_t>(n));
    return n;
  }
  int sync() override { return cerr_heard == nullptr ? onward_->pubsync() : 0; }

 private:
  std::streambuf* onward_;
};
}  // namespace

OpenCvQuiet::OpenCvQuiet() : outer_(cerr_heard) {
  {
    const std::lock_guard<std::mutex> lock(quiet_mutex);
    // Never deleted: std::cerr may be written to while the process's statics are destroyed.
    static const bool wrapped = (std::cerr.rdbuf(new CerrHeard(std::cerr.rdbuf())), true);
    (void)wrapped;
    if (quiet_scopes++ == 0) level_before = cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  }
  cerr_heard = &lines_;
}

OpenCvQuiet::~OpenCvQuiet() {
  cerr_heard = outer_;
  const std::lock_guard<std::mutex> lock(quiet_mutex);
  if (--quiet_scopes == 0) cv::utils::logging::setLogLevel(level_before);
}

std::string OpenCvQuiet::heard() const {
  // "imdecode_(''): can't read data: OpenCV(4.6.0) ./modules/...cpp:102: error: (-2:Unspecified error) REASON
  // in function 'readBlock'" -> REASON; a line of another shape as it is.
  std::string line = first_line(lines_);
  const auto error = line.find("error: (");
  const auto code_end = error == std::string::npos ? std::string::npos : line.find(") ", error);
  if (code_end != std::string::npos) {
    const auto where = line.rfind(" in function ");
    line = line.substr(code_end + 2, where != std::string::npos && where > code_end ? where - code_end - 2 : std::string::npos);
  }
  return printable(line);
}
#endif

bool is_hidden(const std::string& path) {
  const auto name = std::filesystem::path(path).filename().string();
  return !name.empty() && name[0] == '.';
}

std::vector<std::string> list_images(const std::vector<std::string>& inputs, bool videos) {
  namespace fs = std::filesystem;
  std::vector<std::string> images;
  for (const auto& input : inputs) {
    std::error_code error;
    if (fs::is_directory(input, error)) {
      std::vector<std::string> found;
      // By name only: an entry that cannot be followed (a symlink loop, a dangling link) is listed
      // and then reported and skipped when it is read, like any other bad image.
      for (const auto& entry : fs::directory_iterator(input, error)) {
        std::error_code entry_error;
        const auto name = entry.path().string();
        if (entry.is_directory(entry_error) || is_hidden(name) ||
            !(has_image_extension(name) || (videos && (has_video_extension(name) || is_nifti_path(name)))))
          continue;
        found.push_back(name);
      }
      if (error) fail(input, "cannot list the folder: " + error.message());
      if (found.empty()) fail(input, videos ? "folder holds no image or video files (.png, .jpg, .mp4, ...)" : "folder holds no image files (.png, .jpg, ...)");
      std::sort(found.begin(), found.end());
      images.insert(images.end(), found.begin(), found.end());
    } else if (input.find_first_of("*?[") != std::string::npos && !fs::exists(input, error)) {
      glob_t matches{};
      const int status = glob(input.c_str(), 0, nullptr, &matches);
      for (size_t i = 0; status == 0 && i < matches.gl_pathc; ++i) images.emplace_back(matches.gl_pathv[i]);
      globfree(&matches);
      if (status != 0) fail(input, "pattern matches no file");
    } else {
      images.push_back(input);  // a missing or unreadable file is reported when it is read
    }
  }
  return images;
}

}  // namespace fcn
