// TIFF stacks (fcn/formats/tiff.h, image.h): the page table from the directory chain, checked
// against hand-built chains (both byte orders, BigTIFF, thumbnails, loops, cuts) and against OpenCV's
// own multi-page writer; a stack is read page by page and never as its first page alone.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <tuple>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/data/dataset.h"
#include "fcn/data/stacks.h"
#include "fcn/formats/image.h"
#include "fcn/formats/npy.h"
#include "fcn/formats/png.h"
#include "fcn/formats/tiff.h"
#include "fcn/formats/tiff_writer.h"
#include "fcn/models/preprocess.h"
#include "fcn/util/atomic_file.h"
#include "test_util.h"

#ifdef FCN_WITH_OPENCV
#include <tiffio.h>

#include <opencv2/imgcodecs.hpp>
#endif

namespace fcn {
namespace {

namespace fs = std::filesystem;
using test::error_of;

struct Directory {
  int64_t subfile_type, height, width;
};

// A TIFF of directories holding only NewSubfileType, ImageWidth (SHORT) and ImageLength (LONG): no
// pixels, which the page table never reads. The last directory's next offset is `last_next` (0: the end).
std::vector<char> tiff_bytes(bool little, bool big, const std::vector<Directory>& directories, uint64_t last_next = 0) {
  std::vector<char> out;
  const auto put = [&](uint64_t value, int size) {
    for (int i = 0; i < size; ++i) out.push_back(static_cast<char>(value >> (8 * (little ? i : size - 1 - i))));
  };
  out.push_back(little ? 'I' : 'M'), out.push_back(little ? 'I' : 'M');
  put(big ? 43 : 42, 2);
  if (big) put(8, 2), put(0, 2), put(16, 8);
  else put(8, 4);
  const int count = big ? 8 : 2, field = big ? 8 : 4;
  for (size_t i = 0; i < directories.size(); ++i) {
    const auto& d = directories[i];
    put(3, count);
    for (const auto& [tag, type, value] : {std::tuple{254, 4, d.subfile_type}, std::tuple{256, 3, d.width}, std::tuple{257, 4, d.height}}) {
      put(static_cast<uint64_t>(tag), 2), put(static_cast<uint64_t>(type), 2), put(1, field);
      put(static_cast<uint64_t>(value), type == 3 ? 2 : 4);
      put(0, field - (type == 3 ? 2 : 4));
    }
    put(i + 1 < directories.size() ? out.size() + static_cast<size_t>(field) : last_next, field);
  }
  return out;
}

TEST(Tiff, PageTableInBothByteOrdersAndBigTiffWithoutThumbnails) {
  for (const bool little : {true, false})
    for (const bool big : {false, true}) {
      const auto bytes = tiff_bytes(little, big, {{0, 30, 40}, {1, 15, 20}, {0, 31, 41}});
      ASSERT_TRUE(is_tiff(bytes));
      const auto pages = tiff_pages(bytes, "stack.tif");
      ASSERT_EQ(pages.size(), 2u) << little << big;  // the reduced-resolution page left out
      EXPECT_EQ(pages[0].directory, 0);
      EXPECT_EQ(pages[0].height, 30);
      EXPECT_EQ(pages[0].width, 40);
      EXPECT_EQ(pages[1].directory, 2);  // OpenCV counts the thumbnail's directory
      EXPECT_EQ(pages[1].height, 31);
      EXPECT_EQ(pages[1].width, 41);
    }
  EXPECT_FALSE(is_tiff({'I', 'I', 42}));
  EXPECT_FALSE(is_tiff({'\x89', 'P', 'N', 'G'}));
}

TEST(Tiff, BrokenChainsAreErrorsNamingTheFile) {
  const auto looped = tiff_bytes(true, false, {{0, 8, 8}, {0, 8, 8}}, 8);  // back to the first directory
  EXPECT_NE(error_of([&] { tiff_pages(looped, "loop.tif"); }).find("loop.tif: TIFF directory chain loops back to byte 8"), std::string::npos);
  auto cut = tiff_bytes(false, false, {{0, 8, 8}, {0, 8, 8}});
  cut.resize(cut.size() - 20);
  EXPECT_NE(error_of([&] { tiff_pages(cut, "cut.tif"); }).find("cut.tif: TIFF directory cut short (directory 1 at byte"), std::string::npos);
  const auto far = tiff_bytes(true, true, {{0, 8, 8}}, uint64_t{1} << 63);
  EXPECT_NE(error_of([&] { tiff_pages(far, "far.tif"); }).find("far.tif: TIFF directory past the end of the file (directory 1"), std::string::npos);
  const auto sizeless = tiff_bytes(true, false, {{0, 0, 8}});
  EXPECT_NE(error_of([&] { tiff_pages(sizeless, "no-size.tif"); }).find("no-size.tif: TIFF page 0 has no image width and length"), std::string::npos);
  const auto thumbnails = tiff_bytes(true, false, {{1, 8, 8}});
  EXPECT_NE(error_of([&] { tiff_pages(thumbnails, "thumb.tif"); }).find("thumb.tif: TIFF holds no full-resolution page"), std::string::npos);
  // A stack is never decoded as its first page alone.
  const auto stack = tiff_bytes(true, false, {{0, 8, 8}, {0, 8, 8}, {0, 8, 8}});
  EXPECT_NE(error_of([&] { decode_image(stack, "stack.tif"); }).find("stack.tif: holds 3 pages (a multi-page TIFF stack)"), std::string::npos);
  // A page's size is checked before decoding (Limits.max_pixels).
  const auto huge = tiff_bytes(true, false, {{0, 70000, 8}});
  EXPECT_NE(error_of([&] { decode_image(huge, "huge.tif"); }).find("huge.tif: image is 8x70000"), std::string::npos);
}

// ImageJ's description, by hand: what Fiji reads to open pages as slices, or as channels and slices.
TEST(Tiff, ImageJDescription) {
  EXPECT_EQ(imagej_description(1, {}, {}), "ImageJ=1.11a\nimages=1\n");
  EXPECT_EQ(imagej_description(4, {}, {}), "ImageJ=1.11a\nimages=4\nslices=4\n");
  TiffCalibration calibration;
  calibration.unit = "nm", calibration.spacing = 50;
  EXPECT_EQ(imagej_description(6, {2, 0, 1}, calibration),
            "ImageJ=1.11a\nimages=6\nchannels=2\nslices=3\nhyperstack=true\nmode=grayscale\nunit=nm\nspacing=50\nmin=0\nmax=1\n");
}

#ifdef FCN_WITH_OPENCV
// OpenCV's own multi-page writer: the page table agrees, each page reads back as written (8- and
// 16-bit), read_image refuses the stack, a single page TIFF reads as before.
TEST(Tiff, StackWrittenByOpenCvReadsPageByPage) {
  const std::string dir = test::fresh_dir("tiff_stack");
  std::vector<cv::Mat> written;
  for (int i = 0; i < 4; ++i) {
    cv::Mat page(13, 17, CV_16UC1);
    cv::randu(page, cv::Scalar(0), cv::Scalar(65535));
    written.push_back(page);
  }
  ASSERT_TRUE(cv::imwritemulti(dir + "/stack.tif", written));
  ASSERT_TRUE(cv::imwrite(dir + "/single.tif", cv::Mat(5, 6, CV_8UC3, cv::Scalar(10, 20, 30))));
  EXPECT_EQ(image_pages(dir + "/stack.tif"), 4);
  EXPECT_EQ(image_pages(dir + "/single.tif"), 1);
  EXPECT_EQ(image_pages(dir + "/missing.png"), 1);
  const auto pages = tiff_pages(dir + "/stack.tif");
  ASSERT_EQ(pages.size(), 4u);
  EXPECT_EQ(tiff_pages(dir + "/single.tif")[0].bits, 8);  // RGB: BitsPerSample's three values at an offset
  TiffStackReader reader(dir + "/stack.tif");
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(pages[static_cast<size_t>(i)].height, 13);
    EXPECT_EQ(pages[static_cast<size_t>(i)].bits, 16);
    EXPECT_TRUE(torch::equal(reader.page_values(i)[0],
                             torch::from_blob(written[static_cast<size_t>(i)].data, {13, 17}, torch::kShort).to(torch::kInt).bitwise_and(65535)))
        << i;
    const auto page = read_image_page(dir + "/stack.tif", i);
    ASSERT_EQ(page.sizes(), (std::vector<int64_t>{1, 13, 17}));
    const auto expected = torch::from_blob(written[static_cast<size_t>(i)].data, {13, 17}, torch::kShort);  // uint16 bits
    const auto values = page[0].mul(65535).round().to(torch::kInt);
    EXPECT_TRUE(torch::equal(values, expected.to(torch::kInt).bitwise_and(0xffff))) << "page " << i;
  }
  EXPECT_NE(error_of([&] { read_image(dir + "/stack.tif"); }).find("holds 4 pages"), std::string::npos);
  EXPECT_NE(error_of([&] { read_image_page(dir + "/stack.tif", 4); }).find("stack.tif: has no page 4 (pages 0..3)"), std::string::npos);
  const auto single = read_image(dir + "/single.tif");
  EXPECT_NEAR(single[0][0][0].item<float>(), 30.0f / 255, 1e-6);  // RGB, as read_image gives
}

// Little-endian classic TIFF, as OpenCV's libtiff writes on x86: the byte offsets of its directories.
size_t u16(const std::vector<char>& b, size_t at) { return static_cast<uint8_t>(b[at]) | static_cast<size_t>(static_cast<uint8_t>(b[at + 1])) << 8; }
size_t u32(const std::vector<char>& b, size_t at) { return u16(b, at) | u16(b, at + 2) << 16; }
std::vector<size_t> directory_offsets(const std::vector<char>& b) {
  std::vector<size_t> out;
  for (size_t at = u32(b, 4); at != 0; at = u32(b, at + 2 + 12 * u16(b, at))) out.push_back(at);
  return out;
}
// The byte where directory `d`'s entry for `tag` starts (0: none).
size_t entry_of(const std::vector<char>& b, size_t d, size_t tag) {
  const size_t at = directory_offsets(b).at(d);
  for (size_t entry = at + 2; entry < at + 2 + 12 * u16(b, at); entry += 12)
    if (u16(b, entry) == tag) return entry;
  return 0;
}
// Marks directory `d` reduced-resolution (NewSubfileType bit 0), as a thumbnail is.
bool mark_reduced(std::vector<char>& b, size_t d) {
  if (b[0] != 'I') return false;
  const size_t entry = entry_of(b, d, 254);
  if (entry != 0) b[entry + 8] = static_cast<char>(b[entry + 8] | 1);
  return entry != 0;
}

// A camera's or scanner's layout: a thumbnail first (NewSubfileType: reduced resolution), the full
// image after it. OpenCV's imdecode reads the first directory, the thumbnail; fcn reads the image.
TEST(Tiff, ThumbnailBeforeTheImageReadsTheImage) {
  const std::string dir = test::fresh_dir("tiff_thumbnail");
  const cv::Mat thumbnail(4, 5, CV_8UC1, cv::Scalar(200)), full(13, 17, CV_8UC1, cv::Scalar(51));
  const std::string file = dir + "/scan.tif";
  ASSERT_TRUE(cv::imwritemulti(file, std::vector<cv::Mat>{thumbnail, full}));
  auto bytes = read_file(file);
  ASSERT_TRUE(mark_reduced(bytes, 0));
  std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  EXPECT_EQ(image_pages(file), 1);
  const auto image = read_image(file);
  ASSERT_EQ(image.sizes(), (std::vector<int64_t>{1, 13, 17}));
  EXPECT_NEAR(image.max().item<float>(), 0.2f, 1e-6);
  EXPECT_NEAR(image.min().item<float>(), 0.2f, 1e-6);
  EXPECT_NE(error_of([&] { decode_image(bytes, "scan.tif"); }).find("scan.tif: its full image is TIFF directory 1, after a reduced"),
            std::string::npos);
}

// The stack reader decodes a chunk of pages per pass: the same pages as read_image_page, across chunk
// borders (300 pages: two chunks), past a thumbnail in the stack, in any order, and a corrupt page is
// the same error as read alone while the pages around it still read.
TEST(Tiff, StackReaderGivesWhatReadImagePageGives) {
  const std::string dir = test::fresh_dir("tiff_reader");
  std::vector<cv::Mat> written;
  for (int i = 0; i < 301; ++i) {
    cv::Mat page(9, 11, CV_8UC1);
    cv::randu(page, cv::Scalar(0), cv::Scalar(256));
    written.push_back(page);
  }
  const std::string file = dir + "/stack.tif";
  ASSERT_TRUE(cv::imwritemulti(file, written));
  auto bytes = read_file(file);
  ASSERT_TRUE(mark_reduced(bytes, 100));  // directory 100 a thumbnail: pages 100.. are directories 101..
  const size_t strip = entry_of(bytes, 280, 273);  // StripOffsets of page 279 (directory 280)
  ASSERT_NE(strip, 0u);
  ASSERT_EQ(u32(bytes, strip + 4), 1u) << "one strip per page expected";
  for (size_t k = 0; k < 40; ++k) bytes[u32(bytes, strip + 8) + k] = static_cast<char>(0xff - 7 * k);
  std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  TiffStackReader stack(file);
  ASSERT_EQ(stack.size(), 300);
  const auto corrupt = error_of([&] { read_image_page(file, 279); });
  ASSERT_NE(corrupt.find("stack.tif page 279: "), std::string::npos) << corrupt;
  for (const int64_t page : {0, 1, 99, 100, 255, 256, 278, 279, 280, 299, 5, 0, 280}) {
    if (page == 279) {
      EXPECT_EQ(error_of([&] { stack.page(page); }), corrupt);
      continue;
    }
    const auto image = stack.page(page);
    EXPECT_TRUE(torch::equal(image, read_image_page(file, page))) << "page " << page;
    const size_t directory = static_cast<size_t>(page) + (page >= 100 ? 1 : 0);
    EXPECT_TRUE(torch::equal(image[0].mul(255).round().to(torch::kByte),
                             torch::from_blob(written[directory].data, {9, 11}, torch::kByte)))
        << "page " << page;
  }
  EXPECT_NE(error_of([&] { stack.page(300); }).find("stack.tif: has no page 300 (pages 0..299)"), std::string::npos);
}

// Calibration and layout go into every finished stack: the resolution tags on each page, and ImageJ's
// description (channels, slices, unit, spacing, display range) on the first, for the pages written; a
// stack cut short within a slice is an error; float pages are accepted. tiff_calibration reads back
// what was carried (and nothing from a file without any, or from one that is not a TIFF).
TEST(Tiff, StackWriterCarriesCalibrationAndLayout) {
  const std::string dir = test::fresh_dir("tiff_calibration");
  TiffCalibration calibration;
  calibration.x_resolution = 2.5, calibration.y_resolution = 4, calibration.resolution_unit = 3;
  calibration.spacing = 0.25, calibration.unit = "micron";
  {
    TiffStackWriter writer(dir + "/probs.tif", calibration, {2, 0, 1});
    for (int k = 0; k < 6; ++k) writer.add(torch::full({3, 5}, 0.125 * k));
    writer.finish();
  }
  const auto read = tiff_calibration(dir + "/probs.tif");
  EXPECT_DOUBLE_EQ(read.x_resolution, 2.5);
  EXPECT_DOUBLE_EQ(read.y_resolution, 4);
  EXPECT_EQ(read.resolution_unit, 3);
  EXPECT_DOUBLE_EQ(read.spacing, 0.25);
  EXPECT_EQ(read.unit, "micron");
  EXPECT_EQ(tiff_pages(dir + "/probs.tif").size(), 6u);
  std::ifstream file(dir + "/probs.tif", std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const auto in_memory = tiff_calibration(bytes);
  EXPECT_EQ(std::make_tuple(in_memory.x_resolution, in_memory.spacing, in_memory.unit), std::make_tuple(2.5, 0.25, std::string("micron")));
  EXPECT_TRUE(tiff_calibration(std::vector<char>(bytes.begin(), bytes.begin() + 40)).empty());  // cut short: none
  {  // pages of two sizes: no ImageJ description (ImageJ would read the second at the first's size); the tags stay
    TiffStackWriter mixed(dir + "/mixed.tif", calibration);
    mixed.add(torch::zeros({3, 5}, torch::kByte));
    mixed.add(torch::zeros({4, 5}, torch::kByte));
    mixed.finish();
    const auto plain = tiff_calibration(dir + "/mixed.tif");
    EXPECT_EQ(std::make_tuple(plain.x_resolution, plain.spacing, plain.unit), std::make_tuple(2.5, 0.0, std::string()));
    TiffStackWriter same(dir + "/same.tif", calibration);
    for (int k = 0; k < 2; ++k) same.add(torch::zeros({3, 5}, torch::kByte));
    same.finish();
    EXPECT_EQ(tiff_calibration(dir + "/same.tif").unit, "micron");
  }
  {  // planned past classic TIFF's reach: BigTIFF, read back the same (8-byte offsets, rationals in the entry)
    TiffStackWriter big(dir + "/big.tif", calibration, {2, 0, 1}, kClassicTiffBytes + 1);
    EXPECT_TRUE(big.big());
    for (int k = 0; k < 4; ++k) big.add(torch::full({3, 5}, 0.25 * k));
    big.add(torch::arange(15, torch::kFloat).reshape({3, 5}));
    big.add(torch::zeros({3, 5}));
    big.finish();
  }
  std::ifstream big_file(dir + "/big.tif", std::ios::binary);
  char head[4] = {};
  big_file.read(head, 4);
  EXPECT_EQ(std::string(head, 4), std::string("II+\0", 4));
  const auto big = tiff_calibration(dir + "/big.tif");
  EXPECT_EQ(std::make_tuple(big.x_resolution, big.y_resolution, big.resolution_unit, big.spacing, big.unit),
            std::make_tuple(2.5, 4.0, uint16_t{3}, 0.25, std::string("micron")));
  const auto big_pages = tiff_pages(dir + "/big.tif");
  ASSERT_EQ(big_pages.size(), 6u);
  EXPECT_EQ(big_pages[4].bits, 32);
  {
    TiffStackWriter plain(dir + "/plain.tif");
    plain.add(torch::zeros({2, 2}, torch::kByte));
    plain.finish();
  }
  EXPECT_TRUE(tiff_calibration(dir + "/plain.tif").empty());
  std::ofstream(dir + "/not.tif") << "not a TIFF";
  EXPECT_TRUE(tiff_calibration(dir + "/not.tif").empty());
  TiffStackWriter cut(dir + "/cut.tif", {}, {2, 0, 0});
  for (int k = 0; k < 3; ++k) cut.add(torch::zeros({2, 2}));
  EXPECT_NE(error_of([&] { cut.finish(); }).find("cut.tif: 3 pages are not a whole number of 2-channel slices"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir + "/cut.tif"));
}

// The writer's pages read back as written, 8-bit (uint8) and 16-bit (wider integers), pages of
// different sizes; nothing under the name until finish(), nothing left by a writer dropped unfinished.
TEST(Tiff, StackWriterPagesReadBackAsWritten) {
  const std::string dir = test::fresh_dir("tiff_writer");
  torch::manual_seed(6);
  const std::vector<torch::Tensor> bytes = {torch::randint(0, 256, {300, 700}).to(torch::kByte), torch::randint(0, 256, {5, 3}).to(torch::kByte)};
  {
    TiffStackWriter writer(dir + "/labels.tif");
    for (const auto& page : bytes) writer.add(page);
    EXPECT_FALSE(fs::exists(dir + "/labels.tif"));
    writer.finish();
  }
  TiffStackReader labels(dir + "/labels.tif");
  ASSERT_EQ(labels.size(), 2);
  EXPECT_EQ(labels.pages()[0].bits, 8);
  EXPECT_TRUE(torch::equal(labels.page_values(1)[0], bytes[1].to(torch::kLong)));
  for (int64_t k = 0; k < 2; ++k)
    EXPECT_TRUE(torch::equal(labels.page(k)[0].mul(255).round().to(torch::kByte), bytes[static_cast<size_t>(k)])) << k;
  const auto wide = torch::tensor({0, 255, 256, 65535}, torch::kInt).reshape({2, 2});
  {
    TiffStackWriter writer(dir + "/wide.tif");
    writer.add(wide);
    writer.finish();
  }
  EXPECT_TRUE(torch::equal(read_image(dir + "/wide.tif")[0].mul(65535).round().to(torch::kInt), wide));
  EXPECT_TRUE(torch::equal(TiffStackReader(dir + "/wide.tif").page_values(0)[0], wide.to(torch::kLong)));
  {
    TiffStackWriter dropped(dir + "/dropped.tif");
    dropped.add(bytes[1]);
    EXPECT_NE(error_of([&] { dropped.add(torch::tensor({{-1, 3}})); }).find("dropped.tif page 1: holds values -1..3, outside the 0..65535"),
              std::string::npos);
    EXPECT_NE(error_of([&] { dropped.add(torch::zeros({2, 2}, torch::kBool)); }).find("a page must hold integers or floating-point values, not Bool"),
              std::string::npos);
  }
  EXPECT_EQ(std::vector<fs::path>(fs::directory_iterator(dir), fs::directory_iterator()).size(), 2u);  // labels.tif, wide.tif
  TiffStackWriter empty(dir + "/empty.tif");
  EXPECT_NE(error_of([&] { empty.finish(); }).find("empty.tif: no page to write"), std::string::npos);
  EXPECT_NE(error_of([&] { TiffStackWriter(dir + "/absent/x.tif"); }).find("x.tif: cannot create the file"), std::string::npos);
}
#endif

#ifdef FCN_WITH_OPENCV
// One page of C samples (C x H x W `values` of the TIFF type `bits`/`format`) into `tif`: interleaved or one
// plane a sample, in strips of 3 rows or tiles, deflated, gray photometric (RGB where `rgb`), the samples past
// the colour model's declared `extra` (ExtraSamples: unspecified data, or associated / unassociated alpha).
void write_sample_page(TIFF* tif, const torch::Tensor& values, int bits, int format, bool planar, bool tiled, bool rgb, uint16_t extra) {
  const auto c = static_cast<uint16_t>(values.size(0));
  const auto h = static_cast<uint32_t>(values.size(1)), w = static_cast<uint32_t>(values.size(2));
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w), TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, c), TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, bits);
  TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, format);
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, rgb ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
  TIFFSetField(tif, TIFFTAG_PLANARCONFIG, planar ? PLANARCONFIG_SEPARATE : PLANARCONFIG_CONTIG);
  TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
  const int extra_count = c - (rgb ? 3 : 1);
  std::vector<uint16_t> extras(static_cast<size_t>(std::max(extra_count, 1)), extra);
  if (extra_count > 0) TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, static_cast<uint16_t>(extra_count), extras.data());
  // The bytes of each plane (planar) or of the interleaved pixels, in rows.
  const auto type = bits == 8 ? (format == SAMPLEFORMAT_INT ? torch::kChar : torch::kByte) : bits == 16 ? torch::kShort
                    : format == SAMPLEFORMAT_IEEEFP ? torch::kFloat : torch::kInt;
  const auto laid = (planar ? values : values.permute({1, 2, 0})).to(type).contiguous();
  const auto* data = static_cast<const unsigned char*>(laid.data_ptr());
  const int64_t row = static_cast<int64_t>(w) * (planar ? 1 : c) * (bits / 8);
  const int64_t planes = planar ? c : 1;
  if (!tiled) {
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 3);
    for (int64_t p = 0; p < planes; ++p)
      for (uint32_t y = 0; y < h; ++y)
        ASSERT_GE(TIFFWriteScanline(tif, const_cast<unsigned char*>(data + (p * h + y) * row), y, static_cast<uint16_t>(p)), 0);
  } else {
    const uint32_t side = 16;
    TIFFSetField(tif, TIFFTAG_TILEWIDTH, side), TIFFSetField(tif, TIFFTAG_TILELENGTH, side);
    const int64_t pixel = row / w;
    std::vector<unsigned char> tile(static_cast<size_t>(side * side * pixel));
    for (int64_t p = 0; p < planes; ++p)
      for (uint32_t y0 = 0; y0 < h; y0 += side)
        for (uint32_t x0 = 0; x0 < w; x0 += side) {
          std::fill(tile.begin(), tile.end(), 0);
          for (uint32_t y = y0; y < std::min(y0 + side, h); ++y)
            std::copy_n(data + (p * h + y) * row + x0 * pixel, std::min(side, w - x0) * pixel, tile.data() + (y - y0) * side * pixel);
          ASSERT_GE(TIFFWriteTile(tif, tile.data(), x0, y0, 0, static_cast<uint16_t>(p)), 0);
        }
  }
}

