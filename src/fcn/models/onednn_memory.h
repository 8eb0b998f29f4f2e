// What fcn's oneDNN calls share (models/winograd.cpp, models/conv_train.cpp; built only with
// FCN_WITH_ONEDNN): the CPU engine, and oneDNN memory held in ATen bytes.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>
#include <oneapi/dnnl/dnnl.hpp>

namespace fcn::onednn {

using Desc = dnnl::memory::desc;
using Dims = dnnl::memory::dims;
using Tag = dnnl::memory::format_tag;
constexpr auto kF32 = dnnl::memory::data_type::f32;

inline dnnl::engine& engine() {
  static dnnl::engine cpu(dnnl::engine::kind::cpu, 0);
  return cpu;
}

// Bytes for oneDNN memory of `desc` from the ATen allocator, so the CPU allocator policy
// (fcn/util/allocator.h) serves it too.
inline at::Tensor bytes_for(const Desc& desc) { return at::empty({static_cast<int64_t>(desc.get_size())}, at::kByte); }

}  // namespace fcn::onednn
