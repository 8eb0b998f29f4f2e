#include "fcn/infer/fast_path.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <mutex>

#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <torch/version.h>

#include "fcn/models/layers.h"
#include "fcn/models/registry.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

// 2: paths gained the conv algorithm; entries tuned without it are not reused.
constexpr const char* kFormat = "fcn fast paths 2";

std::string fnv1a_hex(const std::string& text) {
  uint64_t hash = 1469598103934665603ull;
  for (const unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

nlohmann::json key_json(const TuneKey& k) {
  nlohmann::json j{{"cpu", k.cpu}, {"isa", k.isa}, {"torch", k.torch_version}, {"threads", k.threads}, {"net", k.net},
                   {"dtype", k.dtype}, {"batch", k.batch}, {"size_class", k.size_class}};
  if (k.training) j["mode"] = "train";  // inference entries keep the keys they had
  return j;
}

bool pinned() {
  const char* env = std::getenv("FCN_NO_TUNE");
  return env != nullptr && *env != '\0' && std::string(env) != "0";
}

// The cache file's entries; an empty object when there is none or it cannot be read (reported once).
nlohmann::json read_entries() {
  const std::string file = tune_cache_file();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return nlohmann::json::object();
  try {
    const auto bytes = read_file(file);
    auto j = nlohmann::json::parse(bytes.begin(), bytes.end());
    if (j.value("format", "") != kFormat || !j.contains("entries") || !j["entries"].is_object())
      throw std::runtime_error("not an fcn fast-path cache (\"format\": \"" + std::string(kFormat) + "\")");
    return j["entries"];
  } catch (const std::exception& e) {
    static std::once_flag once;
    std::call_once(once, [&] {
      std::fprintf(stderr, "fcn: warning: ignoring %s: %s; fcn tune rewrites it\n", file.c_str(), e.what());
    });
    return nlohmann::json::object();
  }
}

// The entry for `key`; for size_class 0, the one of the largest size class with every other field equal.
const nlohmann::json* lookup(const nlohmann::json& entries, const TuneKey& key) {
  if (key.size_class != 0) {
    const auto it = entries.find(key.str());
    return it == entries.end() ? nullptr : &*it;
  }
  const nlohmann::json* best = nullptr;
  auto wanted = key_json(key);
  wanted.erase("size_class");
  for (const auto& entry : entries) {
    if (!entry.contains("key") || !entry["key"].is_object()) continue;
    auto k = entry["key"];
    const int64_t size = k.value("size_class", int64_t{0});
    k.erase("size_class");
    if (k == wanted && (best == nullptr || size > (*best)["key"].value("size_class", int64_t{0}))) best = &entry;
  }
  return best;
}

std::string now_iso() {
  const std::time_t t = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return text;
}

void store(const TuneKey& key, const TuneResult& result) {
  auto entries = read_entries();
  nlohmann::json ms = nlohmann::json::object();
  for (const auto& [path, time] : result.timings) ms[path.describe()] = time;
  entries[key.str()] = {{"key", key_json(key)}, {"path", result.best.to_json()}, {"ms", ms}, {"measured", now_iso()}};
  const std::string file = tune_cache_file();
  std::filesystem::create_directories(std::filesystem::path(file).parent_path());
  const auto text = nlohmann::json{{"format", kFormat}, {"entries", entries}}.dump(2);
  write_file_atomic(file, text.data(), text.size());
}

// Inference's and training's layout rule on the CPU (rule_path, training_channels_last).
bool channels_last_rule(const CpuInfo& cpu) { return cpu.has("avx512f") || winograd_supported(); }

}  // namespace

void to_layout(torch::nn::Module& module, bool channels_last) {
  if (channels_last) return to_channels_last(module);
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous());
}

const char* layout_name(bool channels_last) { return channels_last ? "channels_last" : "nchw"; }

TrainingLayout parse_training_layout(const std::string& name, const std::string& what) {
  if (name == "auto") return TrainingLayout::kAuto;
  if (name == "nchw") return TrainingLayout::kNchw;
  if (name == "channels-last") return TrainingLayout::kChannelsLast;
  fail(what, "'" + name + "' is not one of auto, nchw, channels-last");
}

bool training_channels_last(TrainingLayout layout, const torch::Device& device, const CpuInfo& cpu) {
  if (layout != TrainingLayout::kAuto) return layout == TrainingLayout::kChannelsLast;
  return device.is_cpu() && channels_last_rule(cpu);
}

bool FastPath::same_choice(const FastPath& o) const {
  return channels_last == o.channels_last && allocator == o.allocator && upsampling == o.upsampling && conv == o.conv;
}