// A file of such pages, one after another (a stack where there are several).
void write_sample_pages(const std::string& path, const std::vector<torch::Tensor>& pages, int bits, int format, bool planar, bool tiled,
                        bool rgb = false, uint16_t extra = EXTRASAMPLE_UNSPECIFIED) {
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  ASSERT_NE(tif, nullptr);
  for (const auto& page : pages) {
    write_sample_page(tif, page, bits, format, planar, tiled, rgb, extra);
    ASSERT_TRUE(TIFFWriteDirectory(tif));
  }
  TIFFClose(tif);
}

void write_samples(const std::string& path, const torch::Tensor& values, int bits, int format, bool planar, bool tiled, bool rgb = false,
                   uint16_t extra = EXTRASAMPLE_UNSPECIFIED) {
  write_sample_pages(path, {values}, bits, format, planar, tiled, rgb, extra);
}

// Multispectral pages (more than 4 samples, gray with extra samples, a plane a sample) are read sample for
// sample, each a channel, scaled as PNGs by their depth: OpenCV read some as one gray channel, the rest dropped.
TEST(Tiff, MultiSampleImagesGiveEverySampleAsAChannel) {
  const std::string dir = test::fresh_dir("tiff_samples");
  torch::manual_seed(8);
  const auto bytes = torch::randint(0, 256, {5, 21, 37}, torch::kInt), words = torch::randint(0, 65536, {3, 21, 37}, torch::kInt);
  const auto floats = torch::randn({4, 21, 37});
  for (const bool planar : {false, true})
    for (const bool tiled : {false, true}) {
      const auto name = dir + "/" + std::to_string(planar) + std::to_string(tiled);
      write_samples(name + "-8.tif", bytes, 8, SAMPLEFORMAT_UINT, planar, tiled);
      EXPECT_TRUE(torch::equal(read_image(name + "-8.tif"), bytes.to(torch::kFloat).div(255.0f))) << name;
      write_samples(name + "-16.tif", words, 16, SAMPLEFORMAT_UINT, planar, tiled);
      EXPECT_TRUE(torch::equal(read_image(name + "-16.tif"), words.to(torch::kFloat).div(65535.0f))) << name;
      write_samples(name + "-f.tif", floats, 32, SAMPLEFORMAT_IEEEFP, planar, tiled);
      EXPECT_TRUE(torch::equal(read_image(name + "-f.tif"), floats)) << name;
    }
  const auto file_bytes = read_file(dir + "/11-8.tif");  // from memory too, and the page table says why
  EXPECT_TRUE(torch::equal(decode_image(file_bytes, "bands.tif"), bytes.to(torch::kFloat).div(255.0f)));
  const auto page = tiff_pages(file_bytes, "bands.tif")[0];
  EXPECT_EQ(std::make_tuple(page.samples, page.planar, page.photometric, page.sample_format), std::make_tuple(5, 2, 1, 1));
  EXPECT_TRUE(page.read_by_libtiff());
  // fcn data unstack writes such pages as .npy arrays of the values as read (uint8, uint16, float32), never 3 of them as RGB.
  for (const auto& [file, type] : std::vector<std::pair<std::string, torch::ScalarType>>{{"10-8", torch::kByte}, {"01-16", torch::kInt}, {"11-f", torch::kFloat}}) {
    const auto out = dir + "/unstacked-" + file;
    EXPECT_EQ(unstack_tiff(dir + "/" + file + ".tif", "", out), 1);
    const auto array = read_npy(out + "/images/000.npy");
    EXPECT_EQ(array.scalar_type(), type) << file;
    EXPECT_TRUE(torch::equal(read_image(out + "/images/000.npy"), read_image(dir + "/" + file + ".tif"))) << file;
  }
  // An RGB page of 3 samples is OpenCV's as before (of 4: the next test); gray with one extra sample is two channels.
  write_samples(dir + "/rgb.tif", bytes.slice(0, 0, 3), 8, SAMPLEFORMAT_UINT, false, false, true);
  EXPECT_FALSE(tiff_pages(dir + "/rgb.tif")[0].read_by_libtiff());
  EXPECT_TRUE(torch::allclose(read_image(dir + "/rgb.tif"), bytes.slice(0, 0, 3).to(torch::kFloat).div(255.0f), 0, 1e-7));  // OpenCV: x * (1 / 255)
  write_samples(dir + "/two.tif", bytes.slice(0, 0, 2), 8, SAMPLEFORMAT_UINT, false, false);
  EXPECT_EQ(read_image(dir + "/two.tif").size(0), 2);
  // One float sample (microscopy, elevation): as stored, where OpenCV's path refused it.
  write_samples(dir + "/float1.tif", floats.slice(0, 0, 1) * 1000, 32, SAMPLEFORMAT_IEEEFP, false, true);
  EXPECT_TRUE(tiff_pages(dir + "/float1.tif")[0].read_by_libtiff());
  EXPECT_TRUE(torch::equal(read_image(dir + "/float1.tif"), floats.slice(0, 0, 1) * 1000));
  // Samples of no known scale, and non-finite floats: one line naming the file.
  write_samples(dir + "/signed.tif", words.slice(0, 0, 2) - 30000, 16, SAMPLEFORMAT_INT, false, false);
  EXPECT_NE(error_of([&] { read_image(dir + "/signed.tif"); }).find("signed.tif: holds 16-bit samples of format 2"), std::string::npos);
  auto nan = floats.clone();
  nan[2][3][4] = std::numeric_limits<float>::quiet_NaN();
  write_samples(dir + "/nan.tif", nan, 32, SAMPLEFORMAT_IEEEFP, true, false);
  EXPECT_NE(error_of([&] { read_image(dir + "/nan.tif"); }).find("nan.tif: holds samples that are not finite"), std::string::npos);
  auto cut = read_file(dir + "/00-8.tif");
  cut.resize(cut.size() / 2);
  EXPECT_NE(error_of([&] { decode_image(cut, "cut.tif"); }).find("cut.tif: "), std::string::npos);
}

