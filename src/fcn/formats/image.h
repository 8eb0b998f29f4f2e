// Images in and out of the nets. PNG (8/16-bit gray, RGB, RGBA, palette) is read with libpng, so
// the core needs no OpenCV; JPEG and the other formats go through OpenCV when built with it.
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

#include "fcn/formats/tiff.h"

namespace fcn {

// Images of more channels than a PNG's 4 (multispectral bands, MRI sequences, 2.5-D slices) come as
// NumPy .npy arrays: H x W (one channel) or C x H x W (channels first, as PyTorch), C up to this many;
// uint8 read as / 255, uint16 as / 65535, bool as 0/1, float as stored (finite). An array that looks
// channels-last (H x W x C: its last dimension 1..4, the other two past 4) is an error that says how to
// transpose it.
constexpr int64_t kMostImageChannels = 64;

// C x H x W float32 in [0, 1], as stored (palette PNGs expanded to RGB; .npy arrays as above). Errors name the file.
// Sizes are checked against Limits.max_pixels before decoding (PNG, JPEG) or right after (others);
// a JPEG cut short (no end-of-image marker after its last scan) is an error, not a grey bottom.
torch::Tensor read_image(const std::string& path);
torch::Tensor decode_image(const std::vector<char>& bytes, const std::string& path);  // the same from memory
// Multi-page TIFFs (stacks: microscopy volumes, the U-Net paper's EM data): the number of
// full-resolution pages (1 for any other image), from the file's directories alone; and one page
// (0-based) as read_image gives images, its size checked against the limits before it is decoded.
// read_image and decode_image refuse a stack of several pages rather than read its first page alone;
// read_image reads a single image stored after a thumbnail (decode_image, from memory, refuses it).
int64_t image_pages(const std::string& path);
torch::Tensor read_image_page(const std::string& path, int64_t page);
// A stack read page after page: the page table read once, and pages decoded a chunk at a time (up to
// 256 pages, 16 Mpixels) in one pass over the directory chain. read_image_page walks the chain from
// its start for every page: reading 2,000 small pages that way took 110 s, quadratic in the count.
// page() gives what read_image_page gives, errors included; in order is the fast way.
class TiffStackReader {
 public:
  explicit TiffStackReader(std::string path);
  int64_t size() const { return static_cast<int64_t>(pages_.size()); }
  const std::string& path() const { return path_; }
  const std::vector<TiffPage>& pages() const { return pages_; }
  torch::Tensor page(int64_t index);
  // Page `index` as the integers it stores (C x H x W int64: a label stack's class indices), as
  // label_values gives them: page() scaled back by the page's bits per sample, float pages as stored.
  torch::Tensor page_values(int64_t index);

 private:
  void read_chunk(int64_t first);
  std::string path_;
  std::vector<TiffPage> pages_;
  int64_t first_ = 0;                  // the page chunk_[0] holds
  std::vector<torch::Tensor> chunk_;   // decoded, not yet handed out (undefined: decode alone)
};
// Label images in TIFF (masks of class indices, instance masks of object ids: Fiji's, Cellpose's and
// napari's 16-bit label images, scikit-image's int32 ones): check_label_page refuses, before a pixel is
// decoded, a page whose samples are not unsigned 1-, 8- or 16-bit integers or 32-bit floats (`wide`: signed
// and 32-bit integers too); label_values turns read_image's page (C x H x W in [0, 1]) back into the
// integers stored (int64: 8-bit x 255, 16-bit x 65535, a 1-bit page's 0/1 as stored, where OpenCV gives
// 0/255), a float page as stored where every value is a whole number 0..2^24 (fcn predict's float32 instance
// masks past 65535 objects).
// decode_tiff_labels gives a TIFF of one page as the labels it stores, C x H x W int64 (libtiff's samples as
// stored: a palette page's indices, not its colours), refusing a stack (a mask is one picture) and negative
// labels. fcn::Error naming `subject` for each.
void check_label_page(const TiffPage& page, const std::string& subject, bool wide);
torch::Tensor label_values(const torch::Tensor& image, const TiffPage& page, const std::string& subject);
torch::Tensor decode_tiff_labels(const std::vector<char>& bytes, const std::string& path);

// A JPEG's EXIF orientation (1..8; 1, "as stored", where there is none or the file is no JPEG), from
// the bytes or from the head of a file. fcn reads pixels as stored, as PyTorch, PIL and OpenCV's
// IMREAD_UNCHANGED do, while viewers and labelling tools turn the picture: a mask drawn on the turned
// view does not line up with the pixels. fcn data check and fcn predict warn where it is not 1.
int exif_orientation(const std::vector<char>& bytes);
int exif_orientation(const std::string& path);
// How viewers show an image of that orientation: "turned 90 degrees clockwise", ...
std::string orientation_words(int orientation);
// The JPEG checks alone: frame size within the limits, and the end-of-image marker present.
void check_jpeg(const std::vector<char>& bytes, const std::string& path);
// The file extensions list_images takes for images (lower case, with the dot).
const std::vector<std::string>& image_extensions();
bool has_image_extension(const std::string& path);  // by extension, case-insensitive
bool is_npy_path(const std::string& path);          // NAME.npy (any case): an image whose channels are all data
// Whether every channel of the image at `path` is data, none alpha to drop or colour to mix (a new net takes
// them all): a .npy array; a TIFF whose first page holds more than 4 samples, or declares its samples past
// gray's or RGB's data (TiffPage::samples_are_data: RGB + near-infrared). False for other images, and where
// the file cannot be read as one (its reader gives that error).
bool channels_are_data(const std::string& path);
// How many of the channels of a TIFF at `path` are its colour, ahead of its extra samples (alpha or bands), as
// its first page says: 1 for gray (photometric 0 or 1), 3 for RGB; 0 for other images, TIFFs of another colour
// model, and files that cannot be read (the count of channels decides there: 2 gray + alpha, 4 RGBA).
int64_t tiff_colour_channels(const std::string& path);

// A file whose name starts with a dot: left out of folder listings, as ls and shell globs leave it out
// (macOS's ._NAME resource forks beside each file of an archive made on a Mac, .DS_Store).
bool is_hidden(const std::string& path);

// Image files named by `inputs`: files as given, folders by their image files (by extension,
// sorted, hidden files left out; with `videos`, their video files and NIfTI volumes too:
// fcn/formats/video.h, nifti.h), glob patterns (*, ?, [...]) expanded. Throws fcn::Error naming an
// input that matches nothing.
std::vector<std::string> list_images(const std::vector<std::string>& inputs, bool videos = false);

}  // namespace fcn
