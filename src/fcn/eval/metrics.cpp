#include "fcn/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <torch/torch.h>

namespace fcn {

ConfusionMatrix::ConfusionMatrix(int64_t num_classes) : matrix_(torch::zeros({num_classes, num_classes}, torch::kLong)) {}

void ConfusionMatrix::add(const torch::Tensor& counts) {
  TORCH_CHECK(counts.sizes() == matrix_.sizes(), "ConfusionMatrix::add: counts ", counts.sizes(), " vs ", matrix_.sizes());
  matrix_ += counts.to(torch::kCPU, torch::kLong);
}

namespace {

// Each counted pixel's (target row, prediction column) cell incremented in place: one pass over the
// two label tensors as they lie, no int64 copies (a CT volume is tens of millions of voxels).
template <typename T, typename P>
void count_pairs(const T* target, const P* prediction, int64_t size, int64_t n, int64_t ignore, int64_t* cells) {
  for (int64_t i = 0; i < size; ++i) {
    const auto t = static_cast<int64_t>(target[i]);
    if (t == ignore || t < 0 || t >= n) continue;
    ++cells[t * n + std::clamp<int64_t>(static_cast<int64_t>(prediction[i]), 0, n - 1)];
  }
}

bool is_cpu_integral(const torch::Tensor& t) { return t.device().is_cpu() && c10::isIntegralType(t.scalar_type(), /*includeBool=*/false); }

}  // namespace

void ConfusionMatrix::update(const torch::Tensor& predictions, const torch::Tensor& targets, int64_t ignore) {
  TORCH_CHECK(predictions.sizes() == targets.sizes(), "ConfusionMatrix: predictions ", predictions.sizes(), " vs targets ",
              targets.sizes());
  const int64_t n = num_classes(), size = predictions.numel();
  if (is_cpu_integral(predictions) && is_cpu_integral(targets)) {
    const auto target = targets.contiguous(), prediction = predictions.contiguous();
    auto* cells = matrix_.data_ptr<int64_t>();
    AT_DISPATCH_INTEGRAL_TYPES(target.scalar_type(), "ConfusionMatrix", [&] {
      const auto* t = target.data_ptr<scalar_t>();
      using Target = scalar_t;
      AT_DISPATCH_INTEGRAL_TYPES(prediction.scalar_type(), "ConfusionMatrix", [&] {
        count_pairs<Target, scalar_t>(t, prediction.data_ptr<scalar_t>(), size, n, ignore, cells);
      });
    });
    return;
  }
  const auto all_targets = targets.flatten(), all_predictions = predictions.flatten();
  constexpr int64_t kChunk = int64_t{1} << 22;  // pixels at a time (GPU or floating labels): int64 copies stay ~100 MB
  for (int64_t from = 0; from < size; from += kChunk) {
    const int64_t to = std::min(size, from + kChunk);
    const auto target = all_targets.slice(0, from, to).to(torch::kCPU, torch::kLong);
    const auto prediction = all_predictions.slice(0, from, to).to(torch::kCPU, torch::kLong);
    const auto valid = (target != ignore) & (target >= 0) & (target < n);
    const auto index = target.masked_select(valid) * n + prediction.masked_select(valid).clamp(0, n - 1);
    matrix_ += torch::bincount(index, {}, n * n).view({n, n}).to(torch::kLong);
  }
}

std::vector<std::vector<int64_t>> ConfusionMatrix::rows() const {
  const auto counts = matrix_.contiguous();
  const auto* data = counts.data_ptr<int64_t>();
  const int64_t k = num_classes();
  std::vector<std::vector<int64_t>> out;
  for (int64_t i = 0; i < k; ++i) out.emplace_back(data + i * k, data + (i + 1) * k);
  return out;
}

SegmentationMetrics ConfusionMatrix::metrics() const {
  SegmentationMetrics m;
  const auto hist = matrix_.to(torch::kDouble);
  const auto* h = hist.data_ptr<double>();
  const int64_t n = num_classes();
  double diagonal = 0, total = 0, acc_sum = 0, iu_sum = 0, fw_sum = 0, dice_sum = 0;
  int64_t acc_count = 0, iu_count = 0;
  for (int64_t i = 0; i < n; ++i) {
    double t_i = 0, predicted_i = 0;
    for (int64_t j = 0; j < n; ++j) {
      t_i += h[i * n + j];
      predicted_i += h[j * n + i];
    }
    const double n_ii = h[i * n + i];
    const double union_i = t_i + predicted_i - n_ii;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    m.accuracy.push_back(t_i > 0 ? n_ii / t_i : nan);
    m.iou.push_back(union_i > 0 ? n_ii / union_i : nan);
    m.dice.push_back(union_i > 0 ? 2 * n_ii / (t_i + predicted_i) : nan);
    diagonal += n_ii;
    total += t_i;
    if (t_i > 0) {
      acc_sum += n_ii / t_i;
      ++acc_count;
    }
    if (union_i > 0) {
      iu_sum += n_ii / union_i;
      fw_sum += t_i * n_ii / union_i;
      dice_sum += m.dice.back();
      ++iu_count;
    }
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  m.pixel_acc = total > 0 ? diagonal / total : nan;
  m.mean_acc = acc_count > 0 ? acc_sum / acc_count : nan;
  m.mean_iu = iu_count > 0 ? iu_sum / iu_count : nan;
  m.fw_iu = total > 0 ? fw_sum / total : nan;
  m.mean_dice = iu_count > 0 ? dice_sum / iu_count : nan;
  return m;
}

torch::Tensor confusion_picture(const torch::Tensor& matrix, int64_t cell) {
  const auto counts = matrix.to(torch::kDouble);
  const auto share = counts / counts.sum(1, true).clamp_min(1.0);  // rows with no pixels stay white
  const auto white = torch::tensor({255.0, 255.0, 255.0}, torch::kDouble), blue = torch::tensor({8.0, 48.0, 107.0}, torch::kDouble);
  auto colours = white + share.unsqueeze(2) * (blue - white);  // n x n x 3
  auto picture = colours.repeat_interleave(cell, 0).repeat_interleave(cell, 1);
  for (int64_t i = 0; i <= matrix.size(0); ++i) {  // grid lines
    const int64_t at = std::min(i * cell, picture.size(0) - 1);
    picture.select(0, at).fill_(200.0);
    picture.select(1, at).fill_(200.0);
  }
  return picture.round().to(torch::kByte).contiguous();
}

}  // namespace fcn