// RGB with a 4th sample reads as stored. OpenCV read such pages through libtiff's RGBA interface, which
// multiplies the colours by an unassociated alpha (PIL's and GIMP's RGBA TIFFs: colours darker where alpha is
// low, unlike the same image as a PNG). Whether the samples past the colour model are data (ExtraSamples 0:
// RGB + near-infrared) or alpha is the page's word, and channels_are_data's, so that a new net takes the band.
TEST(Tiff, FourthSampleOfRgbAsStoredAndDataWhereDeclared) {
  const std::string dir = test::fresh_dir("tiff_extra");
  torch::manual_seed(9);
  auto rgba = torch::randint(0, 256, {4, 13, 17}, torch::kInt);
  rgba[3] = torch::arange(13 * 17).view({13, 17}).remainder(256);  // alpha from 0 up: premultiplying changes most pixels
  const auto words = torch::randint(0, 65536, {4, 13, 17}, torch::kInt);
  for (const uint16_t extra : {EXTRASAMPLE_UNASSALPHA, EXTRASAMPLE_ASSOCALPHA, EXTRASAMPLE_UNSPECIFIED}) {
    const auto name = dir + "/rgb" + std::to_string(extra);
    write_samples(name + "-8.tif", rgba, 8, SAMPLEFORMAT_UINT, false, false, true, extra);
    EXPECT_TRUE(torch::equal(read_image(name + "-8.tif"), rgba.to(torch::kFloat).div(255.0f))) << "ExtraSamples " << extra;
    write_samples(name + "-16.tif", words, 16, SAMPLEFORMAT_UINT, false, true, true, extra);
    EXPECT_TRUE(torch::equal(read_image(name + "-16.tif"), words.to(torch::kFloat).div(65535.0f))) << "ExtraSamples " << extra;
    const auto page = tiff_pages(name + "-8.tif")[0];
    EXPECT_EQ(std::make_tuple(page.samples, page.photometric, page.extra_samples), std::make_tuple(4, 2, int64_t{extra}));
    EXPECT_TRUE(page.read_by_libtiff());
    EXPECT_EQ(page.samples_are_data(), extra == EXTRASAMPLE_UNSPECIFIED);
    EXPECT_EQ(channels_are_data(name + "-8.tif"), extra == EXTRASAMPLE_UNSPECIFIED);
  }
  // Gray with a band beside it is data, gray with alpha is not; more than 4 samples always are; RGB alone is colour.
  write_samples(dir + "/gray-band.tif", rgba.slice(0, 0, 2), 8, SAMPLEFORMAT_UINT, false, false);
  write_samples(dir + "/gray-alpha.tif", rgba.slice(0, 0, 2), 8, SAMPLEFORMAT_UINT, false, false, false, EXTRASAMPLE_UNASSALPHA);
  write_samples(dir + "/rgb.tif", rgba.slice(0, 0, 3), 8, SAMPLEFORMAT_UINT, false, false, true);
  write_samples(dir + "/bands.tif", torch::cat({rgba, rgba.slice(0, 0, 1)}), 8, SAMPLEFORMAT_UINT, true, false);
  EXPECT_TRUE(channels_are_data(dir + "/gray-band.tif"));
  EXPECT_FALSE(channels_are_data(dir + "/gray-alpha.tif"));
  EXPECT_FALSE(channels_are_data(dir + "/rgb.tif"));
  EXPECT_TRUE(channels_are_data(dir + "/bands.tif"));
  EXPECT_TRUE(torch::equal(read_image(dir + "/gray-alpha.tif"), rgba.slice(0, 0, 2).to(torch::kFloat).div(255.0f)));
  // Other images by their kind; a file that is missing or no TIFF is not data (its reader says what is wrong).
  write_npy(dir + "/bands.npy", rgba.to(torch::kByte));
  EXPECT_TRUE(channels_are_data(dir + "/bands.npy"));
  std::ofstream(dir + "/fake.tif") << "not a TIFF";
  EXPECT_FALSE(channels_are_data(dir + "/fake.tif"));
  EXPECT_FALSE(channels_are_data(dir + "/missing.tif"));
  EXPECT_FALSE(channels_are_data(dir + "/rgb0-8.png"));
}

