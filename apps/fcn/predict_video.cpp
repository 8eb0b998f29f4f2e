// fcn predict on videos, frame by frame (predict.h).
#include <algorithm>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>

#include <torch/torch.h>

#include "fcn/bench/benchmark.h"
#include "fcn/formats/video.h"
#include "fcn/infer/picture.h"
#include "fcn/util/progress.h"
#include "predict.h"

namespace fcn::cli {
namespace {

// A video frame's overlay: the frame with its labels blended in, enlarged as pictures are, the outline of
// each of its `objects` (--instances; undefined: none), and a legend of every class where there are at
// most 32 (so that every frame has the same size).
torch::Tensor overlay_frame(const Prediction& prediction, const torch::Tensor& frame, const torch::Tensor& objects) {
  auto picture = enlarge(prediction.overlay(frame), 256);
  if (objects.defined()) picture = with_outlines(picture, enlarge(objects, 256));
  const auto classes = static_cast<int64_t>(prediction.probs.size(0));
  if (classes > 32) return picture;
  std::vector<int64_t> all(static_cast<size_t>(classes));
  for (int64_t c = 0; c < classes; ++c) all[static_cast<size_t>(c)] = c;
  return with_legend(picture, all, prediction.class_names, prediction.palette);
}

// A video that gave no frame is an error; one cut short or damaged is segmented as far as FFmpeg
// decodes it (silently: its reader just ends or conceals), with a warning for each.
void check_frames_read(const std::string& path, const VideoReader& video, int64_t segmented) {
  const auto first_error = video.decode_error_count() > 0 ? video.decode_errors().front() : std::string();
  if (segmented == 0) fail(path, "holds no frame that could be read" + (first_error.empty() ? "" : " (FFmpeg: " + first_error + ")"));
  const int64_t listed = video.info().frames;
  if (!InterruptGuard::requested() && video.frames_read() < listed)
    std::cerr << "fcn: warning: " << printable(path) << ": " << video.frames_read() << " of the " << listed
              << " frames its header lists could be read (cut short or damaged?)\n";
  if (!first_error.empty())
    std::cerr << "fcn: warning: " << printable(path) << ": FFmpeg reported " << video.decode_error_count()
              << " decoding error(s), so frames may be damaged or missing; the first: " << first_error << "\n";
}

// The next frame --every N takes (numbers 0, N, 2N, ...) with its number; an undefined tensor after the last.
// Frames `done` says an earlier run wrote (--skip-existing) are passed over, not converted, and counted in `kept`.
std::pair<int64_t, torch::Tensor> next_taken(VideoReader& video, int64_t every, const std::function<bool(int64_t)>& done, int64_t& kept) {
  for (;;) {
    while (video.frames_read() % every != 0)
      if (!video.skip()) return {video.frames_read(), torch::Tensor()};
    const int64_t number = video.frames_read();
    if (!done || !done(number)) return {number, video.next()};
    if (!video.skip()) return {video.frames_read(), torch::Tensor()};
    ++kept;
  }
}

// --skip-existing with --overlay: the overlay video needs every frame's picture, so the video is kept whole only
// where an earlier run finished it: its overlay holds every frame --every takes of those the header lists, and
// each one's files are there. Else it is segmented again, whole.
bool finished_before(const std::string& overlay_path, const VideoInfo& info, int64_t every, const std::function<bool(int64_t)>& done) {
  if (info.frames <= 0 || !std::filesystem::is_regular_file(overlay_path)) return false;
  int64_t written = -1;
  error_of(overlay_path, [&] { written = VideoReader(overlay_path).info().frames; });
  if (written != (info.frames + every - 1) / every) return false;
  for (int64_t number = 0; number < info.frames; number += every)
    if (!done(number)) return false;
  return true;
}

// --skip-existing: whether frame n's files are under OUT (none without the flag).
std::function<bool(int64_t)> frame_done(const PredictFlags& f, const std::string& stem, int64_t classes) {
  if (!f.skip_existing) return nullptr;
  return [&f, stem, classes](int64_t number) { return outputs_written(f, outputs_of(f, numbered(stem, number), classes, false)); };
}

}  // namespace

nlohmann::json segment_video(const PredictFlags& f, const Predictor& predictor, const std::string& path,
                             const std::string& stem, bool quiet) {
  namespace fs = std::filesystem;
  VideoReader video(path);
  const auto& info = video.info();
  fs::create_directories(fs::path(f.out) / stem);
  const auto overlay_path = (fs::path(f.out) / (stem + "-overlay.mp4")).string();
  auto done = frame_done(f, stem, predictor.model().net->label_classes());
  const bool whole = done && f.overlay && finished_before(overlay_path, info, f.every, done);
  int64_t kept = whole ? (info.frames + f.every - 1) / f.every : 0;  // frames an earlier run wrote, not segmented again
  if (f.overlay) done = nullptr;  // the overlay is written again: every frame segmented
  std::unique_ptr<VideoWriter> overlay;
  Progress progress(path, info.frames, quiet || info.frames < 2);
  const InterruptGuard guard;
  Timing times;
  std::vector<int64_t> pixels;
  std::vector<std::string> names;
  std::vector<torch::Tensor> pass;
  std::vector<std::string> sources;
  std::vector<int64_t> numbers;  // each frame's number in the video
  const auto segment_pass = [&] {
    const auto predictions = predictor.pass_or_nothing(pass, sources);
    for (size_t k = 0; k < pass.size(); ++k) {
      const auto prediction = predictions.empty() ? predictor(pass[k], sources[k]) : predictions[k];
      const auto written = write_outputs(f, numbered(stem, numbers[k]), pass[k], prediction, false);
      if (f.overlay) {
        const auto picture = overlay_frame(prediction, pass[k], written.objects);
        if (!overlay) overlay = std::make_unique<VideoWriter>(overlay_path, (info.fps > 0 ? info.fps : 25.0) / f.every, picture.size(0), picture.size(1));
        overlay->write(picture);
      }
      const auto counts = prediction.class_pixels();
      names = prediction.class_names;
      pixels.resize(std::max(pixels.size(), counts.size()));
      for (size_t c = 0; c < counts.size(); ++c) pixels[c] += counts[c];
      times.ms.push_back(prediction.milliseconds);
      progress.update(numbers[k] + 1);  // frames passed, skipped ones too
    }
    pass.clear(), sources.clear(), numbers.clear();
  };
  const size_t most = predictor.passes_together() ? kImagesPerPass : 1;
  try {
    while (!InterruptGuard::requested() && !whole) {
      const auto [number, frame] = next_taken(video, f.every, done, kept);
      if (!frame.defined()) break;
      if (!pass.empty() && !joins_pass(pass[0].sizes(), pass.size(), frame.sizes(), most)) segment_pass();
      pass.push_back(frame), sources.push_back(path + " frame " + std::to_string(number)), numbers.push_back(number);
    }
  } catch (const Error&) {  // a frame that cannot be read fails the video, after the frames before it are written
    segment_pass();
    if (overlay) overlay->close();
    throw;
  }
  segment_pass();
  progress.update(whole ? info.frames : video.frames_read());
  if (overlay) overlay->close();
  const auto frames = static_cast<int64_t>(times.ms.size());
  if (!whole) check_frames_read(path, video, frames + kept);
  std::vector<std::string> files{(fs::path(f.out) / stem).string() + "/"};
  if (overlay || whole) files.push_back(overlay_path);
  return {{"video", path}, {"height", info.height}, {"width", info.width}, {"fps", info.fps},
          {"frames", frames}, {"frames_kept", kept}, {"frames_read", video.frames_read()}, {"frames_listed", info.frames}, {"every", f.every},
          {"decode_errors", video.decode_errors()},
          {"median_ms", times.median()}, {"class_pixels", named_counts(pixels, names)}, {"files", files},
          {"stopped", InterruptGuard::requested()}};
}

}  // namespace fcn::cli
