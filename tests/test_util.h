// Shared helpers for fcn's tests: the golden-reference folder and tensor comparisons.
#pragma once

#include <string>

#include <gtest/gtest.h>
#include <torch/types.h>

namespace fcn::test {

// A fresh folder for this test process's files (/tmp/fcn-test-PID), removed at exit.
const std::string& temp_dir();

// The folder oracle/make_goldens.py wrote (generated on first use when run outside ctest).
const std::string& goldens();
std::string golden(const std::string& file);

// max |actual - expected| / max |expected|: the error relative to the output's scale.
double relative_error(const torch::Tensor& actual, const torch::Tensor& expected);

// Runs `body` and returns the fcn::Error message it throws (fails the test if it does not).
template <typename F>
std::string error_of(F&& body);

}  // namespace fcn::test

#include "fcn/util/error.h"

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

namespace fcn::test {
// Builds the net of golden case `name` from cases.json, loads CASE.pth and checks its output
// on CASE_input.npy against CASE_output.npy (relative error <= tolerance).
void check_golden_case(const std::string& name, double tolerance);
}  // namespace fcn::test
