// The fast-path dispatcher: the ISA rule, the tuner's choice (with a fake clock, so the winner is
// known), the cache that keeps it (reused, and missed whenever any field of the key changes),
// FCN_NO_TUNE, a damaged cache file, and the switches a path puts into force. Each test runs in
// its own process under ctest, with its own XDG_CACHE_HOME.
#include "fcn/infer/fast_path.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/registry.h"
#include "test_util.h"

namespace fcn {
namespace {

std::shared_ptr<NetImpl> tiny_unet() {
  NetRecipe recipe;
  recipe.arch = "unet";
  recipe.depth = 2;
  recipe.base_channels = 4;
  recipe.in_channels = 1;
  torch::manual_seed(0);
  return make_net(recipe);
}

void fresh_cache(const std::string& name) {
  const auto dir = test::temp_dir() + "/" + name;
  std::filesystem::remove_all(dir);
  ::setenv("XDG_CACHE_HOME", dir.c_str(), 1);
  ::unsetenv("FCN_NO_TUNE");
}

// Separable fake costs whose optimum is the opposite layout to the rule's, block cache, LibTorch's
// transposed upsampling and (where Winograd exists) the other conv algorithm: every dimension has
// to move for the tuner to find it.
struct FakeClock {
  bool fast_layout = !rule_path().channels_last;
  ConvAlgorithm fast_conv =  // the other one than the rule's
      rule_path().conv == ConvAlgorithm::kWinograd ? ConvAlgorithm::kDirect : ConvAlgorithm::kWinograd;
  int calls = 0;
  double operator()(const FastPath& p) {
    ++calls;
    return 100.0 - (p.channels_last == fast_layout ? 30 : 0) - (p.allocator == CpuAllocatorPolicy::kBlockCache ? 20 : 0) -
           (p.allocator == CpuAllocatorPolicy::kHugePages ? 10 : 0) - (p.upsampling == UpsamplingPath::kTransposed ? 5 : 0) -
           (p.conv == fast_conv ? 3 : 0);
  }
};

// Candidates beyond layout, allocators and upsampling: the other conv algorithm in either layout,
// where Winograd exists.
const size_t kConvCandidates = winograd_supported() ? 2 : 0;

TEST(FastPath, RuleFollowsTheIsaClass) {
  // fcn's Winograd kernel (built with oneDNN) runs on every class, in channels-last; without it,
  // direct convs in NCHW on AVX2 and channels-last with AVX-512.
  const bool winograd = winograd_supported();
  const auto conv = winograd ? ConvAlgorithm::kWinograd : ConvAlgorithm::kDirect;
  CpuInfo avx2{"AMD EPYC 7551P 32-Core Processor", {"avx2"}};
  const auto rule = rule_path(avx2);
  EXPECT_EQ(rule.channels_last, winograd);
  EXPECT_EQ(rule.allocator, CpuAllocatorPolicy::kHugePages);  // recycled freed blocks fault almost nothing, on every class
  EXPECT_EQ(rule.upsampling, UpsamplingPath::kSubpixel);
  EXPECT_EQ(rule.conv, conv);
  EXPECT_EQ(rule.source, "rule");
  for (const auto& flags : {std::vector<std::string>{"avx2", "avx512f"}, {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}}) {
    const auto nhwc = rule_path(CpuInfo{"x", flags});
    EXPECT_TRUE(nhwc.channels_last);
    EXPECT_EQ(nhwc.allocator, CpuAllocatorPolicy::kHugePages);
    EXPECT_EQ(nhwc.conv, conv);
    EXPECT_TRUE(FastPath::from_json(nhwc.to_json()).same_choice(nhwc));
  }
  EXPECT_EQ(rule.describe(), winograd ? "channels-last, huge_pages allocator, subpixel upsampling, winograd convs"
                                      : "NCHW, huge_pages allocator, subpixel upsampling, direct convs");
  EXPECT_TRUE(FastPath::from_json(rule.to_json()).same_choice(rule));
  // On CUDA neither fcn's Winograd nor its allocator runs: the description says what does.
  auto gpu = rule;
  gpu.cuda = true;
  EXPECT_EQ(gpu.describe(), std::string(winograd ? "channels-last" : "NCHW") + ", subpixel upsampling, cuDNN convs, CUDA caching allocator");
  EXPECT_EQ(gpu.to_json()["conv"], "cudnn");
  EXPECT_EQ(gpu.to_json()["allocator"], "cuda_caching");
}

// Training's layout rule is inference's: channels-last on CPUs with AVX-512 or where fcn has its
// Winograd kernels (built with oneDNN), NCHW on AVX2 without them and on GPUs; a layout named by
// the user wins everywhere.
TEST(FastPath, TrainingLayoutFollowsTheIsaClassUnlessNamed) {
  const CpuInfo avx2{"AMD EPYC 7551P 32-Core Processor", {"avx2"}}, amx{"x", {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}};
  const torch::Device cpu(torch::kCPU), cuda(torch::kCUDA);
  EXPECT_TRUE(training_channels_last(TrainingLayout::kAuto, cpu, amx));
  EXPECT_EQ(training_channels_last(TrainingLayout::kAuto, cpu, avx2), winograd_supported());
  EXPECT_FALSE(training_channels_last(TrainingLayout::kAuto, cuda, amx));
  EXPECT_FALSE(training_channels_last(TrainingLayout::kAuto, cuda, avx2));
  for (const auto& machine : {avx2, amx}) EXPECT_TRUE(training_rule_path(machine).same_choice(rule_path(machine)));
  for (const auto& machine : {avx2, amx})
    for (const auto& device : {cpu, cuda}) {
      EXPECT_TRUE(training_channels_last(TrainingLayout::kChannelsLast, device, machine));
      EXPECT_FALSE(training_channels_last(TrainingLayout::kNchw, device, machine));
    }
  EXPECT_EQ(parse_training_layout("auto", "--layout"), TrainingLayout::kAuto);
  EXPECT_EQ(parse_training_layout("nchw", "--layout"), TrainingLayout::kNchw);
  EXPECT_EQ(parse_training_layout("channels-last", "--layout"), TrainingLayout::kChannelsLast);
  EXPECT_EQ(test::error_of([] { parse_training_layout("nhwc", "--layout"); }), "--layout: 'nhwc' is not one of auto, nchw, channels-last");
}

TEST(FastPath, TunedChoiceIsCachedReusedAndInvalidatedByEveryKeyField) {
  fresh_cache("tuned");
  const auto net = tiny_unet();
  const auto key = tune_key(*net, 500, 500);
  EXPECT_EQ(key.size_class, 18);
  EXPECT_EQ(tune_key(*net, 512, 512).str(), key.str());  // one size class
  EXPECT_EQ(find_path(key).source, "rule");               // nothing cached yet
  FakeClock clock;
  int told = 0;
  const auto result = tune_path(key, std::ref(clock), [&](const FastPath&, double) { ++told; }, /*allow_block_cache=*/true);
  // rule, other layout, the two other allocators, other upsampling (and the other conv algorithm in
  // either layout): 5 (7) candidates. The 3 (4) that win are confirmed by timing the incumbent and
  // them once more; the other conv in the other layout loses at once.
  const int timings = kConvCandidates > 0 ? 15 : 11;
  EXPECT_EQ(clock.calls, timings);
  EXPECT_EQ(told, timings);
  EXPECT_EQ(result.timings.size(), 5u + kConvCandidates);
  EXPECT_EQ(result.best.channels_last, clock.fast_layout);
  EXPECT_EQ(result.best.allocator, CpuAllocatorPolicy::kBlockCache);
  EXPECT_EQ(result.best.upsampling, UpsamplingPath::kTransposed);
  if (kConvCandidates > 0) EXPECT_EQ(result.best.conv, clock.fast_conv);
  EXPECT_EQ(result.best.source, "measured");
  ASSERT_TRUE(std::filesystem::exists(tune_cache_file()));
  EXPECT_EQ(tune_cache_file(), test::temp_dir() + "/tuned/fcn/fast-paths.json");

  const auto cached = find_path(key);  // reused, without timing anything
  EXPECT_EQ(cached.source, "cache");
  EXPECT_TRUE(cached.same_choice(result.best));
  EXPECT_EQ(clock.calls, timings);
  EXPECT_EQ(find_path(tune_key(*net, 0, 0)).source, "cache");  // any size: the entry measured

  auto changed = [&](auto&& edit) {
    TuneKey other = key;
    edit(other);
    return find_path(other).source;
  };
  EXPECT_EQ(changed([](TuneKey& k) { k.cpu = "AMD EPYC 7551P 32-Core Processor"; }), "rule");
  EXPECT_EQ(changed([](TuneKey& k) { k.isa = "avx2"; }), "rule");
  EXPECT_EQ(changed([](TuneKey& k) { k.torch_version = "2.5.1"; }), "rule");
  EXPECT_EQ(changed([](TuneKey& k) { k.kernels -= 1; }), "rule");  // timed with an older fcn's kernels
  EXPECT_EQ(changed([](TuneKey& k) { k.threads += 1; }), "rule");
  EXPECT_EQ(changed([](TuneKey& k) { k.dtype = "bf16"; }), "rule");
  EXPECT_EQ(changed([](TuneKey& k) { k.batch = 4; }), "rule");
  EXPECT_EQ(changed([](TuneKey& k) { k.size_class = 16; }), "rule");
  NetRecipe wider;
  wider.arch = "unet", wider.depth = 2, wider.base_channels = 8, wider.in_channels = 1;
  EXPECT_NE(tune_key(*make_net(wider), 500, 500).net, key.net);
  EXPECT_EQ(find_path(tune_key(*make_net(wider), 500, 500)).source, "rule");
}

// fcn tune --mode train: a training key starts from training's rule (fcn train's defaults), times the
// layout and the conv algorithm only, and is cached apart from inference's entry for the same workload.
TEST(FastPath, TrainingChoiceIsTunedAndCachedApartFromInference) {
  fresh_cache("training");
  const auto net = tiny_unet();
  const auto infer = tune_key(*net, 64, 64, 8), train = tune_key(*net, 64, 64, 8, torch::kFloat, /*training=*/true);
  EXPECT_NE(train.str(), infer.str());
  const auto rule = training_rule_path();
  EXPECT_EQ(rule.channels_last, training_channels_last(TrainingLayout::kAuto, torch::kCPU));
  EXPECT_EQ(rule.allocator, CpuAllocatorPolicy::kHugePages);
  EXPECT_EQ(rule.conv, winograd_supported() ? ConvAlgorithm::kWinograd : ConvAlgorithm::kDirect);
  EXPECT_EQ(find_path(train).source, "rule");
  EXPECT_TRUE(find_path(train).same_choice(rule));
  const bool fast_layout = !rule.channels_last;
  // oneDNN's Winograd is a training candidate where this CPU has its kernels (never the rule): the
  // fastest then, so that the test shows it can win.
  const auto fast_conv = winograd_onednn_trains()                 ? ConvAlgorithm::kWinogradOneDnn
                         : rule.conv == ConvAlgorithm::kWinograd ? ConvAlgorithm::kDirect
                                                                 : ConvAlgorithm::kWinograd;
  const size_t conv_candidates = kConvCandidates + (winograd_onednn_trains() ? 2 : 0);
  const auto result = tune_path(train, [&](const FastPath& p) {
    EXPECT_EQ(p.allocator, CpuAllocatorPolicy::kHugePages);  // training's, never another
    EXPECT_EQ(p.upsampling, UpsamplingPath::kSubpixel);
    return 100.0 - (p.channels_last == fast_layout ? 30 : 0) - (p.conv == fast_conv ? 3 : 0);
  });
  EXPECT_EQ(result.timings.size(), 2u + conv_candidates);  // the rule, the other layout, each other conv in either layout
  EXPECT_EQ(result.best.channels_last, fast_layout);
  if (conv_candidates > 0) EXPECT_EQ(result.best.conv, fast_conv);
  EXPECT_EQ(training_layout_of(result.best), fast_layout ? TrainingLayout::kChannelsLast : TrainingLayout::kNchw);
  const auto cached = find_path(train);
  EXPECT_EQ(cached.source, "cache");
  EXPECT_TRUE(cached.same_choice(result.best));
  EXPECT_EQ(find_path(infer).source, "rule");  // inference's entry untouched
  EXPECT_EQ(find_path(tune_key(*net, 64, 64, 4, torch::kFloat, true)).source, "rule");  // another batch
  ::setenv("FCN_NO_TUNE", "1", 1);
  EXPECT_TRUE(find_path(train).same_choice(rule));
  EXPECT_EQ(find_path(train).source, "pinned");
  ::unsetenv("FCN_NO_TUNE");
  // An entry naming oneDNN's Winograd read where this CPU (or build) lacks it: what runs instead.
  auto entry = rule.to_json();
  entry["conv"] = "winograd_onednn";
  EXPECT_EQ(FastPath::from_json(entry).conv, !winograd_supported()      ? ConvAlgorithm::kDirect
                                             : winograd_onednn_trains() ? ConvAlgorithm::kWinogradOneDnn
                                                                        : ConvAlgorithm::kWinograd);
}

TEST(FastPath, EveryCandidateIsTimedOnce) {
  fresh_cache("once");
  const auto net = tiny_unet();
  for (const auto fastest : {CpuAllocatorPolicy::kSystem, CpuAllocatorPolicy::kHugePages, CpuAllocatorPolicy::kBlockCache}) {
    const auto result =
        tune_path(tune_key(*net, 64, 64), [&](const FastPath& p) { return p.allocator == fastest ? 1.0 : 2.0; }, {}, true);
    EXPECT_EQ(result.best.allocator, fastest);
    ASSERT_EQ(result.timings.size(), 5u + kConvCandidates);
    for (size_t i = 0; i < result.timings.size(); ++i) {
      EXPECT_EQ(result.timings[i].first.source, i == 0 ? "rule" : "candidate");
      for (size_t j = 0; j < i; ++j) EXPECT_FALSE(result.timings[i].first.same_choice(result.timings[j].first)) << i << " " << j;
    }
  }
}

TEST(FastPath, BlockCacheOnlyWhenAllowed) {
  fresh_cache("memory");
  const auto net = tiny_unet();
  const auto result = tune_path(tune_key(*net, 64, 64), [&](const FastPath& p) {
    EXPECT_NE(p.allocator, CpuAllocatorPolicy::kBlockCache);  // never even timed
    return 1.0;
  });
  EXPECT_EQ(result.timings.size(), 4u + kConvCandidates);
  EXPECT_TRUE(result.best.same_choice(rule_path()));  // ties keep the rule
}

TEST(FastPath, AWinByNoiseIsNotKept) {
  fresh_cache("noise");
  const auto net = tiny_unet();
  // The other layout is fast only at its first timing (a quiet moment of the VM), then slower.
  int other_layout_timings = 0;
  const bool rule_layout = rule_path().channels_last;
  const auto rule_conv = rule_path().conv;
  const auto result = tune_path(tune_key(*net, 64, 64), [&](const FastPath& p) {
    if (p.channels_last == rule_layout || p.conv != rule_conv) return 100.0;
    return ++other_layout_timings == 1 ? 50.0 : 120.0;
  });
  EXPECT_EQ(result.best.channels_last, rule_layout);
  EXPECT_EQ(other_layout_timings, 2);
  EXPECT_EQ(result.timings[1].second, 50.0);  // its best time, kept for the record
}

// fcn's conv kernels are fp32's: a bf16 path says direct convs (what runs: LibTorch's), from the rule, the cache
// (an entry written as Winograd included) and FCN_NO_TUNE alike, and its tuning times no conv algorithm.
TEST(FastPath, Bf16SaysDirectConvsAndTunesNoConvAlgorithm) {
  fresh_cache("bf16");
  const auto net = tiny_unet();
  const auto key = tune_key(*net, 64, 64, 1, torch::kBFloat16);
  EXPECT_EQ(key.dtype, "bf16");
  EXPECT_EQ(find_path(key).conv, ConvAlgorithm::kDirect);
  EXPECT_EQ(find_path(tune_key(*net, 64, 64)).conv, rule_path().conv);  // fp32: the rule's (Winograd where built)
  FakeClock clock;
  const auto result = tune_path(key, std::ref(clock));
  EXPECT_EQ(result.timings.size(), 4u);  // layout, allocators, upsampling
  for (const auto& [path, ms] : result.timings) EXPECT_EQ(path.conv, ConvAlgorithm::kDirect);
  std::stringstream text;  // the entry as an earlier fcn wrote it: Winograd
  text << std::ifstream(tune_cache_file()).rdbuf();
  auto edited = text.str();
  const std::string direct = "\"conv\": \"direct\"";
  const auto at = edited.find(direct);
  ASSERT_NE(at, std::string::npos) << edited;
  edited.replace(at, direct.size(), "\"conv\": \"winograd\"");
  std::ofstream(tune_cache_file()) << edited;
  EXPECT_EQ(find_path(key).source, "cache");
  EXPECT_EQ(find_path(key).conv, ConvAlgorithm::kDirect);
  ::setenv("FCN_NO_TUNE", "1", 1);
  EXPECT_EQ(find_path(key).conv, ConvAlgorithm::kDirect);
  ::unsetenv("FCN_NO_TUNE");
}

TEST(FastPath, NoTunePinsTheRule) {
  fresh_cache("pinned");
  const auto net = tiny_unet();
  const auto key = tune_key(*net, 64, 64);
  FakeClock clock;
  tune_path(key, std::ref(clock));
  ASSERT_EQ(find_path(key).source, "cache");
  ::setenv("FCN_NO_TUNE", "1", 1);
  const auto path = find_path(key);
  EXPECT_EQ(path.source, "pinned");
  EXPECT_TRUE(path.same_choice(rule_path()));
}

TEST(FastPath, DamagedCacheIsIgnoredThenRewritten) {
  fresh_cache("damaged");
  const auto net = tiny_unet();
  const auto key = tune_key(*net, 64, 64);
  std::filesystem::create_directories(std::filesystem::path(tune_cache_file()).parent_path());
  std::ofstream(tune_cache_file()) << "{\"format\": \"fcn fast paths 2\", \"entries\": {\"" << key.str()
                                   << "\": {\"key\": 3, \"path\": {\"layout\": \"sideways\"}}}";  // cut short
  EXPECT_EQ(find_path(key).source, "rule");
  std::ofstream(tune_cache_file()) << "{\"format\": \"fcn fast paths 2\", \"entries\": {\"" << key.str()
                                   << "\": {\"key\": 3, \"path\": {\"layout\": \"sideways\"}}}}";  // valid JSON, bad entry
  EXPECT_EQ(find_path(key).source, "rule");
  FakeClock clock;
  tune_path(key, std::ref(clock));
  EXPECT_EQ(find_path(key).source, "cache");
}

// Every net with batch norms (folded into their convs under fcn's kernels) and every FCN upsampler (fcn's phase sgemm,
// the kSame geometry's sum added in place) gives, in eval mode with statistics away from their init, the logits of
// LibTorch's own kernels (ConvAlgorithm::kDirect: conv, then batch norm; conv_transpose2d's arithmetic).
TEST(FastPath, FcnsKernelsGiveLibTorchsLogitsForEveryBatchNormNet) {
  std::vector<NetRecipe> recipes(5);
  recipes[0].backbone = "resnet18-w0.125";
  recipes[1].backbone = "resnet50-w0.0625";
  recipes[2].backbone = "vgg11_bn-w0.0625";
  recipes[2].fc_channels = 16;
  recipes[2].fc_kernel = 2;
  recipes[3].arch = "unet";
  recipes[3].base_channels = 8;
  recipes[3].depth = 2;
  recipes[3].batch_norm = true;
  recipes[4].arch = "torchvision-fcn";
  recipes[4].backbone = "resnet50-w0.0625";
  for (auto& recipe : recipes) {
    SCOPED_TRACE(recipe.arch + " " + recipe.backbone);
    recipe.classes = 5;
    torch::manual_seed(1);
    const auto net = make_net(recipe);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : net->parameters()) p.normal_(0, 0.2);
      for (auto& item : net->named_buffers())
        if (item.key().find("running_var") != std::string::npos) item.value().uniform_(0.5, 2);
        else if (item.key().find("running_mean") != std::string::npos) item.value().normal_(0, 0.2);
    }
    net->eval();
    to_layout(*net, true);
    const auto input = torch::rand({1, 3, 64, 64}).contiguous(torch::MemoryFormat::ChannelsLast);
    torch::Tensor logits[2];
    for (const auto algorithm : {ConvAlgorithm::kDirect, ConvAlgorithm::kWinograd}) {
      InferenceConvScope scope(algorithm);
      c10::InferenceMode guard;
      logits[algorithm == ConvAlgorithm::kWinograd] = net->forward(input);
    }
    EXPECT_LE(test::relative_error(logits[1], logits[0]), 1e-4);
  }
}

