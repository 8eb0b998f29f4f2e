// The path fcn train and fcn pretrain run a CPU training step on: the layout and conv algorithm that
// fcn tune --mode train cached for the step on this machine, or that --tune times first.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "fcn/infer/fast_path.h"
#include "fcn/models/net.h"

namespace fcn::cli {

// One training step's workload: the image size and the (per-rank) batch.
struct StepShape {
  int64_t height, width, batch;
};

// "winograd convs in NCHW": the two choices a training path makes.
std::string training_path_text(const FastPath& path);

// --tune: where nothing is cached for this step (`key`) on this CPU, times the candidates (fcn tune
// --mode train's) on `net`, its weights, training conv algorithm and random stream put back
// afterwards, and caches the winner. A cached choice is reused as it is: the first run on a machine
// measures. `quiet`: prints nothing.
void tune_training_step(NetImpl& net, const StepShape& step, const TuneKey& key, bool quiet);

// fcn tune --mode train's cached choice for `key` on this machine, said in one line unless `quiet`;
// nullopt where nothing is cached (the trainer's own rule runs).
std::optional<FastPath> tuned_training_path(const TuneKey& key, bool quiet);

}  // namespace fcn::cli
