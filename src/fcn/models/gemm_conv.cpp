#include "fcn/models/gemm_conv.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#ifdef FCN_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

#include "fcn/util/cpu.h"
#include "fcn/util/error.h"
#include "fcn/util/layout.h"
#include "fcn/util/threads.h"

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

namespace {
// Output pixels over the batch of a stride-1 convolution of x by weight (a layer gemm_conv_serves).
int64_t output_pixels(const torch::Tensor& x, const torch::Tensor& weight, int64_t padding_h, int64_t padding_w) {
  return x.size(0) * (x.size(2) + 2 * padding_h - weight.size(2) + 1) * (x.size(3) + 2 * padding_w - weight.size(3) + 1);
}
}  // namespace

bool gemm_conv_eligible(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t dilation, int64_t groups,
                        int64_t padding_h, int64_t padding_w) {
  if (!gemm_conv_serves(x, weight, stride, dilation, groups, padding_h, padding_w)) return false;
  return weight.numel() * static_cast<int64_t>(sizeof(float)) >= kGemmConvMinWeightBytes ||
         output_pixels(x, weight, padding_h, padding_w) < kGemmConvShortProductPixels;
}

bool gemm_conv_trains_well(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t dilation, int64_t groups,
                           int64_t padding_h, int64_t padding_w) {
  return gemm_conv_serves(x, weight, stride, dilation, groups, padding_h, padding_w) &&
         output_pixels(x, weight, padding_h, padding_w) < kGemmConvShortProductPixels;
}

bool nonoverlapping_transposed_serves(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t groups,
                                      int64_t dilation, int64_t output_padding) {
  return x.defined() && x.is_cpu() && x.dim() == 4 && x.scalar_type() == torch::kFloat && weight.defined() && weight.is_cpu() &&
         weight.dim() == 4 && weight.scalar_type() == torch::kFloat && stride >= 1 && weight.size(2) == stride &&
         weight.size(3) == stride && groups == 1 && dilation == 1 && output_padding == 0 && x.size(1) == weight.size(0);
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
  // The sizes of an N x C x H x W input `x` under a kh x kw kernel, stride 1.
  static Im2col of(std::array<int64_t, 4> x, int64_t kh, int64_t kw, int64_t padding, bool taps_major) {
    return {x[0], x[1], x[2], x[3], kh, kw, padding, x[2] + 2 * padding - kh + 1, x[3] + 2 * padding - kw + 1, taps_major};
  }
  int64_t depth() const { return c * kh * kw; }
  int64_t pixels() const { return n * out_h * out_w; }

  // Output pixels first .. first + m - 1's columns into `cols` (m x depth()), over the threads.
  void gather_rows(const float* x, int64_t first, int64_t m, float* cols) const {
    at::parallel_for(0, m, 16, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) gather(x, first + p, cols + p * depth());
    });
  }

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

  // The reverse for the input gradient: output pixel p's column gradient `col` added into dx (NHWC)
  // where gather read it. Pixels of one image overlap; of different images, never.
  void scatter_add(const float* col, int64_t p, float* dx) const {
    const int64_t image = p / (out_h * out_w), row = p / out_w % out_h, column = p % out_w, taps = kh * kw;
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t r = row + i - padding, q = column + j - padding, tap = i * kw + j;
        if (r < 0 || r >= h || q < 0 || q >= w) continue;
        float* dst = dx + ((image * h + r) * w + q) * c;
        for (int64_t ch = 0; ch < c; ++ch) dst[ch] += taps_major ? col[tap * c + ch] : col[ch * taps + tap];
      }
  }
};

// Products of fewer rows than this are computed weights-first: each output channel's row of
// weights times the columns (k x m), transposed into place after. oneDNN's sgemm streams the weights
// about twice as fast that way round for so few columns: 1024 -> 1024 channels on a 4x4 map (16 rows)
// 5.1 -> 2.9 ms at 1 thread on AVX-512 Zen 5, 5.1-5.4 -> 3.7-3.9 on the AVX2 proxy; at 32 and 48 rows
// it wins or ties on both, at 64 it is mixed (docs/benchmarks.md, "Short products").
constexpr int64_t kWeightsFirstMaxRows = 63;

