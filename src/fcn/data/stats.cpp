#include "fcn/data/stats.h"

#include <torch/torch.h>

#include "fcn/formats/image.h"
#include "fcn/models/preprocess.h"
#include "fcn/util/error.h"

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

DatasetReport check_dataset(const std::string& dir, const std::string& only_split,
                            const std::function<void(int64_t, int64_t)>& progress) {
  DatasetReport report;
  report.splits = only_split.empty() ? dataset_splits(dir) : std::vector<std::string>{only_split};
  if (report.splits.empty()) {
    report.errors.push_back(dir + ": no splits found (neither ImageSets/Segmentation/*.txt nor images/ + masks/)");
    return report;
  }
  for (const auto& split : report.splits) {
    try {
      SegmentationDataset dataset(dir, split, &report.errors);  // missing files are listed, all of them
      report.split_sizes.push_back(static_cast<int64_t>(dataset.size()));
      if (report.class_names.empty()) {
        report.class_names = dataset.class_names();
        report.histogram = torch::zeros({dataset.num_classes()}, torch::kLong);
      }
      int64_t labelled = 0, read = 0;
      for (size_t i = 0; i < dataset.size(); ++i) {
        try {
          const auto sample = dataset.get(i);
          const auto labels = sample.mask.flatten();
          const auto counts = torch::bincount(labels.masked_select(labels != kIgnoreLabel), {}, dataset.num_classes()).to(torch::kLong);
          report.histogram += counts;
          labelled += counts.sum().item<int64_t>();
          ++read;
        } catch (const Error& e) {
          report.errors.push_back(e.what());
        } catch (const std::exception& e) {  // e.g. out of memory on one huge file: reported, the rest still checked
          report.errors.push_back(dataset.image_path(i) + ": " + first_line(e.what()));
        }
        if (progress) progress(static_cast<int64_t>(i + 1), static_cast<int64_t>(dataset.size()));
      }
      if (read > 0 && labelled == 0)
        report.errors.push_back(dir + ": split '" + split + "': every mask pixel is void (255): nothing to train or evaluate on");
    } catch (const Error& e) {
      report.split_sizes.push_back(0);
      report.errors.push_back(e.what());
    }
  }
  if (report.histogram.defined()) report.suggested_weights = median_frequency_weights(report.histogram);
  return report;
}

Normalization dataset_normalization(const SegmentationDataset& dataset, int64_t channels, size_t max_images) {
  const size_t count = std::min(dataset.size(), max_images);
  auto sum = torch::zeros({channels}, torch::kDouble), sum_sq = torch::zeros({channels}, torch::kDouble);
  double pixels = 0;
  for (size_t i = 0; i < count; ++i) {
    const auto image = adapt_channels(read_image(dataset.image_path(i)), channels, dataset.image_path(i)).to(torch::kDouble);
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
