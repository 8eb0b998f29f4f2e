#include "fcn/eval/evaluate.h"

#include <torch/torch.h>

#include "fcn/io/image.h"
#include "fcn/util/error.h"
#include "fcn/util/progress.h"

namespace fcn {

torch::Tensor prepare_input(const Model& model, const torch::Tensor& image, const std::string& source) {
  return normalize(adapt_channels(image, model.net->in_channels(), source), model.meta.normalization).unsqueeze(0);
}

void check_class_count(const SegmentationDataset& dataset, const NetImpl& net) {
  if (dataset.num_classes() != net.num_classes())
    fail(dataset.dir(), "has " + std::to_string(dataset.num_classes()) + " classes, the model predicts " +
                            std::to_string(net.num_classes()));
}

ConfusionMatrix evaluate(const Model& model, const SegmentationDataset& dataset, torch::Device device, bool quiet) {
  check_class_count(dataset, *model.net);
  c10::InferenceMode guard;
  const bool was_training = model.net->is_training();
  model.net->eval();
  ConfusionMatrix confusion(dataset.num_classes());
  const auto parameters = model.net->parameters();
  const auto dtype = parameters.empty() ? torch::kFloat : parameters.front().scalar_type();  // fp32 or bf16
  Progress progress("eval " + dataset.split(), static_cast<int64_t>(dataset.size()), quiet);
  for (size_t i = 0; i < dataset.size(); ++i) {
    const auto sample = dataset.get(i);
    const auto logits = model.net->forward(prepare_input(model, sample.image, dataset.image_path(i)).to(device, dtype));
    confusion.update(logits.argmax(1).squeeze(0), sample.mask);
    progress.update(static_cast<int64_t>(i + 1));
  }
  model.net->train(was_training);
  return confusion;
}

}  // namespace fcn