void check_sgemm(dnnl_status_t status) {
  if (status != dnnl_success) fail("gemm convolution", "oneDNN sgemm failed (status " + std::to_string(status) + ")");
}

// y (m x k, row stride k) = columns (m x depth) times weights^T (weights: k x depth). A short
// product (m < kGemmConvShortProductPixels) is split by output channels, each thread's sgemm
// single-threaded on its own share of the weights: oneDNN's threaded sgemm ran 1024 -> 1024 channels
// on a 4x4 map in 10.4 ms at 2 threads and 4.9 at 1; split, 2.6 (AVX-512 Zen 5).
void product_of_columns_and_weights(int64_t m, int64_t k, int64_t depth, const float* columns, const float* weights, float* y) {
  const bool weights_first = m <= kWeightsFirstMaxRows;
  const int64_t threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  if (m >= kGemmConvShortProductPixels || (threads == 1 && !weights_first))  // oneDNN threads a long product itself
    return check_sgemm(dnnl_sgemm('N', 'T', m, k, depth, 1.f, columns, depth, weights, depth, 0.f, y, k));
  const int64_t share = (k + threads - 1) / threads;
  at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    SingleThreadedKernels one_thread;
    std::vector<float> transposed(static_cast<size_t>(weights_first ? share * m : 0));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t first = t * share, outputs = std::min(share, k - first);
      if (outputs <= 0) break;
      const float* rows = weights + first * depth;
      if (!weights_first) {
        check_sgemm(dnnl_sgemm('N', 'T', m, outputs, depth, 1.f, columns, depth, rows, depth, 0.f, y + first, k));
        continue;
      }
      check_sgemm(dnnl_sgemm('N', 'T', outputs, m, depth, 1.f, rows, depth, columns, depth, 0.f, transposed.data(), m));
      for (int64_t p = 0; p < m; ++p)
        for (int64_t o = 0; o < outputs; ++o) y[p * k + first + o] = transposed[o * m + p];
    }
  });
}

// A layer's operands as the products read them: x channels-last (NHWC), the weight in place where it
// is channels-last (taps-major columns) and contiguous otherwise, and the sizes. nhwc: the input was
// channels-last, and the result is given back so.
struct ColumnOperands {
  at::Tensor x, w;
  bool nhwc;
  Im2col g;
};
ColumnOperands operands_of(const at::Tensor& input, const at::Tensor& weight, int64_t padding) {
  const bool taps_major = strictly_channels_last(weight);
  ColumnOperands o{input.contiguous(at::MemoryFormat::ChannelsLast), taps_major ? weight : weight.contiguous(),
                   strictly_channels_last(input), {}};
  o.g = Im2col::of({input.size(0), input.size(1), input.size(2), input.size(3)}, weight.size(2), weight.size(3), padding, taps_major);
  return o;
}

}  // namespace

