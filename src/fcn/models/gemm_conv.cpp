#include "fcn/models/gemm_conv.h"

#include <algorithm>
#include <cstring>
#include <string>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#ifdef FCN_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

#include "fcn/util/error.h"

namespace fcn {

bool gemm_conv_serves(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t dilation, int64_t groups,
                      int64_t padding_h, int64_t padding_w) {
  if (!x.defined() || !x.is_cpu() || x.dim() != 4 || x.scalar_type() != torch::kFloat || !weight.defined() ||
      weight.dim() != 4 || weight.scalar_type() != torch::kFloat || !weight.is_cpu())
    return false;
  const int64_t kh = weight.size(2), kw = weight.size(3);
  return stride == 1 && dilation == 1 && groups == 1 && padding_h == padding_w && padding_h >= 0 && kh * kw > 1 &&
         x.size(1) == weight.size(1) && x.size(0) > 0 && x.size(2) + 2 * padding_h >= kh && x.size(3) + 2 * padding_w >= kw;
}

bool gemm_conv_eligible(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t dilation, int64_t groups,
                        int64_t padding_h, int64_t padding_w) {
  return gemm_conv_serves(x, weight, stride, dilation, groups, padding_h, padding_w) &&
         weight.numel() * static_cast<int64_t>(sizeof(float)) >= kGemmConvMinWeightBytes;
}

#ifdef FCN_WITH_ONEDNN
namespace {

// Columns per chunk of output pixels: the sgemm reads all the weights once per chunk, so chunks are
// as large as this bound allows, and at least 256 pixels (below that the product runs short of peak).
constexpr int64_t kColumnBytes = int64_t{32} << 20;

// One convolution's sizes; the column of output pixel p holds its receptive field in the weights'
// order: taps-major (kh, kw, C: channels-last OHWI weights) or channels-major (C, kh, kw: OIHW).
struct Im2col {
  int64_t n, c, h, w, kh, kw, padding, out_h, out_w;
  bool taps_major;
  int64_t depth() const { return c * kh * kw; }
  int64_t pixels() const { return n * out_h * out_w; }

  // Output pixel p's column into `col` (depth() floats), from x in NHWC.
  void gather(const float* x, int64_t p, float* col) const {
    const int64_t image = p / (out_h * out_w), row = p / out_w % out_h, column = p % out_w, taps = kh * kw;
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t r = row + i - padding, q = column + j - padding, tap = i * kw + j;
        const float* src = r >= 0 && r < h && q >= 0 && q < w ? x + ((image * h + r) * w + q) * c : nullptr;
        if (taps_major) {
          float* dst = col + tap * c;
          if (src != nullptr)
            std::memcpy(dst, src, sizeof(float) * c);
          else
            std::memset(dst, 0, sizeof(float) * c);
        } else {
          for (int64_t ch = 0; ch < c; ++ch) col[ch * taps + tap] = src != nullptr ? src[ch] : 0.f;
        }
      }
  }
};

}  // namespace

torch::Tensor gemm_conv2d(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias, int64_t padding,
                          bool relu) {
  RECORD_FUNCTION("fcn::gemm_conv2d", std::vector<c10::IValue>());  // a row of its own in operator profiles
  if (!gemm_conv_serves(input, weight, 1, 1, 1, padding, padding))
    fail("gemm convolution",
         "needs a float32 CPU N x C x H x W input, a C x kh x kw weight (kh*kw > 1) and an input at least the kernel");
  const bool nhwc = !input.is_contiguous() && input.is_contiguous(at::MemoryFormat::ChannelsLast);
  const auto x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const bool taps_major = !weight.is_contiguous() && weight.is_contiguous(at::MemoryFormat::ChannelsLast);
  const auto w = taps_major ? weight : weight.contiguous();
  const int64_t k = w.size(0);
  Im2col g{x.size(0), x.size(1), x.size(2), x.size(3), w.size(2), w.size(3), padding, 0, 0, taps_major};
  g.out_h = g.h + 2 * padding - g.kh + 1;
  g.out_w = g.w + 2 * padding - g.kw + 1;
  const int64_t depth = g.depth(), pixels = g.pixels();
  const int64_t chunk = std::min(pixels, std::max<int64_t>(256, kColumnBytes / (depth * static_cast<int64_t>(sizeof(float)))));
  auto y = at::empty({g.n, k, g.out_h, g.out_w}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  auto cols = at::empty({chunk, depth}, x.options());
  const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>();
  float *cp = cols.data_ptr<float>(), *yp = y.data_ptr<float>();
  for (int64_t first = 0; first < pixels; first += chunk) {
    const int64_t m = std::min(chunk, pixels - first);
    at::parallel_for(0, m, 16, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) g.gather(xp, first + p, cp + p * depth);
    });
    // y[first .. first + m) (pixels x K, NHWC) = columns (m x depth) times weights^T (depth x K).
    const auto status = dnnl_sgemm('N', 'T', m, k, depth, 1.f, cp, depth, wp, depth, 0.f, yp + first * k, k);
    if (status != dnnl_success) fail("gemm convolution", "oneDNN sgemm failed (status " + std::to_string(status) + ")");
  }
  cols = at::Tensor();
  if (bias.defined()) y.add_(bias.to(at::kFloat).view({1, k, 1, 1}));
  if (relu) y.relu_();
  return nhwc ? y : y.contiguous();
}

#else  // built without oneDNN: every layer runs direct

torch::Tensor gemm_conv2d(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, int64_t, bool) {
  fail("gemm convolution", "fcn was built without oneDNN (libdnnl-dev)");
}

#endif

}  // namespace fcn
