#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <tuple>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/formats/video.h"
#include "fcn/util/atomic_file.h"
#include "test_util.h"

#ifdef FCN_WITH_OPENCV
#include <opencv2/videoio.hpp>
#endif

using namespace fcn;
namespace fs = std::filesystem;

namespace {

void expect_names(const std::string& error, const std::string& file, const std::string& what) {
  EXPECT_NE(error.find(file), std::string::npos) << error;
  EXPECT_NE(error.find(what), std::string::npos) << error;
}

std::vector<torch::Tensor> random_frames(int n, int64_t height, int64_t width) {
  torch::manual_seed(3);
  std::vector<torch::Tensor> frames;
  for (int i = 0; i < n; ++i) frames.push_back(torch::randint(0, 256, {height, width, 3}, torch::kByte));
  return frames;
}

}  // namespace

TEST(Video, ExtensionsAndFilesThatAreNotVideos) {
  EXPECT_TRUE(has_video_extension("a/clip.MP4"));
  EXPECT_TRUE(has_video_extension("clip.mkv"));
  EXPECT_FALSE(has_video_extension("clip.png"));
  EXPECT_FALSE(has_video_extension("mp4"));
  const std::string dir = test::temp_dir() + "/video_errors";
  fs::create_directories(dir + "/folder.mp4");
  std::ofstream(dir + "/text.mp4") << "not a video at all\n";
#ifdef FCN_WITH_OPENCV
  expect_names(test::error_of([&] { VideoReader(dir + "/missing.mp4"); }), "missing.mp4", "file not found");
  expect_names(test::error_of([&] { VideoReader(dir + "/folder.mp4"); }), "folder.mp4", "is a folder");
  expect_names(test::error_of([&] { VideoReader(dir + "/text.mp4"); }), "text.mp4", "cannot be opened as a video");
  expect_names(test::error_of([&] { VideoWriter(dir + "/out.gif", 10, 8, 8); }), "out.gif", "as .mp4 (H.264) or .mkv");
  expect_names(test::error_of([&] { VideoWriter(dir + "/out.mkv", 0, 8, 8); }), "out.mkv", "frame rate must be in (0, 1000]");
  expect_names(test::error_of([&] { VideoWriter(dir + "/out.mkv", 10, 100000, 8); }), "out.mkv", "65536 px a side");
  VideoWriter writer(dir + "/sized.mkv", 10, 8, 8);
  expect_names(test::error_of([&] { writer.write(torch::zeros({8, 9, 3}, torch::kByte)); }), "sized.mkv",
               "frame 0 is [8, 9, 3] of Byte; the video's frames are [8, 8, 3] of Byte (uint8)");
#else
  expect_names(test::error_of([&] { VideoReader(dir + "/text.mp4"); }), "text.mp4", "built with OpenCV");
  expect_names(test::error_of([&] { VideoWriter(dir + "/out.mkv", 10, 8, 8); }), "out.mkv", "built with OpenCV");
#endif
}

