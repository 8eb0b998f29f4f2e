// Videos in and out, frame by frame, through OpenCV's FFmpeg backend: fcn predict segments a clip and
// writes its overlay as a video. fcn built without OpenCV (FCN_WITH_OPENCV off) refuses videos in one
// line naming the file. Frames read are images as read_image gives them; frames written are pictures
// (H x W x 3 uint8 RGB, as fcn/infer/picture.h makes them).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace fcn {

// The file extensions taken for videos (lower case, with the dot), and the check by extension.
const std::vector<std::string>& video_extensions();
bool has_video_extension(const std::string& path);

struct VideoInfo {
  int64_t height = 0, width = 0;
  double fps = 0;       // as the container says (0 where it does not)
  int64_t frames = 0;   // as the container says: an estimate for some formats (0 where unknown)
};

class VideoReader {
 public:
  // Opens the video; fcn::Error naming the file when it cannot (missing, not a video, a codec FFmpeg
  // lacks) or when its frames exceed the image limits (Limits.max_pixels, max_side).
  explicit VideoReader(const std::string& path);
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  const VideoInfo& info() const;
  // The next frame as 3 x H x W float32 RGB in [0, 1], or an undefined tensor after the last one.
  torch::Tensor next();
  // Passes over the next frame without converting it to an image (the codec still decodes what later
  // frames need); false after the last one.
  bool skip();
  // Frames passed so far, read or skipped: the index of the next frame.
  int64_t frames_read() const;
  // The error lines FFmpeg wrote while reading (damaged data: frames it concealed, dropped or
  // stopped at), as "frame 10: Invalid NAL unit size (0 > 421)", the first 16, and how many in all.
  // Lines FFmpeg's own decoding threads write are not seen. A frame FFmpeg decodes but cannot
  // convert to an image (OpenCV 4.6 keeps a video's first frame size) makes next() throw.
  const std::vector<std::string>& decode_errors() const;
  int64_t decode_error_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class VideoWriter {
 public:
  // A video of height x width frames at `fps`, its codec by extension: .mp4 H.264 (MPEG-4 Part 2 where
  // FFmpeg has no H.264 encoder), .mkv and .avi FFV1 (lossless). Odd sides are padded by one black
  // row or column (OpenCV's FFmpeg writer would crop them). Frames go to a temporary file beside `path`, renamed to it
  // by close() once it opens and holds every frame (else fcn::Error, e.g. on a full disk): a run stopped
  // midway leaves no half-written video under the name.
  VideoWriter(const std::string& path, double fps, int64_t height, int64_t width);
  ~VideoWriter();  // without close(), the temporary file is removed
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  void write(const torch::Tensor& picture);  // H x W x 3 uint8 RGB of the size given
  void close();
  int64_t frames_written() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fcn
