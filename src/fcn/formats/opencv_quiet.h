// What formats/'s image and video readers share (internal to formats/): a path's extension, lower
// case, and OpenCV's own log lines silenced, since fcn reports every failure itself as one line
// naming the file.
#pragma once

#include <string>

namespace fcn {

// The extension with its dot, lower case: "scan.PNG" -> ".png"; "" where there is none.
std::string lower_extension(const std::string& path);

#ifdef FCN_WITH_OPENCV
// OpenCV's log level to errors, once per process; with `ffmpeg`, FFmpeg's own lines too ("moov atom
// not found": OPENCV_FFMPEG_LOGLEVEL=-8, unless the environment sets it already).
void quiet_opencv(bool ffmpeg = false);
#endif

}  // namespace fcn