std::string FastPath::describe() const {
  const std::string layout = channels_last ? "channels-last" : "NCHW";
  const std::string upsample = std::string(upsampling == UpsamplingPath::kSubpixel ? "subpixel" : "transposed") + " upsampling";
  if (cuda) return layout + ", " + upsample + ", cuDNN convs, CUDA caching allocator";
  return layout + ", " + policy_name(allocator) + " allocator, " + upsample + ", " + conv_algorithm_name(conv) + " convs";
}

nlohmann::json FastPath::to_json() const {
  nlohmann::json j = {{"layout", layout_name(channels_last)}, {"allocator", policy_name(allocator)},
                      {"upsampling", upsampling == UpsamplingPath::kSubpixel ? "subpixel" : "transposed"},
                      {"conv", conv_algorithm_name(conv)}, {"source", source}};
  if (cuda) j["allocator"] = "cuda_caching", j["conv"] = "cudnn", j["device"] = "cuda";
  return j;
}

FastPath FastPath::from_json(const nlohmann::json& j) {
  FastPath path;
  const auto layout = j.at("layout").get<std::string>(), upsampling = j.at("upsampling").get<std::string>();
  if ((layout != layout_name(false) && layout != layout_name(true)) || (upsampling != "subpixel" && upsampling != "transposed"))
    fail("fast path", "unknown layout '" + layout + "' or upsampling '" + upsampling + "'");
  path.channels_last = layout == layout_name(true);
  path.allocator = parse_allocator_policy(j.at("allocator").get<std::string>(), "fast path allocator");
  path.upsampling = upsampling == "subpixel" ? UpsamplingPath::kSubpixel : UpsamplingPath::kTransposed;
  path.conv = parse_conv_algorithm(j.at("conv").get<std::string>(), "fast path conv");
  // A cache written by a build or on a CPU with more than this one has: what this one runs instead.
  if (path.conv == ConvAlgorithm::kWinogradOneDnn && !winograd_onednn_trains()) path.conv = ConvAlgorithm::kWinograd;
  if (!winograd_supported()) path.conv = ConvAlgorithm::kDirect;
  path.source = "cache";
  return path;
}

std::string TuneKey::str() const {
  return "cpu=" + cpu + ";isa=" + isa + ";torch=" + torch_version + ";fcn_kernels=" + std::to_string(kernels) +
         ";threads=" + std::to_string(threads) + ";net=" + net + ";dtype=" + dtype + ";batch=" + std::to_string(batch) +
         ";size=2^" + std::to_string(size_class) + (training ? ";mode=train" : "");
}

TuneKey tune_key(const NetImpl& net, int64_t height, int64_t width, int64_t batch, torch::Dtype dtype, bool training) {
  TuneKey key;
  key.training = training;
  key.cpu = cpu_info().name();  // with the family and model numbers: VMs name several generations alike
  key.isa = cpu_info().isa_class();
  key.torch_version = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                      std::to_string(TORCH_VERSION_PATCH);
  key.threads = torch::get_num_threads();
  key.net = fnv1a_hex(net_config(net).dump());
  key.dtype = dtype == torch::kBFloat16 ? "bf16" : "fp32";
  key.batch = batch;
  key.size_class = height > 0 && width > 0 ? std::max<int64_t>(1, std::llround(std::log2(static_cast<double>(height * width)))) : 0;
  return key;
}

std::string tune_cache_file() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::filesystem::path base = xdg != nullptr && *xdg != '\0' ? std::filesystem::path(xdg)
                                     : home != nullptr && *home != '\0' ? std::filesystem::path(home) / ".cache"
                                                                         : std::filesystem::temp_directory_path();
  return (base / "fcn" / "fast-paths.json").string();
}

FastPath rule_path(const CpuInfo& cpu) {
  FastPath path;
  const bool winograd = winograd_supported();
  path.channels_last = channels_last_rule(cpu);  // fcn's Winograd kernel works in channels-last
  // glibc's allocator was AVX2's (the EPYC, 2026-11-25), when fcn's unmapped every freed
  // block: both then faulted ~1 GiB back in per FCN-8s 500^2 image. Recycled within the peak, fcn's
  // faults almost nothing: 0.97 vs 2.2-2.4 s on the AVX2 proxy at 2 threads (docs/benchmarks.md).
  path.allocator = CpuAllocatorPolicy::kHugePages;
  path.upsampling = UpsamplingPath::kSubpixel;
  path.conv = winograd ? ConvAlgorithm::kWinograd : ConvAlgorithm::kDirect;
  path.source = "rule";
  return path;
}

FastPath training_rule_path(const CpuInfo& cpu) { return rule_path(cpu); }  // one rule since 2026-12-05

TrainingLayout training_layout_of(const FastPath& path) {
  return path.channels_last ? TrainingLayout::kChannelsLast : TrainingLayout::kNchw;
}

