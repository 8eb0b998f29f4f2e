// What formats/'s image, video and NIfTI readers share (internal to formats/): a path's extension, lower
// case, and OpenCV's own log lines silenced, since fcn reports every failure itself as one line
// naming the file; and the scope in which the error hooks they install listen.
#pragma once

#include <string>

namespace fcn {

// The extension with its dot, lower case: "scan.PNG" -> ".png"; "" where there is none.
std::string lower_extension(const std::string& path);

// While alive, points a thread-local `sink` at `lines`: the error hooks formats/ installs under OpenCV
// (FFmpeg's log, libtiff's error handler) keep only what arrives during fcn's own call on this thread.
template <class Lines>
class Listening {
 public:
  Listening(Lines*& sink, Lines& lines) : sink_(sink) { sink_ = &lines; }
  ~Listening() { sink_ = nullptr; }
  Listening(const Listening&) = delete;
  Listening& operator=(const Listening&) = delete;

 private:
  Lines*& sink_;
};

#ifdef FCN_WITH_OPENCV
// While alive, OpenCV is quiet on this thread: its failure lines would print before fcn's one line on the
// same failure. OpenCV 4.6's decoders write them to std::cerr ("imdecode_(''): can't read data: ..."):
// what this thread writes there is kept for heard() instead (std::cerr's buffer is wrapped once per
// process; other threads' writes pass through). Later OpenCVs log them: the log level is silent while
// any scope is alive, and the level there was before (the host program's, or OpenCV's default) comes
// back when the last one ends. (FFmpeg's own lines, "moov atom not found", go to fcn's log callback,
// formats/video.cpp, which keeps them as errors rather than printing them.)
class OpenCvQuiet {
 public:
  OpenCvQuiet();
  ~OpenCvQuiet();
  OpenCvQuiet(const OpenCvQuiet&) = delete;
  OpenCvQuiet& operator=(const OpenCvQuiet&) = delete;

  // The reason in the first line OpenCV wrote to std::cerr in this scope ("Unexpected end of input
  // stream"), printable; "" where it wrote none.
  std::string heard() const;

 private:
  std::string lines_;
  std::string* outer_;
};
#endif

}  // namespace fcn
