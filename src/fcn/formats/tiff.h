// TIFF's page table, read without decoding a pixel. A TIFF holds a chain of image file directories
// (pages): a multi-page TIFF is a stack — a microscopy volume, or the U-Net paper's own data (the ISBI
// 2012 EM challenge: train-volume.tif, 30 pages of 512 x 512, and train-labels.tif). OpenCV decodes
// the pages (fcn/formats/image.h); this finds how many there are and how large, so that a stack is
// never read as its first page alone and every page's size is checked before it is decoded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fcn {

struct TiffPage {
  int64_t directory = 0;        // the page's place in the chain (what OpenCV's imreadmulti counts)
  int64_t height = 0, width = 0;
  int64_t bits = 0;             // bits per sample (the first sample's); 0 where the page does not say
  int64_t samples = 1;          // samples per pixel (TIFF's default 1)
  int64_t planar = 1;           // 1: samples interleaved (chunky), 2: one plane per sample
  int64_t photometric = -1;     // 0/1: gray (min-is-white/black), 2: RGB, ...; -1 where the page does not say
  int64_t sample_format = 1;    // 1: unsigned integer, 2: signed, 3: floating point
  int64_t extra_samples = -1;   // ExtraSamples, one value per extra sample: 0 where each is data ("unspecified"),
                                // else the first alpha's (1 associated, 2 unassociated); -1 where the page declares none

  // A page OpenCV would read wrong or not at all, read with libtiff, each sample a channel as stored: a
  // multispectral image (more than 4 samples, or gray with extra samples, or one plane per sample; OpenCV reads
  // some of these as one gray channel and drops the rest without a word), RGB with a 4th sample (OpenCV reads
  // those through libtiff's RGBA interface, which multiplies the colours of an unassociated alpha by it: PIL's
  // and GIMP's RGBA TIFFs came out darker where they were transparent), or floating-point samples (OpenCV's
  // path refuses them; libtiff's takes 32-bit floats as stored).
  bool read_by_libtiff() const {
    return samples > 4 || (samples > 1 && (photometric == 0 || photometric == 1 || planar == 2)) || (photometric == 2 && samples > 3) ||
           sample_format == 3;
  }
  // Every sample is data, none alpha or colour to mix: more than 4 samples, or samples past the colour model's
  // (gray 1, RGB 3) that the page declares data (ExtraSamples 0: a near-infrared band beside RGB, a second band
  // beside gray). Those past the colour model with alpha, or undeclared, are alpha, as OpenCV and PIL take them.
  bool samples_are_data() const { return samples > 4 || (samples > (photometric == 2 ? 3 : 1) && extra_samples == 0); }
};

// By the header: "II*\0" or "MM\0*" (classic TIFF), "II+\0" or "MM\0+" (BigTIFF).
bool is_tiff(const std::vector<char>& bytes);

// The full-resolution pages in order (directories marked reduced-resolution — thumbnails, pyramid
// levels — are left out). fcn::Error naming `path` for a chain that runs past the file's end, loops,
// holds more than 1,048,576 directories, or has a page without its size.
std::vector<TiffPage> tiff_pages(const std::vector<char>& bytes, const std::string& path);
// The same from a file, reading only its directories (a stack of gigabytes is not read whole).
std::vector<TiffPage> tiff_pages(const std::string& path);

// A stack's pixel size, as the input's first page gives it, for the stacks made from it: Fiji and
// napari then measure labels in the input's units and overlay them on it. Resolution (pixels per
// unit) from the TIFF tags; the z spacing and unit from an ImageJ description ("spacing=", "unit=").
struct TiffCalibration {
  double x_resolution = 0, y_resolution = 0;  // pixels per unit; 0: none given
  uint16_t resolution_unit = 0;               // TIFF's: 1 none, 2 inch, 3 centimetre; 0: none given
  double spacing = 0;                         // z step between pages, in `unit`; 0: none given
  std::string unit;                           // ImageJ's unit name ("micron", "nm"); empty: none given

  bool empty() const { return x_resolution <= 0 && y_resolution <= 0 && spacing <= 0 && unit.empty(); }
};

// The calibration of `path`'s first full-resolution page; empty where it has none (or the file cannot
// be read: the caller reads the pixels, and their errors are the ones to report).
TiffCalibration tiff_calibration(const std::string& path);
// The same from a TIFF in memory.
TiffCalibration tiff_calibration(const std::vector<char>& bytes);

// The first SHORT entry `tag` of the first directory of a TIFF structure in memory (an Exif segment
// holds one: the orientation), or `otherwise` where there is none before the structure ends or breaks.
int64_t tiff_first_short(const char* data, size_t size, uint16_t tag, int64_t otherwise);

}  // namespace fcn
