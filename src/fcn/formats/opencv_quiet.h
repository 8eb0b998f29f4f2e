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
// OpenCV's log level to errors, once per process. (FFmpeg's own lines, "moov atom not found", go to
// fcn's log callback, formats/video.cpp, which keeps them as errors rather than printing them.)
void quiet_opencv();
#endif

}  // namespace fcn
