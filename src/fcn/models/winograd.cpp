#include "fcn/models/winograd.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <ATen/ATen.h>

#ifdef FCN_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

#include "fcn/util/error.h"

namespace fcn {
namespace {
std::atomic<ConvAlgorithm> algorithm{ConvAlgorithm::kDirect};
}  // namespace

void set_conv_algorithm(ConvAlgorithm a) { algorithm = a; }
ConvAlgorithm conv_algorithm() { return algorithm; }
const char* conv_algorithm_name(ConvAlgorithm a) { return a == ConvAlgorithm::kWinograd ? "winograd" : "direct"; }

bool winograd_eligible(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t dilation,
                       int64_t groups, int64_t padding_h, int64_t padding_w) {
  if (!x.defined() || !x.is_cpu() || x.dim() != 4 || x.scalar_type() != torch::kFloat || weight.dim() != 4 ||
      weight.scalar_type() != torch::kFloat)
    return false;
  const int64_t out = weight.size(0), in = weight.size(1);
  return weight.size(2) == 3 && weight.size(3) == 3 && stride == 1 && dilation == 1 && groups == 1 &&
         padding_h == padding_w && (padding_h == 0 || padding_h == 1) && out % 16 == 0 && in % 16 == 0 &&
         std::min(out, in) >= 64 && x.size(1) == in && x.size(2) + 2 * padding_h >= 3 && x.size(3) + 2 * padding_w >= 3;
}

#ifdef FCN_WITH_ONEDNN
namespace {

using Desc = dnnl::memory::desc;
using Tag = dnnl::memory::format_tag;
constexpr auto kF32 = dnnl::memory::data_type::f32;

dnnl::engine& engine() {
  static dnnl::engine cpu(dnnl::engine::kind::cpu, 0);
  return cpu;
}

// oneDNN memory over ATen bytes, so the CPU allocator policy (fcn/util/allocator.h) serves it too.
at::Tensor bytes_for(const Desc& desc) { return at::empty({static_cast<int64_t>(desc.get_size())}, at::kByte); }

// Weights transformed into the Winograd domain, one per (weight tensor, layout oneDNN asked for).
struct Transformed {
  c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl> owner;
  const void* data = nullptr;  // the weight's storage when transformed: set_data() re-points it
  int64_t version = 0;         // its version counter: every in-place change bumps it
  Desc desc;
  at::Tensor bytes;
};
std::mutex cache_mutex;
std::vector<Transformed> cache;

// The bytes of `weight` in oneDNN's Winograd layout `wanted`, kept alive by the returned tensor.
at::Tensor transformed_weights(const at::Tensor& weight, const Desc& wanted, dnnl::stream& stream) {
  // Inference tensors (made under InferenceMode) keep no version counter: transformed every call.
  const bool cacheable = !weight.is_inference();
  const int64_t version = cacheable ? weight._version() : 0;
  std::lock_guard<std::mutex> lock(cache_mutex);
  cache.erase(std::remove_if(cache.begin(), cache.end(), [](const Transformed& t) { return t.owner.expired(); }),
              cache.end());
  for (const auto& t : cache)
    if (t.data == weight.data_ptr() && t.version == version && t.desc == wanted &&
        t.owner.lock().get() == weight.unsafeGetTensorImpl())
      return t.bytes;
  const auto plain = weight.contiguous();
  Transformed entry{c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>(weight.getIntrusivePtr()),
                    weight.data_ptr(), version, wanted, bytes_for(wanted)};
  dnnl::memory from({{plain.size(0), plain.size(1), 3, 3}, kF32, Tag::oihw}, engine(), plain.data_ptr());
  dnnl::memory to(wanted, engine(), entry.bytes.data_ptr());
  dnnl::reorder(from, to).execute(stream, from, to);
  stream.wait();
  if (cacheable) {  // replaces this weight's stale transforms (older contents, or the same layout)
    cache.erase(std::remove_if(cache.begin(), cache.end(),
                               [&](const Transformed& t) {
                                 return t.owner.lock().get() == weight.unsafeGetTensorImpl() &&
                                        (t.desc == wanted || t.data != entry.data || t.version != version);
                               }),
                cache.end());
    cache.push_back(entry);
  }
  return entry.bytes;
}

dnnl::convolution_forward::primitive_desc winograd_desc(const dnnl::memory::dims& src, const dnnl::memory::dims& weights,
                                                        const dnnl::memory::dims& dst, bool bias, int64_t padding) {
  const Desc bias_desc = bias ? Desc({weights[0]}, kF32, Tag::x) : Desc();
  dnnl::convolution_forward::desc conv(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_winograd,
                                       Desc(src, kF32, Tag::any), Desc(weights, kF32, Tag::any), bias_desc,
                                       Desc(dst, kF32, Tag::any), {1, 1}, {padding, padding}, {padding, padding});
  return dnnl::convolution_forward::primitive_desc(conv, engine());
}

}  // namespace

bool winograd_supported() {
  static const bool supported = [] {
    try {
      winograd_desc({1, 16, 8, 8}, {16, 16, 3, 3}, {1, 16, 8, 8}, true, 1);
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return supported;
}

torch::Tensor winograd_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              int64_t padding) {
  if (!winograd_eligible(x, weight, 1, 1, 1, padding, padding))
    fail("winograd convolution", "needs a float32 CPU N x C x H x W input and a 3x3 weight with channels in multiples of 16");
  // oneDNN reads NCHW and NHWC directly; anything else is made NCHW first.
  const bool nhwc = !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  const auto in = nhwc ? x : x.contiguous();
  const int64_t n = in.size(0), c = in.size(1), h = in.size(2), w = in.size(3), o = weight.size(0);
  const dnnl::memory::dims src{n, c, h, w}, weights{o, c, 3, 3}, dst{n, o, h + 2 * padding - 2, w + 2 * padding - 2};
  const Tag plain = nhwc ? Tag::nhwc : Tag::nchw;
  try {
    const auto pd = winograd_desc(src, weights, dst, bias.defined(), padding);
    dnnl::stream stream(engine());
    auto src_bytes = bytes_for(pd.src_desc());
    const auto dst_bytes = bytes_for(pd.dst_desc());
    dnnl::memory user_src({src, kF32, plain}, engine(), in.data_ptr());
    dnnl::memory blocked_src(pd.src_desc(), engine(), src_bytes.data_ptr());
    dnnl::memory blocked_dst(pd.dst_desc(), engine(), dst_bytes.data_ptr());
    dnnl::reorder(user_src, blocked_src).execute(stream, user_src, blocked_src);
    const auto weight_bytes = transformed_weights(weight, pd.weights_desc(), stream);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, blocked_src},
                                               {DNNL_ARG_WEIGHTS, dnnl::memory(pd.weights_desc(), engine(), weight_bytes.data_ptr())},
                                               {DNNL_ARG_DST, blocked_dst}};
    at::Tensor b;
    if (bias.defined()) {
      b = bias.to(at::kFloat).contiguous();
      args.emplace(DNNL_ARG_BIAS, dnnl::memory({{o}, kF32, Tag::x}, engine(), b.data_ptr()));
    }
    dnnl::convolution_forward(pd).execute(stream, args);
    stream.wait();
    args.clear();
    src_bytes = at::Tensor();  // freed before the output exists: the peak holds x, dst and y, not four maps
    auto y = at::empty({dst[0], dst[1], dst[2], dst[3]},
                       x.options().memory_format(nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
    dnnl::memory user_dst({dst, kF32, plain}, engine(), y.data_ptr());
    dnnl::reorder(blocked_dst, user_dst).execute(stream, blocked_dst, user_dst);
    stream.wait();
    return y;
  } catch (const dnnl::error& e) {
    fail("winograd convolution", std::string("oneDNN: ") + e.what());
  }
}

size_t winograd_cache_entries() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return static_cast<size_t>(
      std::count_if(cache.begin(), cache.end(), [](const Transformed& t) { return !t.owner.expired(); }));
}

void clear_winograd_cache() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  cache.clear();
}

#else  // built without oneDNN: every layer runs direct

bool winograd_supported() { return false; }

torch::Tensor winograd_conv2d(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, int64_t) {
  fail("winograd convolution", "fcn was built without oneDNN (libdnnl-dev)");
}

size_t winograd_cache_entries() { return 0; }
void clear_winograd_cache() {}

#endif

}  // namespace fcn
