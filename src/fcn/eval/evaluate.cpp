#include "fcn/eval/evaluate.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <new>
#include <optional>
#include <tuple>
#include <utility>

#include <torch/torch.h>

#include "fcn/data/instances.h"
#include "fcn/formats/image.h"
#include "fcn/formats/nifti.h"
#include "fcn/util/error.h"
#include "fcn/util/progress.h"

namespace fcn {

void check_class_count(const SegmentationDataset& dataset, const NetImpl& net) {
  if (dataset.num_classes() != net.label_classes())
    fail(dataset.dir(), "has " + std::to_string(dataset.num_classes()) + " classes, the model predicts " +
                            std::to_string(net.label_classes()) + (net.num_classes() == 1 ? " (binary)" : ""));
}

void check_class_order(const SegmentationDataset& dataset, const ModelMeta& meta) {
  const auto& ours = dataset.class_names();
  const auto& theirs = meta.class_names;
  if (ours == theirs || ours.size() != theirs.size() || !std::is_permutation(ours.begin(), ours.end(), theirs.begin())) return;
  size_t c = 0;
  while (ours[c] == theirs[c]) ++c;
  fail(dataset.dir(), "names the model's classes in another order (its class " + std::to_string(c) + " is '" + ours[c] + "', the model's is '" +
                          theirs[c] + "'): fcn pairs classes by index, so each would meet another's truth; relabel the masks in the model's "
                          "order, or train a new model on this dataset");
}

namespace {

// One image's predicted labels against its ground truth (and instance masks, where defined): into
// the split's confusion matrix and the sinks that are given.
void record(size_t i, const std::string& image, const torch::Tensor& labels, const torch::Tensor& truth,
            const torch::Tensor& instances, ConfusionMatrix& confusion, const EvalSinks& sinks) {
  if (sinks.per_image == nullptr) {
    confusion.update(labels, truth);
  } else {  // the image's own counts, then added to the split's
    ConfusionMatrix own(confusion.num_classes());
    own.update(labels, truth);
    confusion.add(own.matrix());
    sinks.per_image->push_back({i, image, own.matrix().sum().item<int64_t>(), own.metrics()});
  }
  if ((sinks.separation != nullptr || sinks.rand != nullptr || sinks.objects != nullptr) && instances.defined()) {
    const auto scores = instance_scores(labels, instances, 2, sinks.min_object, truth, sinks.connectivity);
    if (sinks.separation != nullptr) *sinks.separation += scores.separation;
    if (sinks.rand != nullptr) *sinks.rand += scores.rand;
    if (sinks.objects != nullptr) *sinks.objects += scores.objects;
  }
}

// The split's images scored into one confusion matrix, same-size neighbours a pass at a time.
class Scorer {
 public:
  Scorer(const Predictor& predictor, const SegmentationDataset& dataset, ConfusionMatrix& confusion, EvalSinks sinks,
         Progress& progress)
      : predictor_(predictor), dataset_(dataset), confusion_(confusion), sinks_(sinks), skipped_(sinks.skipped), progress_(progress),
        per_pass_(static_cast<size_t>(std::max<int64_t>(1, predictor.options().batch))) {}

  void add(size_t i) {
    Sample sample;
    try {
      sample = dataset_.get(i);
    } catch (const Error& e) {
      if (skipped_ == nullptr) throw;
      skipped_->push_back(e.what());
      return;
    }
    if (!pending_.empty() && !joins_pass(pending_[0].second.image.sizes(), pending_.size(), sample.image.sizes(), per_pass_))
      flush();
    pending_.emplace_back(i, std::move(sample));
  }

  void flush() {
    std::vector<torch::Tensor> images;
    std::vector<std::string> sources;
    for (const auto& [i, sample] : pending_) {
      images.push_back(sample.image);
      sources.push_back(dataset_.image_path(i));
    }
    const auto predictions = predictor_.pass_or_nothing(images, sources);  // empty: one at a time below
    for (size_t k = 0; k < pending_.size(); ++k)
      score(pending_[k].first, pending_[k].second, predictions.empty() ? nullptr : &predictions[k]);
    pending_.clear();
  }

