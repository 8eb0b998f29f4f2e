// The fast path for running a net on this machine, chosen by measurement rather than from one
// developer's CPU. What wins differs by CPU class (docs/benchmarks.md): on the AVX-512/AMX VMs
// channels-last with fcn's huge-page allocator is fastest for FCN-8s at 500^2; on an AVX2 EPYC
// (Zen 1) NCHW with glibc's allocator was, by 15-20%, before fcn's Winograd and before its
// allocator recycled freed blocks. So:
//  - `fcn tune` (tune_path) times the candidates for one workload on this machine and caches the
//    winner in $XDG_CACHE_HOME/fcn/fast-paths.json (else ~/.cache/fcn/), keyed by the CPU model,
//    its ISA class, the LibTorch version, fcn's kernel generation (kFcnKernels), the thread count
//    and the workload (net, dtype, batch, size class);
//  - predict, eval and bench look the key up (find_path): a hit is used at no cost; a miss takes
//    the ISA rule below, measured on both classes, and says so; nothing is timed implicitly;
//  - FCN_NO_TUNE=1 pins the ISA rule and ignores the cache, for reproducible runs.
//
//   fcn::FastPath path = fcn::find_path(fcn::tune_key(*model.net, 500, 500));
//   fcn::apply_path(path);                        // allocator and upsampling, process-wide
//   options.channels_last = path.channels_last;   // the layout is the Predictor's
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include "fcn/models/net.h"
#include "fcn/models/upsampling.h"
#include "fcn/models/winograd.h"
#include "fcn/util/allocator.h"
#include "fcn/util/cpu.h"

namespace fcn {

struct FastPath {
  bool channels_last = true;  // activations and conv weights NHWC; false: NCHW
  CpuAllocatorPolicy allocator = CpuAllocatorPolicy::kHugePages;
  UpsamplingPath upsampling = UpsamplingPath::kSubpixel;
  ConvAlgorithm conv = ConvAlgorithm::kDirect;  // kWinograd: 3x3 layers by fcn's Winograd (training paths: or oneDNN's)
  // Where the choice came from: "measured" (just now), "cache" (an earlier fcn tune), "rule" (the
  // ISA class; no cache entry), "pinned" (FCN_NO_TUNE=1), "flag" (the user's --nchw).
  std::string source = "rule";
  // On a CUDA device: convs are LibTorch's (cuDNN) and memory its CUDA caching allocator, whatever
  // `allocator` and `conv` say (fcn's Winograd and allocator serve CPU tensors only).
  bool cuda = false;

