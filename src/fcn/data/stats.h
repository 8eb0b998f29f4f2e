// What a dataset holds, in numbers: per-class pixel counts, the class weights derived from them,
// the input statistics a fresh model normalises with, and the one-pass check behind
// `fcn data check` (every problem of every split, with the histogram of what could be read).
#pragma once

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "fcn/data/dataset.h"
#include "fcn/models/preprocess.h"

namespace fcn {

// Per-class pixel counts over a split (ignore excluded).
torch::Tensor class_histogram(const SegmentationDataset& dataset);
// Median frequency balancing (Eigen & Fergus): weight_c = median(freq) / freq_c; absent classes get 0.
torch::Tensor median_frequency_weights(const torch::Tensor& histogram);
// Per-channel mean/std of a split's images (up to `max_images`, read through image(): kept ones are not
// decoded again, and without a store the masks are not read), for a fresh model's normalisation.
Normalization dataset_normalization(const SegmentationDataset& dataset, int64_t channels, size_t max_images = 500);

// What `fcn data check` reports: every problem (file + what is wrong), per-class pixel counts
// and the weights median-frequency balancing would use.
struct DatasetReport {
  std::vector<std::string> splits;
  std::vector<int64_t> split_sizes;
  std::vector<std::string> errors;
  std::vector<std::string> warnings;  // nothing wrong with a file, but worth a look (train and val sharing images)
  std::vector<std::string> class_names;
  std::string classes_source;        // SegmentationDataset::classes_source
  std::vector<std::string> channel_names;  // channels.json's (none: gray or RGB images)
  // The images' channel counts as read: count -> how many images of it and the first of them. Counts that
  // differ where one is past a PNG's 4 are an error (a net takes one count; gray beside RGB is fine).
  std::map<int64_t, std::pair<int64_t, std::string>> image_channels;
  std::optional<std::array<double, 2>> pixel_mm;  // slicing.json's: the slices' pixels in mm (none: as stored)
  std::string slice_axes;                         // slicing.json's: the orientation volumes were cut in ("": as stored)
  torch::Tensor histogram;           // over every readable mask of every split
  std::vector<torch::Tensor> split_histograms;  // the same per split, as `splits` (undefined: not opened)
  torch::Tensor suggested_weights;   // median_frequency_weights(histogram)
};
// Reads every image and mask of every split (or just `split`) and collects all problems.
// `progress(done, total)` after each pair, per split (done restarts at 1).
DatasetReport check_dataset(const std::string& dir, const std::string& split = "",
                            const std::function<void(int64_t, int64_t)>& progress = {});

// What a training run reads: the train split, and val where `dir` has one
// (ImageSets/Segmentation/val.txt, val/ or splits/val.txt).
struct TrainingData {
  std::optional<SegmentationDataset> train, val;  // train unset only when the report says why
  DatasetReport report;                           // with check: check_dataset's report of the two splits
};
// Opens train (and val), each keeping up to `keep_bytes` of decoded samples (keep_decoded). With
// `check`, every pair is read first, through these same datasets: check_dataset's one pass is then
// also the first epoch's decoding (a split within its budget reads no file again), and a problem,
// a missing file too, is listed in `report` instead of thrown. Without it, nothing is read yet and
// a missing file throws as SegmentationDataset's constructor does.
TrainingData open_training_data(const std::string& dir, size_t keep_bytes, bool check,
                                const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace fcn