TEST(FastPath, ApplyPathSwitchesAllocatorAndUpsamplingWithTheSameLogits) {
  NetRecipe recipe;
  recipe.arch = "fcn8s";
  recipe.backbone = "vgg11-w0.0625";
  recipe.fc_channels = 16;
  recipe.fc_kernel = 2;
  recipe.classes = 3;
  torch::manual_seed(0);
  const auto net = make_net(recipe);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) p.normal_(0, 0.2);  // upsamplers and score layers away from their init
  }
  net->eval();
  const auto input = torch::rand({1, 3, 64, 96});
  torch::Tensor logits[2];
  for (const auto upsampling : {UpsamplingPath::kSubpixel, UpsamplingPath::kTransposed}) {
    FastPath path;
    path.upsampling = upsampling;
    path.allocator = upsampling == UpsamplingPath::kSubpixel ? CpuAllocatorPolicy::kSystem : CpuAllocatorPolicy::kBlockCache;
    apply_path(path);
    EXPECT_EQ(upsampling_path(), upsampling);
    EXPECT_EQ(cpu_allocator_policy(), path.allocator);
    EXPECT_EQ(cpu_allocator_installed(), path.allocator != CpuAllocatorPolicy::kSystem);
    c10::InferenceMode guard;
    logits[upsampling == UpsamplingPath::kTransposed] = net->forward(input);
  }
  EXPECT_LE(test::relative_error(logits[1], logits[0]), 1e-5);
  FastPath nhwc;
  EXPECT_GT(time_forward(*net, nhwc, 64, 96, 1, torch::kFloat, 1), 0.0);
  EXPECT_FALSE(net->parameters()[0].is_contiguous(torch::MemoryFormat::ChannelsLast) &&
               !net->parameters()[0].is_contiguous());  // left NCHW
  apply_path(FastPath{});
}

}  // namespace
}  // namespace fcn