torch::Tensor gemm_conv2d(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias, int64_t padding,
                          bool relu) {
  RECORD_FUNCTION("fcn::gemm_conv2d", std::vector<c10::IValue>());  // a row of its own in operator profiles
  if (!gemm_conv_serves(input, weight, 1, 1, 1, padding, padding))
    fail("gemm convolution",
         "needs a float32 CPU N x C x H x W input, a C x kh x kw weight (kh*kw > 1) and an input at least the kernel");
  const auto [x, w, nhwc, g] = operands_of(input, weight, padding);
  const int64_t k = w.size(0), depth = g.depth(), pixels = g.pixels();
  const int64_t chunk = std::min(pixels, std::max<int64_t>(256, kColumnBytes / (depth * static_cast<int64_t>(sizeof(float)))));
  auto y = at::empty({g.n, k, g.out_h, g.out_w}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  auto cols = at::empty({chunk, depth}, x.options());
  const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>();
  float *cp = cols.data_ptr<float>(), *yp = y.data_ptr<float>();
  for (int64_t first = 0; first < pixels; first += chunk) {
    const int64_t m = std::min(chunk, pixels - first);
    g.gather_rows(xp, first, m, cp);
    product_of_columns_and_weights(m, k, depth, cp, wp, yp + first * k);
  }
  cols = at::Tensor();
  if (bias.defined()) y.add_(bias.to(at::kFloat).view({1, k, 1, 1}));
  if (relu) y.relu_();
  return nhwc ? y : y.contiguous();
}

namespace {

// A short product's convolution with autograd: the forward pass as gemm_conv2d's (its columns kept
// for the weight gradient), dW = dY^T x columns straight into the weight's layout, d(columns) =
// dY x W scattered back into dX.
class ShortProductConv : public torch::autograd::Function<ShortProductConv> {
 public:
  // LibTorch 1.13's custom functions take no undefined inputs: an empty bias stands for none.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const at::Tensor& bias, int64_t padding) {
    const auto [x, w, nhwc, g] = operands_of(input, weight, padding);
    const int64_t k = w.size(0), depth = g.depth(), pixels = g.pixels();
    auto cols = at::empty({pixels, depth}, x.options());
    float* cp = cols.data_ptr<float>();
    g.gather_rows(x.data_ptr<float>(), 0, pixels, cp);
    auto y = at::empty({g.n, k, g.out_h, g.out_w}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
    product_of_columns_and_weights(pixels, k, depth, cp, w.data_ptr<float>(), y.data_ptr<float>());
    if (bias.numel() > 0) y.add_(bias.view({1, k, 1, 1}));
    ctx->save_for_backward({cols, w});
    ctx->saved_data["sizes"] = std::vector<int64_t>{g.n, g.c, g.h, g.w, padding, g.taps_major, nhwc};
    ctx->saved_data["bias"] = bias.numel() > 0;
    return nhwc ? y : y.contiguous();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    if (torch::GradMode::is_enabled())
      fail("gemm convolution", "has no double backward (create_graph): train with set_training_conv_algorithm(kDirect)");
    const auto saved = ctx->get_saved_variables();
    const auto &cols = saved[0], &w = saved[1];
    const auto v = ctx->saved_data["sizes"].toIntVector();
    const bool taps_major = v[5] != 0, nhwc = v[6] != 0;
    const auto g = Im2col::of({v[0], v[1], v[2], v[3]}, w.size(2), w.size(3), v[4], taps_major);
    const int64_t k = w.size(0), depth = g.depth(), m = g.pixels();
    const auto dy = grads[0].contiguous(at::MemoryFormat::ChannelsLast);  // m x k
    const float* dyp = dy.data_ptr<float>();
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      auto dcols = at::empty({m, depth}, dy.options());
      check_sgemm(dnnl_sgemm('N', 'N', m, depth, k, 1.f, dyp, k, w.data_ptr<float>(), depth, 0.f, dcols.data_ptr<float>(), depth));
      // (at::zeros takes no memory format: it would drop the channels-last asked for here)
      dx = at::empty({g.n, g.c, g.h, g.w}, dy.options().memory_format(at::MemoryFormat::ChannelsLast)).zero_();
      const float* dcp = dcols.data_ptr<float>();
      float* dxp = dx.data_ptr<float>();
      const int64_t per_image = g.out_h * g.out_w;
      at::parallel_for(0, g.n, 1, [&](int64_t begin, int64_t end) {
        for (int64_t p = begin * per_image; p < end * per_image; ++p) g.scatter_add(dcp + p * depth, p, dxp);
      });
      if (!nhwc) dx = dx.contiguous();
    }
    if (ctx->needs_input_grad(1)) {  // the weight's own layout: k x depth in memory either way
      dw = at::empty(w.sizes(), w.options().memory_format(taps_major ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
      check_sgemm(dnnl_sgemm('T', 'N', k, depth, m, 1.f, dyp, k, cols.data_ptr<float>(), depth, 0.f, dw.data_ptr<float>(), depth));
    }
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) db = dy.sum({0, 2, 3});  // as the Winograd trainer sums it
    return {dx, dw, db, at::Tensor()};
  }
};

}  // namespace

torch::Tensor gemm_conv2d_trainable(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, int64_t padding) {
  RECORD_FUNCTION("fcn::gemm_conv2d_trainable", std::vector<c10::IValue>());
  if (!gemm_conv_trains_well(x, weight, 1, 1, 1, padding, padding))
    fail("gemm convolution", "trains float32 CPU layers with fewer than " + std::to_string(kGemmConvShortProductPixels) +
                                 " output pixels, a C x kh x kw weight (kh*kw > 1) and an input at least the kernel");
  return ShortProductConv::apply(x, weight, bias.defined() ? bias.to(at::kFloat) : at::empty({0}, weight.options()), padding);
}

namespace {

// Up-convolution products per chunk of pixels: a chunk's sgemm result stays in cache for the
// scatter that follows, and a chunk has at least 256 pixels (short products run below peak).
constexpr int64_t kBlockBufferBytes = int64_t{1} << 20;

}  // namespace

torch::Tensor nonoverlapping_transposed_conv2d(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias,
                                               int64_t stride) {
  RECORD_FUNCTION("fcn::nonoverlapping_transposed_conv2d", std::vector<c10::IValue>());
  if (!nonoverlapping_transposed_serves(input, weight, stride, 1, 1, 0))
    fail("up-convolution", "needs a float32 CPU N x C x H x W input and a C x out x s x s weight with stride s");
  const bool nhwc = strictly_channels_last(input);
  const auto x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const auto w = weight.contiguous(at::MemoryFormat::ChannelsLast);  // in x s x s x out in memory: an in x (s*s*out) matrix
  const auto b = bias.defined() ? bias.to(at::kFloat).contiguous() : at::Tensor();
  const int64_t s = stride, n = x.size(0), c = x.size(1), h = x.size(2), width = x.size(3), k = w.size(1), cols = s * s * k;
  auto y = at::empty({n, k, h * s, width * s}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const int64_t pixels = n * h * width;
  if (pixels == 0 || k == 0) return nhwc ? y : y.contiguous();
  // One chunk when the map is small (oneDNN threads that sgemm itself); else a multiple of the
  // threads, each thread's sgemm single-threaded.
  int64_t chunks = (pixels + 255) / 256;
  chunks = std::min(chunks, std::max<int64_t>(1, pixels * cols * static_cast<int64_t>(sizeof(float)) / kBlockBufferBytes));
  if (chunks > 1) chunks = (chunks + at::get_num_threads() - 1) / at::get_num_threads() * at::get_num_threads();
  const int64_t chunk = (pixels + chunks - 1) / chunks;
  const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>(), *bp = b.defined() ? b.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> products(static_cast<size_t>(std::min(chunk, pixels) * cols));
    for (int64_t index = begin; index < end; ++index) {
      const int64_t first = index * chunk, m = std::min(chunk, pixels - first);
      if (m <= 0) break;
      const auto status = dnnl_sgemm('N', 'N', m, cols, c, 1.f, xp + first * c, c, wp, cols, 0.f, products.data(), cols);
      if (status != dnnl_success) fail("up-convolution", "oneDNN sgemm failed (status " + std::to_string(status) + ")");
      for (int64_t p = 0; p < m; ++p) {  // pixel (image, row, column)'s block: s rows of s*k floats (rx, out)
        const int64_t pixel = first + p, image = pixel / (h * width), row = pixel / width % h, column = pixel % width;
        for (int64_t ry = 0; ry < s; ++ry) {
          const float* src = products.data() + p * cols + ry * s * k;
          float* dst = yp + ((image * h * s + row * s + ry) * width * s + column * s) * k;
          if (bp == nullptr) {
            std::memcpy(dst, src, sizeof(float) * static_cast<size_t>(s * k));
          } else {
            for (int64_t rx = 0; rx < s; ++rx)
              for (int64_t o = 0; o < k; ++o) dst[rx * k + o] = src[rx * k + o] + bp[o];
          }
        }
      }
    }
  });
  return nhwc ? y : y.contiguous();
}

