// Evaluation of a model on a dataset split: each image segmented by the Predictor (the one
// inference path, so every net `fcn predict` handles is scored the same way, valid-padding U-Nets
// included), the labels accumulated into a confusion matrix over the whole split, then the paper's
// metrics.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "fcn/data/dataset.h"
#include "fcn/eval/metrics.h"
#include "fcn/eval/separation.h"
#include "fcn/infer/predictor.h"
#include "fcn/models/model.h"

namespace fcn {

// Throws fcn::Error naming the dataset when its class count differs from the model's.
void check_class_count(const SegmentationDataset& dataset, const NetImpl& net);
// Throws fcn::Error naming the dataset when it names the model's classes in another order (the model trained on
// classes.json's names in one order, scored or trained further on masks labelled in another): classes are paired by
// index, so each would meet another's truth. Names that differ otherwise are not checked (renamed
// classes, or a model's default class_0, class_1, ...).
void check_class_order(const SegmentationDataset& dataset, const ModelMeta& meta);

// Which images one of several processes scores: those whose index i has i % count == index
// (data-parallel validation; the processes' confusion matrices add up to the whole split's).
struct Shard {
  int64_t index = 0, count = 1;
  bool has(size_t i) const { return static_cast<int64_t>(i % static_cast<size_t>(count)) == index; }
};

// One image's scores: the paper's metrics over its own pixels (mean IU over the classes in its
// ground truth or its prediction), to find the images a model gets most wrong.
struct ImageScore {
  size_t index = 0;  // in the split
  std::string image;
  int64_t pixels = 0;  // scored (void left out)
  SegmentationMetrics metrics;
};

// The `count` images with the lowest mean IU (ties: split order); an image with no scored pixel is
// left out (its metrics are undefined). For fcn eval --worst and fcn report's examples.
std::vector<ImageScore> lowest_mean_iu(std::vector<ImageScore> scores, int64_t count);

// What evaluate() records beside the split's confusion matrix, where the caller gives a place.
struct EvalSinks {
  // With a dataset that has instance masks: the touching-objects separation score.
  SeparationScore* separation = nullptr;
  // A sample that cannot be read or segmented is recorded here ("FILE: what") and left out;
  // without, its fcn::Error propagates.
  std::vector<std::string>* skipped = nullptr;
  // Every scored image's own metrics, in split order.
  std::vector<ImageScore>* per_image = nullptr;
  // With a dataset that has instance masks: the adapted Rand error's pair counts (the split as one volume).
  RandScore* rand = nullptr;
  // With a dataset that has instance masks: the objects found (instances matched at IoU > 0.5).
  ObjectScore* objects = nullptr;
  // Predicted segments of fewer pixels are not objects in `objects` (specks; fcn eval --min-object).
  int64_t min_object = 1;
  // How pixels join into objects, in `objects`, `separation`, `rand` and `largest`: 8 (sides and corners) or 4 (sides
  // alone; fcn eval --connectivity 6, as fcn predict --connectivity 6 joins an image's).
  int connectivity = 8;
  // A model's labels with each listed class's largest object kept, the rest background, before they
  // are scored (keep_largest_objects, `connectivity`-connected; empty: every class): as fcn predict --largest writes
  // them. Not given: the labels as the net gives them.
  std::optional<std::vector<int64_t>> largest = std::nullopt;
};

// Each image as the Predictor with `options` segments it on `device`; neighbouring images of one
// size share a forward pass, up to options.batch of them and 1 megapixel (the same labels as one at
// a time, to float rounding; sizes may differ). The dataset's classes must match the model's count.
ConfusionMatrix evaluate(const Model& model, const SegmentationDataset& dataset, const PredictOptions& options = {},
                         torch::Device device = torch::kCPU, bool quiet = true, EvalSinks sinks = {}, Shard shard = {});

// Labels made elsewhere — another framework, another fcn run, an annotator — scored as evaluate()
// scores a model: the masks in the folder `predictions`, ID.png for each image ID of the split (as
// fcn predict names its outputs), read as the dataset reads its masks (palette or gray indices, RGB
// colours of classes.json, 0/255 binary), against the split's ground truth. A prediction that is
// missing, of another size, or void (255) anywhere is an error naming its file (recorded in
// sinks.skipped where given, and left out). `predictions` may instead be a label stack (a multi-page
// TIFF of class indices: fcn predict --label-stack's, an annotator's) scored against the dataset fcn
// data unstack made of the image stack: page k is image ID k ("007"); an ID that is not a page
// number is an error for the whole run, and in a 0/255 dataset a page of 255 throughout (the void
// page of a page predict could not segment) is an error for its image.
ConfusionMatrix evaluate_masks(const std::string& predictions, const SegmentationDataset& dataset, bool quiet = true,
                               EvalSinks sinks = {});
// predictions/ID.png: where evaluate_masks looks for image `index`'s predicted mask (ID.npy, ID.tif or
// ID.tiff where there is no ID.png and one of those is there: another framework's masks; two of them is an
// error naming both).
std::string predicted_mask_path(const std::string& predictions, const SegmentationDataset& dataset, size_t index);

}  // namespace fcn
