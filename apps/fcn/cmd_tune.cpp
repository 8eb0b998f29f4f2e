// fcn tune: times the fast-path candidates for one workload on this machine and caches the winner
// (fcn/infer/fast_path.h), which predict, eval and bench (--mode train: train and bench --mode train)
// then use.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "fcn/bench/benchmark.h"
#include "fcn/infer/fast_path.h"
#include "fcn/util/allocator.h"
#include "fcn/util/cpu.h"
#include "fcn/util/dtype.h"
#include "fcn/util/error.h"
#include "workload.h"

namespace fcn::cli {
namespace {

struct TuneFlags {
  NetRecipe recipe;
  std::string model, size = "500", dtype = "fp32", mode = "infer";
  int64_t batch = 1;
  int runs = 2;
  std::vector<int> threads;
  bool json = false, block_cache = false;
};

// fcn tune: times the fast-path candidates for one workload at each thread count and caches the
// winner, which predict, eval and bench (--mode train: fcn train and bench --mode train) then use.
void run_tune(TuneFlags& t) {
  const auto [height, width] = parse_size(t.size, "--size");
  check_batch(t.batch, t.size, height, width);
  if (t.runs < 1) fail("--runs", "must be at least 1, got " + std::to_string(t.runs));
  const auto dtype = parse_dtype(t.dtype);
  check_dtype_runs_natively(dtype, torch::kCPU, "BenchOptions.dtype");
  if (t.threads.empty()) t.threads = {torch::get_num_threads()};  // what predict and eval run with by default
  apply_threads(t.threads);
  const bool train = t.mode == "train";
  if (train) use_cpu_allocator_for_training();  // as fcn train runs
  auto model = workload_model(t.model, t.recipe);
  auto report = nlohmann::json::array();
  for (const int threads : t.threads) {
    torch::set_num_threads(threads);
    const auto key = tune_key(*model.net, height, width, t.batch, dtype, train);
    if (!t.json)
      std::printf("tuning %s%s at %ldx%ld, %s, batch %ld, %d thread(s), on %s (%s):\n", train ? "the training step of " : "",
                  workload_name(t.model, t.recipe).c_str(), static_cast<long>(height), static_cast<long>(width), t.dtype.c_str(),
                  static_cast<long>(t.batch), threads, cpu_info().model.c_str(), cpu_info().isa_class().c_str());
    const auto result = tune_path(
        key,
        [&](const FastPath& path) {
          return train ? time_train_step(*model.net, path, height, width, t.batch, t.dtype, t.runs)
                       : time_forward(*model.net, path, height, width, t.batch, dtype, t.runs);
        },
        [&](const FastPath& path, double ms) {
          if (!t.json) std::printf("  %-74s %10.1f ms%s\n", path.describe().c_str(), ms, path.source == "rule" ? "  (the ISA rule)" : "");
          std::fflush(stdout);
        },
        t.block_cache);
    double best_ms = 1e300;
    nlohmann::json timings = nlohmann::json::array();
    for (const auto& [path, ms] : result.timings) {
      if (path.same_choice(result.best)) best_ms = std::min(best_ms, ms);
      timings.push_back({{"path", path.to_json()}, {"ms", ms}});
    }
    const double speedup = result.timings.front().second / best_ms;
    if (!t.json) std::printf("  chosen: %s (%.2fx the rule's speed)\n", result.best.describe().c_str(), speedup);
    report.push_back({{"threads", threads}, {"key", key.str()}, {"path", result.best.to_json()}, {"ms", best_ms},
                      {"speedup_over_rule", speedup}, {"timings", timings}});
  }
  if (t.json) {
    std::cout << nlohmann::json{{"cache", tune_cache_file()}, {"cpu", cpu_info().name()}, {"isa", cpu_info().isa_class()},
                                {"winograd_supported", winograd_supported()}, {"tuned", report}}
                     .dump(2)
              << "\n";
  } else {
    std::printf("cached in %s: %s use it on this machine (FCN_NO_TUNE=1 ignores it)\n", tune_cache_file().c_str(),
                train ? "fcn train and fcn bench --mode train" : "fcn predict, eval and bench");
  }
}

}  // namespace

void add_tune(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "tune", "Choose the fastest way to run a net on this CPU (layout, allocator, upsampling, Winograd) by timing it; cached\n"
              "  example: fcn tune --geometry reference --size 500   (FCN-8s VGG16 at 500x500)\n"
              "  example: fcn tune unet.fcn --size 512 --threads 1,2\n"
              "  example: fcn tune fcn8s.fcn --size 64 --batch 8 --mode train   (what fcn train --batch 8 on 64x64 images runs)\n"
              "  The choice is kept in $XDG_CACHE_HOME/fcn/fast-paths.json (else ~/.cache/fcn/), keyed by the CPU model,\n"
              "  its ISA class, the LibTorch version, the thread count and the workload (net, dtype, batch, size class);\n"
              "  fcn predict, eval and bench use it, and without one the ISA rule. FCN_NO_TUNE=1 pins the rule.");
  static TuneFlags t;
  cmd->add_option("MODEL", t.model, "model file (default: a fresh net of the --arch recipe)");
  add_recipe_flags(cmd, t.recipe);
  add_size_flag(cmd, t.size, "input size");
  cmd->add_option("--batch", t.batch, "images per forward pass (--mode train: per step, as fcn train --batch)")->capture_default_str();
  cmd->add_option("--mode", t.mode, "infer | train: a training step's layout and conv algorithm (fcn train's choice)")
      ->capture_default_str()
      ->check(CLI::IsMember({"infer", "train"}));
  add_dtype_flag(cmd, t.dtype);
  add_threads_flag(cmd, t.threads, "LibTorch's default, as predict uses");
  cmd->add_option("--runs", t.runs, "timed runs per candidate after one warm-up (the fastest counts)")->capture_default_str();
  cmd->add_flag("--block-cache", t.block_cache,
                "also try keeping freed blocks: faster (FCN-8s 500x500: ~7%), ~0.6 GiB more memory than PyTorch's peak");
  add_json_flag(cmd, t.json, "cache, cpu, isa, winograd_supported, tuned (threads, key, path, ms, speedup_over_rule, timings)");
  add_max_pixels_flag(cmd);
  cmd->callback([] { run_tune(t); });
}

}  // namespace fcn::cli