  bool same_choice(const FastPath& other) const;
  // "channels-last, huge_pages allocator, subpixel upsampling, winograd convs"; on CUDA
  // "channels-last, subpixel upsampling, cuDNN convs, CUDA caching allocator".
  std::string describe() const;
  nlohmann::json to_json() const;
  static FastPath from_json(const nlohmann::json& j);  // throws on a malformed entry
};

// The generation of fcn's own kernels and memory handling, in every key: raised whenever a change
// to them can change which candidate is fastest (2: Winograd in groups where a layer has few
// chunks, 16-channel transforms on AVX-512; 3: glibc's heap settled under fcn's allocator, which
// sped small nets' training steps 1.4-2x; 4: channels-last training without LibTorch's weight-gradient
// copy, ~7% off FCN-8s's 320^2 step; 5: the huge-pages allocator recycles freed blocks within the
// peak, ~10% off FCN-8s's 500^2 forward; 6: Winograd inference only on calls with enough tiles, U-Net's
// up-convolution by sgemm, 2.6x off a 64^2 U-Net; larger Winograd chunks for wide layers; 7: maps of
// under 256 pixels by im2col + sgemm with the threads sharing the output channels, ~20% off a 64^2
// U-Net at 2 threads; 8: the same in training, with its own gradients, ~25-30% off the demo's FCN-8s
// step; 9: an upsampler's rearranged weights kept in inference, its phases laid out without pixel_shuffle on
// channels-last activations, batch-1 small maps on oneDNN: FCN-8s ResNet-18-w0.25 at 128^2 ~3x faster; 10: upsamplers
// by fcn's phase sgemm writing the output itself, the kSame sum added in place, batch norms folded into their convs:
// the same net ~1.5x faster again; 11: the huge-pages allocator merges freed neighbours, as fast as glibc's for that
// net where it had been 10-25% slower; 12: dilated 3x3 convs by Winograd on their phases, 1x1 convs on larger maps at
// one thread by oneDNN: torchvision's FCN ResNet-50 at 512^2 1.7x faster at one thread, 1.15x at two; 13: those 1x1
// convs in channels-last training too, forward and input gradient: its 320^2 step 1.15-1.3x faster at one thread; 14:
// dilated convs trained by Winograd on their phases too, and their phases' rule by tiles: the same step 10-15% faster),
// so that a choice timed before is timed again, not reused.
constexpr int kFcnKernels = 14;

// What a choice is valid for. Any field that differs makes it a different entry.
struct TuneKey {
  std::string cpu, isa, torch_version;
  int kernels = kFcnKernels;
  int threads = 1;
  std::string net;  // a hash of the net's config (architecture, widths, classes)
  std::string dtype = "fp32";
  int64_t batch = 1;
  int64_t size_class = 0;  // round(log2(H x W)): 500x500 and 512x512 share one; 0 = any size
  bool training = false;   // a training step's choice (fcn tune --mode train), apart from inference's
  std::string str() const;
};
// This machine and thread count (torch::get_num_threads()) for `net` at height x width.
// height = width = 0: any size (a command that does not know its image sizes up front).
TuneKey tune_key(const NetImpl& net, int64_t height, int64_t width, int64_t batch = 1, torch::Dtype dtype = torch::kFloat,
                 bool training = false);

std::string tune_cache_file();

// The choice without measurement: Winograd 3x3 convs in channels-last where fcn has its Winograd
// kernel (built with oneDNN: every x86-64 CPU), else direct convs, NCHW on AVX2 and below and
// channels-last with AVX-512; fcn's huge pages, freed blocks recycled within the peak (glibc's
// allocator on AVX2 until 2026-12-04); subpixel upsampling (docs/benchmarks.md).
FastPath rule_path(const CpuInfo& cpu = cpu_info());

// Training's choice without measurement (fcn train's defaults on the CPU): rule_path's — the same
// layout (training_channels_last), fcn's Winograd 3x3 convs where fcn has them (never oneDNN's by
// rule: 2.7x slower than direct on an AVX-512 Zen 5), fcn's huge pages (freed blocks recycled
// within the peak: a step reuses the last step's blocks) and subpixel upsampling.
FastPath training_rule_path(const CpuInfo& cpu = cpu_info());

// FCN_NO_TUNE=1: the rule, "pinned". Else the cached choice for `key` ("cache"; for size_class 0
// the entry of the largest size measured), else the rule. An unreadable cache file is reported on
// stderr once and ignored. Training keys (key.training) take training_rule_path as their rule. A bf16
// key's path says direct convs, whatever was cached: fcn's own conv kernels are fp32's, so LibTorch's run
// (tune_path times no conv algorithm for bf16 either).
FastPath find_path(const TuneKey& key);

struct TuneResult {
  FastPath best;  // source "measured"
  std::vector<std::pair<FastPath, double>> timings;  // every candidate timed, ms per run
};
// Starts from the rule and, one choice at a time (layout, allocator, upsampling, then each other
// conv algorithm in either layout, where Winograd exists; for training oneDNN's Winograd too, where
// this CPU has it), keeps an alternative that `time_one` finds faster by more than 2%, twice: an alternative that looks
// faster is timed again right after the incumbent (a busy VM swings single timings by tens of
// percent). Stores the winner under `key` (atomically; a corrupt cache file is replaced).
// `progress` is told every timing; `timings` keeps each candidate's best.
// The block cache is a candidate only with `allow_block_cache`: it holds ~0.9 GiB more at FCN-8s
// 500^2, above PyTorch's peak memory, and since huge pages recycle freed blocks within the peak
// (2026-12-04) it is no faster there (it was 2.38 vs 2.54 s on the AMX class before), so trading
// memory for speed is the user's call (fcn tune --block-cache). A training key starts from
// training_rule_path and times the layout and the conv algorithm only (the allocator stays huge
// pages, the upsampling subpixel: what fcn train applies).
TuneResult tune_path(const TuneKey& key, const std::function<double(const FastPath&)>& time_one,
                     const std::function<void(const FastPath&, double)>& progress = {}, bool allow_block_cache = false);

// The timing tune_path uses for inference: `net` (moved to the path's layout) in eval mode under
// InferenceMode on a random batch x C x height x width input, the fastest of `runs` forward passes
// after one warm-up (the least disturbed by other load). The net is left in NCHW and in `dtype`.
double time_forward(NetImpl& net, const FastPath& path, int64_t height, int64_t width, int64_t batch, torch::Dtype dtype,
                    int runs);

// Conv weights (4-d parameters) of `module` in channels-last or plain NCHW layout.
void to_layout(torch::nn::Module& module, bool channels_last);
// A layout as the cache and the training checkpoints spell it: "channels_last" | "nchw".
const char* layout_name(bool channels_last);

// The layout training runs in (fcn train, fcn pretrain, fcn bench --mode train). kAuto is the rule,
// the inference rule's layout: channels-last on CPUs with AVX-512, or wherever fcn has its Winograd
// kernels (built with oneDNN), which work in channels-last — in NCHW every Winograd layer converts
// its input and output. Measured (docs/benchmarks.md, "Training in channels-last" and "One layout
// rule"): on AVX-512 the demo's FCN-8s step ~1.15x faster than in NCHW; on the AVX2 proxy, with the
// current trainer, the demo's step 1.11-1.17x and FCN-8s VGG16's 320^2 step 1.18-1.20x (fcn tune
// --mode train). NCHW elsewhere (a build without oneDNN below AVX-512, where NCHW was the faster
// layout for LibTorch's direct convolutions on the AVX2 EPYC) and on GPUs. The layout changes float
// rounding only.
enum class TrainingLayout { kAuto, kNchw, kChannelsLast };
TrainingLayout parse_training_layout(const std::string& name, const std::string& what);  // auto | nchw | channels-last
bool training_channels_last(TrainingLayout layout, const torch::Device& device, const CpuInfo& cpu = cpu_info());
// The layout a training path names: kChannelsLast or kNchw.
TrainingLayout training_layout_of(const FastPath& path);

// Puts the process-wide parts into force: the CPU allocator policy, the upsampling path and the
// conv algorithm. The layout is per net: PredictOptions::channels_last.
void apply_path(const FastPath& path);

}  // namespace fcn