// A TIFF's extra samples for a net of fewer inputs (adapt_channels): gray + bands (GDAL's gray photometric with
// ExtraSamples 0) gives a 1-input net its gray, not a luminance mix of gray and bands as if RGB, and is an error
// for a 3-input net (one band is not copied three times); gray + 3 alphas still fills one; RGB + 2 bands gives an
// RGB net its RGB and a gray net the RGB's luminance. Images of as many channels as the net pass as they are.
TEST(Tiff, ExtraSamplesLeftOutForANetOfFewerInputs) {
  const std::string dir = test::fresh_dir("tiff_fewer_inputs");
  torch::manual_seed(11);
  const auto values = torch::randint(0, 256, {5, 6, 7}, torch::kInt);
  const auto stored = [&](int64_t n) { return values.slice(0, 0, n).to(torch::kFloat).div(255.0f); };
  const auto adapted = [&](const std::string& name, int64_t channels) { return adapt_channels(read_image(dir + name), channels, dir + name); };
  write_samples(dir + "/gray-bands.tif", values.slice(0, 0, 3), 8, SAMPLEFORMAT_UINT, false, false);
  write_samples(dir + "/gray-alphas.tif", values.slice(0, 0, 4), 8, SAMPLEFORMAT_UINT, false, false, false, EXTRASAMPLE_UNASSALPHA);
  write_samples(dir + "/rgb-bands.tif", values, 8, SAMPLEFORMAT_UINT, false, false, true);
  EXPECT_EQ(tiff_colour_channels(dir + "/gray-bands.tif"), 1);
  EXPECT_EQ(tiff_colour_channels(dir + "/rgb-bands.tif"), 3);
  EXPECT_TRUE(torch::equal(adapted("/gray-bands.tif", 1), stored(1)));
  EXPECT_TRUE(torch::equal(adapted("/gray-bands.tif", 3), stored(3)));
  EXPECT_EQ(error_of([&] { adapted("/gray-bands.tif", 2); }), dir + "/gray-bands.tif: image has 3 channel(s), the model expects 2");
  write_samples(dir + "/gray-band.tif", values.slice(0, 0, 2), 8, SAMPLEFORMAT_UINT, false, false);
  EXPECT_EQ(error_of([&] { adapted("/gray-band.tif", 3); }),
            dir + "/gray-band.tif: has 2 channels of data (gray and 1 band(s), as the TIFF declares its samples), the model takes 3");
  EXPECT_TRUE(torch::equal(adapted("/gray-alphas.tif", 1), stored(1)));
  EXPECT_TRUE(torch::equal(adapted("/gray-alphas.tif", 3), stored(1).expand({3, 6, 7})));
  EXPECT_TRUE(torch::equal(adapted("/gray-alphas.tif", 4), stored(4)));
  EXPECT_TRUE(torch::equal(adapted("/rgb-bands.tif", 3), stored(3)));
  const auto weights = torch::tensor({0.299f, 0.587f, 0.114f}).view({3, 1, 1});
  EXPECT_TRUE(torch::allclose(adapted("/rgb-bands.tif", 1), (stored(3) * weights).sum(0, true)));
  EXPECT_EQ(tiff_colour_channels(dir + "/missing.tif"), 0);  // unknown: the count of channels decides
}

