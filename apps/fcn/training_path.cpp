#include "training_path.h"

#include <algorithm>
#include <cstdio>

#include "fcn/bench/benchmark.h"

namespace fcn::cli {

std::string training_path_text(const FastPath& path) {
  return std::string(conv_algorithm_name(path.conv)) + " convs in " + (path.channels_last ? "channels-last" : "NCHW");
}

void tune_training_step(NetImpl& net, const StepShape& step, const TuneKey& key, bool quiet) {
  if (find_path(key).source != "rule") return;  // cached already, or FCN_NO_TUNE=1
  if (!quiet) std::printf("timing the training step on this CPU (--tune; cached for this net, size and batch):\n");
  const TrainingTuneGuard restore(net);
  // Two steps per candidate where a step is long (FCN-8s at 320^2: ~1-2 s); short steps (a 32^2
  // classifier's: ~30 ms) vary by 10-15% between single timings, so more of them, ~0.3 s a candidate.
  const auto time_one = [&](const FastPath& path) {
    const double first = time_train_step(net, path, step.height, step.width, step.batch, "fp32", 2);
    const int runs = static_cast<int>(std::clamp(300.0 / std::max(first, 1e-3), 2.0, 10.0));
    return runs == 2 ? first : std::min(first, time_train_step(net, path, step.height, step.width, step.batch, "fp32", runs));
  };
  tune_path(
      key, time_one,
      [&](const FastPath& path, double ms) {
        if (!quiet) std::printf("  %s: %.1f ms/step\n", training_path_text(path).c_str(), ms);
        std::fflush(stdout);
      });
}

std::optional<FastPath> tuned_training_path(const TuneKey& key, bool quiet) {
  const auto path = find_path(key);
  if (path.source != "cache") return std::nullopt;
  if (!quiet) std::printf("training path: %s (fcn tune --mode train's choice for this CPU)\n", training_path_text(path).c_str());
  std::fflush(stdout);
  return path;
}

}  // namespace fcn::cli
