// The FCN paper's four metrics (section 5) from a confusion matrix accumulated over a whole split:
// with n_ij the pixels of class i predicted as j and t_i = sum_j n_ij,
//   pixel accuracy   sum_i n_ii / sum_i t_i
//   mean accuracy    (1/n_cl) sum_i n_ii / t_i
//   mean IU          (1/n_cl) sum_i n_ii / (t_i + sum_j n_ji - n_ii)
//   f.w. IU          (sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii)
// and, as U-Net users expect, the Dice coefficient (F1) per class and its mean:
//   Dice_i           2 n_ii / (t_i + sum_j n_ji)  = 2 TP / (2 TP + FP + FN)
// Pixels labelled ignore (255) are not counted. A class whose ratio is 0/0 (absent from ground truth,
// and for IU also from the predictions) is left out of that mean, so n_cl counts the classes present.
#pragma once

#include <vector>

#include <torch/types.h>

namespace fcn {

struct SegmentationMetrics {
  // NaN when no pixel was counted (e.g. every ground-truth pixel is void): undefined, not 0.
  double pixel_acc = 0, mean_acc = 0, mean_iu = 0, fw_iu = 0, mean_dice = 0;
  std::vector<double> iou, accuracy, dice;  // per class; NaN where undefined (0/0)
};

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t num_classes);
  // predictions and targets: same shape, integer class indices; targets may hold `ignore`.
  void update(const torch::Tensor& predictions, const torch::Tensor& targets, int64_t ignore = 255);
  // Counts accumulated elsewhere (another process's share of the split): num_classes^2 int64.
  void add(const torch::Tensor& counts);
  const torch::Tensor& matrix() const { return matrix_; }  // num_classes^2 int64, rows = ground truth
  std::vector<std::vector<int64_t>> rows() const;          // the same as nested vectors (JSON, reports)
  SegmentationMetrics metrics() const;
  int64_t num_classes() const { return matrix_.size(0); }

 private:
  torch::Tensor matrix_;
};

// A picture of a confusion matrix: H x W x 3 uint8, one `cell` x `cell` square per entry, each row
// normalised (the share of class i's pixels predicted as j) from white (0) to dark blue (1), with
// a 1-pixel grid. Rows are ground truth, columns predictions.
torch::Tensor confusion_picture(const torch::Tensor& matrix, int64_t cell = 16);

}  // namespace fcn
