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

}  // namespace fcn
