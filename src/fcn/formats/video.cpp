#include "fcn/formats/video.h"

#include <algorithm>
#include <cctype>
#include <cstdarg>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <torch/torch.h>

#include "fcn/formats/opencv_quiet.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"

#ifdef FCN_WITH_OPENCV
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
extern "C" {
#include <libavutil/log.h>
}
#endif

namespace fcn {
namespace fs = std::filesystem;
namespace {

#ifdef FCN_WITH_OPENCV
// FFmpeg's error lines while a reader opens or reads on this thread. FFmpeg's log callback is
// process-wide: fcn's keeps what comes while one of its readers works on the calling thread, and
// prints nothing itself (FFmpeg's default prints errors) unless the environment asks OpenCV for
// FFmpeg's log (OPENCV_FFMPEG_LOGLEVEL, OPENCV_FFMPEG_DEBUG): then every line goes on to FFmpeg's default.
struct FfmpegLines {
  std::vector<std::string> errors;
  // The scaler that turns a decoded frame into BGR failed: OpenCV 4.6 then hands back the previous
  // picture as this frame, which it does for every frame after the frame size changes mid-video.
  bool conversion_failed = false;
};
thread_local FfmpegLines* listening = nullptr;

void on_ffmpeg_log(void* context, int level, const char* format, va_list args) {
  if (listening != nullptr && level <= AV_LOG_ERROR) {
    char line[512];
    int prefix = 0;  // without "[h264 @ 0x...] "
    va_list copy;
    va_copy(copy, args);
    av_log_format_line(context, level, format, copy, line, sizeof line, &prefix);
    va_end(copy);
    std::string text = line;
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    const AVClass* type = context != nullptr ? *static_cast<AVClass* const*>(context) : nullptr;
    if (type != nullptr && type->item_name != nullptr && std::string(type->item_name(context)) == "swscaler")
      listening->conversion_failed = true;
    if (!text.empty()) listening->errors.push_back(text);
  }
  static const bool asked = std::getenv("OPENCV_FFMPEG_LOGLEVEL") != nullptr || std::getenv("OPENCV_FFMPEG_DEBUG") != nullptr;
  if (asked) av_log_default_callback(context, level, format, args);
}

// fcn's callback in place. OpenCV puts its own in on every open where the environment asks for
// FFmpeg's log, and only then: fcn's goes in before each open (heard there) and again after it.
void hear_ffmpeg() { av_log_set_callback(on_ffmpeg_log); }

constexpr size_t kKeptErrors = 16;
#else
[[noreturn]] void no_opencv(const std::string& path) { fail(path, "videos need fcn built with OpenCV (FCN_WITH_OPENCV)"); }
#endif

}  // namespace

const std::vector<std::string>& video_extensions() {
  static const std::vector<std::string> known = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"};
  return known;
}

bool has_video_extension(const std::string& path) {
  const auto& known = video_extensions();
  return std::find(known.begin(), known.end(), lower_extension(path)) != known.end();
}

struct VideoReader::Impl {
  std::string path;
  VideoInfo info;
  int64_t read = 0;
  std::vector<std::string> errors;  // FFmpeg's, "frame N: ...", the first kKeptErrors
  int64_t error_count = 0;
#ifdef FCN_WITH_OPENCV
  cv::VideoCapture capture;

  // FFmpeg's error lines counted, and the first kKeptErrors kept, each after `where` ("frame 3", "opening").
  void keep(const FfmpegLines& lines, const std::string& where) {
    error_count += static_cast<int64_t>(lines.errors.size());
    for (const auto& line : lines.errors)
      if (errors.size() < kKeptErrors) errors.push_back(where + ": " + printable(line));
  }

