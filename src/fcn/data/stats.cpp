#include "fcn/data/stats.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <torch/torch.h>

#include "fcn/data/stacks.h"
#include "fcn/formats/image.h"
#include "fcn/models/preprocess.h"
#include "fcn/util/error.h"
#include "fcn/util/prefetch.h"
#include "fcn/util/threads.h"

namespace fcn {

torch::Tensor class_histogram(const SegmentationDataset& dataset) {
  auto histogram = torch::zeros({dataset.num_classes()}, torch::kLong);
  for (size_t i = 0; i < dataset.size(); ++i) {
    const auto labels = dataset.read_mask(dataset.mask_path(i)).flatten();
    histogram += torch::bincount(labels.masked_select(labels != kIgnoreLabel), {}, dataset.num_classes()).to(torch::kLong);
  }
  return histogram;
}

torch::Tensor median_frequency_weights(const torch::Tensor& histogram) {
  const auto counts = histogram.to(torch::kDouble);
  const auto present = counts > 0;
  if (!present.any().item<bool>()) return torch::ones_like(counts).to(torch::kFloat);
  const auto frequency = counts / counts.sum();
  const double median = frequency.masked_select(present).median().item<double>();
  return torch::where(present, median / frequency.clamp_min(1e-12), torch::zeros_like(frequency)).to(torch::kFloat);
}

namespace {

// "a, b, c, ...": the first three of `names`, for a warning about many files.
std::string first_names(const std::vector<std::string>& names) {
  std::string text;
  for (size_t i = 0; i < std::min<size_t>(names.size(), 3); ++i) text += (i > 0 ? ", " : "") + names[i];
  return text + (names.size() > 3 ? ", ..." : "");
}

// A warning where images carry an EXIF orientation: fcn trains on the pixels as stored, while the
// labelling tool likely showed them turned, so their masks may not line up.
void warn_turned(const SegmentationDataset& dataset, DatasetReport& report) {
  std::vector<std::string> turned;
  std::string first;
  for (size_t i = 0; i < dataset.size(); ++i)
    if (const int orientation = exif_orientation(dataset.image_path(i)); orientation != 1) {
      if (turned.empty()) first = orientation_words(orientation);
      turned.push_back(dataset.id(i));
    }
  if (turned.empty()) return;
  report.warnings.push_back(dataset.dir() + ": split '" + dataset.split() + "': " + std::to_string(turned.size()) + " of " +
                            std::to_string(dataset.size()) + " images carry an EXIF orientation (" + first_names(turned) +
                            "; the first shown " + first + " by viewers): fcn reads their pixels as stored, as PyTorch and PIL do, so "
                            "a mask drawn on the turned view does not line up; turn the files (exiftran -ai) or look at a mask over its image");
}

// An error where the images of the splits checked hold different channel counts and one is past a PNG's 4 (a .npy
// array's or a multispectral TIFF's bands): a net takes one count. Said once, after the last split.
void mixed_channels(DatasetReport& report) {
  const auto& counts = report.image_channels;
  if (counts.size() < 2 || counts.rbegin()->first <= 4) return;
  std::string text;
  for (const auto& [channels, seen] : counts)
    text += (text.empty() ? "" : ", ") + std::to_string(seen.first) + " of " + std::to_string(channels) + " channel(s) (" + seen.second + ")";
  report.errors.push_back("images of different channel counts: " + text + ": a net takes one count (name them in channels.json)");
}

// One opened split of check_dataset: every pair read through get(), its problems and mask histogram added.
void check_samples(const SegmentationDataset& dataset, DatasetReport& report,
                   const std::function<void(int64_t, int64_t)>& progress) {
  report.split_sizes.push_back(static_cast<int64_t>(dataset.size()));
  if (report.class_names.empty()) {
    report.class_names = dataset.class_names();
    report.classes_source = dataset.classes_source();
    report.channel_names = dataset.channel_names();
    report.pixel_mm = dataset.pixel_mm();
    report.slice_axes = dataset.slice_axes();
    report.histogram = torch::zeros({dataset.num_classes()}, torch::kLong);
  }
  auto histogram = torch::zeros({dataset.num_classes()}, torch::kLong);
  int64_t read = 0;
  // Pairs are decoded on every CPU (get() is thread-safe) and taken in order here, so the report
  // (problems in file order, the histogram) is the one a single thread would write.
  const int64_t size = static_cast<int64_t>(dataset.size());
  const int64_t workers = size > 1 ? std::min<int64_t>(available_cpus(), 8) : 0;
  Prefetcher<std::pair<torch::Tensor, int64_t>> counts(0, size, workers, 4 * workers, [&](int64_t i) {
    if (workers > 0) single_threaded_kernels_in_this_thread();  // a decoding thread: no OpenMP team of its own
    const auto sample = dataset.get(static_cast<size_t>(i));
    const auto labels = sample.mask.flatten();
    return std::make_pair(torch::bincount(labels.masked_select(labels != kIgnoreLabel), {}, dataset.num_classes()).to(torch::kLong),
                          sample.image.size(0));
  });
  for (size_t i = 0; i < dataset.size(); ++i) {
    try {
      const auto [pixels, channels] = counts.next();
      histogram += pixels;
      auto& seen = report.image_channels[channels];
      if (seen.first++ == 0) seen.second = dataset.image_path(i);
      ++read;
    } catch (const Error& e) {
      report.errors.push_back(e.what());
    } catch (const std::exception& e) {  // e.g. out of memory on one huge file: reported, the rest still checked
      report.errors.push_back(dataset.image_path(i) + ": " + first_line(e.what()));
    }
    if (progress) progress(static_cast<int64_t>(i + 1), static_cast<int64_t>(dataset.size()));
  }
  warn_turned(dataset, report);
  report.split_histograms.push_back(histogram);
  if (histogram.sizes() == report.histogram.sizes()) report.histogram += histogram;  // splits of one class table
  const int64_t labelled = histogram.sum().item<int64_t>();
  if (read > 0 && labelled == 0)
    report.errors.push_back(dataset.dir() + ": split '" + dataset.split() + "': every mask pixel is void (255): nothing to train or evaluate on");
}

// Opens `split` listing its missing files in the report (a split that cannot be opened at all too),
// then checks its pairs; unset when it could not be opened.
std::optional<SegmentationDataset> open_checked(const std::string& dir, const std::string& split, size_t keep_bytes,
                                                DatasetReport& report, const std::function<void(int64_t, int64_t)>& progress) {
  report.splits.push_back(split);
  std::optional<SegmentationDataset> dataset;
  try {
    dataset.emplace(dir, split, &report.errors);  // missing files are listed, all of them
  } catch (const Error& e) {
    report.split_sizes.push_back(0);
    report.split_histograms.emplace_back();
    report.errors.push_back(e.what());
    return std::nullopt;
  }
  dataset->keep_decoded(keep_bytes);
  check_samples(*dataset, report, progress);
  return dataset;
}

// A warning where train and val hold the same image files: validation would score images the net
// trains on (as when SBD's train overlaps VOC's val).
void warn_overlap(const std::optional<SegmentationDataset>& train, const std::optional<SegmentationDataset>& val,
                  DatasetReport& report) {
  if (!train || !val) return;
  const auto file = [](const std::string& path) {  // one name per file, through links and "..": the canonical path
    std::error_code error;
    const auto canonical = std::filesystem::weakly_canonical(path, error);
    return error ? path : canonical.string();
  };
  std::set<std::string> trained;
  for (size_t i = 0; i < train->size(); ++i) trained.insert(file(train->image_path(i)));
  std::vector<std::string> shared;
  for (size_t i = 0; i < val->size(); ++i)
    if (trained.count(file(val->image_path(i))) != 0) shared.push_back(val->id(i));
  if (shared.empty()) return;
  report.warnings.push_back(train->dir() + ": train and val share " + std::to_string(shared.size()) + " of val's " +
                            std::to_string(val->size()) + " images (" + first_names(shared) +
                            "): validation scores images the net trains on");
}

// A warning where a folder of pairs with split lists (splits/*.txt) has pairs that no list names:
// they are neither trained nor validated on.
void warn_unlisted(const std::string& dir, const std::set<std::string>& listed, DatasetReport& report) {
  if (!std::filesystem::is_directory(std::filesystem::path(dir) / "images") ||
      !std::filesystem::is_directory(std::filesystem::path(dir) / "splits"))
    return;
  std::vector<std::string> unlisted;
  try {
    const SegmentationDataset all(dir, "all");
    for (size_t i = 0; i < all.size(); ++i)
      if (listed.count(all.id(i)) == 0) unlisted.push_back(all.id(i));
  } catch (const Error&) {
    return;  // the splits' own problems are in the report already
  }
  if (unlisted.empty()) return;
  report.warnings.push_back(dir + ": " + std::to_string(unlisted.size()) + (unlisted.size() == 1 ? " pair is" : " pairs are") + " in no split list (" +
                            first_names(unlisted) + "): neither trained nor validated on");
}

void suggest_weights(DatasetReport& report) {
  if (report.histogram.defined()) report.suggested_weights = median_frequency_weights(report.histogram);
}

// For a folder of NIfTI volumes given where a dataset folder belongs: the command that makes one of it.
std::string volumes_hint(const std::string& dir) {
  if (!is_volume_folder(dir)) return "";
  return "; it holds NIfTI volumes: fcn data unstack " + dir + " --masks LABEL_VOLUMES --out DATASET makes a dataset of their slices";
}

}  // namespace

DatasetReport check_dataset(const std::string& dir, const std::string& only_split,
                            const std::function<void(int64_t, int64_t)>& progress) {
  DatasetReport report;
  if (const auto problem = dataset_folder_problem(dir); !problem.empty()) {
    report.errors.push_back(dir + ": " + problem);
    return report;
  }
  const auto splits = only_split.empty() ? dataset_splits(dir) : std::vector<std::string>{only_split};
  if (splits.empty()) {
    report.errors.push_back(dir + ": no splits found (neither ImageSets/Segmentation/*.txt nor images/ + masks/)" + volumes_hint(dir));
    return report;
  }
  std::optional<SegmentationDataset> train, val;
  std::set<std::string> listed;  // the ids the splits name
  for (const auto& split : splits) {
    auto opened = open_checked(dir, split, 0, report, progress);
    for (size_t i = 0; opened && i < opened->size(); ++i) listed.insert(opened->id(i));
    if (split == "train") train = std::move(opened);
    if (split == "val") val = std::move(opened);
  }
  mixed_channels(report);
  warn_overlap(train, val, report);
  if (only_split.empty()) warn_unlisted(dir, listed, report);
  suggest_weights(report);
  return report;
}

TrainingData open_training_data(const std::string& dir, size_t keep_bytes, bool check,
                                const std::function<void(int64_t, int64_t)>& progress) {
  TrainingData data;
  const auto splits = dataset_splits(dir);
  const bool has_val = std::find(splits.begin(), splits.end(), "val") != splits.end();
  if (check) {
    data.train = open_checked(dir, "train", keep_bytes, data.report, progress);
    if (has_val) data.val = open_checked(dir, "val", keep_bytes, data.report, progress);
    mixed_channels(data.report);
    warn_overlap(data.train, data.val, data.report);
    // Pairs added after `fcn data split` are in no list: trained without them, said as data check says it.
    std::set<std::string> listed;
    for (const auto* opened : {&data.train, &data.val})
      for (size_t i = 0; opened->has_value() && i < (*opened)->size(); ++i) listed.insert((*opened)->id(i));
    for (const auto& split : splits) {
      if (split == "train" || split == "val") continue;  // read above
      try {
        const SegmentationDataset named(dir, split);  // lists only: nothing is decoded
        for (size_t i = 0; i < named.size(); ++i) listed.insert(named.id(i));
      } catch (const Error&) {  // a list's own problems are the check's
      }
    }
    warn_unlisted(dir, listed, data.report);
    suggest_weights(data.report);
    return data;
  }
  data.train.emplace(dir, "train");
  data.train->keep_decoded(keep_bytes);
  if (has_val) {
    data.val.emplace(dir, "val");
    data.val->keep_decoded(keep_bytes);
  }
  return data;
}

Normalization dataset_normalization(const SegmentationDataset& dataset, int64_t channels, size_t max_images) {
  const size_t count = std::min(dataset.size(), max_images);
  auto sum = torch::zeros({channels}, torch::kDouble), sum_sq = torch::zeros({channels}, torch::kDouble);
  double pixels = 0;
  for (size_t i = 0; i < count; ++i) {
    const auto image = adapt_channels(dataset.image(i), channels, dataset.image_path(i)).to(torch::kDouble);
    sum += image.sum({1, 2});
    sum_sq += image.pow(2).sum({1, 2});
    pixels += static_cast<double>(image.size(1) * image.size(2));
  }
  const auto mean = sum / pixels;
  const auto std = (sum_sq / pixels - mean.pow(2)).clamp_min(1e-6).sqrt();
  Normalization out;
  for (int64_t c = 0; c < channels; ++c) {
    out.mean.push_back(mean[c].item<double>());
    out.std.push_back(std[c].item<double>());
  }
  return out;
}

}  // namespace fcn
