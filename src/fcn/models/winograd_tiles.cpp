#include "fcn/models/winograd_tiles.h"

#ifdef FCN_WITH_ONEDNN  // else nothing: winograd.cpp builds as stubs

#include <algorithm>
#include <array>
#include <atomic>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <oneapi/dnnl/dnnl.h>

#include "fcn/util/cpu.h"
#include "fcn/util/error.h"
#include "fcn/util/layout.h"
#include "fcn/util/threads.h"

namespace fcn {
namespace {

// Eight or sixteen floats, loaded and stored at any alignment: GCC/Clang vector extensions, in SSE,
// AVX or AVX-512 registers as the function's target has them.
typedef float Lanes __attribute__((vector_size(32), aligned(4), may_alias));
typedef float Lanes16 __attribute__((vector_size(64), aligned(4), may_alias));
#define FCN_INLINE inline __attribute__((always_inline))  // into each target's function, compiled for it

// The F(4x4, 3x3) matrices (Lavin & Gray), applied to one column or row at a time:
// B^T (6x6) on input tiles, A^T (4x6) on products (G, on kernels: transform_weights).
template <class T>
FCN_INLINE void apply_bt(const T* a, T* o) {
  o[0] = 4 * a[0] - 5 * a[2] + a[4];
  o[1] = a[3] + a[4] - 4 * (a[1] + a[2]);
  o[2] = a[4] - a[3] + 4 * (a[1] - a[2]);
  o[3] = a[4] - a[2] + 2 * (a[3] - a[1]);
  o[4] = a[4] - a[2] - 2 * (a[3] - a[1]);
  o[5] = 4 * a[1] - 5 * a[3] + a[5];
}

template <class T>
FCN_INLINE void apply_at(const T* m, T* o) {
  const T p1 = m[1] + m[2], m1 = m[1] - m[2], p3 = m[3] + m[4], m3 = m[3] - m[4];
  o[0] = m[0] + p1 + p3;
  o[1] = m1 + 2 * m3;
  o[2] = p1 + 4 * p3;
  o[3] = m1 + 8 * m3 + m[5];
}

// A (6x4), the transpose of A^T, on output-gradient tiles: the weight gradient's transform
// (A dy A^T), the adjoint of A^T m A.
template <class T>
FCN_INLINE void apply_a(const T* y, T* o) {
  o[0] = y[0];
  o[1] = y[0] + y[1] + y[2] + y[3];
  o[2] = y[0] - y[1] + y[2] - y[3];
  o[3] = y[0] + 2 * y[1] + 4 * y[2] + 8 * y[3];
  o[4] = y[0] - 2 * y[1] + 4 * y[2] - 8 * y[3];
  o[5] = y[3];
}

// out (O x S) = F applied to each of the S columns (length R) of in (R x S); applying F to each row
// of the result next completes a two-sided transform (M^T X M), a vector of channels at once.
template <int R, int S, int O, class V, void (*F)(const V*, V*)>
FCN_INLINE void columns(const V (&in)[R][S], V (&out)[O][S]) {
  for (int s = 0; s < S; ++s) {
    V col[R], res[O];
    for (int r = 0; r < R; ++r) col[r] = in[r][s];
    F(col, res);
    for (int r = 0; r < O; ++r) out[r][s] = res[r];
  }
}

// One tile of N x N pixels `src` (channel vectors V, or zeros outside the map), channels [0,
// channels), to its 36 transformed positions at out[k * stride + c]: F on both sides, B^T d B for
// an input tile (N = 6, F = apply_bt) and A dy A^T for an output-gradient tile (N = 4, F = apply_a).
template <class V, int N, void (*F)(const V*, V*)>
FCN_INLINE void pixels_to_positions(const float* const* src, int64_t channels, float* out, int64_t stride) {
  for (int64_t c = 0; c < channels; c += sizeof(V) / sizeof(float)) {
    V d[N][N], t[6][N], u[6][6];
    for (int k = 0; k < N * N; ++k) d[k / N][k % N] = *reinterpret_cast<const V*>(src[k] + c);
    columns<N, N, 6, V, F>(d, t);
    for (int r = 0; r < 6; ++r) F(t[r], u[r]);
    for (int k = 0; k < 36; ++k) *reinterpret_cast<V*>(out + k * stride + c) = u[k / 6][k % 6];
  }
}

// One output tile: its 36 products m[k * stride + o] back to 4x4 pixels `dst` (channel vectors V),
// plus the bias, then max(0, .) with `relu` (NaN stays NaN, as in torch::relu).
template <class V>
FCN_INLINE void output_tile_lanes(const float* m, int64_t stride, int64_t channels, const float* bias, bool relu,
                                  float* const* dst) {
  for (int64_t o = 0; o < channels; o += sizeof(V) / sizeof(float)) {
    V p[6][6], t[4][6], y[4][4];
    for (int k = 0; k < 36; ++k) p[k / 6][k % 6] = *reinterpret_cast<const V*>(m + k * stride + o);
    columns<6, 6, 4, V, apply_at<V>>(p, t);
    for (int r = 0; r < 4; ++r) apply_at(t[r], y[r]);
    const V b = bias ? *reinterpret_cast<const V*>(bias + o) : V{};
    const V zero{};
    for (int k = 0; k < 16; ++k) {
      const V out = y[k / 4][k % 4] + b;
      *reinterpret_cast<V*>(dst[k] + o) = relu ? (out < zero ? zero : out) : out;
    }
  }
}

// Each transform three times: for AVX2+FMA and a baseline (eight channels at a time, the clone for
// the CPU chosen at load time), and for AVX-512 (sixteen), chosen once per process (avx512_tiles).
// Channel counts are multiples of 16 (winograd_eligible).
__attribute__((target_clones("arch=haswell", "default"))) void input_tile8(const float* const* src, int64_t channels, float* v,
                                                                           int64_t stride) {
  pixels_to_positions<Lanes, 6, apply_bt<Lanes>>(src, channels, v, stride);
}
__attribute__((target("avx512f"))) void input_tile16(const float* const* src, int64_t channels, float* v, int64_t stride) {
  pixels_to_positions<Lanes16, 6, apply_bt<Lanes16>>(src, channels, v, stride);
}
__attribute__((target_clones("arch=haswell", "default"))) void output_tile8(const float* m, int64_t stride, int64_t channels,
                                                                            const float* bias, bool relu, float* const* dst) {
  output_tile_lanes<Lanes>(m, stride, channels, bias, relu, dst);
}
__attribute__((target("avx512f"))) void output_tile16(const float* m, int64_t stride, int64_t channels, const float* bias, bool relu,
                                                      float* const* dst) {
  output_tile_lanes<Lanes16>(m, stride, channels, bias, relu, dst);
}
__attribute__((target_clones("arch=haswell", "default"))) void grad_tile8(const float* const* src, int64_t channels, float* m,
                                                                          int64_t stride) {
  pixels_to_positions<Lanes, 4, apply_a<Lanes>>(src, channels, m, stride);
}
__attribute__((target("avx512f"))) void grad_tile16(const float* const* src, int64_t channels, float* m, int64_t stride) {
  pixels_to_positions<Lanes16, 4, apply_a<Lanes16>>(src, channels, m, stride);
}

// Whether the AVX-512 transforms run: the CPU has AVX-512F and FCN_CPU_FLAGS does not hide it.
bool avx512_tiles() {
  static const bool wide = __builtin_cpu_supports("avx512f") && cpu_info().has("avx512f");
  return wide;
}

void input_tile(const float* const* src, int64_t channels, float* v, int64_t stride) {
  (avx512_tiles() ? input_tile16 : input_tile8)(src, channels, v, stride);
}
void output_tile(const float* m, int64_t stride, int64_t channels, const float* bias, bool relu, float* const* dst) {
  (avx512_tiles() ? output_tile16 : output_tile8)(m, stride, channels, bias, relu, dst);
}
void grad_tile(const float* const* src, int64_t channels, float* m, int64_t stride) {
  (avx512_tiles() ? grad_tile16 : grad_tile8)(src, channels, m, stride);
}

void check(dnnl_status_t status) {
  if (status != dnnl_success) fail("winograd convolution", "oneDNN sgemm failed (status " + std::to_string(status) + ")");
}

// The weights K x C x 3 x 3 as 36 matrices K x C: the kernel transform G g G^T is linear, 9 taps to
// 36, i.e. (G kron G) g, so all K x C kernels go through one matrix product (36 x 9 by 9 x KC).
const std::array<float, 36 * 9>& g_kron_g() {
  static const auto t = [] {
    const float g[6][3] = {{1.f / 4, 0, 0},          {-1.f / 6, -1.f / 6, -1.f / 6}, {-1.f / 6, 1.f / 6, -1.f / 6},
                           {1.f / 24, 1.f / 12, 1.f / 6}, {1.f / 24, -1.f / 12, 1.f / 6}, {0, 0, 1}};
    std::array<float, 36 * 9> t{};
    for (int a = 0; a < 36; ++a)
      for (int i = 0; i < 9; ++i) t[a * 9 + i] = g[a / 6][i / 3] * g[a % 6][i % 3];
    return t;
  }();
  return t;
}

// The same for the kernels flipped (tap i read as tap 8 - i): G kron G with its columns reversed.
const std::array<float, 36 * 9>& g_kron_g_flipped() {
  static const auto t = [] {
    std::array<float, 36 * 9> t{};
    for (int a = 0; a < 36; ++a)
      for (int i = 0; i < 9; ++i) t[a * 9 + i] = g_kron_g()[a * 9 + 8 - i];
    return t;
  }();
  return t;
}

// 36 x K x C, of the kernels as they are or flipped: (G kron G) times each kernel's 9 taps. A
// channels-last weight (K x 3 x 3 x C in memory: output channel k's taps are a 9 x C matrix) is read
// where it lies, one product per output channel, instead of through a contiguous copy of it.
at::Tensor transform_weights(const at::Tensor& weight, bool flipped = false) {
  const int64_t k = weight.size(0), c = weight.size(1);
  auto u = at::empty({36, k, c}, weight.options());
  const float* g = (flipped ? g_kron_g_flipped() : g_kron_g()).data();
  float* out = u.data_ptr<float>();
  if (!strictly_channels_last(weight)) {
    const auto w = weight.contiguous();
    check(dnnl_sgemm('N', 'T', 36, k * c, 9, 1.f, g, 9, w.data_ptr<float>(), 9, 0.f, out, k * c));
    return u;
  }
  const float* w = weight.data_ptr<float>();
  at::parallel_for(0, k, std::max<int64_t>(1, 4096 / c), [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) check(dnnl_sgemm('N', 'N', 36, c, 9, 1.f, g, 9, w + o * 9 * c, c, 0.f, out + o * c, k * c));
  });
  return u;
}

// Where tiles are and how many: tile g of `count` is (image, row, column) = (g / (rows*cols), ...).
struct Tiling {
  int64_t n, c, h, w, k, padding, out_h, out_w, rows, cols, count;
  bool relu;
  // Tile g's image and the top-left pixel of its 4x4 outputs.
  struct Origin {
    int64_t image, row, col;
  };
  Origin origin(int64_t g) const { return {g / (rows * cols), 4 * (g / cols % rows), 4 * (g % cols)}; }
  // Tile g's 16 output pixels (channel vectors) in `map`, an N x out_h x out_w x K channels-last
  // output or output gradient; `outside` for those past the map's edge.
  template <class T>
  void output_pixels(int64_t g, T* map, T* outside, T* (&pixels)[16]) const {
    const auto tile = origin(g);
    for (int i = 0; i < 16; ++i) {
      const int64_t row = tile.row + i / 4, col = tile.col + i % 4;
      pixels[i] = row < out_h && col < out_w ? map + ((tile.image * out_h + row) * out_w + col) * k : outside;
    }
  }