namespace {

// Products per chunk of phase pixels: large enough that the sgemm runs near peak (at least 64 rows), small enough
// that a chunk's products are still in cache for the writes that follow.
constexpr int64_t kPhaseBufferBytes = int64_t{2} << 20;

// One chunk's products (rows x s*s*out, phases (ry, rx) ry*s + rx in [first_phase, end_phase)) to their output
// pixels: phase pixel (image, i, j)'s phase (ry, rx) is output pixel (i*s + ry - padding, j*s + rx - padding), if
// inside. Each ry's run of rx is one copy (plus the bias), or one sum where `add`.
struct PhaseScatter {
  int64_t s, out, phase_h, phase_w, height, width, padding;
  const float* bias;
  bool add;

  void operator()(const float* products, int64_t first, int64_t rows, int64_t first_phase, int64_t end_phase, float* y) const {
    const int64_t cols = s * s * out;
    for (int64_t p = 0; p < rows; ++p) {
      const int64_t pixel = first + p, image = pixel / (phase_h * phase_w), i = pixel / phase_w % phase_h, j = pixel % phase_w;
      const int64_t x0 = j * s - padding;
      for (int64_t ry = first_phase / s; ry <= (end_phase - 1) / s; ++ry) {
        const int64_t row = i * s + ry - padding;
        if (row < 0 || row >= height) continue;
        const int64_t lo = std::max({ry * s, first_phase, ry * s - x0}) - ry * s;
        const int64_t hi = std::min({ry * s + s, end_phase, ry * s + width - x0}) - ry * s;
        if (lo >= hi) continue;
        const float* src = products + p * cols + (ry * s + lo) * out;
        float* dst = y + ((image * height + row) * width + x0 + lo) * out;
        const int64_t run = (hi - lo) * out;
        if (bias == nullptr && !add) {
          std::memcpy(dst, src, sizeof(float) * static_cast<size_t>(run));
        } else if (bias == nullptr) {
          for (int64_t k = 0; k < run; ++k) dst[k] += src[k];
        } else {
          for (int64_t rx = 0; rx < hi - lo; ++rx)
            for (int64_t o = 0; o < out; ++o) dst[rx * out + o] = (add ? dst[rx * out + o] : 0.f) + src[rx * out + o] + bias[o];
        }
      }
    }
  }
};

// C (rows x n, row stride ldc) = A (rows x depth, row stride depth) times B (depth x n, row stride ldb), on the
// calling thread. oneDNN's sgemm where the CPU has AVX-512 or LibTorch's BLAS is not OpenBLAS with AVX2 kernels (an
// OpenBLAS older than the CPU runs SSE3 ones: threads.h); elsewhere LibTorch's BLAS (OpenBLAS on Debian): limited to
// AVX2 code, OpenBLAS's Haswell kernel ran the phase products of FCN's 8x/16x/32x upsamplers at 102-186 GFLOP/s on
// one thread where oneDNN's AVX2 kernel reached 49-107; with AVX-512 oneDNN's ran them at 139-208 and Debian's
// OpenBLAS, AVX2 code even there, at 88-164 (AMD EPYC Zen 5, limited with ONEDNN_MAX_CPU_ISA=AVX2).
void phase_product(int64_t rows, int64_t n, int64_t depth, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                   bool onednn) {
  if (onednn) return check_sgemm(dnnl_sgemm('N', 'N', rows, n, depth, 1.f, a, depth, b, ldb, 0.f, c, ldc));
  const auto options = at::TensorOptions().dtype(at::kFloat);
  auto product = at::from_blob(c, {rows, n}, {ldc, 1}, options);
  at::mm_out(product, at::from_blob(const_cast<float*>(a), {rows, depth}, {depth, 1}, options),
             at::from_blob(const_cast<float*>(b), {depth, n}, {ldb, 1}, options));
}

}  // namespace

