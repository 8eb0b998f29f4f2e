// Multi-page TIFFs written page by page: a label stack beside an image stack (a microscopy volume,
// the U-Net paper's EM data), one file that Fiji, napari and PIL open as a volume, in place of a PNG
// per page; and a probability stack, K float32 pages (one per class) for each page of the input,
// which Fiji opens as a hyperstack of K channels. Written with libtiff, so it needs fcn built with
// OpenCV (whose libtiff it is).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <torch/types.h>

#include "fcn/formats/tiff.h"

namespace fcn {

// Past this many uncompressed bytes a stack is written as BigTIFF (classic TIFF ends at 4 GB, and
// compression is not counted on: float probabilities hardly deflate).
constexpr int64_t kClassicTiffBytes = int64_t{2} << 30;

// How a finished stack is laid out for ImageJ and Fiji (written as its description): pages in groups
// of `channels` (channel fastest, then slice, ImageJ's order), and a display range where max > min
// (probabilities: 0..1).
struct StackLayout {
  int64_t channels = 1;
  double min = 0, max = 0;
};

class TiffStackWriter {
 public:

  // Pages go to a temporary file beside `path`, renamed to it by finish(): a run stopped midway, or
  // a writer destroyed unfinished, leaves no half-written stack under the name. Every page carries
  // `calibration`. A stack planned past kClassicTiffBytes (uncompressed) is written as BigTIFF, which
  // has no 4 GB limit (Fiji, napari, PIL, OpenCV and libtiff read it); else as classic TIFF, which
  // every reader takes.
  explicit TiffStackWriter(const std::string& path, TiffCalibration calibration = {}, StackLayout layout = {},
                           int64_t planned_bytes = 0);
  ~TiffStackWriter();
  TiffStackWriter(const TiffStackWriter&) = delete;
  TiffStackWriter& operator=(const TiffStackWriter&) = delete;

  // One page, H x W, gray, deflate-compressed: uint8 (an 8-bit page); uint16 values held in
  // int16/int32/int64 (a 16-bit page; a value outside 0..65535 is an error); float32 (a 32-bit
  // floating-point page; other floating types are stored as float32).
  void add(const torch::Tensor& page);
  // Completes the file under its name, with an ImageJ description of the pages written (images,
  // channels, slices, spacing and unit): a stack cut short still opens whole. Pages of different sizes
  // or types get none: ImageJ would read every page at the first one's size. fcn::Error where the
  // file cannot be completed (a full disk), or the pages are not a whole number of channel groups.
  void finish();
  int64_t pages() const { return pages_; }
  bool big() const { return big_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_, temporary_;
  TiffCalibration calibration_;
  StackLayout layout_;
  void* tiff_ = nullptr;  // libtiff's TIFF*
  int64_t pages_ = 0;
  bool big_ = false;
  std::array<int64_t, 3> first_shape_{};  // the first page's height, width, bits
  bool uniform_ = true;                   // every page of the first one's shape
};

// The ImageJ description of a stack of `images` pages laid out as `layout`, with `calibration`'s
// spacing and unit: "ImageJ=1.11a\nimages=6\nchannels=2\nslices=3\nhyperstack=true\n...".
std::string imagej_description(int64_t images, const StackLayout& layout, const TiffCalibration& calibration);

}  // namespace fcn
