// Segmentation training: the loop, the schedule, validation, checkpoints and resume.
// A run folder holds checkpoint.pt (model + optimiser + position: everything to continue
// exactly), last.fcn and best.fcn (model files, best by validation mean IU) and metrics.jsonl
// (one JSON line per epoch, also kept in the checkpoint: a line lost to a full disk is rewritten on
// resume). Every write is atomic and checked; Ctrl-C writes a checkpoint and returns. A run folder
// is locked (flock on RUN_DIR/.lock) while a trainer uses it: a second one fails at once.
// Randomness (order, augmentation, dropout) is derived from (seed, epoch, step, sample), so a
// resumed run computes what the uninterrupted run would have, whatever the number of loader threads.
// Data-parallel (TrainOptions.communicator): every rank runs this with the same options; the global
// batch (batch_size) is split across ranks, gradients and the loss's batch-wide sums are summed over
// them, so N ranks compute what one process would (up to float rounding; nets without batch norm or
// dropout, whose per-rank batches differ). Batch norm uses each rank's batch statistics; the running
// statistics are averaged over the ranks at each epoch's end and before every checkpoint. Validation
// is split across ranks and the confusion matrices summed. Rank 0 alone writes the run folder.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <torch/arg.h>
#include <torch/types.h>

#include "fcn/data/dataset.h"
#include "fcn/data/transforms.h"
#include "fcn/data/weight_map.h"
#include "fcn/eval/metrics.h"
#include "fcn/infer/fast_path.h"
#include "fcn/models/model.h"
#include "fcn/train/checkpoint.h"
#include "fcn/train/distributed.h"
#include "fcn/train/loss.h"
#include "fcn/train/optimizer.h"

namespace fcn {

struct TrainOptions {
  TORCH_ARG(std::string, run_dir);
  TORCH_ARG(int64_t, epochs) = 10;
  TORCH_ARG(int64_t, batch_size) = 8;  // the global batch: split across ranks when distributed
  TORCH_ARG(OptimizerOptions, optimizer);
  TORCH_ARG(AugmentOptions, augment);
  TORCH_ARG(Reduction, reduction) = Reduction::kMean;
  TORCH_ARG(LossKind, loss) = LossKind::kCrossEntropy;
  TORCH_ARG(torch::Tensor, class_weights);  // undefined: all 1
  // U-Net's weight map as per-pixel loss weights, w_c = class_weights; computed once per sample
  // from its instance mask (or, without one, the connected components of each class) and cached.
  TORCH_ARG(bool, weight_map) = false;
  TORCH_ARG(WeightMapOptions, weight_map_options);
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(int64_t, val_every) = 1;         // epochs between validations (the last epoch always)
  // Early stopping: end the run once this many epochs have passed since validation mean IU last
  // improved (0: never; needs validation data). The best model is best.fcn, as after any run; a
  // stopped run resumed trains on only with more patience.
  TORCH_ARG(int64_t, patience) = 0;
  TORCH_ARG(torch::Device, device) = torch::kCPU;
  TORCH_ARG(bool, quiet) = false;
  // Stop after this many steps in this invocation and checkpoint, as Ctrl-C does (0: no limit).
  TORCH_ARG(int64_t, stop_after_steps) = 0;
  // A fresh run into a folder that holds an earlier run's checkpoint replaces it only when set
  // (otherwise an fcn::Error says to --resume or --overwrite).
  TORCH_ARG(bool, overwrite) = false;
  // Threads that read, decode and augment the next batches while the net trains (0: in the
  // training thread). The batches do not depend on it.
  TORCH_ARG(int64_t, workers) = 0;
  // How 3x3 convolutions train (fcn/models/winograd.h): kWinograd, fcn's Winograd forward and backward
  // where fcn was built with oneDNN (FCN-8s's train step at 320x320 ~1.4x faster than direct on an
  // AVX-512 Zen 5 and the AVX2 proxy), else direct; kWinogradOneDnn, oneDNN's Winograd kernels
  // (AVX-512 only; ~1.3x faster than direct on the AMX Xeon, 2.7x slower on Zen 5: fcn tune --mode
  // train decides); kDirect, LibTorch's direct convolution.
  TORCH_ARG(ConvAlgorithm, conv) = ConvAlgorithm::kWinograd;
  // Activations and conv weights channels-last or NCHW during the run; kAuto: the CPU's rule
  // (fcn/infer/fast_path.h: channels-last with AVX-512). The net is NCHW again afterwards.
  TORCH_ARG(TrainingLayout, layout) = TrainingLayout::kAuto;
  // On resume: train on the path the checkpoint records (the conv algorithm and layout the run
  // started on, e.g. fcn tune --mode train's choice) instead of conv and layout here, so the resumed
  // steps compute what the uninterrupted run's would, as fast. oneDNN's Winograd recorded on a CPU
  // that lacks it becomes fcn's. false: conv and layout here (fcn train --resume with --conv or --layout).
  TORCH_ARG(bool, keep_run_path) = true;
  // This process's connection to the other ranks of a data-parallel job; null: one process.
  TORCH_ARG(std::shared_ptr<Communicator>, communicator);
  // On resume: called before any step, on every rank, with the checkpoint's model, the options the run started with
  // (`recorded`: these options with the checkpoint's run_settings in place; these options as they are where the
  // checkpoint predates its settings) and the options the resumed run takes (`run`: `recorded`, but epochs, patience
  // and val_every from these options). A caller's check that the run is the one it meant, which throws to stop
  // there (fcn train: the flags given beside --resume), and which may change `run` (fcn train: the run's epochs
  // where --epochs is not given).
  TORCH_ARG(std::function<void(const Model& model, const TrainOptions& recorded, TrainOptions& run)>, on_resume);
};

// The settings a run's steps follow, as JSON, which its checkpoint keeps: epochs, batch_size, optimizer, augment,
// reduction, loss, class_weights, weight_map and its options, seed, val_every, patience.
std::string run_settings(const TrainOptions& options);
// `options` with the settings of `settings` (run_settings' JSON) in place of its own; an fcn::Error naming `source`
// where the JSON is not such settings.
TrainOptions with_run_settings(TrainOptions options, const std::string& settings, const std::string& source);

struct TrainResult {
  int64_t epochs_done = 0;
  bool interrupted = false;
  double best_mean_iu = -1;
  int64_t best_epoch = 0;
  bool stopped_early = false;  // TrainOptions.patience ran out before TrainOptions.epochs
  double seconds = 0;  // training time of the whole run, resumed parts included
  SegmentationMetrics last_val;
};

// Trains model.net in place from scratch (its current weights) into options.run_dir.
TrainResult train_segmentation(Model& model, const SegmentationDataset& train, const SegmentationDataset* val,
                               const TrainOptions& options);

// Continues the run whose checkpoint is at `checkpoint` (RUN_DIR/checkpoint.pt or RUN_DIR): restores model,
// optimiser and position, and the settings its steps follow (run_settings: batch, optimiser, augmentation, loss,
// class weights, seed, ...), whatever `options` says of them, so that the run goes on as it started (until
// 2026-12-07 they were `options`', and a resume with other ones trained on otherwise without a word). From
// `options` it takes epochs (raised to train longer), patience, val_every, and what leaves the steps as they are
// (run_dir, device, workers, quiet, ...); on_resume may check them, and change them. Returns the resumed model.
TrainResult resume_segmentation(const std::string& checkpoint, Model& model, const SegmentationDataset& train,
                                const SegmentationDataset* val, const TrainOptions& options);

}  // namespace fcn
