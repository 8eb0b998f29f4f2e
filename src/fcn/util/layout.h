// Memory layouts of 4-d tensors as fcn's kernels read them.
#pragma once

#include <ATen/core/Tensor.h>

namespace fcn {

// True where `t` lies channels-last (N x H x W x C in memory) and is not also plain NCHW-contiguous. A tensor with
// one channel, or with 1 x 1 maps, is both; it counts as NCHW, which every kernel reads, so a kernel that copies its
// input into channels-last gives back NCHW unless this is true of the input.
inline bool strictly_channels_last(const at::Tensor& t) {
  return !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace fcn