// ExtraSamples holds a value per extra sample: a page's samples are all data only where every value is 0. Gray + a
// band + alpha, in either order (two values, in the entry's field) or gray + 2 bands + alpha (three, past it), is
// gray with alpha: a net of 1 input takes the gray, one of 3 the gray three times, never the alpha as a colour (the
// first value alone was read: a band first made it all data). Gray + 2 bands stays data.
TEST(Tiff, ExtraSamplesAreDataOnlyWhereEveryOneIs) {
  const std::string dir = test::fresh_dir("tiff_extra_each");
  torch::manual_seed(12);
  const auto values = torch::randint(0, 256, {4, 6, 7}, torch::kInt);
  const auto stored = [&](int64_t n) { return values.slice(0, 0, n).to(torch::kFloat).div(255.0f); };
  const auto declared = [&](const std::string& name, const std::vector<uint16_t>& kinds) {
    write_samples(dir + name, values.slice(0, 0, static_cast<int64_t>(kinds.size()) + 1), 8, SAMPLEFORMAT_UINT, false, false);
    auto bytes = read_file(dir + name);
    const size_t entry = entry_of(bytes, 0, 338);
    ASSERT_NE(entry, 0u);
    ASSERT_EQ(u32(bytes, entry + 4), kinds.size());
    const size_t at = kinds.size() <= 2 ? entry + 8 : u32(bytes, entry + 8);
    for (size_t k = 0; k < kinds.size(); ++k) bytes[at + 2 * k] = static_cast<char>(kinds[k]), bytes[at + 2 * k + 1] = 0;
    std::ofstream(dir + name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  const auto adapted = [&](const std::string& name, int64_t channels) { return adapt_channels(read_image(dir + name), channels, dir + name); };
  for (const auto& [name, kinds] : {std::pair<std::string, std::vector<uint16_t>>{"/band-alpha.tif", {0, 2}}, {"/alpha-band.tif", {2, 0}},
                                    {"/bands-alpha.tif", {0, 0, 1}}}) {
    declared(name, kinds);
    const auto page = tiff_pages(dir + name)[0];
    EXPECT_EQ(page.extra_samples, *std::max_element(kinds.begin(), kinds.end())) << name;  // the alpha's kind
    EXPECT_FALSE(page.samples_are_data()) << name;
    EXPECT_FALSE(channels_are_data(dir + name)) << name;
    EXPECT_TRUE(torch::equal(read_image(dir + name), stored(static_cast<int64_t>(kinds.size()) + 1))) << name;  // read as stored
    EXPECT_TRUE(torch::equal(adapted(name, 1), stored(1))) << name;
    EXPECT_TRUE(torch::equal(adapted(name, 3), stored(1).expand({3, 6, 7}))) << name;
  }
  declared("/bands.tif", {0, 0});
  EXPECT_EQ(tiff_pages(dir + "/bands.tif")[0].extra_samples, 0);
  EXPECT_TRUE(channels_are_data(dir + "/bands.tif"));
  EXPECT_TRUE(torch::equal(adapted("/bands.tif", 3), stored(3)));  // a net of as many inputs takes them as they are
}

// A stack of pages libtiff reads (RGB + near-infrared here) goes through the stack reader a chunk at a time
// from one open file, as OpenCV's pages do: what read_image_page gives page for page, across the chunk border
// (256 pages), and a corrupt page is its own error while the pages around it read. fcn data unstack writes
// each page's 4 channels as a .npy array, where a PNG would hold the band as alpha (and the nets drop alpha).
TEST(Tiff, StackOfMultiSamplePagesReadsInChunks) {
  const std::string dir = test::fresh_dir("tiff_sample_stack");
  torch::manual_seed(10);
  std::vector<torch::Tensor> pages;
  for (int i = 0; i < 260; ++i) pages.push_back(torch::randint(0, 256, {4, 3, 5}, torch::kInt));
  const std::string file = dir + "/rgbn.tif";
  write_sample_pages(file, pages, 8, SAMPLEFORMAT_UINT, false, false, true);
  auto bytes = read_file(file);
  const size_t strip = entry_of(bytes, 257, 273);  // StripOffsets of page 257: one strip of 3 rows, deflated
  ASSERT_NE(strip, 0u);
  ASSERT_EQ(u32(bytes, strip + 4), 1u) << "one strip per page expected";
  for (size_t k = 0; k < 8; ++k) bytes[u32(bytes, strip + 8) + k] = static_cast<char>(0x5a + 11 * k);
  std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  const auto corrupt = error_of([&] { read_image_page(file, 257); });
  ASSERT_NE(corrupt.find("rgbn.tif page 257: corrupt TIFF"), std::string::npos) << corrupt;
  TiffStackReader stack(file);
  ASSERT_EQ(stack.size(), 260);
  for (const int64_t page : {0, 1, 254, 255, 256, 257, 258, 259, 7}) {
    if (page == 257) {
      EXPECT_EQ(error_of([&] { stack.page(page); }), corrupt);
      continue;
    }
    const auto image = stack.page(page);
    EXPECT_TRUE(torch::equal(image, pages[static_cast<size_t>(page)].to(torch::kFloat).div(255.0f))) << "page " << page;
    EXPECT_TRUE(torch::equal(image, read_image_page(file, page))) << "page " << page;
  }
  // Unstacked: 4 channels a page as uint8 .npy arrays (the good pages of a copy without the corrupt one).
  write_sample_pages(file, {pages[0], pages[1]}, 8, SAMPLEFORMAT_UINT, false, false, true);
  EXPECT_EQ(unstack_tiff(file, "", dir + "/out"), 2);
  for (int k = 0; k < 2; ++k) {
    const auto array = read_npy(dir + "/out/images/00" + std::to_string(k) + ".npy");
    EXPECT_EQ(array.scalar_type(), torch::kByte);
    EXPECT_TRUE(torch::equal(array.to(torch::kInt), pages[static_cast<size_t>(k)])) << k;
  }
  // Alpha is alpha: an RGBA stack unstacks to RGB PNGs, as before.
  write_sample_pages(dir + "/rgba.tif", {pages[0], pages[1]}, 8, SAMPLEFORMAT_UINT, false, false, true, EXTRASAMPLE_UNASSALPHA);
  EXPECT_EQ(unstack_tiff(dir + "/rgba.tif", "", dir + "/out_rgba"), 2);
  EXPECT_TRUE(fs::exists(dir + "/out_rgba/images/001.png"));
  EXPECT_TRUE(torch::equal(read_image(dir + "/out_rgba/images/001.png"), pages[1].slice(0, 0, 3).to(torch::kFloat).div(255.0f)));
}

// Such a stack with random bytes changed or cut short, read page by page: each page an image or fcn::Error (never
// another exception; ASan's build watches for faults), and nothing of libtiff's own printed (its warnings and
// error lines went to stderr beside fcn's errors), nor of OpenCV's (its reader printed "imreadmulti_(...): can't
// read header: ..." where it threw: a page whose directory it reads otherwise than fcn's page table).
TEST(Tiff, MutatedMultiSampleStacksGiveErrorsOnly) {
  const std::string dir = test::fresh_dir("tiff_mutated");
  torch::manual_seed(11);
  std::vector<torch::Tensor> pages;
  for (int i = 0; i < 12; ++i) pages.push_back(torch::randint(0, 256, {5, 7, 9}, torch::kInt));
  write_sample_pages(dir + "/base.tif", pages, 8, SAMPLEFORMAT_UINT, false, false);
  const auto base = read_file(dir + "/base.tif");
  std::mt19937 rng(5);
  int64_t read = 0, refused = 0;
  testing::internal::CaptureStderr();
  for (int round = 0; round < 150; ++round) {
    auto bytes = base;
    for (int k = 0, flips = 1 + static_cast<int>(rng() % 8); k < flips; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (round % 10 == 9) bytes.resize(rng() % bytes.size());
    std::ofstream(dir + "/m.tif", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    try {
      TiffStackReader stack(dir + "/m.tif");
      for (int64_t p = 0; p < stack.size(); ++p) {
        try {
          const auto image = stack.page(p);
          EXPECT_EQ(image.dim(), 3);
          ++read;
        } catch (const Error&) {
          ++refused;
        }
      }
    } catch (const Error&) {
      ++refused;
    }
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_GT(read, 500);  // most mutations leave most pages readable
  EXPECT_GT(refused, 10);
}

// A TIFF image of signed samples (a CT slice's Hounsfield units as int16) is one line saying what to do: it was
// "only 8- and 16-bit images are supported", of a 16-bit image. As a label image it reads as stored.
TEST(Tiff, SignedImagesAreRefusedSayingWhatToDo) {
  const std::string dir = test::fresh_dir("tiff_signed");
  const auto hounsfield = torch::tensor({-1000, 40, 400, 3000}).reshape({1, 2, 2});
  write_samples(dir + "/ct.tif", hounsfield, 16, SAMPLEFORMAT_INT, false, false);
  EXPECT_NE(error_of([&] { read_image(dir + "/ct.tif"); }).find("ct.tif: holds signed 16-bit samples, which have no scale to read them on"),
            std::string::npos);
  write_samples(dir + "/ct32.tif", hounsfield, 32, SAMPLEFORMAT_INT, false, false);
  EXPECT_NE(error_of([&] { read_image(dir + "/ct32.tif"); }).find("ct32.tif: holds signed 32-bit samples"), std::string::npos);
  EXPECT_NE(error_of([&] { decode_tiff_labels(read_file(dir + "/ct.tif"), "ct.tif"); }).find("ct.tif: holds -1000 at (0,0)"), std::string::npos);
}

// A 1-bit (bilevel) page of `rows` x 8 pixels, each row one byte, BitsPerSample left out as PIL leaves it.
void write_bilevel(const std::string& path, const std::vector<uint8_t>& rows) {
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  ASSERT_NE(tif, nullptr);
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, 8), TIFFSetField(tif, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(rows.size()));
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 1);
  for (uint32_t y = 0; y < rows.size(); ++y) {
    uint8_t row = rows[y];
    ASSERT_GE(TIFFWriteScanline(tif, &row, y, 0), 0);
  }
  TIFFClose(tif);
}

// Label images in TIFF (masks, instance masks, label stacks) give the integers they store: 16-bit and
// 32-bit ids past 255 and 65535, signed and float pages of whole numbers, a bilevel page's 0/1. Wrong
// before: a float label stack's page was scaled by 255 (0/1 became 0/255, void under 3 classes), and a
// single TIFF mask was "neither a PNG nor a .npy".
TEST(Tiff, LabelImagesGiveTheIntegersStored) {
  const std::string dir = test::fresh_dir("tiff_labels");
  const auto labels_of = [&](const std::string& name) { return decode_tiff_labels(read_file(dir + "/" + name), name); };
  const auto ids = torch::tensor({0, 7, 300, 65535, 1, 2}, torch::kLong).reshape({1, 2, 3});
  write_samples(dir + "/u16.tif", ids, 16, SAMPLEFORMAT_UINT, false, false);
  EXPECT_TRUE(torch::equal(labels_of("u16.tif"), ids));
  const auto wide = torch::tensor(std::vector<int64_t>{0, 70000, 3, 3000000000LL}).reshape({1, 2, 2});
  write_samples(dir + "/u32.tif", wide, 32, SAMPLEFORMAT_UINT, false, true);
  EXPECT_TRUE(torch::equal(labels_of("u32.tif"), wide));
  write_samples(dir + "/i32.tif", ids, 32, SAMPLEFORMAT_INT, true, false);
  EXPECT_TRUE(torch::equal(labels_of("i32.tif"), ids));
  write_samples(dir + "/f32.tif", wide.clamp_max(16777216), 32, SAMPLEFORMAT_IEEEFP, false, false);  // fcn predict's float32 instances past 65535
  EXPECT_TRUE(torch::equal(labels_of("f32.tif"), wide.clamp_max(16777216)));
  write_bilevel(dir + "/bits.tif", {0x80, 0x01, 0xff});
  const auto bits = labels_of("bits.tif");
  EXPECT_EQ(bits.sizes(), (std::vector<int64_t>{1, 3, 8}));
  EXPECT_EQ(bits.sum().item<int64_t>(), 10);
  EXPECT_EQ(bits[0][0][0].item<int64_t>(), 1);
  EXPECT_EQ(bits[0][1][7].item<int64_t>(), 1);
  write_samples(dir + "/negative.tif", torch::tensor({0, -1, 2, 3}).reshape({1, 2, 2}), 16, SAMPLEFORMAT_INT, false, false);
  EXPECT_NE(error_of([&] { labels_of("negative.tif"); }).find("negative.tif: holds -1 at (0,1): labels (class indices, object ids) are 0 or more"),
            std::string::npos);
  write_samples(dir + "/half.tif", torch::tensor({0.0f, 1.0f, 2.0f, 0.5f}).reshape({1, 2, 2}), 32, SAMPLEFORMAT_IEEEFP, false, false);
  EXPECT_NE(error_of([&] { labels_of("half.tif"); }).find("half.tif: holds 0.5 at (1,1): labels in a float TIFF are whole numbers"),
            std::string::npos);
  write_sample_pages(dir + "/stack.tif", {ids, ids}, 16, SAMPLEFORMAT_UINT, false, false);
  EXPECT_NE(error_of([&] { labels_of("stack.tif"); }).find("stack.tif: holds 2 pages (a multi-page TIFF stack), where a mask is one picture: fcn data unstack"),
            std::string::npos);

  // A label stack: float pages as stored (fcn eval's --label-stack scoring, fcn data unstack's masks), 16-bit
  // past 255; unstacked masks hold the labels, an 8-bit PNG where they fit, else a 16-bit one.
  const auto page0 = torch::tensor({0, 1, 2, 1}).reshape({1, 2, 2}), page1 = torch::tensor({0, 1, 1, 0}).reshape({1, 2, 2});
  write_sample_pages(dir + "/float-labels.tif", {page0, page1}, 32, SAMPLEFORMAT_IEEEFP, false, false);
  TiffStackReader float_labels(dir + "/float-labels.tif");
  EXPECT_TRUE(torch::equal(float_labels.page_values(1), page1));
  write_sample_pages(dir + "/images.tif", {page0 * 100, page1 * 100}, 8, SAMPLEFORMAT_UINT, false, false);
  EXPECT_EQ(unstack_tiff(dir + "/images.tif", dir + "/float-labels.tif", dir + "/unstacked"), 2);
  EXPECT_TRUE(torch::equal(read_png(dir + "/unstacked/masks/001.png").pixels.select(2, 0).to(torch::kLong), page1[0]));
  write_sample_pages(dir + "/wide-labels.tif", {page0 * 150, page1}, 16, SAMPLEFORMAT_UINT, false, false);
  EXPECT_EQ(unstack_tiff(dir + "/images.tif", dir + "/wide-labels.tif", dir + "/unstacked-wide"), 2);
  const auto wide_mask = read_png(dir + "/unstacked-wide/masks/000.png");
  EXPECT_EQ(wide_mask.pixels.scalar_type(), torch::kInt);
  EXPECT_TRUE(torch::equal(wide_mask.pixels.select(2, 0).to(torch::kLong), page0[0] * 150));
  EXPECT_EQ(read_png(dir + "/unstacked-wide/masks/001.png").pixels.scalar_type(), torch::kByte);
  write_sample_pages(dir + "/huge-labels.tif", {page0 * 40000, page1}, 32, SAMPLEFORMAT_IEEEFP, false, false);
  EXPECT_NE(error_of([&] { unstack_tiff(dir + "/images.tif", dir + "/huge-labels.tif", dir + "/unstacked-huge"); })
                .find("huge-labels.tif page 0: holds label 80000: a mask holds class indices up to 65535"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir + "/unstacked-huge/masks"));

  // A dataset of TIFF masks and instance masks reads them as it reads PNGs.
  fs::create_directories(dir + "/set/images"), fs::create_directories(dir + "/set/masks"), fs::create_directories(dir + "/set/instances");
  std::ofstream(dir + "/set/classes.json") << R"({"names": ["background", "a", "b"]})";
  write_png(dir + "/set/images/s0.png", torch::zeros({2, 2, 3}, torch::kByte));
  write_samples(dir + "/set/masks/s0.tif", page0, 16, SAMPLEFORMAT_UINT, false, false);
  write_samples(dir + "/set/instances/s0.tif", wide, 32, SAMPLEFORMAT_UINT, false, false);
  const SegmentationDataset dataset(dir + "/set", "train");
  ASSERT_TRUE(dataset.has_instances());
  EXPECT_TRUE(torch::equal(dataset.read_mask(dataset.mask_path(0)), page0[0]));
  EXPECT_TRUE(torch::equal(SegmentationDataset::read_instances(dataset.instance_path(0)), wide[0]));
  write_samples(dir + "/set/masks/s0.tif", page0 * 3, 16, SAMPLEFORMAT_UINT, false, false);
  EXPECT_NE(error_of([&] { dataset.read_mask(dataset.mask_path(0)); }).find("s0.tif: label 3 at (0,1) is not a class (0..2)"), std::string::npos);
}
#endif

}  // namespace
}  // namespace fcn
