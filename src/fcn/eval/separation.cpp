#include "fcn/eval/separation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <torch/torch.h>

#include "fcn/data/instances.h"

namespace fcn {

double SeparationScore::score() const {
  return touching_pairs > 0 ? static_cast<double>(separated) / static_cast<double>(touching_pairs)
                            : std::numeric_limits<double>::quiet_NaN();
}

SeparationScore& SeparationScore::operator+=(const SeparationScore& other) {
  touching_pairs += other.touching_pairs;
  separated += other.separated;
  return *this;
}

std::vector<std::pair<int64_t, int64_t>> touching_pairs(const torch::Tensor& instances, int64_t max_gap) {
  const auto ids = instances.to(torch::kCPU, torch::kLong);
  const auto present = std::get<0>(torch::_unique(ids.masked_select(ids > 0)));
  std::vector<std::pair<int64_t, int64_t>> pairs;
  const int64_t kernel = 2 * max_gap + 1;
  for (int64_t i = 0; i < present.size(0); ++i) {
    const int64_t a = present[i].item<int64_t>();
    const auto near = torch::max_pool2d((ids == a).to(torch::kFloat).unsqueeze(0), kernel, 1, max_gap)[0] > 0;
    const auto neighbours = std::get<0>(torch::_unique(ids.masked_select(near & (ids > a))));
    for (int64_t j = 0; j < neighbours.size(0); ++j) pairs.emplace_back(a, neighbours[j].item<int64_t>());
  }
  return pairs;
}

namespace {

// ids: H x W int64 instances; components: the predicted foreground's 8-connected components.
SeparationScore separation_of(const torch::Tensor& components, const torch::Tensor& ids, int64_t max_gap) {
  const int64_t count = components.max().item<int64_t>() + 1;
  std::map<int64_t, int64_t> main_component;  // instance -> the predicted component covering most of it (0: none)
  auto main_of = [&](int64_t id) {
    auto found = main_component.find(id);
    if (found != main_component.end()) return found->second;
    const auto covered = components.masked_select((ids == id) & (components > 0));
    const int64_t main = covered.numel() == 0 ? 0 : torch::bincount(covered, {}, count).argmax().item<int64_t>();
    return main_component[id] = main;
  };
  SeparationScore score;
  for (const auto& [a, b] : touching_pairs(ids, max_gap)) {
    ++score.touching_pairs;
    const int64_t ca = main_of(a), cb = main_of(b);
    if (ca > 0 && cb > 0 && ca != cb) ++score.separated;
  }
  return score;
}

double pairs_within(const torch::Tensor& ids) {  // sum n(n-1) over the sizes n of the groups of equal ids
  if (ids.numel() == 0) return 0;
  const auto counts = std::get<2>(torch::_unique2(ids, false, false, true)).to(torch::kDouble);
  return (counts * (counts - 1)).sum().item<double>();
}

RandScore rand_of(const torch::Tensor& components, const torch::Tensor& ids) {
  const auto inside = ids > 0;
  const auto truth = ids.masked_select(inside);
  const auto segments = components.masked_select(inside);
  const int64_t span = segments.numel() == 0 ? 1 : segments.max().item<int64_t>() + 1;
  RandScore score;
  score.joint_pairs = pairs_within(truth * span + segments);
  score.true_pairs = pairs_within(truth);
  score.predicted_pairs = pairs_within(segments);
  return score;
}

// With `segment_class` and `instance_class` (each segment's and instance's class, by id), a match also
// needs the two to agree.
ObjectScore objects_of(const torch::Tensor& components, const torch::Tensor& ids, int64_t min_pixels, const torch::Tensor& segment_class = {},
                       const torch::Tensor& instance_class = {}) {
  ObjectScore score;
  const auto true_sizes = torch::bincount(ids.flatten()), predicted_sizes = torch::bincount(components.flatten());
  score.true_objects = true_sizes.slice(0, 1).gt(0).sum().item<int64_t>();
  score.predicted_objects = predicted_sizes.slice(0, 1).ge(std::max<int64_t>(min_pixels, 1)).sum().item<int64_t>();
  const auto both = ids.gt(0) & components.gt(0);
  if (!both.any().item<bool>()) return score;
  const int64_t span = predicted_sizes.size(0);
  const auto [pairs, unused, overlap] = torch::_unique2(ids.masked_select(both) * span + components.masked_select(both), false, false, true);
  const auto instance = pairs.div(span, "floor"), segment = pairs.remainder(span);
  const auto truth = true_sizes.index({instance}), predicted = predicted_sizes.index({segment});
  const auto iou = overlap.to(torch::kDouble) / (truth + predicted - overlap).to(torch::kDouble);
  auto matched = iou.gt(0.5) & predicted.ge(min_pixels);
  if (segment_class.defined()) matched &= segment_class.index({segment}) == instance_class.index({instance});
  score.matched = matched.sum().item<int64_t>();
  return score;
}

// The instances as int64 on the CPU and the predicted foreground's components (8-connected, or 4).
std::pair<torch::Tensor, torch::Tensor> ids_and_components(const torch::Tensor& predicted, const torch::Tensor& instances, const char* what,
                                                           int connectivity = 8) {
  TORCH_CHECK(predicted.sizes() == instances.sizes(), what, ": predicted ", predicted.sizes(), " vs instances ", instances.sizes());
  return {instances.to(torch::kCPU, torch::kLong), connected_components(predicted.to(torch::kCPU) != 0, connectivity)};
}

}  // namespace

SeparationScore instance_separation(const torch::Tensor& predicted, const torch::Tensor& instances, int64_t max_gap) {
  const auto [ids, components] = ids_and_components(predicted, instances, "instance_separation");
  return separation_of(components, ids, max_gap);
}

RandScore adapted_rand(const torch::Tensor& predicted, const torch::Tensor& instances) {
  const auto [ids, components] = ids_and_components(predicted, instances, "adapted_rand");
  return rand_of(components, ids);
}

ObjectScore object_matches(const torch::Tensor& predicted, const torch::Tensor& instances, int64_t min_pixels) {
  const auto [ids, components] = ids_and_components(predicted, instances, "object_matches");
  return objects_of(components, ids, min_pixels);
}

InstanceScores instance_scores(const torch::Tensor& predicted, const torch::Tensor& instances, int64_t max_gap, int64_t min_object,
                               const torch::Tensor& truth, int connectivity) {
  TORCH_CHECK(connectivity == 4 || connectivity == 8, "instance_scores: connectivity 4 or 8, got ", connectivity);
  const auto [ids, components] = ids_and_components(predicted, instances, "instance_scores", connectivity);
  if (!truth.defined()) return {separation_of(components, ids, max_gap), rand_of(components, ids), objects_of(components, ids, min_object)};
  // Objects by class: each class's components against the instances of that class (the class most of
  // an instance's pixels have in the ground truth, void left out).
  TORCH_CHECK(truth.sizes() == instances.sizes(), "instance_scores: truth ", truth.sizes(), " vs instances ", instances.sizes());
  const auto labels = predicted.to(torch::kCPU, torch::kLong), classes = truth.to(torch::kCPU, torch::kLong);
  const auto segments = instances_from_labels(labels, -1, connectivity);
  const auto segment_class = component_classes(segments, labels);
  const auto counted = (ids > 0) & (classes != 255);
  const auto voted = classes.masked_select(counted);
  const int64_t span = voted.numel() == 0 ? 1 : voted.max().item<int64_t>() + 1;
  const int64_t instances_span = ids.max().item<int64_t>() + 1;
  const auto votes = torch::bincount(ids.masked_select(counted) * span + voted, {}, instances_span * span);
  const auto instance_class = votes.view({instances_span, span}).argmax(1);
  return {separation_of(components, ids, max_gap), rand_of(components, ids), objects_of(segments, ids, min_object, segment_class, instance_class)};
}

double ObjectScore::precision() const {
  return predicted_objects > 0 ? static_cast<double>(matched) / static_cast<double>(predicted_objects) : std::numeric_limits<double>::quiet_NaN();
}

double ObjectScore::recall() const {
  return true_objects > 0 ? static_cast<double>(matched) / static_cast<double>(true_objects) : std::numeric_limits<double>::quiet_NaN();
}

double ObjectScore::f1() const {
  const int64_t both = predicted_objects + true_objects;
  return both > 0 ? 2.0 * static_cast<double>(matched) / static_cast<double>(both) : std::numeric_limits<double>::quiet_NaN();
}

ObjectScore& ObjectScore::operator+=(const ObjectScore& other) {
  true_objects += other.true_objects;
  predicted_objects += other.predicted_objects;
  matched += other.matched;
  return *this;
}

double RandScore::error() const {
  if (true_pairs <= 0 || predicted_pairs <= 0) return std::numeric_limits<double>::quiet_NaN();
  const double precision = joint_pairs / predicted_pairs, recall = joint_pairs / true_pairs;
  return precision + recall > 0 ? 1 - 2 * precision * recall / (precision + recall) : 1.0;
}

RandScore& RandScore::operator+=(const RandScore& other) {
  joint_pairs += other.joint_pairs;
  true_pairs += other.true_pairs;
  predicted_pairs += other.predicted_pairs;
  return *this;
}

}  // namespace fcn
