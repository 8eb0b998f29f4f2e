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
};

// By the header: "II*\0" or "MM\0*" (classic TIFF), "II+\0" or "MM\0+" (BigTIFF).
bool is_tiff(const std::vector<char>& bytes);

// The full-resolution pages in order (directories marked reduced-resolution — thumbnails, pyramid
// levels — are left out). fcn::Error naming `path` for a chain that runs past the file's end, loops,
// holds more than 1,048,576 directories, or has a page without its size.
std::vector<TiffPage> tiff_pages(const std::vector<char>& bytes, const std::string& path);
// The same from a file, reading only its directories (a stack of gigabytes is not read whole).
std::vector<TiffPage> tiff_pages(const std::string& path);

// The first SHORT entry `tag` of the first directory of a TIFF structure in memory (an Exif segment
// holds one: the orientation), or `otherwise` where there is none before the structure ends or breaks.
int64_t tiff_first_short(const char* data, size_t size, uint16_t tag, int64_t otherwise);

}  // namespace fcn
