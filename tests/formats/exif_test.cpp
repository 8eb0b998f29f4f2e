// EXIF orientation (fcn/formats/image.h): read from a JPEG's APP1 segment in both byte orders, after
// other segments, and 1 ("as stored") wherever it is absent, malformed or after the image data.
#include <gtest/gtest.h>

#include "fcn/formats/image.h"

namespace fcn {
namespace {

// A JPEG head: SOI, an APP0 (JFIF), an APP1 Exif whose IFD0 holds ImageWidth then Orientation
// (`tag` 0x0112 of `type` 3, SHORT) = `value`, then SOS. No pixels: the walk stops at SOS.
std::vector<char> jpeg_head(bool little, int value, int tag = 0x0112, int type = 3) {
  std::vector<char> tiff;
  const auto put = [&](uint32_t v, int size) {
    for (int i = 0; i < size; ++i) tiff.push_back(static_cast<char>(v >> (8 * (little ? i : size - 1 - i))));
  };
  tiff.push_back(little ? 'I' : 'M'), tiff.push_back(little ? 'I' : 'M');
  put(42, 2), put(8, 4), put(2, 2);
  put(256, 2), put(4, 2), put(1, 4), put(640, 4);  // ImageWidth LONG 640
  put(static_cast<uint32_t>(tag), 2), put(static_cast<uint32_t>(type), 2), put(1, 4), put(static_cast<uint32_t>(value), 2), put(0, 2);
  put(0, 4);
  std::vector<char> out = {'\xff', '\xd8', '\xff', '\xe0', 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0};
  const size_t length = 2 + 6 + tiff.size();
  for (const char c : {'\xff', '\xe1', static_cast<char>(length >> 8), static_cast<char>(length & 0xff), 'E', 'x', 'i', 'f', '\0', '\0'})
    out.push_back(c);
  out.insert(out.end(), tiff.begin(), tiff.end());
  for (const char c : {'\xff', '\xda', '\0', '\x02'}) out.push_back(c);
  return out;
}

TEST(Exif, OrientationInBothByteOrdersAndOneWhereAbsentOrOdd) {
  for (const bool little : {true, false})
    for (int value = 1; value <= 8; ++value) EXPECT_EQ(exif_orientation(jpeg_head(little, value)), value) << little << value;
  EXPECT_EQ(exif_orientation(jpeg_head(true, 9)), 1);             // out of range
  EXPECT_EQ(exif_orientation(jpeg_head(true, 6, 0x0110)), 1);     // another tag (Model)
  EXPECT_EQ(exif_orientation(jpeg_head(false, 6, 0x0112, 4)), 1);  // not a SHORT
  auto cut = jpeg_head(true, 6);
  cut.resize(40);  // the Exif segment runs past the end
  EXPECT_EQ(exif_orientation(cut), 1);
  EXPECT_EQ(exif_orientation(std::vector<char>{'\x89', 'P', 'N', 'G'}), 1);
  EXPECT_EQ(exif_orientation(std::vector<char>{}), 1);
  EXPECT_EQ(orientation_words(6), "turned 90 degrees clockwise");
  EXPECT_EQ(orientation_words(8), "turned 90 degrees counter-clockwise");
  EXPECT_EQ(exif_orientation(std::string("/nonexistent/photo.jpg")), 1);
}

}  // namespace
}  // namespace fcn
