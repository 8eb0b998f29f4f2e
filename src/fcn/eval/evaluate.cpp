#include "fcn/eval/evaluate.h"

#include <torch/torch.h>

#include "fcn/util/error.h"
#include "fcn/util/progress.h"

namespace fcn {

void check_class_count(const SegmentationDataset& dataset, const NetImpl& net) {
  if (dataset.num_classes() != net.label_classes())
    fail(dataset.dir(), "has " + std::to_string(dataset.num_classes()) + " classes, the model predicts " +
                            std::to_string(net.label_classes()) + (net.num_classes() == 1 ? " (binary)" : ""));
}

ConfusionMatrix evaluate(const Model& model, const SegmentationDataset& dataset, const PredictOptions& options,
                         torch::Device device, bool quiet, SeparationScore* separation, std::vector<std::string>* skipped,
                         Shard shard) {
  check_class_count(dataset, *model.net);
  const Predictor predictor(model, device, options);
  ConfusionMatrix confusion(dataset.num_classes());
  Progress progress("eval " + dataset.split(), static_cast<int64_t>(dataset.size()), quiet);
  for (size_t i = 0; i < dataset.size(); ++i) {
    if (!shard.has(i)) continue;
    Sample sample;
    torch::Tensor labels;
    try {
      sample = dataset.get(i);
      labels = predictor(sample.image, dataset.image_path(i)).labels;
    } catch (const Error& e) {
      if (skipped == nullptr) throw;
      skipped->push_back(e.what());
      continue;
    } catch (const std::bad_alloc&) {
      if (skipped == nullptr) throw;
      skipped->push_back(dataset.image_path(i) + ": out of memory segmenting this image");
      continue;
    }
    confusion.update(labels, sample.mask);
    if (separation != nullptr && sample.instances.defined()) *separation += instance_separation(labels, sample.instances);
    progress.update(static_cast<int64_t>(i + 1));
  }
  return confusion;
}

}  // namespace fcn
