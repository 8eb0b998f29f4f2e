// Where the time of a run goes, operator by operator: LibTorch's operator profiler (the legacy CPU
// one, as torch.autograd.profiler in Python) around a piece of work, its events folded into one row
// per operator name with calls, total time (the operator and what it called) and self time (the
// operator alone). `fcn bench --profile` prints the rows of one timed run beside the timings.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fcn {

struct OpTime {
  std::string name;  // aten::convolution, fcn::winograd_conv2d, autograd nodes (…Backward0), …
  int64_t calls = 0;
  double total_ms = 0;  // from entry to exit, children included
  double self_ms = 0;   // total less the time of the operators it called
  // By shape only (OpProfiler(true)): the tensor inputs' sizes ("[8,128,4,4] [128,128,3,3]") and the
  // outermost operator the calls ran inside ("" at the top), e.g. an aten::copy_ inside
  // "autograd::engine::evaluate_function: ConvolutionBackward0" is a backward pass's copy.
  std::string shapes, within;
};

// Records every operator this thread (and the threads it hands work to, such as autograd's) runs
// between construction and finish(). One at a time per process; the profiler is off again after
// finish() or destruction. Profiling adds a few microseconds per operator. by_shape: one row per
// operator, input shapes and outermost caller (as PyTorch's group_by_input_shape), not per operator.
class OpProfiler {
 public:
  explicit OpProfiler(bool by_shape = false);
  ~OpProfiler();
  OpProfiler(const OpProfiler&) = delete;
  OpProfiler& operator=(const OpProfiler&) = delete;

  // The operators recorded, by self time, longest first.
  std::vector<OpTime> finish();

 private:
  bool running_ = true;
  bool by_shape_ = false;
};

}  // namespace fcn
