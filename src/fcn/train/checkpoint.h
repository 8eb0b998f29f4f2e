// Training checkpoints: one self-contained file (model config, metadata and weights, optimiser
// state, and where the run stands), written atomically, so an interrupted run continues exactly.
#pragma once

#include <string>

#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>

#include "fcn/models/model.h"
#include "fcn/util/error.h"

namespace fcn {

// Where a run stands: what the checkpoint stores besides weights and optimiser state.
struct RunPosition {
  int64_t epoch = 0;  // completed epochs
  int64_t step = 0;   // completed steps of the current epoch
  double best_mean_iu = -1;
  int64_t best_epoch = 0;
  double seconds = 0;  // training time so far, over every invocation
  std::string history;  // metrics.jsonl as it should be: one JSON line per completed epoch
  // The training path the run took: its conv algorithm (conv_algorithm_name) and layout
  // ("channels_last" | "nchw"); empty in checkpoints written before fcn kept them.
  std::string conv, layout;
  // The state at this position of the generator of the device the run trains on (fcn pretrain: the stream its dropout
  // draws from, so that a resumed run draws what the uninterrupted one would), and that device's type ("cpu",
  // "cuda"; "cpu" in checkpoints from before it was kept); undefined where the run seeds each step itself (fcn train).
  torch::Tensor rng_state;
  std::string rng_device = "cpu";
  // The settings the run's steps follow, as JSON (fcn train: run_settings, trainer.h), so that a resumed run takes
  // them from here rather than from whatever its caller passes; empty in checkpoints from before 2026-12-07.
  std::string settings;
};

void save_checkpoint(const std::string& path, const Model& model, torch::optim::Optimizer& optimizer, const RunPosition& at);

// Rebuilds `model` (config, metadata, weights) from the checkpoint at `path` and returns the
// position; `archive` keeps the file open for load_optimizer_state. fcn::Error names the file.
RunPosition load_checkpoint(const std::string& path, Model& model, torch::serialize::InputArchive& archive);
// The optimiser state stored beside the model; an error names the file when it does not fit.
void load_optimizer_state(const std::string& path, torch::serialize::InputArchive& archive, torch::optim::Optimizer& optimizer);

// An advisory lock on RUN_DIR/.lock while it lives (flock: the system lets it go when the process dies): two runs in
// one folder would interleave their writes and overwrite each other's checkpoints. RUN_DIR is made where it is
// missing. A folder locked already is an fcn::Error naming it and the holder's pid; `verb` ("fcn train",
// "fcn pretrain") is who holds it, in that message.
class RunLock {
 public:
  RunLock(const std::string& run_dir, const std::string& verb);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// A full disk met while writing into RUN_DIR, told with what of the run is kept: RUN_DIR/checkpoint.pt as it was, and
// --resume RUN_DIR to go on from it once there is room (or that no checkpoint was written yet).
OutOfSpace run_out_of_space(const OutOfSpace& error, const std::string& run_dir);
// `write()`, a write into RUN_DIR (a checkpoint, a model file), with a full disk told as run_out_of_space tells it.
template <class Write>
void writing_into_run(const std::string& run_dir, Write&& write) {
  try {
    write();
  } catch (const OutOfSpace& e) {
    throw run_out_of_space(e, run_dir);
  }
}

// Before a run's first step: where the file system holding RUN_DIR has less room than its next writes take — a
// checkpoint (the weights and the optimiser's state: one tensor per weight for "sgd", two for AdamW's moments) and
// `model_files` model files (last.fcn, best.fcn) — an OutOfSpace saying how much is needed and free (with
// run_out_of_space's words), so that a full disk costs no epoch of work. Nothing where the room cannot be told.
void check_room_for_run(const std::string& run_dir, const torch::nn::Module& net, const std::string& optimizer, int model_files);

// RUN_DIR or RUN_DIR/checkpoint.pt -> the checkpoint path (throws if there is none).
std::string checkpoint_path(const std::string& run_or_checkpoint);

}  // namespace fcn
