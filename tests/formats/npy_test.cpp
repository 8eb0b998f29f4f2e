// .npy: round trips, files NumPy wrote, and clear errors on broken files.
#include <filesystem>
#include <fstream>
#include <limits>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/formats/image.h"
#include "fcn/formats/npy.h"
#include "fcn/util/atomic_file.h"
#include "test_util.h"

namespace fcn {
namespace {

TEST(Npy, RoundTripsEveryDtypeAndRank) {
  const std::string path = test::temp_dir() + "/roundtrip.npy";
  for (const auto& t : {torch::randn({2, 3, 4, 5}), torch::arange(7, torch::kLong), torch::randint(0, 255, {3, 2}).to(torch::kByte),
                        torch::randn({}).to(torch::kDouble)}) {
    write_npy(path, t);
    const auto back = read_npy(path);
    EXPECT_EQ(back.scalar_type(), t.scalar_type());
    EXPECT_TRUE(torch::equal(back, t));
  }
}

TEST(Npy, ReadsWhatNumPyWrote) {
  const auto x = read_npy(test::golden("fcn8s_same_input.npy"));
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{1, 3, 75, 53}));
  EXPECT_EQ(x.scalar_type(), torch::kFloat);
}

TEST(Npy, TruncatedFileIsAClearError) {
  const std::string path = test::temp_dir() + "/truncated.npy";
  write_npy(path, torch::randn({4, 4}));
  std::filesystem::resize_file(path, 100);
  const auto message = test::error_of([&] { read_npy(path); });
  EXPECT_NE(message.find(path), std::string::npos);
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  std::ofstream(path) << "not numpy";
  EXPECT_NE(test::error_of([&] { read_npy(path); }).find("not a .npy"), std::string::npos);
}

TEST(Npy, Uint16AndInt16RoundTrip) {
  const std::string path = test::temp_dir() + "/u16.npy";
  const auto values = torch::tensor({0, 1, 32767, 32768, 65535}, torch::kInt);
  write_npy_uint16(path, values);
  std::string stored;
  const auto back = parse_npy(read_file(path), path, &stored);
  EXPECT_EQ(stored, "<u2");
  EXPECT_EQ(back.scalar_type(), torch::kInt);  // widened: torch has no uint16
  EXPECT_TRUE(torch::equal(back, values));
  EXPECT_EQ(std::filesystem::file_size(path), 128u + 10u);  // the 64-byte aligned header, then 2 bytes a value
  EXPECT_NE(test::error_of([&] { write_npy_uint16(path, torch::tensor({-1})); }).find("0..65535"), std::string::npos);
  write_npy(path, torch::tensor({-32768, -1, 7}, torch::kShort));
  EXPECT_TRUE(torch::equal(parse_npy(read_file(path), path, &stored), torch::tensor({-32768, -1, 7}, torch::kShort)));
  EXPECT_EQ(stored, "<i2");
}

// An empty array whose other sides multiply past any array (the fuzzer's find: LibTorch's copy of it threw
// its own error) is refused by the shape.
TEST(Npy, EmptyShapeWithHugeSidesIsAClearError) {
  std::string header = "{'descr': '<u2', 'fortran_order': False, 'shape': (0, 1000000, 1000000), }";
  header += std::string(64 - (10 + header.size() + 1) % 64, ' ') + "\n";
  const std::string file = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header;
  const std::vector<char> bytes(file.begin(), file.end());
  EXPECT_NE(test::error_of([&] { parse_npy(bytes, "empty.npy"); }).find("empty.npy: .npy shape (0, 1000000, 1000000) is past any array"),
            std::string::npos);
}

// Images as .npy arrays: any channel count, scaled by their type as PNGs are by their depth.
TEST(Npy, ImagesOfAnyChannelCount) {
  const std::string dir = test::temp_dir();
  const auto values = torch::randint(0, 65536, {6, 5, 7}, torch::kInt);
  write_npy_uint16(dir + "/six.npy", values);
  auto image = read_image(dir + "/six.npy");
  EXPECT_EQ(image.sizes(), (std::vector<int64_t>{6, 5, 7}));
  EXPECT_TRUE(torch::equal(image, values.to(torch::kFloat).div(65535.0f)));  // as a 16-bit PNG's samples are read
  const auto bytes = torch::randint(0, 256, {5, 7}, torch::kByte);
  write_npy(dir + "/gray.npy", bytes);  // H x W: one channel
  EXPECT_TRUE(torch::equal(read_image(dir + "/gray.npy"), bytes.to(torch::kFloat).div(255.0f).unsqueeze(0)));
  const auto floats = torch::randn({2, 3, 4}, torch::kDouble);
  write_npy(dir + "/float.npy", floats);  // as stored
  EXPECT_TRUE(torch::equal(read_image(dir + "/float.npy"), floats.to(torch::kFloat)));
  write_npy(dir + "/mask.npy", torch::tensor({{true, false}}));
  EXPECT_TRUE(torch::equal(read_image(dir + "/mask.npy"), torch::tensor({{{1.0f, 0.0f}}})));
  EXPECT_TRUE(has_image_extension("scan.NPY"));
  const auto expect_error = [&](const torch::Tensor& array, const std::string& words) {
    write_npy(dir + "/bad.npy", array);
    const auto message = test::error_of([&] { read_image(dir + "/bad.npy"); });
    EXPECT_NE(message.find(dir + "/bad.npy: "), std::string::npos) << message;
    EXPECT_NE(message.find(words), std::string::npos) << message;
  };
  expect_error(torch::zeros({32, 32, 3}, torch::kByte), "is a .npy array of 32 x 32 x 3, channels last (H x W x C) by the look of it");
  expect_error(torch::zeros({65, 8, 8}, torch::kByte), "up to 64 channels");
  expect_error(torch::zeros({2, 2, 2, 2}, torch::kByte), "an image is H x W (one channel) or C x H x W");
  expect_error(torch::zeros({3, 4, 5}, torch::kInt), "holds int32 values: an image in .npy is uint8 (0..255), uint16 (0..65535)");
  expect_error(torch::zeros({3, 4, 5}, torch::kShort), "holds int16 values");
  expect_error(torch::zeros({3, 0, 5}), "is empty");
  auto nan = torch::zeros({2, 3, 4});
  nan[1][2][3] = std::numeric_limits<float>::infinity();
  expect_error(nan, "holds 1 value(s) that are not finite (NaN or infinite), the first at channel 1, row 2, column 3");
}

}  // namespace
}  // namespace fcn