#ifdef FCN_WITH_OPENCV
// FFV1 is lossless: what is written is read back to the bit, at the frame rate given (an odd side
// gains one black column).
// Until close() the frames go to a temporary file: the name appears only then, and a writer dropped
// without close() leaves nothing behind.
TEST(Video, LosslessRoundTripAndNoHalfWrittenFile) {
  const std::string dir = test::fresh_dir("video_round_trip");
  const auto frames = random_frames(4, 30, 41);
  {
    VideoWriter writer(dir + "/clip.mkv", 12.5, 30, 41);
    for (const auto& frame : frames) writer.write(frame);
    EXPECT_FALSE(fs::exists(dir + "/clip.mkv"));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);  // the temporary file
    writer.close();
    EXPECT_EQ(writer.frames_written(), 4);
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);  // the video alone
  VideoReader reader(dir + "/clip.mkv");
  EXPECT_EQ(reader.info().height, 30);
  EXPECT_EQ(reader.info().width, 42);
  EXPECT_DOUBLE_EQ(reader.info().fps, 12.5);
  EXPECT_EQ(reader.info().frames, 4);
  for (const auto& frame : frames) {
    const auto read = reader.next();
    ASSERT_TRUE(read.defined());
    ASSERT_EQ(read.sizes(), (std::vector<int64_t>{3, 30, 42}));  // C x H x W float, as read_image gives
    const auto picture = read.mul(255).round().to(torch::kByte).permute({1, 2, 0});
    EXPECT_TRUE(torch::equal(picture.slice(1, 0, 41), frame));
    EXPECT_EQ(picture.select(1, 41).sum().item<int64_t>(), 0);
  }
  EXPECT_FALSE(reader.next().defined());
  EXPECT_EQ(reader.frames_read(), 4);
  VideoReader skipping(dir + "/clip.mkv");  // frames passed over count; the next one read is the one after them
  EXPECT_TRUE(skipping.skip());
  EXPECT_TRUE(skipping.skip());
  EXPECT_EQ(skipping.frames_read(), 2);
  const auto third = skipping.next().mul(255).round().to(torch::kByte).permute({1, 2, 0});
  EXPECT_TRUE(torch::equal(third.slice(1, 0, 41), frames[2]));
  EXPECT_TRUE(skipping.skip());
  EXPECT_FALSE(skipping.skip());
  EXPECT_FALSE(skipping.next().defined());
  EXPECT_EQ(skipping.frames_read(), 4);

  {
    VideoWriter dropped(dir + "/dropped.mkv", 10, 30, 41);
    dropped.write(frames[0]);
  }
  EXPECT_FALSE(fs::exists(dir + "/dropped.mkv"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

// H.264 (lossy) for people to watch: every frame there, odd sides padded to even ones, a smooth
// picture close to what was written.
TEST(Video, Mp4ForWatching) {
  const std::string dir = test::fresh_dir("video_mp4");
  const auto ramp = torch::arange(0, 45, torch::kFloat).mul(5).view({1, 45, 1}).expand({33, 45, 3}).to(torch::kByte).contiguous();
  VideoWriter writer(dir + "/clip.mp4", 25, 33, 45);
  for (int i = 0; i < 6; ++i) writer.write(ramp);
  writer.close();
  VideoReader reader(dir + "/clip.mp4");
  EXPECT_EQ(reader.info().height, 34);
  EXPECT_EQ(reader.info().width, 46);
  EXPECT_DOUBLE_EQ(reader.info().fps, 25);
  int64_t frames = 0;
  for (auto frame = reader.next(); frame.defined(); frame = reader.next(), ++frames) {
    const auto picture = frame.mul(255).permute({1, 2, 0}).slice(0, 0, 33).slice(1, 0, 45);
    EXPECT_LT(picture.sub(ramp.to(torch::kFloat)).abs().mean().item<float>(), 4.0f);
  }
  EXPECT_EQ(frames, 6);
  // Cut short before its index (an MP4's moov atom comes last): the error quotes FFmpeg's reason, heard
  // while the reader opens (OpenCV's own log callback would have kept it).
  const auto bytes = read_file(dir + "/clip.mp4");
  std::ofstream(dir + "/cut.mp4", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  expect_names(test::error_of([&] { VideoReader(dir + "/cut.mp4"); }), "cut.mp4",
               "cannot be opened as a video (FFmpeg: moov atom not found; ");
}

// Two MPEG-1 streams of different frame sizes one after the other (a concatenated program stream
// plays as one video): OpenCV 4.6's reader keeps converting at the first size, fails, and hands back
// the last good picture for every frame after the change. fcn's reader hears FFmpeg's scaler fail and
// stops with an error naming the frame, instead of segmenting stale pictures.
TEST(Video, FrameSizeChangingMidVideoIsAnErrorNotStalePictures) {
  const std::string dir = test::fresh_dir("video_size_change");
  for (const auto& [name, height, width] : {std::tuple{"a.mpg", 32, 32}, std::tuple{"b.mpg", 48, 64}}) {
    cv::VideoWriter writer(dir + "/" + name, cv::CAP_FFMPEG, cv::VideoWriter::fourcc('P', 'I', 'M', '1'), 25, cv::Size(width, height));
    ASSERT_TRUE(writer.isOpened()) << "this OpenCV's FFmpeg writes no MPEG-1";
    for (int i = 0; i < 5; ++i) writer.write(cv::Mat(height, width, CV_8UC3, cv::Scalar(i * 40, 100, 50)));
  }
  {
    std::ofstream both(dir + "/both.mpg", std::ios::binary);
    both << std::ifstream(dir + "/a.mpg", std::ios::binary).rdbuf() << std::ifstream(dir + "/b.mpg", std::ios::binary).rdbuf();
  }
  VideoReader reader(dir + "/both.mpg");
  const auto error = test::error_of([&] {
    for (auto frame = reader.next(); frame.defined(); frame = reader.next()) EXPECT_EQ(frame.size(1), 32);
  });
  expect_names(error, "both.mpg: frame " + std::to_string(reader.frames_read()) + ": ", "FFmpeg could not convert it to an image");
  expect_names(error, "both.mpg", "does the frame size change mid-video?");
  EXPECT_GE(reader.frames_read(), 3);  // the first stream's frames (MPEG-1's reordering may hold one back)
  EXPECT_LE(reader.frames_read(), 5);
}

// Damaged data is decoded as far as FFmpeg can, and what FFmpeg said about it is kept, naming the frame.
TEST(Video, DecodingErrorsAreKeptWithTheirFrame) {
  const std::string dir = test::fresh_dir("video_damaged");
  {
    VideoWriter writer(dir + "/clip.mp4", 25, 64, 64);
    for (const auto& frame : random_frames(30, 64, 64)) writer.write(frame);
    writer.close();
  }
  std::string bytes;
  {
    std::ifstream in(dir + "/clip.mp4", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  VideoReader whole(dir + "/clip.mp4");
  while (whole.next().defined()) {
  }
  EXPECT_EQ(whole.frames_read(), 30);
  EXPECT_EQ(whole.decode_error_count(), 0);
  // H.264 in MP4 is length-prefixed NAL units in the 'mdat' box: the middle unit's length set to 0.
  const auto be32 = [&](size_t at) {
    return static_cast<size_t>(static_cast<unsigned char>(bytes[at])) << 24 | static_cast<size_t>(static_cast<unsigned char>(bytes[at + 1])) << 16 |
           static_cast<size_t>(static_cast<unsigned char>(bytes[at + 2])) << 8 | static_cast<unsigned char>(bytes[at + 3]);
  };
  const size_t box = bytes.find("mdat") - 4, end = box + be32(box);
  std::vector<size_t> units;
  for (size_t at = box + 8; at + 4 <= end; at += 4 + be32(at)) units.push_back(at);
  ASSERT_GT(units.size(), 20u);
  std::fill_n(bytes.begin() + static_cast<std::ptrdiff_t>(units[units.size() / 2]), 4, '\0');
  std::ofstream(dir + "/damaged.mp4", std::ios::binary) << bytes;
  VideoReader damaged(dir + "/damaged.mp4");
  while (damaged.next().defined()) {
  }
  ASSERT_GT(damaged.decode_error_count(), 0) << damaged.frames_read() << " frames read";
  EXPECT_EQ(damaged.decode_errors().front().rfind("frame ", 0), 0u) << damaged.decode_errors().front();
  EXPECT_LE(damaged.decode_errors().size(), 16u);
}
#endif
