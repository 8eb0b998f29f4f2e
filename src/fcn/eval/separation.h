// Touching objects: does a segmentation keep them apart? The score U-Net's weight map is for
// (Ronneberger et al. 2015, section 3): of the pairs of ground-truth instances that touch (at most
// `max_gap` pixels apart, chessboard distance), the fraction whose predicted masks are separated by
// at least one background pixel, i.e. whose main predicted components (8-connected foreground)
// differ. An instance with no predicted foreground is not separated from anything.
#pragma once

#include <utility>
#include <vector>

#include <torch/types.h>

namespace fcn {

struct SeparationScore {
  int64_t touching_pairs = 0, separated = 0;
  double score() const;  // separated / touching_pairs; NaN without touching pairs
  SeparationScore& operator+=(const SeparationScore& other);
};

// Pairs (a < b) of instance ids (H x W int64, 0 = none) at most `max_gap` pixels apart.
std::vector<std::pair<int64_t, int64_t>> touching_pairs(const torch::Tensor& instances, int64_t max_gap = 2);

// predicted: H x W labels (0 = background, anything else foreground); instances: H x W ground truth.
SeparationScore instance_separation(const torch::Tensor& predicted, const torch::Tensor& instances, int64_t max_gap = 2);

// The adapted Rand error, the measure of the ISBI 2012 EM segmentation challenge that U-Net's paper
// reports (Arganda-Carreras et al. 2015, as scikit-image's adapted_rand_error computes it). The
// predicted segments are the 8-connected components of the predicted foreground, the background one
// more; the true segments are the ground-truth instances. Over the pixels inside an instance, Rand
// precision is the share of the pixel pairs in one predicted segment that are in one true segment too,
// recall the converse; the error is 1 - their F-score (0: the instances exactly, split nowhere and
// merged with nothing). Pair counts add up over images, so a split scores as one volume.
struct RandScore {
  double joint_pairs = 0, true_pairs = 0, predicted_pairs = 0;  // sum n(n-1) over the contingency table, its rows, its columns
  double error() const;  // NaN where no segment holds two pixels
  RandScore& operator+=(const RandScore& other);
};

// predicted: H x W labels (0 = background, anything else foreground); instances: H x W ground truth (0 = none).
RandScore adapted_rand(const torch::Tensor& predicted, const torch::Tensor& instances);

// Objects found: a ground-truth instance is matched where one predicted segment (an 8-connected
// component of the predicted foreground, as above) overlaps it with IoU above 0.5 — at most one can,
// so no assignment is needed. Precision is the share of predicted segments that match an instance,
// recall the share of instances matched, F1 their harmonic mean (2 matched / (predicted + true)):
// what counting cells or parts from a segmentation gets right. Counts add up over images. With
// `min_pixels`, predicted segments of fewer pixels are not objects (specks: neither counted nor matched),
// as fcn predict --min-object leaves them out of its instances.
struct ObjectScore {
  int64_t true_objects = 0, predicted_objects = 0, matched = 0;
  double precision() const;  // NaN without predicted objects
  double recall() const;     // NaN without true objects
  double f1() const;         // NaN where there are neither (0 where only one side has objects)
  ObjectScore& operator+=(const ObjectScore& other);
};

// predicted: H x W labels (0 = background, anything else foreground); instances: H x W ground truth (0 = none).
ObjectScore object_matches(const torch::Tensor& predicted, const torch::Tensor& instances, int64_t min_pixels = 1);

// All three of one image, the predicted foreground's components found once (what evaluate() records),
// `connectivity`-connected (8, or 4: pixels joined by their sides alone, as fcn predict --connectivity 6 joins an
// image's). With the ground-truth class labels `truth` (H x W; 255 void), objects are found by class: the
// predicted segments are each class's connected components (as fcn predict --instances counts
// them), and an instance is matched only by a segment of its own class (the class most of its
// pixels have in `truth`) — so two touching objects of different classes are two objects. For binary
// labels that is the foreground's components, as without `truth`.
struct InstanceScores {
  SeparationScore separation;
  RandScore rand;
  ObjectScore objects;
};
InstanceScores instance_scores(const torch::Tensor& predicted, const torch::Tensor& instances, int64_t max_gap = 2,
                               int64_t min_object = 1, const torch::Tensor& truth = {}, int connectivity = 8);

}  // namespace fcn