 private:
  void score(size_t i, const Sample& sample, const Prediction* batched) {
    torch::Tensor labels;
    try {
      labels = batched != nullptr ? batched->labels : predictor_(sample.image, dataset_.image_path(i)).labels;
    } catch (const Error& e) {
      if (skipped_ == nullptr) throw;
      skipped_->push_back(e.what());
      return;
    } catch (const std::bad_alloc&) {
      if (skipped_ == nullptr) throw;
      skipped_->push_back(dataset_.image_path(i) + ": out of memory segmenting this image");
      return;
    }
    if (sinks_.largest) labels = keep_largest_objects(labels, instances_from_labels(labels, -1, sinks_.connectivity), *sinks_.largest);
    record(i, dataset_.image_path(i), labels, sample.mask, sample.instances, confusion_, sinks_);
    progress_.update(static_cast<int64_t>(i + 1));
  }

  const Predictor& predictor_;
  const SegmentationDataset& dataset_;
  ConfusionMatrix& confusion_;
  EvalSinks sinks_;
  std::vector<std::string>* skipped_;
  Progress& progress_;
  size_t per_pass_;
  std::vector<std::pair<size_t, Sample>> pending_;
};

}  // namespace

std::vector<ImageScore> lowest_mean_iu(std::vector<ImageScore> scores, int64_t count) {
  scores.erase(std::remove_if(scores.begin(), scores.end(), [](const ImageScore& s) { return std::isnan(s.metrics.mean_iu); }),
               scores.end());
  std::stable_sort(scores.begin(), scores.end(),
                   [](const ImageScore& a, const ImageScore& b) { return a.metrics.mean_iu < b.metrics.mean_iu; });
  scores.resize(std::min(scores.size(), static_cast<size_t>(std::max<int64_t>(count, 0))));
  return scores;
}

ConfusionMatrix evaluate(const Model& model, const SegmentationDataset& dataset, const PredictOptions& options,
                         torch::Device device, bool quiet, EvalSinks sinks, Shard shard) {
  check_class_count(dataset, *model.net);
  check_class_order(dataset, model.meta);
  const Predictor predictor(model, device, options);
  ConfusionMatrix confusion(dataset.num_classes());
  Progress progress("eval " + dataset.split(), static_cast<int64_t>(dataset.size()), quiet);
  Scorer scorer(predictor, dataset, confusion, sinks, progress);
  for (size_t i = 0; i < dataset.size(); ++i)
    if (shard.has(i)) scorer.add(i);
  scorer.flush();
  return confusion;
}

std::string predicted_mask_path(const std::string& predictions, const SegmentationDataset& dataset, size_t index) {
  const auto png = std::filesystem::path(predictions) / (dataset.id(index) + ".png");
  std::error_code error;
  if (std::filesystem::exists(png, error)) return png.string();
  std::vector<std::string> others;  // another framework's or annotator's masks
  for (const char* extension : {".npy", ".tif", ".tiff"})
    if (const auto other = std::filesystem::path(predictions) / (dataset.id(index) + extension); std::filesystem::exists(other, error))
      others.push_back(other.string());
  if (others.size() > 1) fail(others[0], "and " + others[1] + " are both predictions for " + dataset.image_path(index) + ": keep one");
  return others.empty() ? png.string() : others[0];
}

namespace {

// The page of a label stack that holds image `index`'s prediction: its ID read as a page number, as
// fcn data unstack names a stack's pages (007.png: page 7); -1 where the ID is not one.
int64_t page_number(const std::string& id) {
  if (id.empty() || id.size() > 12 || !std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; })) return -1;
  return std::stoll(id);
}

