// Shared helpers for fcn's tests: the golden-reference folder, tensor comparisons, a scoped training conv algorithm.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/types.h>

namespace fcn::test {

// A fresh folder for this test process's files (/tmp/fcn-test-PID), removed at exit.
const std::string& temp_dir();
// temp_dir()/NAME, emptied (or made): a test's own folder, as it was never run before.
std::string fresh_dir(const std::string& name);

// The folder oracle/make_goldens.py wrote (generated on first use when run outside ctest).
const std::string& goldens();
std::string golden(const std::string& file);

// max |actual - expected| / max |expected|: the error relative to the output's scale.
double relative_error(const torch::Tensor& actual, const torch::Tensor& expected);

// `value`'s bytes at `offset` of `bytes`, little-endian (or big-endian), as a file lays them out.
template <typename T>
void put(std::vector<char>& bytes, size_t offset, T value, bool big_endian = false);

// A single-file NIfTI-1 (.nii) laid out by hand from nifti1.h's offsets: width x height x slices voxels
// of NIfTI type `code` (`bytes` each, values given as stored integers), 0.5 x 0.75 x 2 mm voxels (units
// unset: read as mm), an sform, in either byte order; scl_slope and scl_inter as given.
std::vector<char> nifti_file(int16_t code, int bytes, const std::vector<int64_t>& values, int16_t width, int16_t height, int16_t slices,
                             bool big_endian = false, float slope = 0, float inter = 0);

// Runs `body` and returns the fcn::Error message it throws (fails the test if it does not).
template <typename F>
std::string error_of(F&& body);

}  // namespace fcn::test

#include "fcn/util/error.h"

template <typename T>
void fcn::test::put(std::vector<char>& bytes, size_t offset, T value, bool big_endian) {
  char raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));
  if (big_endian) std::reverse(raw, raw + sizeof(T));
  std::memcpy(bytes.data() + offset, raw, sizeof(T));
}

template <typename F>
std::string fcn::test::error_of(F&& body) {
  try {
    body();
  } catch (const fcn::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an fcn::Error";
  return "";
}

#include "fcn/models/registry.h"
#include "fcn/models/winograd.h"

namespace fcn::test {
// Sets the training conv algorithm for a scope; the one before again afterwards.
class TrainingConvScope {
 public:
  explicit TrainingConvScope(ConvAlgorithm a) : before_(training_conv_algorithm()) { set_training_conv_algorithm(a); }
  ~TrainingConvScope() { set_training_conv_algorithm(before_); }
  TrainingConvScope(const TrainingConvScope&) = delete;
  TrainingConvScope& operator=(const TrainingConvScope&) = delete;

 private:
  ConvAlgorithm before_;
};

// A small FCN-8s (VGG11 at `backbone`'s width, fc 16 with a 2x2 fc6, 3 classes), seed 0, with the
// layers that start at zero (score layers, upsamplers' skips) moved off it so the logits are not all 0.
std::shared_ptr<NetImpl> small_fcn8s(const std::string& backbone);

// The tensors a layer's gradient test asks for, in this order: x (if input_grad), weight and, if
// defined, bias (if weight_grad).
std::vector<torch::Tensor> gradient_inputs(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                           bool input_grad, bool weight_grad);

// The gradients of sum(y * u) and of sum(expected * u) for one random u shaped like expected,
// with respect to `wanted`: a layer's and its oracle's (LibTorch autograd's), side by side.
struct GradientPair {
  std::vector<torch::Tensor> got, oracle;
};
GradientPair gradients_against(const torch::Tensor& y, const torch::Tensor& expected, const std::vector<torch::Tensor>& wanted);

// Builds the net of golden case `name` from cases.json, loads CASE.pth and checks its output
// on CASE_input.npy against CASE_output.npy (relative error <= tolerance).
void check_golden_case(const std::string& name, double tolerance);
}  // namespace fcn::test
