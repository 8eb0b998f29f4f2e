// Multi-page TIFFs written page by page: a label stack beside an image stack (a microscopy volume,
// the U-Net paper's EM data), one file that Fiji, napari and PIL open as a volume, in place of a PNG
// per page. Written with libtiff, so it needs fcn built with OpenCV (whose libtiff it is).
#pragma once

#include <cstdint>
#include <string>

#include <torch/types.h>

namespace fcn {

class TiffStackWriter {
 public:
  // Pages go to a temporary file beside `path`, renamed to it by finish(): a run stopped midway, or
  // a writer destroyed unfinished, leaves no half-written stack under the name.
  explicit TiffStackWriter(const std::string& path);
  ~TiffStackWriter();
  TiffStackWriter(const TiffStackWriter&) = delete;
  TiffStackWriter& operator=(const TiffStackWriter&) = delete;

  // One page: H x W of uint8 (an 8-bit page) or uint16 values held in int16/int32/int64 (a 16-bit
  // page; a value outside 0..65535 is an error), gray, deflate-compressed.
  void add(const torch::Tensor& page);
  void finish();  // fcn::Error where the file cannot be completed (a full disk)
  int64_t pages() const { return pages_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_, temporary_;
  void* tiff_ = nullptr;  // libtiff's TIFF*
  int64_t pages_ = 0;
};

}  // namespace fcn