// Where image `index`'s predicted labels come from: predictions/ID.png, or page ID of a label stack.
class PredictedMasks {
 public:
  PredictedMasks(const std::string& predictions, const SegmentationDataset& dataset) : predictions_(predictions), dataset_(dataset) {
    std::error_code error;
    if (std::filesystem::is_directory(predictions, error)) return;
    if (!std::filesystem::is_regular_file(predictions, error))
      fail(predictions, "is neither a folder of predicted masks (ID.png per image) nor a label stack (a multi-page TIFF or a NIfTI volume)");
    if (is_nifti_path(predictions))
      volume_.emplace(read_nifti(predictions));
    else
      stack_.emplace(predictions);
    for (size_t i = 0; i < dataset.size(); ++i)
      if (page_number(dataset.id(i)) < 0)
        fail(predictions, "a label stack is scored against the dataset fcn data unstack makes of the stack, page k as image k, "
                          "but image ID '" + dataset.id(i) + "' is not a page number");
  }

  // The labels predicted for image `index`, with where they came from.
  std::pair<torch::Tensor, std::string> operator()(size_t index) {
    if (!stack_ && !volume_) {
      const auto file = predicted_mask_path(predictions_, dataset_, index);
      std::error_code error;
      if (!std::filesystem::exists(file, error))
        fail(file, "missing: no prediction for " + dataset_.image_path(index) + " (nor " + dataset_.id(index) + ".npy, .tif or .tiff)");
      return {dataset_.read_mask(file), file};
    }
    const int64_t page = page_number(dataset_.id(index));
    const auto source = predictions_ + (volume_ ? " slice " : " page ") + std::to_string(page);
    if (volume_ && page >= volume_->slices)
      fail(predictions_, "has no slice " + std::to_string(page) + " (slices 0.." + std::to_string(volume_->slices - 1) + ")");
    const auto values = volume_ ? volume_->voxels[page].unsqueeze(0) : stack_->page_values(page);  // no such page: the error naming the pages
    if (values.is_floating_point() && !values.eq(values.round()).all().item<bool>())
      fail(source, "holds values that are not whole numbers: a label volume holds class indices");
    if (values.size(0) != 1) fail(source, "is a colour page: a label stack holds one gray page of class indices per image");
    if (dataset_.binary() && (values == kIgnoreLabel).all().item<bool>())
      fail(source, "is 255 throughout: the void page fcn predict --label-stack writes for a page it could not segment "
                   "(in a 0/255 stack, an all-foreground page reads the same; score such a page from a PNG)");
    return {dataset_.mask_from_values(values[0], source), source};
  }

 private:
  std::string predictions_;
  const SegmentationDataset& dataset_;
  std::optional<TiffStackReader> stack_;
  std::optional<NiftiVolume> volume_;  // a NIfTI label volume: slice k as image ID k
};

}  // namespace

ConfusionMatrix evaluate_masks(const std::string& predictions, const SegmentationDataset& dataset, bool quiet, EvalSinks sinks) {
  PredictedMasks predicted(predictions, dataset);
  ConfusionMatrix confusion(dataset.num_classes());
  Progress progress("eval " + predictions, static_cast<int64_t>(dataset.size()), quiet);
  for (size_t i = 0; i < dataset.size(); ++i) {
    torch::Tensor labels, truth, instances;
    try {
      std::string file;
      std::tie(labels, file) = predicted(i);
      truth = dataset.read_mask(dataset.mask_path(i));
      if (dataset.has_instances()) instances = SegmentationDataset::read_instances(dataset.instance_path(i));
      if (labels.sizes() != truth.sizes())
        fail(file, "is " + std::to_string(labels.size(1)) + "x" + std::to_string(labels.size(0)) + " but its ground truth " +
                       dataset.mask_path(i) + " is " + std::to_string(truth.size(1)) + "x" + std::to_string(truth.size(0)));
      if (const auto unset = (labels == kIgnoreLabel).nonzero(); unset.size(0) > 0)
        fail(file, "label 255 (void) at (" + std::to_string(unset[0][0].item<int64_t>()) + "," + std::to_string(unset[0][1].item<int64_t>()) +
                       "): a prediction gives every pixel a class");
    } catch (const Error& e) {
      if (sinks.skipped == nullptr) throw;
      sinks.skipped->push_back(e.what());
      continue;
    }
    record(i, dataset.image_path(i), labels, truth, instances, confusion, sinks);
    progress.update(static_cast<int64_t>(i + 1));
  }
  return confusion;
}

}  // namespace fcn
