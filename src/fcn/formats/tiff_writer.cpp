#include "fcn/formats/tiff_writer.h"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <sstream>
#include <system_error>

#include <torch/torch.h>

#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"

#ifdef FCN_WITH_OPENCV
#include <tiffio.h>
#endif

namespace fcn {
namespace fs = std::filesystem;

#ifdef FCN_WITH_OPENCV
namespace {

// `page` as the samples of an 8- or 16-bit integer or a 32-bit floating-point gray page (native byte
// order, as libtiff writes it).
struct Samples {
  torch::Tensor values;
  int bits = 8;
  bool floating = false;
};

Samples page_samples(const torch::Tensor& tensor, const std::string& subject) {
  if (tensor.dim() != 2 || tensor.numel() == 0) fail(subject, "a page must be a non-empty H x W tensor");
  const auto page = tensor.cpu();
  if (page.scalar_type() == torch::kByte) return {page.contiguous(), 8};
  if (page.is_floating_point()) return {page.to(torch::kFloat).contiguous(), 32, true};
  if (page.is_complex() || page.scalar_type() == torch::kBool)
    fail(subject, std::string("a page must hold integers or floating-point values, not ") + c10::toString(page.scalar_type()));
  const auto [low, high] = torch::aminmax(page.to(torch::kLong));
  if (low.item<int64_t>() < 0 || high.item<int64_t>() > 65535)
    fail(subject, "holds values " + std::to_string(low.item<int64_t>()) + ".." + std::to_string(high.item<int64_t>()) +
                      ", outside the 0..65535 a 16-bit page stores");
  return {page.to(torch::kInt).to(torch::kShort).contiguous(), 16};  // 0..65535 keep their bits in int16
}

// The description written into the finished file's first page (libtiff rewrites that directory at
// the end of the file, keeping the order of the pages).
void describe(const std::string& path, const std::string& description) {
  TIFF* tif = TIFFOpen(path.c_str(), "r+");
  if (tif == nullptr) fail(path, "cannot reopen the stack to describe it");
  const bool written = TIFFSetDirectory(tif, 0) != 0 && TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, description.c_str()) != 0 &&
                       TIFFRewriteDirectory(tif) != 0;
  TIFFClose(tif);
  if (!written) fail(path, "cannot write the stack's description");
}

}  // namespace

TiffStackWriter::TiffStackWriter(const std::string& path, TiffCalibration calibration, StackLayout layout, int64_t planned_bytes)
    : path_(path), calibration_(std::move(calibration)), layout_(layout), big_(planned_bytes > kClassicTiffBytes) {
  if (layout_.channels < 1) fail(path, "a stack needs at least one channel");
  temporary_ = partial_path(path, fs::path(path).extension().string());
  tiff_ = TIFFOpen(temporary_.c_str(), big_ ? "w8" : "w");
  if (tiff_ == nullptr) fail(path, "cannot create the file (is its folder writable?)");
}

TiffStackWriter::~TiffStackWriter() {
  if (tiff_ == nullptr) return;  // finished (renamed into place) or never opened
  TIFFClose(static_cast<TIFF*>(tiff_));
  std::error_code error;
  fs::remove(temporary_, error);
}

