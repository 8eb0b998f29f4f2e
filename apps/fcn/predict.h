// fcn predict's parts that are not the Segmenter (cmd_predict.cpp): its flags, what it writes for one
// image and how it names it (predict_outputs.cpp), and videos frame by frame (predict_video.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "commands.h"
#include "fcn/infer/predictor.h"
#include "fcn/util/error.h"

namespace fcn::cli {

struct PredictFlags {
  std::string model, out, device = "cpu", probs, dtype = "fp32", window;
  std::vector<std::string> inputs;
  InferenceFlags inference;
  std::vector<int> threads;
  bool overlay = false, json = false, quiet = false, label_stack = false, skip_existing = false, instances = false;
  int64_t every = 1;  // videos: every Nth frame
  int64_t min_object = 1;  // --instances: the fewest pixels an object has
  int connectivity = 26;   // --connectivity: objects through a volume 26-, 18- or 6-connected; in a plane 4-connected for 6, else 8
  PredictOptions options;
  VolumeWindow intensities;  // --window: NIfTI voxels mapped to 0..1 (values or percentiles; else each volume's own range)
  std::string largest;       // --largest: "all" or classes (numbers or names)
  std::optional<std::vector<int64_t>> largest_classes;  // parsed: empty for all; none without the flag
  std::string spacing;       // --spacing: MM, X,Y or "none" (NIfTI slices as stored); default: the model's pixels
  std::optional<std::array<double, 2>> pixel_mm;  // parsed MM or X,Y
  std::string orient;        // --orient: RAS (any orientation code) or "stored"; default: the model's
  nlohmann::json shaping = nlohmann::json::object();  // the flags given that shape a mask's content (shaping_flags)
};

// The flags given to `cmd` (fcn predict) that shape the content of what it writes, with their values: --dtype, --tta,
// --tile, --threshold, --largest, --window, ... (not those that choose which files are written, such as --overlay,
// or how fast, such as --threads).
nlohmann::json shaping_flags(const CLI::App& cmd);
// OUT/.fcn-predict.json, the record of what made the files in OUT: the model (path, bytes, CRC-32, and its class
// names, which fcn eval --predictions checks against the dataset's) and the shaping flags. With --skip-existing, an
// earlier run's record that differs is an fcn::Error naming what differs, as its files would be kept beside ones of
// another kind; then (with or without) this run's record is written.
void record_outputs(const PredictFlags& f, const std::vector<std::string>& class_names);
// FOLDER/.fcn-predict.json: where record_outputs keeps the record of a predict's output folder.
std::string record_path(const std::string& folder);

// The output stem an input gets next: its file's stem (scan.nii.gz: scan), or stem_2, stem_3, ...
// where an earlier input took it (two inputs may share a file name in different folders).
std::string free_stem(const std::string& path, const std::set<std::string>& used);
// free_stem, taken.
std::string unique_stem(const std::string& path, std::set<std::string>& used);
// OUT/STEM/000042's name under OUT: the outputs of frame or page `number` of a video or stack.
std::string numbered(const std::string& stem, int64_t number);
// How an image's label file is named after its stem: a palette PNG, or past 256 classes an int32 .npy.
std::string label_suffix(int64_t classes);

// --instances: the objects of a prediction — each class's 8-connected components (4-connected where `connectivity`
// is 6; background, class 0, has none) of at least `min_pixels`, numbered 1..N class by class — and how many each
// class has.
std::pair<torch::Tensor, std::vector<int64_t>> objects_of(const Prediction& prediction, int64_t min_pixels, int connectivity = 26);

// The files write_outputs writes for `stem` with `overlay`, `labels` and `probs`, under OUT, each as its
// alternatives (--instances: a PNG, or an .npy past 65535 objects): what --skip-existing looks for.
std::vector<std::vector<std::string>> outputs_of(const PredictFlags& f, const std::string& stem, int64_t classes, bool overlay,
                                                 bool labels = true, bool probs = true);
// Whether every one of `files` (outputs_of's) is under OUT, as one of its alternatives.
bool outputs_written(const PredictFlags& f, const std::vector<std::vector<std::string>>& files);

// What write_outputs wrote: the files; with --instances the objects (H x W ids, 0: none) and each class's count.
struct Written {
  std::vector<std::string> files;
  torch::Tensor objects;
  std::vector<int64_t> per_class;
};

// Writes the outputs asked for: the overlay picture where `overlay`, the label file where `labels`
// (and --instances' file: a stack page's go to the stack's files with its labels), --probs where `probs`.
Written write_outputs(const PredictFlags& f, const std::string& stem, const torch::Tensor& image, const Prediction& prediction,
                      bool overlay, bool labels = true, bool probs = true);

// Pixels (or objects) per class as --json reports them: by class name, classes with none left out.
nlohmann::json named_counts(const std::vector<int64_t>& pixels, const std::vector<std::string>& names);

// Runs `body` for the image at `path`: "" if it succeeds, else the one-line error naming the file.
template <typename F>
std::string error_of(const std::string& path, F&& body) {
  try {
    body();
    return "";
  } catch (const fcn::Unwritable&) {  // every later write would fail too: the run stops (run_predict)
    throw;
  } catch (const fcn::Error& e) {
    return cli_message(e.subject(), e.message());
  } catch (const c10::Error& e) {
    return path + ": " + first_line(e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return path + ": out of memory segmenting this image (try --tile 512)";
  }
}

// A video, frame by frame as images are segmented (up to 8 frames a pass; with --every N, frames 0, N,
// 2N, ...): the frames' masks (and --probs) in OUT/NAME/ named by frame number, 000000.png, ...; with
// --overlay, OUT/NAME-overlay.mp4 at the video's frame rate / N (each frame's objects outlined with
// --instances). Ctrl-C stops at the frame reached and keeps what was written. --skip-existing: frames whose
// files an earlier run wrote are passed over, so a stopped video goes on where it stopped; with --overlay, whose
// video needs every frame, a finished video is kept whole and any other segmented again. Returns what --json
// reports ("frames" segmented, "frames_kept" from an earlier run).
nlohmann::json segment_video(const PredictFlags& f, const Predictor& predictor, const std::string& path, const std::string& stem,
                             bool quiet);

}  // namespace fcn::cli
