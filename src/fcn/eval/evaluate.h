// Evaluation of a model on a dataset split: predictions (argmax of the logits) accumulated into a
// confusion matrix over the whole split, then the paper's metrics.
#pragma once

#include "fcn/data/dataset.h"
#include "fcn/eval/metrics.h"
#include "fcn/models/config.h"

namespace fcn {

// Image (C x H x W in [0, 1]) -> 1 x in_channels x H x W normalised as the model expects.
torch::Tensor prepare_input(const Model& model, const torch::Tensor& image, const std::string& source);

// Throws fcn::Error naming the dataset when its class count differs from the model's.
void check_class_count(const SegmentationDataset& dataset, const NetImpl& net);

// One image at a time (sizes may differ), inference mode, on `device`. The dataset's classes must
// match the model's count.
ConfusionMatrix evaluate(const Model& model, const SegmentationDataset& dataset, torch::Device device = torch::kCPU,
                         bool quiet = true);

}  // namespace fcn