torch::Tensor phase_gemm_transposed_conv2d(const torch::Tensor& input, const torch::Tensor& phase_weights, const torch::Tensor& bias,
                                           int64_t stride, int64_t m, int64_t padding, const torch::Tensor& into) {
  RECORD_FUNCTION("fcn::phase_gemm_transposed_conv2d", std::vector<c10::IValue>());
  const int64_t s = stride, phases = s * s;
  if (!input.defined() || !input.is_cpu() || input.dim() != 4 || input.scalar_type() != at::kFloat || s < 1 || m < 1 ||
      padding < 0 || !phase_weights.defined() || phase_weights.dim() != 2 || phase_weights.scalar_type() != at::kFloat ||
      !phase_weights.is_contiguous() || phase_weights.size(0) != m * m * input.size(1) || phase_weights.size(1) % phases != 0)
    fail("upsampling", "needs a float32 CPU N x C x h x w input and (m*m*C) x (s*s*out) float32 phase weights");
  const int64_t cols = phase_weights.size(1), out = cols / phases;
  const bool nhwc = strictly_channels_last(input);
  const auto x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const auto g = Im2col::of({x.size(0), x.size(1), x.size(2), x.size(3)}, m, m, m - 1, true);
  const int64_t height = g.out_h * s - 2 * padding, width = g.out_w * s - 2 * padding;
  if (height <= 0 || width <= 0) fail("upsampling", "the padding crops the whole output");
  const auto b = bias.defined() ? bias.to(at::kFloat).contiguous() : at::Tensor();
  const bool add = into.defined();
  if (add && (!into.is_cpu() || into.scalar_type() != at::kFloat || into.sizes() != at::IntArrayRef{g.n, out, height, width} ||
              !into.is_contiguous(at::MemoryFormat::ChannelsLast)))
    fail("upsampling", "adds only into a float32 CPU channels-last tensor of the output's sizes");
  auto y = add ? into : at::empty({g.n, out, height, width}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const int64_t pixels = g.pixels(), depth = g.depth();
  if (pixels == 0 || out == 0) return nhwc || add ? y : y.contiguous();
  const int64_t chunk = std::min(pixels, std::max<int64_t>(64, kPhaseBufferBytes / (cols * static_cast<int64_t>(sizeof(float)))));
  auto columns = at::empty({chunk, depth}, x.options()), products = at::empty({chunk, cols}, x.options());
  const PhaseScatter scatter{s, out, g.out_h, g.out_w, height, width, padding, b.defined() ? b.data_ptr<float>() : nullptr, add};
  const float *xp = x.data_ptr<float>(), *wp = phase_weights.data_ptr<float>();
  float *cp = columns.data_ptr<float>(), *pp = products.data_ptr<float>(), *yp = y.data_ptr<float>();
  // The threads share each chunk's phases: each computes and writes its own columns of the product.
  const int64_t parts = std::min(phases, at::in_parallel_region() ? int64_t{1} : int64_t{at::get_num_threads()});
  const bool onednn = cpu_info().has("avx512f") || !libtorch_blas_is_fast_openblas();
  std::optional<OpenBlasOnCallingThread> blas_here;  // OpenBLAS's own threads would compete with ours
  if (!onednn) blas_here.emplace();
  for (int64_t first = 0; first < pixels; first += chunk) {
    const int64_t rows = std::min(chunk, pixels - first);
    g.gather_rows(xp, first, rows, cp);
    at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
      SingleThreadedKernels one_thread;
      for (int64_t part = begin; part < end; ++part) {
        const int64_t p0 = part * phases / parts, p1 = (part + 1) * phases / parts;
        phase_product(rows, (p1 - p0) * out, depth, cp, wp + p0 * out, cols, pp + p0 * out, cols, onednn);
        scatter(pp, first, rows, p0, p1, yp);
      }
    });
  }
  return nhwc || add ? y : y.contiguous();
}