namespace {
// fcn's own conv kernels (Winograd, im2col + sgemm) take fp32 alone: in bf16 every convolution is LibTorch's
// (oneDNN's, on AMX tiles or AVX512-BF16), so a bf16 path says direct, and the tuner has no conv algorithm to try.
bool fcn_convs_serve(const TuneKey& key) { return key.dtype != "bf16"; }

FastPath as_runs(FastPath path, const TuneKey& key) {
  if (!fcn_convs_serve(key)) path.conv = ConvAlgorithm::kDirect;
  return path;
}

FastPath rule_for(const TuneKey& key) { return as_runs(key.training ? training_rule_path() : rule_path(), key); }
}  // namespace

FastPath find_path(const TuneKey& key) {
  if (pinned()) {
    auto path = rule_for(key);
    path.source = "pinned";
    return path;
  }
  const auto entries = read_entries();
  if (const auto* entry = lookup(entries, key)) {
    try {
      return as_runs(FastPath::from_json(entry->at("path")), key);
    } catch (const std::exception&) {  // a damaged entry is a miss; fcn tune replaces it
    }
  }
  return rule_for(key);
}

TuneResult tune_path(const TuneKey& key, const std::function<double(const FastPath&)>& time_one,
                     const std::function<void(const FastPath&, double)>& progress, bool allow_block_cache) {
  TuneResult result;
  // A fresh timing; the record keeps each candidate's best (one entry each, in the order first timed).
  auto measure = [&](const FastPath& path) {
    const double ms = time_one(path);
    if (progress) progress(path, ms);
    for (auto& [timed, best_ms] : result.timings)
      if (timed.same_choice(path)) return best_ms = std::min(best_ms, ms), ms;
    result.timings.emplace_back(path, ms);
    return ms;
  };
  FastPath best = rule_for(key);
  double best_ms = measure(best);
  // A busy VM makes single timings swing by tens of percent: an alternative that looks faster is
  // timed again right after the incumbent, and wins only if it is again faster by 2%.
  auto try_alternative = [&](FastPath alternative) {
    alternative.source = "candidate";
    if (measure(alternative) >= 0.98 * best_ms) return;
    const double incumbent = measure(best), ms = measure(alternative);
    if (ms < 0.98 * incumbent) {
      best = alternative, best_ms = ms;
    } else {
      best_ms = std::min(best_ms, incumbent);
    }
  };
  FastPath other = best;
  other.channels_last = !best.channels_last;
  try_alternative(other);
  if (!key.training) {  // training: the layout and the conv algorithm only
    const FastPath base = best;  // each other allocator against the layout kept
    for (const auto policy : {CpuAllocatorPolicy::kSystem, CpuAllocatorPolicy::kHugePages, CpuAllocatorPolicy::kBlockCache}) {
      if (policy == base.allocator || (policy == CpuAllocatorPolicy::kBlockCache && !allow_block_cache)) continue;
      other = base;
      other.allocator = policy;
      try_alternative(other);
    }
    other = best;
    other.upsampling = best.upsampling == UpsamplingPath::kSubpixel ? UpsamplingPath::kTransposed : UpsamplingPath::kSubpixel;
    try_alternative(other);
  }
  // The other conv algorithms, each in the layout kept and in the other one (training: oneDNN's
  // Winograd too, where this CPU has it).
  std::vector<ConvAlgorithm> algorithms;
  if (winograd_supported() && fcn_convs_serve(key)) algorithms = {ConvAlgorithm::kDirect, ConvAlgorithm::kWinograd};
  if (key.training && winograd_onednn_trains() && fcn_convs_serve(key)) algorithms.push_back(ConvAlgorithm::kWinogradOneDnn);
  const FastPath kept = best;
  for (const auto algorithm : algorithms) {
    if (algorithm == kept.conv) continue;
    for (const bool flip_layout : {false, true}) {
      other = kept;
      other.conv = algorithm;
      other.channels_last = kept.channels_last != flip_layout;
      try_alternative(other);
    }
  }
  best.source = "measured";
  result.best = best;
  store(key, result);
  return result;
}

double time_forward(NetImpl& net, const FastPath& path, int64_t height, int64_t width, int64_t batch, torch::Dtype dtype,
                    int runs) {
  apply_path(path);
  net.eval();
  net.to(torch::kCPU, dtype);
  to_layout(net, path.channels_last);
  torch::manual_seed(0);
  const auto format = path.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  std::vector<double> ms;
  {
    c10::InferenceMode guard;
    const auto input = torch::rand({batch, net.in_channels(), height, width}).to(dtype).contiguous(format);
    for (int i = 0; i <= std::max(1, runs); ++i) {
      const auto start = std::chrono::steady_clock::now();
      net.forward(input);
      if (i > 0) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
  }
  to_layout(net, false);
  return *std::min_element(ms.begin(), ms.end());
}

void apply_path(const FastPath& path) {
  set_cpu_allocator_policy(path.allocator);
  set_upsampling_path(path.upsampling);
  set_conv_algorithm(path.conv);
}

}  // namespace fcn