void TiffStackWriter::add(const torch::Tensor& page) {
  const auto subject = path_ + " page " + std::to_string(pages_);
  if (tiff_ == nullptr) fail(subject, "the stack is already finished");
  const auto [samples, bits, floating] = page_samples(page, subject);
  auto* tif = static_cast<TIFF*>(tiff_);
  const auto height = static_cast<uint32_t>(page.size(0)), width = static_cast<uint32_t>(page.size(1));
  const int64_t row_bytes = int64_t{width} * bits / 8;
  const auto rows = static_cast<uint32_t>(std::clamp<int64_t>((int64_t{1} << 16) / row_bytes, 1, height));  // ~64 KB strips
  const uint16_t compression = TIFFIsCODECConfigured(COMPRESSION_ADOBE_DEFLATE) ? COMPRESSION_ADOBE_DEFLATE : COMPRESSION_LZW;
  TIFFSetField(tif, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, width);
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, height);
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, static_cast<uint16_t>(bits));
  TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, static_cast<uint16_t>(floating ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT));
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, static_cast<uint16_t>(1));
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(tif, TIFFTAG_COMPRESSION, compression);
  TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rows);
  if (calibration_.x_resolution > 0 && calibration_.y_resolution > 0) {
    TIFFSetField(tif, TIFFTAG_XRESOLUTION, static_cast<float>(calibration_.x_resolution));
    TIFFSetField(tif, TIFFTAG_YRESOLUTION, static_cast<float>(calibration_.y_resolution));
    if (calibration_.resolution_unit != 0) TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, calibration_.resolution_unit);
  }
  const auto* bytes = static_cast<const char*>(samples.data_ptr());
  errno = 0;  // libtiff's write() leaves ENOSPC here; a full disk is OutOfSpace
  for (uint32_t row = 0, strip = 0; row < height; row += rows, ++strip) {
    const int64_t size = row_bytes * std::min(rows, height - row);
    if (TIFFWriteEncodedStrip(tif, strip, const_cast<char*>(bytes + row_bytes * row), size) < 0)
      fail_write(subject, space_error(path_, errno), "cannot write");
  }
  if (TIFFWriteDirectory(tif) == 0)
    fail_write(subject, space_error(path_, errno), big_ ? "cannot write" : "cannot write (past classic TIFF's 4 GB?)");
  const std::array<int64_t, 3> shape = {height, width, bits};
  if (pages_ == 0) first_shape_ = shape;
  uniform_ = uniform_ && shape == first_shape_;
  ++pages_;
}

void TiffStackWriter::finish() {
  if (tiff_ == nullptr) fail(path_, "the stack is already finished");
  if (pages_ == 0) fail(path_, "no page to write");
  if (pages_ % layout_.channels != 0)
    fail(path_, std::to_string(pages_) + " pages are not a whole number of " + std::to_string(layout_.channels) + "-channel slices");
  auto* tif = static_cast<TIFF*>(tiff_);
  errno = 0;
  const bool flushed = TIFFFlush(tif) != 0;
  const int full = flushed ? 0 : space_error(path_, errno);
  TIFFClose(tif);
  tiff_ = nullptr;
  std::string why = flushed ? "" : "flushing failed";
  if (flushed) {
    try {
      if (uniform_) describe(temporary_, imagej_description(pages_, layout_, calibration_));
    } catch (const Error& e) {
      why = e.message();
    }
  }
  std::error_code error;
  if (why.empty()) fs::rename(temporary_, path_, error);
  if (why.empty() && error) why = error.message();
  if (!why.empty()) {
    fs::remove(temporary_, error);
    fail_write(path_, full, "cannot write the stack: " + why);
  }
}

#else

TiffStackWriter::TiffStackWriter(const std::string& path, TiffCalibration, StackLayout, int64_t) : path_(path) {
  fail(path, "writing TIFF stacks needs fcn built with OpenCV (FCN_WITH_OPENCV)");
}
TiffStackWriter::~TiffStackWriter() = default;
void TiffStackWriter::add(const torch::Tensor&) { fail(path_, "writing TIFF stacks needs fcn built with OpenCV (FCN_WITH_OPENCV)"); }
void TiffStackWriter::finish() { fail(path_, "writing TIFF stacks needs fcn built with OpenCV (FCN_WITH_OPENCV)"); }

#endif

namespace {

// A number as ImageJ reads it back ("0.5", "1", "0.0625").
std::string decimal(double value) {
  std::ostringstream out;
  out.precision(10);
  out << value;
  return out.str();
}

}  // namespace

std::string imagej_description(int64_t images, const StackLayout& layout, const TiffCalibration& calibration) {
  const int64_t slices = images / std::max<int64_t>(layout.channels, 1);
  std::string text = "ImageJ=1.11a\nimages=" + std::to_string(images) + "\n";
  if (layout.channels > 1) text += "channels=" + std::to_string(layout.channels) + "\n";
  if (slices > 1) text += "slices=" + std::to_string(slices) + "\n";
  if (layout.channels > 1) text += "hyperstack=true\nmode=grayscale\n";
  if (!calibration.unit.empty()) text += "unit=" + calibration.unit + "\n";
  if (calibration.spacing > 0) text += "spacing=" + decimal(calibration.spacing) + "\n";
  if (layout.max > layout.min) text += "min=" + decimal(layout.min) + "\nmax=" + decimal(layout.max) + "\n";
  return text;
}

}  // namespace fcn
