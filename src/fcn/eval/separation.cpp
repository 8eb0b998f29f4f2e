#include "fcn/eval/separation.h"

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

SeparationScore instance_separation(const torch::Tensor& predicted, const torch::Tensor& instances, int64_t max_gap) {
  TORCH_CHECK(predicted.sizes() == instances.sizes(), "instance_separation: predicted ", predicted.sizes(), " vs instances ",
              instances.sizes());
  const auto ids = instances.to(torch::kCPU, torch::kLong);
  const auto components = connected_components(predicted.to(torch::kCPU) != 0, 8);
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

}  // namespace fcn
