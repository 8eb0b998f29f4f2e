// Test helper for tests/cli/infer_test.py: videos made from images, and what a video holds.
//   fcn_video_tool make OUT.mkv FPS IMAGE...   one frame per image (FFV1: lossless; the images' size)
//   fcn_video_tool mpeg1 OUT.mpg IMAGE...      MPEG-1 by OpenCV's own writer (25 fps), which fcn's does not
//                                              write: two such files one after the other play as one video
//   fcn_video_tool probe VIDEO                 {"frames": N, "listed": L, "fps": F, "height": H, "width": W}
//                                              (frames counted by reading; listed: as the container says)
//   fcn_video_tool frame VIDEO N OUT.png       frame N (0-based) as an RGB PNG
#include <cstdlib>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/formats/image.h"
#include "fcn/formats/png.h"
#include "fcn/formats/video.h"
#include "fcn/infer/picture.h"
#include "fcn/util/error.h"

#ifdef FCN_WITH_OPENCV
#include <opencv2/videoio.hpp>
#endif

int main(int argc, char** argv) {
  try {
    const std::string verb = argc > 2 ? argv[1] : "";
    if (verb == "make" && argc > 4) {
      const auto first = fcn::to_rgb8(fcn::read_image(argv[4]));
      fcn::VideoWriter writer(argv[2], std::atof(argv[3]), first.size(0), first.size(1));
      for (int i = 4; i < argc; ++i) writer.write(fcn::to_rgb8(fcn::read_image(argv[i])));
      writer.close();
      return 0;
    }
#ifdef FCN_WITH_OPENCV
    if (verb == "mpeg1" && argc > 3) {
      const auto first = fcn::to_rgb8(fcn::read_image(argv[3]));
      cv::VideoWriter writer(argv[2], cv::CAP_FFMPEG, cv::VideoWriter::fourcc('P', 'I', 'M', '1'), 25,
                             cv::Size(static_cast<int>(first.size(1)), static_cast<int>(first.size(0))));
      if (!writer.isOpened()) throw fcn::Error(std::string(argv[2]) + ": OpenCV's FFmpeg writes no MPEG-1");
      for (int i = 3; i < argc; ++i) {
        const auto rgb = fcn::to_rgb8(fcn::read_image(argv[i])).flip({2}).contiguous();  // OpenCV's BGR
        writer.write(cv::Mat(static_cast<int>(rgb.size(0)), static_cast<int>(rgb.size(1)), CV_8UC3, rgb.data_ptr()));
      }
      return 0;
    }
#endif
    if (verb == "probe") {
      fcn::VideoReader video(argv[2]);
      while (video.next().defined()) {
      }
      std::cout << nlohmann::json{{"frames", video.frames_read()}, {"listed", video.info().frames}, {"fps", video.info().fps}, {"height", video.info().height},
                                  {"width", video.info().width}}
                << "\n";
      return 0;
    }
    if (verb == "frame" && argc > 4) {
      fcn::VideoReader video(argv[2]);
      for (int n = std::atoi(argv[3]); n > 0; --n)
        if (!video.skip()) throw fcn::Error(std::string(argv[2]) + ": has no frame " + argv[3]);
      const auto frame = video.next();
      if (!frame.defined()) throw fcn::Error(std::string(argv[2]) + ": has no frame " + argv[3]);
      fcn::write_png(argv[4], fcn::to_rgb8(frame));
      return 0;
    }
    std::cerr << "usage: fcn_video_tool make OUT.mkv FPS IMAGE... | mpeg1 OUT.mpg IMAGE... | probe VIDEO | frame VIDEO N OUT.png\n";
    return 2;
  } catch (const fcn::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