  // One frame read into `frame`, or passed over where it is null; false after the last one. FFmpeg's
  // error lines are kept; a frame FFmpeg could not convert is an error, not the previous picture again.
  bool advance(cv::Mat* frame) {
    FfmpegLines lines;
    bool got = false;
    try {
      const OpenCvQuiet quiet;
      const Listening<FfmpegLines> listen(listening, lines);
      got = frame != nullptr ? capture.read(*frame) && !frame->empty() : capture.grab();
    } catch (const cv::Exception& e) {
      fail(path, "frame " + std::to_string(read) + ": cannot decode: " + printable(first_line(e.msg)));
    }
    keep(lines, "frame " + std::to_string(read));
    if (got && lines.conversion_failed)
      fail(path, "frame " + std::to_string(read) + ": FFmpeg could not convert it to an image (" +
                     (lines.errors.empty() ? std::string("its scaler failed") : printable(lines.errors.front())) + "): does the frame size change mid-video? OpenCV's reader keeps the first size; re-encode the video at one size");
    if (got) ++read;
    return got;
  }
#endif
};

VideoReader::VideoReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  std::error_code error;
  if (!fs::exists(fs::symlink_status(path, error))) fail(path, "file not found");
  if (fs::is_directory(path, error)) fail(path, "is a folder, not a video");
#ifdef FCN_WITH_OPENCV
  hear_ffmpeg();
  auto& capture = impl_->capture;
  FfmpegLines lines;
  try {
    const OpenCvQuiet quiet;
    const Listening<FfmpegLines> listen(listening, lines);
    capture.open(path, cv::CAP_FFMPEG);
  } catch (const cv::Exception& e) {
    fail(path, "cannot open the video: " + printable(first_line(e.msg)));
  }
  const std::string heard = lines.errors.empty() ? "" : "FFmpeg: " + printable(lines.errors.front()) + "; ";
  if (!capture.isOpened()) fail(path, "cannot be opened as a video (" + heard + "not a video, damaged or cut short, or a codec this FFmpeg lacks)");
  impl_->keep(lines, "opening");
  hear_ffmpeg();
  auto& info = impl_->info;
  info.height = static_cast<int64_t>(capture.get(cv::CAP_PROP_FRAME_HEIGHT));
  info.width = static_cast<int64_t>(capture.get(cv::CAP_PROP_FRAME_WIDTH));
  check_image_size(path, info.height, info.width);
  const double fps = capture.get(cv::CAP_PROP_FPS), frames = capture.get(cv::CAP_PROP_FRAME_COUNT);
  info.fps = std::isfinite(fps) && fps > 0 && fps < 1e4 ? fps : 0;
  info.frames = std::isfinite(frames) && frames > 0 && frames < 1e12 ? static_cast<int64_t>(frames) : 0;
#else
  no_opencv(path);
#endif
}

VideoReader::~VideoReader() = default;
const VideoInfo& VideoReader::info() const { return impl_->info; }
int64_t VideoReader::frames_read() const { return impl_->read; }
const std::vector<std::string>& VideoReader::decode_errors() const { return impl_->errors; }
int64_t VideoReader::decode_error_count() const { return impl_->error_count; }

torch::Tensor VideoReader::next() {
#ifdef FCN_WITH_OPENCV
  cv::Mat frame;
  if (!impl_->advance(&frame)) return {};
  check_image_size(impl_->path, frame.rows, frame.cols);
  if (frame.depth() != CV_8U) frame.convertTo(frame, CV_8U);
  if (frame.channels() == 1) cv::cvtColor(frame, frame, cv::COLOR_GRAY2BGR);
  if (frame.channels() == 4) cv::cvtColor(frame, frame, cv::COLOR_BGRA2BGR);
  if (!frame.isContinuous()) frame = frame.clone();
  const auto bgr = torch::from_blob(frame.data, {frame.rows, frame.cols, 3}, torch::kByte);
  return bgr.flip({2}).permute({2, 0, 1}).to(torch::kFloat).div_(255.0f).contiguous();  // copies out of the Mat
#else
  no_opencv(impl_->path);
#endif
}

bool VideoReader::skip() {
#ifdef FCN_WITH_OPENCV
  return impl_->advance(nullptr);
#else
  no_opencv(impl_->path);
#endif
}

struct VideoWriter::Impl {
  std::string path, temporary;
  int64_t height = 0, width = 0, written = 0;
  int64_t pad_rows = 0, pad_columns = 0;  // odd sides padded to even ones
  bool closed = false;
#ifdef FCN_WITH_OPENCV
  cv::VideoWriter writer;
#endif
};

VideoWriter::VideoWriter(const std::string& path, double fps, int64_t height, int64_t width) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->height = height;
  impl_->width = width;
  const auto ext = lower_extension(path);
  const bool mp4 = ext == ".mp4" || ext == ".m4v" || ext == ".mov", lossless = ext == ".mkv" || ext == ".avi";
  if (!mp4 && !lossless) fail(path, "write videos as .mp4 (H.264) or .mkv (FFV1, lossless)");
  if (!std::isfinite(fps) || fps <= 0 || fps > 1000) fail(path, "frame rate must be in (0, 1000], got " + std::to_string(fps));
  check_image_size(path, height, width);
