#include "fcn/eval/evaluate.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <utility>

#include <torch/torch.h>

#include "fcn/util/error.h"
#include "fcn/util/progress.h"

namespace fcn {

void check_class_count(const SegmentationDataset& dataset, const NetImpl& net) {
  if (dataset.num_classes() != net.label_classes())
    fail(dataset.dir(), "has " + std::to_string(dataset.num_classes()) + " classes, the model predicts " +
                            std::to_string(net.label_classes()) + (net.num_classes() == 1 ? " (binary)" : ""));
}

namespace {

// The split's images scored into one confusion matrix, same-size neighbours a pass at a time.
class Scorer {
 public:
  Scorer(const Predictor& predictor, const SegmentationDataset& dataset, ConfusionMatrix& confusion, EvalSinks sinks,
         Progress& progress)
      : predictor_(predictor), dataset_(dataset), confusion_(confusion), separation_(sinks.separation), rand_(sinks.rand), skipped_(sinks.skipped),
        per_image_(sinks.per_image), progress_(progress), per_pass_(static_cast<size_t>(std::max<int64_t>(1, predictor.options().batch))) {}

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
    if (per_image_ == nullptr) {
      confusion_.update(labels, sample.mask);
    } else {  // the image's own counts, then added to the split's
      ConfusionMatrix own(confusion_.num_classes());
      own.update(labels, sample.mask);
      confusion_.add(own.matrix());
      per_image_->push_back({i, dataset_.image_path(i), own.matrix().sum().item<int64_t>(), own.metrics()});
    }
    if ((separation_ != nullptr || rand_ != nullptr) && sample.instances.defined()) {
      const auto scores = instance_scores(labels, sample.instances);
      if (separation_ != nullptr) *separation_ += scores.separation;
      if (rand_ != nullptr) *rand_ += scores.rand;
    }
    progress_.update(static_cast<int64_t>(i + 1));
  }

  const Predictor& predictor_;
  const SegmentationDataset& dataset_;
  ConfusionMatrix& confusion_;
  SeparationScore* separation_;
  RandScore* rand_;
  std::vector<std::string>* skipped_;
  std::vector<ImageScore>* per_image_;
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
  const Predictor predictor(model, device, options);
  ConfusionMatrix confusion(dataset.num_classes());
  Progress progress("eval " + dataset.split(), static_cast<int64_t>(dataset.size()), quiet);
  Scorer scorer(predictor, dataset, confusion, sinks, progress);
  for (size_t i = 0; i < dataset.size(); ++i)
    if (shard.has(i)) scorer.add(i);
  scorer.flush();
  return confusion;
}

}  // namespace fcn
