#include "fcn/formats/tiff_writer.h"

#include <algorithm>
#include <filesystem>
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

// `page` as the bytes of an 8- or 16-bit gray page (native byte order, as libtiff writes it).
std::pair<torch::Tensor, int> page_samples(const torch::Tensor& page, const std::string& subject) {
  if (page.dim() != 2 || page.numel() == 0) fail(subject, "a page must be a non-empty H x W tensor");
  if (page.scalar_type() == torch::kByte) return {page.contiguous(), 8};
  if (page.is_floating_point() || page.is_complex() || page.scalar_type() == torch::kBool)
    fail(subject, std::string("a page must hold integers, not ") + c10::toString(page.scalar_type()));
  const auto [low, high] = torch::aminmax(page.to(torch::kLong));
  if (low.item<int64_t>() < 0 || high.item<int64_t>() > 65535)
    fail(subject, "holds values " + std::to_string(low.item<int64_t>()) + ".." + std::to_string(high.item<int64_t>()) +
                      ", outside the 0..65535 a 16-bit page stores");
  return {page.to(torch::kInt).to(torch::kShort).contiguous(), 16};  // 0..65535 keep their bits in int16
}

}  // namespace

TiffStackWriter::TiffStackWriter(const std::string& path) : path_(path) {
  temporary_ = partial_path(path, fs::path(path).extension().string());
  tiff_ = TIFFOpen(temporary_.c_str(), "w");
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
  const auto [samples, bits] = page_samples(page, subject);
  auto* tif = static_cast<TIFF*>(tiff_);
  const auto height = static_cast<uint32_t>(page.size(0)), width = static_cast<uint32_t>(page.size(1));
  const int64_t row_bytes = int64_t{width} * bits / 8;
  const auto rows = static_cast<uint32_t>(std::clamp<int64_t>((int64_t{1} << 16) / row_bytes, 1, height));  // ~64 KB strips
  const uint16_t compression = TIFFIsCODECConfigured(COMPRESSION_ADOBE_DEFLATE) ? COMPRESSION_ADOBE_DEFLATE : COMPRESSION_LZW;
  TIFFSetField(tif, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, width);
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, height);
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, static_cast<uint16_t>(bits));
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, static_cast<uint16_t>(1));
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(tif, TIFFTAG_COMPRESSION, compression);
  TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rows);
  const auto* bytes = static_cast<const char*>(samples.data_ptr());
  for (uint32_t row = 0, strip = 0; row < height; row += rows, ++strip) {
    const int64_t size = row_bytes * std::min(rows, height - row);
    if (TIFFWriteEncodedStrip(tif, strip, const_cast<char*>(bytes + row_bytes * row), size) < 0)
      fail(subject, "cannot write (disk full?)");
  }
  if (TIFFWriteDirectory(tif) == 0) fail(subject, "cannot write (disk full, or past classic TIFF's 4 GB?)");
  ++pages_;
}

void TiffStackWriter::finish() {
  if (tiff_ == nullptr) fail(path_, "the stack is already finished");
  if (pages_ == 0) fail(path_, "no page to write");
  auto* tif = static_cast<TIFF*>(tiff_);
  const bool flushed = TIFFFlush(tif) != 0;
  TIFFClose(tif);
  tiff_ = nullptr;
  std::error_code error;
  if (flushed) fs::rename(temporary_, path_, error);
  if (!flushed || error) {
    const std::string why = flushed ? error.message() : "flushing failed (disk full?)";
    fs::remove(temporary_, error);
    fail(path_, "cannot write the stack: " + why);
  }
}

#else

TiffStackWriter::TiffStackWriter(const std::string& path) : path_(path) {
  fail(path, "writing TIFF stacks needs fcn built with OpenCV (FCN_WITH_OPENCV)");
}
TiffStackWriter::~TiffStackWriter() = default;
void TiffStackWriter::add(const torch::Tensor&) { fail(path_, "writing TIFF stacks needs fcn built with OpenCV (FCN_WITH_OPENCV)"); }
void TiffStackWriter::finish() { fail(path_, "writing TIFF stacks needs fcn built with OpenCV (FCN_WITH_OPENCV)"); }

#endif

}  // namespace fcn