#ifdef FCN_WITH_OPENCV
  hear_ffmpeg();
  const OpenCvQuiet quiet;
  impl_->temporary = partial_path(path, ext);
  impl_->pad_rows = height % 2;  // OpenCV's FFmpeg writer crops odd sides for every codec
  impl_->pad_columns = width % 2;
  const cv::Size size(static_cast<int>(width + impl_->pad_columns), static_cast<int>(height + impl_->pad_rows));
  const std::vector<int> codecs = mp4 ? std::vector<int>{cv::VideoWriter::fourcc('a', 'v', 'c', '1'), cv::VideoWriter::fourcc('m', 'p', '4', 'v')}
                                      : std::vector<int>{cv::VideoWriter::fourcc('F', 'F', 'V', '1')};
  for (const int codec : codecs) {
    try {
      if (impl_->writer.open(impl_->temporary, cv::CAP_FFMPEG, codec, fps, size)) break;
    } catch (const cv::Exception&) {  // the next codec, else the error below
    }
  }
  if (!impl_->writer.isOpened()) {
    std::error_code error;
    fs::remove(impl_->temporary, error);
    fail(path, "cannot write the video (no FFmpeg encoder for " + ext + ", or the folder is not writable)");
  }
#else
  (void)fps;
  no_opencv(path);
#endif
}

VideoWriter::~VideoWriter() {
  if (impl_->closed) return;
#ifdef FCN_WITH_OPENCV
  const OpenCvQuiet quiet;
  impl_->writer.release();
#endif
  std::error_code error;
  fs::remove(impl_->temporary, error);
}

int64_t VideoWriter::frames_written() const { return impl_->written; }

void VideoWriter::write(const torch::Tensor& picture) {
  const auto& i = *impl_;
  if (picture.dim() != 3 || picture.size(0) != i.height || picture.size(1) != i.width || picture.size(2) != 3 ||
      picture.scalar_type() != torch::kByte)
    fail(i.path, "frame " + std::to_string(i.written) + " is " + c10::str(picture.sizes()) + " of " +
                     std::string(c10::toString(picture.scalar_type())) + "; the video's frames are [" +
                     std::to_string(i.height) + ", " + std::to_string(i.width) + ", 3] of Byte (uint8)");
#ifdef FCN_WITH_OPENCV
  const auto rgb = picture.to(torch::kCPU).contiguous();
  const cv::Mat view(static_cast<int>(i.height), static_cast<int>(i.width), CV_8UC3, rgb.data_ptr<uint8_t>());
  cv::Mat bgr;
  cv::cvtColor(view, bgr, cv::COLOR_RGB2BGR);
  if (i.pad_rows + i.pad_columns > 0)
    cv::copyMakeBorder(bgr, bgr, 0, static_cast<int>(i.pad_rows), 0, static_cast<int>(i.pad_columns), cv::BORDER_CONSTANT, cv::Scalar(0, 0, 0));
  const OpenCvQuiet quiet;
  impl_->writer.write(bgr);
  ++impl_->written;
#endif
}

void VideoWriter::close() {
  if (impl_->closed) return;
#ifdef FCN_WITH_OPENCV
  const OpenCvQuiet quiet;
  impl_->writer.release();
  // OpenCV's writer reports no failed write (a full disk): the container must open and count every frame.
  cv::VideoCapture check(impl_->temporary, cv::CAP_FFMPEG);
  const double frames = check.isOpened() ? check.get(cv::CAP_PROP_FRAME_COUNT) : -1;
  if (frames != static_cast<double>(impl_->written))  // a full disk is OutOfSpace, said by the free space left
    fail_write(impl_->path, space_error(impl_->temporary, 0),
               "cannot write the video: " + std::to_string(impl_->written) + " frames written, " +
                   (frames < 0 ? std::string("the file does not open") : std::to_string(static_cast<int64_t>(frames)) + " in the file"));
#endif
  std::error_code error;
  fs::rename(impl_->temporary, impl_->path, error);
  if (error) fail(impl_->path, "cannot write the video: " + error.message());  // the destructor removes the temporary file
  impl_->closed = true;
}

}  // namespace fcn