  // x channels-last N x C x H x W into k output channels.
  Tiling(const at::Tensor& x, int64_t k_, int64_t padding_, bool relu_)
      : n(x.size(0)), c(x.size(1)), h(x.size(2)), w(x.size(3)), k(k_), padding(padding_), out_h(h + 2 * padding - 2),
        out_w(w + 2 * padding - 2), rows((out_h + 3) / 4), cols((out_w + 3) / 4), count(n * rows * cols), relu(relu_) {}
  // Tiles per chunk: enough rows for sgemm to run near its peak, few enough that a chunk's 36
  // transformed slices (36 x tiles x channels floats, in and out; up to 8 MiB each) stay near the
  // core; no more than the map has (a small image's buffers then stay below the allocator's
  // huge-page size). Every chunk streams all 36 x K x C transformed weights: 512-channel layers got
  // 56 tiles per chunk from a 4 MiB bound and ran 10-25% faster with 113 (Zen 5 and the AVX2 proxy,
  // 1 and 2 threads; docs/benchmarks.md "Larger chunks"); 64-128 channels stay at 128, where 256 lost 4-8%.
  int64_t chunk() const { return tiles_per_chunk(count, c, k); }
  static int64_t tiles_per_chunk(int64_t count, int64_t c, int64_t k) {
    return std::min(count, std::clamp<int64_t>((int64_t{2} << 20) / (36 * std::max(c, k)), 16, 128));
  }
};

// Range i of `parts` near-equal ranges of [0, n).
struct Range {
  int64_t begin, size;
};
Range part(int64_t n, int64_t parts, int64_t i) { return {n * i / parts, n * (i + 1) / parts - n * i / parts}; }

// Runs fn(i) for each i in [0, items) on LibTorch's threads, `setup()`'s buffers made once per
// thread. Items are claimed one at a time rather than split evenly up front: on a shared or busy
// machine one core runs slower than another, and the faster then takes more instead of waiting.
// sgemms run on their thread alone.
template <class Setup, class Fn>
void for_each_item(int64_t items, const Setup& setup, const Fn& fn) {
  std::atomic<int64_t> next{0};
  at::parallel_for(0, items, 1, [&](int64_t, int64_t) {
    const SingleThreadedKernels one_thread;
    auto buffers = setup();
    for (int64_t i = next++; i < items; i = next++) fn(i, buffers);
  });
}

template <class Fn>
void for_each_item(int64_t items, const Fn& fn) {
  for_each_item(items, [] { return 0; }, [&](int64_t i, int) { fn(i); });
}

// Input transforms of tiles [first, first + n): tile first + t's 36 positions at v + t * C, `stride` apart.
void transform_inputs(const Tiling& s, int64_t first, int64_t n, const float* x, float* v, int64_t stride, const float* zeros) {
  for (int64_t t = 0; t < n; ++t) {
    const auto tile = s.origin(first + t);
    const float* src[36];
    for (int k = 0; k < 36; ++k) {
      const int64_t row = tile.row - s.padding + k / 6, col = tile.col - s.padding + k % 6;
      src[k] = row >= 0 && row < s.h && col >= 0 && col < s.w ? x + ((tile.image * s.h + row) * s.w + col) * s.c : zeros;
    }
    input_tile(src, s.c, v + t * s.c, stride);
  }
}

// What the forward pass and the weight gradient read and write.
struct Operands {
  const float *x, *u, *bias, *dy, *zeros;
  float *y, *sum;
  bool u_in_by_out = false;  // u is 36 x C x K (an input gradient's: the weight's channels swapped), not 36 x K x C
};

// Product p of the Winograd domain, m (rows x K) = v (rows x C) times U_p^T, for the output channels
// [out_begin, out_begin + out_size) of m, whose leading dimension is K.
void winograd_product(const Tiling& s, const Operands& o, int64_t p, int64_t rows, const float* v, int64_t out_begin, int64_t out_size,
                      float* m) {
  if (o.u_in_by_out)
    check(dnnl_sgemm('N', 'N', rows, out_size, s.c, 1.f, v, s.c, o.u + p * s.c * s.k + out_begin, s.k, 0.f, m, s.k));
  else
    check(dnnl_sgemm('N', 'T', rows, out_size, s.c, 1.f, v, s.c, o.u + (p * s.k + out_begin) * s.c, s.c, 0.f, m, s.k));
}

// Output transforms of tiles [first, first + n) from m (36 matrices of `rows` x K, their row t0 the
// tile `first`'s) into y.
void transform_outputs(const Tiling& s, int64_t first, int64_t n, const float* m, int64_t rows, const Operands& o, float* discard) {
  for (int64_t t = 0; t < n; ++t) {
    float* dst[16];
    s.output_pixels(first + t, o.y, discard, dst);
    output_tile(m + t * s.k, rows * s.k, s.k, o.bias, s.relu, dst);
  }
}

// A chunk of tiles [first, first + n) by one thread: input transforms into v, 36 products into m,
// output transforms into y.
void forward_chunk(const Tiling& s, int64_t first, int64_t n, const Operands& o, float* v, float* m, float* discard) {
  transform_inputs(s, first, n, o.x, v, n * s.c, o.zeros);
  for (int64_t p = 0; p < 36; ++p) winograd_product(s, o, p, n, v + p * n * s.c, 0, s.k, m + p * n * s.k);
  transform_outputs(s, first, n, m, n, o, discard);
}

// A group of tiles shared by all threads, step by step: the transforms split by tiles into
// `pieces`, the 36 products each into `blocks` blocks of K: more items than threads at every step,
// whatever the tile count (a deep layer of a small image has fewer chunks than a many-core CPU
// has threads), and one thread per block of a sum (the weight gradient needs no per-thread sums).
struct Group {
  int64_t first, n, pieces, blocks, block;
  Group(int64_t first_, int64_t n_, int64_t k) : first(first_), n(n_) {
    const int64_t threads = at::get_num_threads();
    pieces = std::min(n, 4 * threads);
    const int64_t splits = (3 * threads + 35) / 36;  // 36 x splits >= 3 x threads
    block = ((k + splits - 1) / splits + 15) / 16 * 16;
    blocks = (k + block - 1) / block;
  }
  Range tiles(int64_t piece) const { return part(n, pieces, piece); }
  Range channels(int64_t b, int64_t k) const { return {b * block, std::min(k, (b + 1) * block) - b * block}; }
};

// Tiles per group: as many as the threads take in chunks of Tiling::chunk() at once (so the
// buffers are the chunk mode's), the groups of a map near-equal.
int64_t group_size(const Tiling& s) {
  const int64_t most = std::min(s.count, s.chunk() * at::get_num_threads());
  const int64_t groups = (s.count + most - 1) / most;
  return (s.count + groups - 1) / groups;
}

// Runs fn(Group) over the map's tiles in groups of group_size.
template <class Fn>
void for_each_group(const Tiling& s, int64_t group, const Fn& fn) {
  for (int64_t first = 0; first < s.count; first += group) fn(Group(first, std::min(group, s.count - first), s.k));
}

void forward_group(const Tiling& s, const Group& g, const Operands& o, float* v, float* m, float* discards) {
  for_each_item(g.pieces, [&](int64_t i) {
    const auto r = g.tiles(i);
    transform_inputs(s, g.first + r.begin, r.size, o.x, v + r.begin * s.c, g.n * s.c, o.zeros);
  });
  for_each_item(36 * g.blocks, [&](int64_t i) {
    const int64_t p = i / g.blocks;
    const auto out = g.channels(i % g.blocks, s.k);
    winograd_product(s, o, p, g.n, v + p * g.n * s.c, out.begin, out.size, m + p * g.n * s.k + out.begin);
  });
  for_each_item(g.pieces, [&](int64_t i) {
    const auto r = g.tiles(i);
    transform_outputs(s, g.first + r.begin, r.size, m + r.begin * s.k, g.n, o, discards + i * s.k);
  });
}

// The weight gradient's sum (36 K x C) += the group's products m[p]^T v[p], from the transforms of
// the input (v) and of the output gradient (m).
void weight_grad_group(const Tiling& s, const Group& g, const Operands& o, float* v, float* m) {
  for_each_item(g.pieces, [&](int64_t i) {
    const auto r = g.tiles(i);
    transform_inputs(s, g.first + r.begin, r.size, o.x, v + r.begin * s.c, g.n * s.c, o.zeros);
    for (int64_t t = r.begin; t < r.begin + r.size; ++t) {
      const float* src[16];
      s.output_pixels(g.first + t, o.dy, o.zeros, src);
      grad_tile(src, s.k, m + t * s.k, g.n * s.k);
    }
  });
  for_each_item(36 * g.blocks, [&](int64_t i) {
    const int64_t p = i / g.blocks;
    const auto out = g.channels(i % g.blocks, s.k);
    check(dnnl_sgemm('T', 'N', out.size, s.c, g.n, 1.f, m + p * g.n * s.k + out.begin, s.k, v + p * g.n * s.c, s.c, 1.f,
                     o.sum + (p * s.k + out.begin) * s.c, s.c));
  });
}

// The convolution of `input` into k channels by the transformed weights u (36 x k x C, or 36 x C x k
// where u_in_by_out).
at::Tensor conv_by_tiles(const at::Tensor& input, const at::Tensor& u, int64_t k, bool u_in_by_out, const at::Tensor& bias_in,
                         int64_t padding, bool relu) {
  const bool nhwc = strictly_channels_last(input);
  const auto x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const auto bias = bias_in.defined() ? bias_in.to(at::kFloat).contiguous() : at::Tensor();
  const Tiling s(x, k, padding, relu);
  auto y = at::empty({s.n, s.k, s.out_h, s.out_w}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const auto zeros = at::zeros({s.c}, x.options());
  const Operands o{x.data_ptr<float>(), u.data_ptr<float>(), bias.defined() ? bias.data_ptr<float>() : nullptr, nullptr,
                   zeros.data_ptr<float>(), y.data_ptr<float>(), nullptr, u_in_by_out};
  const int64_t chunk = s.chunk(), chunks = (s.count + chunk - 1) / chunk;
  if (chunks >= 4 * at::get_num_threads()) {  // chunks enough for every thread: each its own, in cache
    struct Buffers {
      at::Tensor v, m, discard;
    };
    for_each_item(
        chunks,
        [&] {
          return Buffers{at::empty({36 * chunk * s.c}, x.options()), at::empty({36 * chunk * s.k}, x.options()),
                         at::empty({s.k}, x.options())};
        },
        [&](int64_t b, Buffers& buf) {
          forward_chunk(s, b * chunk, std::min(chunk, s.count - b * chunk), o, buf.v.data_ptr<float>(), buf.m.data_ptr<float>(),
                        buf.discard.data_ptr<float>());
        });
  } else {  // few chunks (deep layers, small images, many threads): every thread on each group
    const int64_t group = group_size(s);
    const auto v = at::empty({36 * group * s.c}, x.options()), m = at::empty({36 * group * s.k}, x.options());
    const auto discards = at::empty({Group(0, group, s.k).pieces * s.k}, x.options());
    for_each_group(s, group, [&](const Group& g) {
      forward_group(s, g, o, v.data_ptr<float>(), m.data_ptr<float>(), discards.data_ptr<float>());
    });
  }
  return nhwc ? y : y.contiguous();
}

}  // namespace

int64_t winograd_input_channel_blocks(int64_t out_channels, int64_t in_channels, int64_t tiles) {
  const int64_t bytes = 36 * out_channels * in_channels * static_cast<int64_t>(sizeof(float));
  const int64_t blocks = std::min((bytes + kWinogradWeightBlockBytes - 1) / kWinogradWeightBlockBytes, std::max<int64_t>(1, in_channels / 16));
  // Every chunk of tiles streams all the transformed weights it multiplies by: in blocks, fewer input channels make
  // longer chunks (Tiling::chunk), so blocks pay where the chunks a block takes are fewer than the layer's; elsewhere
  // (fewer tiles, or more output than input channels) they would read as much and add a pass over the output.
  const auto chunks = [&](int64_t c) {
    const int64_t chunk = Tiling::tiles_per_chunk(tiles, c, out_channels);
    return (tiles + chunk - 1) / chunk;
  };
  const int64_t largest_block = 16 * ((in_channels / 16 + blocks - 1) / blocks);  // winograd_tiles_conv2d's split
  return blocks > 1 && chunks(largest_block) < chunks(in_channels) ? blocks : 1;
}

at::Tensor winograd_tiles_conv2d(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, int64_t padding,
                                 bool relu) {
  RECORD_FUNCTION("fcn::winograd_conv2d", std::vector<c10::IValue>());  // a row of its own in operator profiles
  const int64_t k = weight.size(0), c = weight.size(1);
  const int64_t blocks = winograd_input_channel_blocks(k, c, Tiling(input, k, padding, relu).count);
  if (blocks == 1) return conv_by_tiles(input, transform_weights(weight), k, false, bias, padding, relu);
  // The sum over blocks of input channels, each block's weights transformed in turn (and freed before the next):
  // the output transform is linear, so the blocks' outputs add up to the layer's; the bias goes with the first, the
  // ReLU after the last. Each block's input is copied out of x once, in the kernel's channels-last layout (channels in
  // multiples of 16, as the kernel takes), and the sum stays channels-last until the end.
  const bool nhwc = strictly_channels_last(input);
  const int64_t groups = c / 16;
  at::Tensor y;
  for (int64_t b = 0; b < blocks; ++b) {
    const auto r = part(groups, blocks, b);
    const auto x_block = input.narrow(1, 16 * r.begin, 16 * r.size).contiguous(at::MemoryFormat::ChannelsLast);
    auto y_block = conv_by_tiles(x_block, transform_weights(weight.narrow(1, 16 * r.begin, 16 * r.size)), k, false,
                                 b == 0 ? bias : at::Tensor(), padding, false);
    if (b == 0)
      y = std::move(y_block);
    else
      y.add_(y_block);
  }
  if (relu) y.relu_();
  return nhwc ? y : y.contiguous();
}

at::Tensor winograd_tiles_input_grad(const at::Tensor& dy, const at::Tensor& weight, int64_t padding) {
  RECORD_FUNCTION("fcn::winograd_input_grad", std::vector<c10::IValue>());
  // Flipped taps into the transform; U stays K x C, which for this convolution (K in, C out) is in by out.
  return conv_by_tiles(dy, transform_weights(weight, true), weight.size(1), true, at::Tensor(), 2 - padding, false);
}

at::Tensor winograd_tiles_weight_grad(const at::Tensor& input, const at::Tensor& grad_output, int64_t padding, bool channels_last) {
  RECORD_FUNCTION("fcn::winograd_weight_grad", std::vector<c10::IValue>());
  const auto x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const auto dy = grad_output.contiguous(at::MemoryFormat::ChannelsLast);
  const Tiling s(x, dy.size(1), padding, false);
  const int64_t group = group_size(s), kc = s.k * s.c;
  const auto zeros = at::zeros({std::max(s.c, s.k)}, x.options());
  const auto v = at::empty({36 * group * s.c}, x.options()), m = at::empty({36 * group * s.k}, x.options());
  auto sum = at::zeros({36, s.k, s.c}, x.options());
  const Operands o{x.data_ptr<float>(), nullptr, nullptr, dy.data_ptr<float>(), zeros.data_ptr<float>(), nullptr, sum.data_ptr<float>()};
  for_each_group(s, group, [&](const Group& g) { weight_grad_group(s, g, o, v.data_ptr<float>(), m.data_ptr<float>()); });
  // Back to 3x3 kernels: dw = G^T sum G, i.e. (G kron G)^T applied to the 36 positions of each K x C entry:
  // one product into K x C x 9 (OIHW), or K of them, (G kron G)^T times sum[:, k, :], into K x 9 x C.
  if (!channels_last) {
    auto dw = at::empty({s.k, s.c, 3, 3}, x.options());
    check(dnnl_sgemm('T', 'N', kc, 9, 36, 1.f, sum.data_ptr<float>(), kc, g_kron_g().data(), 9, 0.f, dw.data_ptr<float>(), 9));
    return dw;
  }
  auto dw = at::empty({s.k, s.c, 3, 3}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  float* out = dw.data_ptr<float>();
  const float* in = sum.data_ptr<float>();
  at::parallel_for(0, s.k, 8, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k)
      check(dnnl_sgemm('T', 'N', 9, s.c, 36, 1.f, g_kron_g().data(), 9, in + k * s.c, kc, 0.f, out + k * 9 * s.c, s.c));
  });
  return dw;
}

}  // namespace fcn

#endif  // FCN_WITH_ONEDNN