torch::Tensor onednn_mm(const torch::Tensor& a_in, const torch::Tensor& b_in) {
  if (a_in.dim() != 2 || b_in.dim() != 2 || a_in.size(1) != b_in.size(0) || !a_in.is_cpu() || !b_in.is_cpu() ||
      a_in.scalar_type() != at::kFloat || b_in.scalar_type() != at::kFloat)
    fail("sgemm", "needs float32 CPU matrices m x k and k x n");
  const auto a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  auto c = at::empty({m, n}, a.options());
  check_sgemm(dnnl_sgemm('N', 'N', m, n, k, 1.f, a.data_ptr<float>(), k, b.data_ptr<float>(), n, 0.f, c.data_ptr<float>(), n));
  return c;
}

#else  // built without oneDNN: every layer runs direct

torch::Tensor onednn_mm(const torch::Tensor&, const torch::Tensor&) { return {}; }

torch::Tensor gemm_conv2d(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, int64_t, bool) {
  fail("gemm convolution", "fcn was built without oneDNN (libdnnl-dev)");
}

torch::Tensor nonoverlapping_transposed_conv2d(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, int64_t) {
  fail("up-convolution", "fcn was built without oneDNN (libdnnl-dev)");
}

torch::Tensor phase_gemm_transposed_conv2d(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, int64_t, int64_t, int64_t,
                                           const torch::Tensor&) {
  fail("upsampling", "fcn was built without oneDNN (libdnnl-dev)");
}

torch::Tensor gemm_conv2d_trainable(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, int64_t) {
  fail("gemm convolution", "fcn was built without oneDNN (libdnnl-dev)");
}

#endif

}  // namespace fcn
