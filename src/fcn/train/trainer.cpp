#include "fcn/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/data/instances.h"
#include "fcn/eval/evaluate.h"
#include "fcn/models/winograd.h"
#include "fcn/serialize/model_file.h"
#include "fcn/train/checkpoint.h"
#include "fcn/train/fused_optimizers.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"
#include "fcn/util/prefetch.h"
#include "fcn/util/progress.h"
#include "fcn/util/threads.h"

namespace fcn {
namespace {

namespace fs = std::filesystem;

void write_metrics(const std::string& run_dir, const std::string& history);

uint64_t mix(uint64_t seed, int64_t epoch, int64_t step) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(epoch + 1) + 0xD1B54A32D192ED03ull * static_cast<uint64_t>(step + 2);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Shuffled sample order of one epoch, derived from (seed, epoch) alone.
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 shuffle_rng(mix(seed, epoch, -1));
  std::shuffle(order.begin(), order.end(), shuffle_rng);
  return order;
}

// Loss and throughput over the steps of one epoch so far.
struct EpochStats {
  double loss_sum = 0, lr = 0, pixels = 0, data_wait = 0;
  int64_t steps = 0;    // optimiser steps
  int64_t batches = 0;  // batches drawn (a batch of void pixels only makes no step)
  double mean_loss() const { return steps > 0 ? loss_sum / static_cast<double>(steps) : 0.0; }
};

// This rank's part of one global batch, read and augmented (possibly ahead, by a loader thread).
struct StepBatch {
  Batch batch;
  int64_t valid_pixels = 0;  // not void, in this rank's part
};

// The path a run trains on: TrainOptions.conv and .layout, or on resume (TrainOptions.keep_run_path)
// the one its checkpoint records; a recorded oneDNN Winograd this CPU lacks becomes fcn's.
struct RunPath {
  ConvAlgorithm conv;
  bool channels_last;
};

// The path TrainOptions.conv and .layout name.
RunPath options_path(const TrainOptions& options) {
  return {options.conv(), training_channels_last(options.layout(), options.device())};
}

RunPath run_path(const TrainOptions& options, const RunPosition& at) {
  const RunPath path = options_path(options);
  if (!options.keep_run_path() || at.conv.empty()) return path;
  RunPath recorded = path;
  try {
    recorded.conv = parse_conv_algorithm(at.conv, "checkpoint conv");
  } catch (const Error&) {  // a name from another fcn version: the options' path, said once
    if (!options.quiet()) std::fprintf(stderr, "checkpoint: unknown training conv algorithm '%s'; training with TrainOptions.conv\n", at.conv.c_str());
    return path;
  }
  if (recorded.conv == ConvAlgorithm::kWinogradOneDnn && !winograd_onednn_trains()) recorded.conv = ConvAlgorithm::kWinograd;
  if (at.layout == layout_name(true) || at.layout == layout_name(false)) recorded.channels_last = at.layout == layout_name(true);
  return recorded;
}

// The run's layout (TrainOptions.layout) for its steps and validation; plain NCHW afterwards.
class TrainingLayoutScope {
 public:
  TrainingLayoutScope(torch::nn::Module& net, bool channels_last) : net_(net), channels_last_(channels_last) {
    to_layout(net_, channels_last_);
  }
  ~TrainingLayoutScope() {
    if (channels_last_) to_layout(net_, false);
  }
  TrainingLayoutScope(const TrainingLayoutScope&) = delete;
  TrainingLayoutScope& operator=(const TrainingLayoutScope&) = delete;

 private:
  torch::nn::Module& net_;
  bool channels_last_;
};

// One invocation of a run: from position `at` to the last epoch, or to an interruption.
class Run {
 public:
  Run(Model& model, const SegmentationDataset& train, const SegmentationDataset* val, const TrainOptions& options,
      torch::optim::Optimizer& optimizer, RunPosition at)
      : model_(model), train_(train), val_(val), options_(options), optimizer_(optimizer), at_(std::move(at)), comm_(options.communicator().get()),
        rank_(comm_ != nullptr ? comm_->rank() : 0), world_(comm_ != nullptr ? comm_->world_size() : 1),
        n_(static_cast<int64_t>(train.size())), batch_size_(std::min<int64_t>(options.batch_size(), n_)),
        steps_per_epoch_((n_ + batch_size_ - 1) / batch_size_), seconds_before_(at_.seconds),
        weight_maps_(static_cast<size_t>(n_)) {}

  TrainResult all_epochs() {
    check_class_count(train_, *model_.net);
    check_class_order(train_, model_.meta);  // a resumed run's classes, in the order it trained on
    if (val_ != nullptr) check_class_count(*val_, *model_.net);
    find_foreground_samples();
    model_.net->to(options_.device());
    share_rank0_weights();
    InterruptGuard interrupt;
    TrainingConvScope convs(path_.conv);  // the run's RunPath
    TrainingLayoutScope layout(*model_.net, path_.channels_last);
    say_kept_path();
    at_.conv = conv_algorithm_name(training_conv_algorithm());  // recorded in every checkpoint: a resume keeps it
    at_.layout = layout_name(path_.channels_last);
    for (int64_t epoch = at_.epoch; epoch < options_.epochs(); ++epoch) {
      if (patience_ran_out()) break;
      const auto order = epoch_order(n_, options_.seed(), epoch);
      model_.net->train();
      EpochStats stats;
      Progress progress("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options_.epochs()), steps_per_epoch_,
                        options_.quiet() || rank_ != 0);
      Prefetcher<StepBatch> loader(at_.step, steps_per_epoch_, options_.workers(), 2 * options_.workers(),
                                   [&](int64_t step) {
                                     if (options_.workers() > 0) single_threaded_kernels_in_this_thread();  // a loader thread
                                     return load_step(epoch, step, order);
                                   });
      for (int64_t step = at_.step; step < steps_per_epoch_; ++step) {
        double waited = 0;
        const auto batch = loader.next(&waited);
        const bool step_limit = options_.stop_after_steps() > 0 && steps_this_run_ >= options_.stop_after_steps();
        const auto [stop, valid_pixels] = agree(InterruptGuard::requested() || step_limit, batch.valid_pixels);
        if (stop) return interrupted(epoch, step, step_limit);
        ++steps_this_run_;
        stats.data_wait += waited;
        train_step(epoch, step, batch, valid_pixels > 0, stats);
        progress.update(step + 1, status_line(stats, progress.seconds()));
      }
      end_epoch(epoch, stats, progress);
    }
    // Without validation (or before any ran), the final model is the best there is.
    if (rank_ == 0 && (val_ == nullptr || !fs::exists(dir() + "/best.fcn"))) writing_into_run(dir(), [&] { save_model(dir() + "/best.fcn", model_); });
    result_.epochs_done = at_.epoch;
    result_.best_mean_iu = at_.best_mean_iu;
    result_.best_epoch = at_.best_epoch;
    result_.seconds = at_.seconds;
    return result_;
  }

 private:
  const std::string& dir() const { return options_.run_dir(); }

  double elapsed() const {
    return seconds_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  }

  static std::string status_line(const EpochStats& stats, double seconds) {
    char status[128];
    std::snprintf(status, sizeof status, "loss %.4f, %.0f px/s, data wait %.0f%%", stats.mean_loss(), stats.pixels / std::max(seconds, 1e-9),
                  100.0 * stats.data_wait / std::max(seconds, 1e-9));
    return status;
  }

  // Early stopping (TrainOptions.patience): every rank sees the same validation, so all stop together.
  bool patience_ran_out() {
    const int64_t waited = at_.epoch - at_.best_epoch;
    if (options_.patience() <= 0 || at_.best_epoch == 0 || waited < options_.patience()) return false;  // no validation yet: 0
    result_.stopped_early = true;
    if (!options_.quiet() && rank_ == 0)
      std::printf("early stop after epoch %ld: validation mean IU has not improved for %ld epochs (best %.4f at epoch %ld)\n",
                  static_cast<long>(at_.epoch), static_cast<long>(waited), at_.best_mean_iu, static_cast<long>(at_.best_epoch));
    return true;
  }

  // Every rank starts from rank 0's weights and buffers (as DDP does): a net initialised from
  // another seed or file on one rank cannot silently train apart.
  void share_rank0_weights() {
    if (comm_ == nullptr) return;
    torch::NoGradGuard no_grad;
    auto tensors = model_.net->parameters();
    for (const auto& buffer : model_.net->buffers()) tensors.push_back(buffer);
    comm_->broadcast(tensors, 0);
  }

  // Batch norm's running statistics, averaged over the ranks (each saw its own batches).
  void average_buffers() {
    if (comm_ == nullptr) return;
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> floating;
    for (const auto& buffer : model_.net->buffers())
      if (buffer.is_floating_point()) floating.push_back(buffer);
    comm_->all_reduce_sum(floating);
    for (auto& buffer : floating) buffer.div_(static_cast<double>(world_));
  }

  // Whether any rank stops here (Ctrl-C, SIGTERM, step limit), and the global batch's valid pixels.
  std::pair<bool, int64_t> agree(bool stop, int64_t valid_pixels) {
    if (comm_ == nullptr) return {stop, valid_pixels};
    std::vector<torch::Tensor> votes = {torch::tensor({stop ? 1.0 : 0.0, static_cast<double>(valid_pixels)}, torch::kDouble)};
    comm_->all_reduce_sum(votes);
    return {votes[0][0].item<double>() > 0, static_cast<int64_t>(votes[0][1].item<double>())};
  }

  // Ctrl-C or the step limit: a checkpoint at exactly this step, which --resume continues from.
  TrainResult interrupted(int64_t epoch, int64_t step, bool step_limit) {
    at_.epoch = epoch;
    at_.step = step;
    at_.seconds = elapsed();
    average_buffers();
    if (rank_ == 0) writing_into_run(dir(), [&] { save_checkpoint(dir() + "/checkpoint.pt", model_, optimizer_, at_); });
    InterruptGuard::clear();
    if (!options_.quiet() && rank_ == 0)
      std::fprintf(stderr, "\n%s: checkpoint at epoch %ld step %ld written to %s/checkpoint.pt (continue with --resume %s)\n",
                   step_limit ? "step limit reached" : "interrupted", static_cast<long>(epoch), static_cast<long>(step), dir().c_str(),
                   dir().c_str());
    result_.interrupted = true;
    result_.epochs_done = epoch;
    result_.seconds = at_.seconds;
    return result_;
  }

  // Sample `index` as training reads it: with its (cached) weight map when the run uses one.
  Sample training_sample(int64_t index) {
    auto sample = train_.get(static_cast<size_t>(index));
    if (!options_.weight_map()) return sample;
    auto& cached = weight_maps_[static_cast<size_t>(index)];
    if (!cached.defined()) {
      const auto instances = sample.instances.defined() ? sample.instances : instances_from_labels(sample.mask);
      cached = unet_weight_map(sample.mask, instances, options_.weight_map_options(), options_.class_weights());
    }
    sample.weights = cached;
    return sample;
  }

  // AugmentOptions::foreground: for each class other than background and void that the train masks hold, the
  // samples holding it, from their masks alone (kept decoded since the data check, where they fit the cache),
  // once (before any worker reads them), in index order.
  void find_foreground_samples() {
    if (options_.augment().foreground() <= 0 || !holding_.empty()) return;
    Progress progress("foreground", n_, options_.quiet() || rank_ != 0 || n_ < 2);
    for (size_t i = 0; i < train_.size(); ++i) {
      progress.update(static_cast<int64_t>(i + 1));
      const auto present = torch::bincount(train_.mask(i).flatten()).nonzero().flatten();  // the mask held since the check pass, mostly
      for (int64_t j = 0; j < present.size(0); ++j)
        if (const int64_t c = present[j].item<int64_t>(); c != 0 && c != kIgnoreLabel) holding_[c].push_back(static_cast<int64_t>(i));
    }
    progress.finish(std::to_string(holding_.size()) + " foreground class(es) to draw from");
  }

  // Slot k's sample and augmentation. With AugmentOptions::foreground P (nnU-Net's oversampling, class-balanced),
  // the slot is forced with probability P: a class of those the train masks hold is drawn, each as likely; where
  // the slot's sample lacks it, one of the samples holding it takes its place; and its crop is centred on the
  // class. An unforced slot keeps its sample and a random crop. The draws are keyed by the slot, as the
  // augmentation's are.
  std::pair<int64_t, AugmentOptions> slot_sample(uint64_t key, int64_t k, int64_t index) const {
    auto augment = options_.augment();
    if (augment.foreground() <= 0) return {index, augment};
    std::mt19937_64 pick(mix(key, k, 2));
    const bool forced = std::uniform_real_distribution<double>(0.0, 1.0)(pick) < augment.foreground();
    if (forced && !holding_.empty()) {
      const auto& [c, samples] = *std::next(holding_.begin(), static_cast<int64_t>(pick() % holding_.size()));
      if (!std::binary_search(samples.begin(), samples.end(), index)) index = samples[static_cast<size_t>(pick() % samples.size())];
      augment.foreground_class(c);
    }
    return {index, augment.foreground(forced ? 1.0 : 0.0)};
  }

  // This rank's contiguous part of batch `step` of the epoch's order, each sample augmented with
  // randomness keyed by (seed, epoch, step, its place in the order): the same whichever rank or
  // thread makes it. A rank whose part is empty (a last batch smaller than the ranks) takes the
  // batch's first sample with every pixel void: it adds nothing to the loss or the gradients.
  StepBatch load_step(int64_t epoch, int64_t step, const std::vector<int64_t>& order) {
    const uint64_t key = mix(options_.seed(), epoch, step);
    const int64_t begin = step * batch_size_, count = std::min(n_, begin + batch_size_) - begin;
    const int64_t first = begin + count * rank_ / world_, last = begin + count * (rank_ + 1) / world_;
    std::vector<Sample> samples;
    for (int64_t k = first; k < std::max(last, first + 1); ++k) {
      std::mt19937_64 rng(mix(key, k, 0) ^ 0x5bd1e995u);
      const auto [index, augment_options] = slot_sample(key, k, order[static_cast<size_t>(std::min(k, begin + count - 1))]);
      samples.push_back(augment(training_sample(index), augment_options, rng));
    }
    if (last == first) {
      samples[0].mask.fill_(kIgnoreLabel);
      if (samples[0].weights.defined()) samples[0].weights = torch::zeros_like(samples[0].weights);
    }
    StepBatch out;
    out.batch = collate(samples);
    out.valid_pixels = (out.batch.masks != kIgnoreLabel).sum().item<int64_t>();
    return out;
  }

  torch::Tensor loss_of(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& pixel_weights) const {
    BatchSum batch_sum;
    if (comm_ != nullptr) batch_sum = [this](const torch::Tensor& local) { return comm_->batch_sum(local); };
    return training_loss(options_.loss(), logits, targets, options_.class_weights(), options_.reduction(), pixel_weights, 255, batch_sum);
  }

  // One optimiser step on batch `step` of the epoch (this rank's part of it); gradients summed over ranks.
  void train_step(int64_t epoch, int64_t step, const StepBatch& part, bool learnable, EpochStats& stats) {
    torch::manual_seed(mix(mix(options_.seed(), epoch, step), rank_, 1));  // dropout: a stream per rank
    const auto& batch = part.batch;
    const auto targets = batch.masks.to(options_.device());
    const auto pixel_weights = batch.weights.defined() ? batch.weights.to(options_.device()) : torch::Tensor();
    const double progress = static_cast<double>(epoch * steps_per_epoch_ + step) / static_cast<double>(steps_per_epoch_ * options_.epochs());
    stats.lr = scheduled_lr(options_.optimizer(), progress);
    set_lr(optimizer_, options_.optimizer(), stats.lr);
    ++stats.batches;
    if (!learnable) return;  // nothing to learn from (all void)
    auto input = model_input(model_, batch.images, train_.dir()).to(options_.device());
    if (path_.channels_last) input = input.contiguous(torch::MemoryFormat::ChannelsLast);
    const auto outputs = model_.net->forward_with_aux(input);
    const auto loss = loss_with_aux(outputs, [&](const torch::Tensor& logits) { return loss_of(logits, targets, pixel_weights); });
    const double value = loss.item<double>();
    if (!std::isfinite(value))
      fail(dir(), "training diverged: loss is " + number_text(value) + " at epoch " + std::to_string(epoch + 1) + " step " +
                      std::to_string(step + 1) + " (lr " + number_text(stats.lr) +
                      "); the last good checkpoint is kept in checkpoint.pt; lower OptimizerOptions.lr");
    clear_gradients(optimizer_);
    loss.backward();
    if (comm_ != nullptr) comm_->all_reduce_gradients(model_.net->parameters());
    optimizer_.step();
    stats.loss_sum += value;
    ++stats.steps;
    stats.pixels += static_cast<double>(targets.numel() * world_);
  }

  // On resume, where the checkpoint's path is not the options': one line that the run keeps its own.
  void say_kept_path() const {
    const RunPath asked = options_path(options_);
    if (options_.quiet() || rank_ != 0 || (asked.conv == path_.conv && asked.channels_last == path_.channels_last)) return;
    std::printf("training path: %s convs in %s, as the run started (its checkpoint); --conv or --layout changes it\n",
                conv_algorithm_name(training_conv_algorithm()), path_.channels_last ? "channels-last" : "NCHW");
    std::fflush(stdout);
  }

  // Validation through the Predictor, as fcn eval does; each rank scores its share of the split.
  SegmentationMetrics validate_now() {
    PredictOptions as_is;
    as_is.channels_last = path_.channels_last;  // the weights stay in the layout training uses
    InferenceConvScope convs(training_conv_algorithm());  // fcn eval's kernels where training runs fcn's
    as_is.batch = std::max<int64_t>(1, options_.batch_size() / world_);  // small images: a training batch per pass
    auto confusion = evaluate(model_, *val_, as_is, options_.device(), true, {}, Shard{rank_, world_});
    if (comm_ == nullptr) return confusion.metrics();
    std::vector<torch::Tensor> counts = {confusion.matrix().clone()};
    comm_->all_reduce_sum(counts);
    ConfusionMatrix whole(confusion.num_classes());
    whole.add(counts[0]);
    return whole.metrics();
  }

  // Validation, snapshots, checkpoint and the metrics line (rank 0 writes them).
  void end_epoch(int64_t epoch, const EpochStats& stats, Progress& progress) {
    at_.step = 0;
    at_.epoch = epoch + 1;
    average_buffers();
    nlohmann::json line = {{"epoch", epoch + 1}, {"train_loss", stats.mean_loss()}, {"lr", stats.lr},  // and the path it ran:
                           {"layout", at_.layout}, {"conv", at_.conv}};
    const bool validate = val_ != nullptr && ((epoch + 1) % std::max<int64_t>(1, options_.val_every()) == 0 || epoch + 1 == options_.epochs());
    if (validate) {
      const auto m = validate_now();
      result_.last_val = m;
      line["val"] = {{"pixel_acc", m.pixel_acc}, {"mean_acc", m.mean_acc}, {"mean_iu", m.mean_iu}, {"fw_iu", m.fw_iu}, {"dice", m.mean_dice}};
      if (m.mean_iu > at_.best_mean_iu) {
        at_.best_mean_iu = m.mean_iu;
        at_.best_epoch = epoch + 1;
        if (rank_ == 0) writing_into_run(dir(), [&] { save_model(dir() + "/best.fcn", model_); });
      }
    }
    at_.seconds = elapsed();
    line["seconds"] = at_.seconds;
    line["epoch_seconds"] = progress.seconds();
    line["data_wait_seconds"] = stats.data_wait;  // the step waiting for its batch (the loader is the bottleneck)
    if (world_ > 1) line["ranks"] = world_;
    if (stats.batches > 0 && stats.steps == 0)
      fail(train_.dir(), "every mask pixel of the " + std::to_string(stats.batches) + " batches of epoch " + std::to_string(epoch + 1) +
                             " is void (255): nothing to learn from (see fcn data check)");
    at_.history += line.dump() + "\n";
    if (rank_ == 0) writing_into_run(dir(), [&] {
      save_model(dir() + "/last.fcn", model_);
      save_checkpoint(dir() + "/checkpoint.pt", model_, optimizer_, at_);
      write_metrics(dir(), at_.history);
    });
    char status[128];
    std::snprintf(status, sizeof status, "loss %.4f%s", stats.mean_loss(),
                  validate ? (", val mean IU " + std::to_string(result_.last_val.mean_iu)).c_str() : "");
    progress.finish(status);
  }

  Model& model_;
  const SegmentationDataset& train_;
  const SegmentationDataset* val_;
  const TrainOptions& options_;
  torch::optim::Optimizer& optimizer_;
  RunPosition at_;
  Communicator* comm_;  // null: one process
  const int64_t rank_, world_;
  const int64_t n_, batch_size_, steps_per_epoch_;
  const double seconds_before_;  // of the earlier invocations of this run
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  int64_t steps_this_run_ = 0;
  const RunPath path_ = run_path(options_, at_);  // TrainOptions.conv and .layout, or the resumed run's
  TrainResult result_;
  std::vector<torch::Tensor> weight_maps_;  // per sample, computed at first use (by any loader thread)
  std::map<int64_t, std::vector<int64_t>> holding_;  // AugmentOptions::foreground: class -> the train samples holding it, ascending
};

// metrics.jsonl, rewritten whole and atomically from the run's history (a checked write: a full
// disk is an error, not a silently missing epoch).
void write_metrics(const std::string& run_dir, const std::string& history) {
  write_file_atomic(run_dir + "/metrics.jsonl", history.data(), history.size());
}

// The run folder, made and locked by rank 0 for the whole run.
void lock_run_dir(std::optional<RunLock>& lock, const std::string& run_dir) {
  if (run_dir.empty()) fail("TrainOptions.run_dir", "a run folder is needed");
  lock.emplace(run_dir, "fcn train");
}

// Set-up that every rank must pass before training's first collective. When it fails on one rank,
// every rank fails (rethrowing its own error where it is this one) instead of the others waiting.
template <class Setup>
void on_every_rank(Communicator* comm, Setup&& setup) {
  std::exception_ptr error;
  try {
    setup();
  } catch (...) {
    if (comm == nullptr) throw;
    error = std::current_exception();
  }
  if (comm == nullptr || !comm->any(error != nullptr)) return;
  if (error != nullptr) std::rethrow_exception(error);
  fail("distributed training (rank " + std::to_string(comm->rank()) + ")", "another rank could not start; its message says why");
}

void check_patience(const TrainOptions& options, const SegmentationDataset* val) {
  if (options.val_every() < 1) fail("TrainOptions.val_every", "must be at least 1 (epochs between validations), got " + std::to_string(options.val_every()));
  if (options.patience() < 0) fail("TrainOptions.patience", "must be >= 0 (0: no early stopping), got " + std::to_string(options.patience()));
  if (options.patience() > 0 && val == nullptr) fail("TrainOptions.patience", "early stopping needs validation data (a val split)");
}

}  // namespace

std::string run_settings(const TrainOptions& o) {
  const auto& a = o.augment();
  nlohmann::json weights = nullptr;
  if (o.class_weights().defined()) {
    const auto values = o.class_weights().to(torch::kCPU, torch::kDouble).contiguous().flatten();
    weights = std::vector<double>(values.data_ptr<double>(), values.data_ptr<double>() + values.numel());
  }
  return nlohmann::json{
      {"epochs", o.epochs()},
      {"batch_size", o.batch_size()},
      {"optimizer", optimizer_json(o.optimizer())},
      {"augment",
       {{"min_scale", a.min_scale()}, {"max_scale", a.max_scale()}, {"crop", a.crop()}, {"flip", a.flip()},
        {"rotate", a.rotate()}, {"shift", a.shift()}, {"elastic_alpha", a.elastic_alpha()}, {"elastic_grid", a.elastic_grid()},
        {"gamma", a.gamma()}, {"foreground", a.foreground()}, {"foreground_class", a.foreground_class()}}},
      {"reduction", o.reduction() == Reduction::kSum ? "sum" : "mean"},
      {"loss", loss_kind_name(o.loss())},
      {"class_weights", weights},
      {"weight_map", o.weight_map()},
      {"weight_map_options", {{"w0", o.weight_map_options().w0()}, {"sigma", o.weight_map_options().sigma()}}},
      {"seed", o.seed()},
      {"val_every", o.val_every()},
      {"patience", o.patience()}}
      .dump();
}

TrainOptions with_run_settings(TrainOptions o, const std::string& settings, const std::string& source) {
  try {
    const auto j = nlohmann::json::parse(settings);
    const auto& a = j.at("augment");
    o.epochs(j.at("epochs").get<int64_t>()).batch_size(j.at("batch_size").get<int64_t>());
    o.optimizer(optimizer_from_json(j.at("optimizer")));
    o.augment(AugmentOptions()
                  .min_scale(a.at("min_scale").get<double>())
                  .max_scale(a.at("max_scale").get<double>())
                  .crop(a.at("crop").get<int64_t>())
                  .flip(a.at("flip").get<bool>())
                  .rotate(a.at("rotate").get<double>())
                  .shift(a.at("shift").get<double>())
                  .elastic_alpha(a.at("elastic_alpha").get<double>())
                  .elastic_grid(a.at("elastic_grid").get<int64_t>())
                  .gamma(a.at("gamma").get<double>())
                  .foreground(a.at("foreground").get<double>())
                  .foreground_class(a.at("foreground_class").get<int64_t>()));
    o.reduction(parse_reduction(j.at("reduction").get<std::string>())).loss(parse_loss_kind(j.at("loss").get<std::string>()));
    const auto& weights = j.at("class_weights");
    o.class_weights(weights.is_null() ? torch::Tensor() : torch::tensor(weights.get<std::vector<double>>(), torch::kDouble).to(torch::kFloat));
    o.weight_map(j.at("weight_map").get<bool>());
    o.weight_map_options(WeightMapOptions().w0(j.at("weight_map_options").at("w0").get<double>()).sigma(j.at("weight_map_options").at("sigma").get<double>()));
    o.seed(j.at("seed").get<uint64_t>()).val_every(j.at("val_every").get<int64_t>()).patience(j.at("patience").get<int64_t>());
  } catch (const nlohmann::json::exception& e) {
    fail(source, std::string("holds run settings fcn cannot read (") + e.what() + ")");
  }
  return o;
}

TrainResult train_segmentation(Model& model, const SegmentationDataset& train, const SegmentationDataset* val,
                               const TrainOptions& options) {
  Communicator* comm = options.communicator().get();
  std::optional<RunLock> lock;  // rank 0 owns the run folder
  on_every_rank(comm, [&] {
    if (options.epochs() < 1) fail("TrainOptions.epochs", "must be at least 1");
    if (options.batch_size() < 1) fail("TrainOptions.batch_size", "must be at least 1");
    check_patience(options, val);
    validate(options.augment());
    if (comm != nullptr && comm->rank() != 0) return;
    lock_run_dir(lock, options.run_dir());
    if (fs::exists(options.run_dir() + "/checkpoint.pt") && !options.overwrite())
      fail(options.run_dir(), "holds an earlier run (checkpoint.pt); continue it with --resume " + options.run_dir() +
                                  ", or start over with TrainOptions.overwrite");
    // A fresh run starts from nothing: no earlier best.fcn may pass as this run's.
    std::error_code ignored;
    for (const char* name : {"checkpoint.pt", "last.fcn", "best.fcn", "metrics.jsonl"}) fs::remove(options.run_dir() + "/" + name, ignored);
    check_room_for_run(options.run_dir(), *model.net, options.optimizer().name(), 2);
  });
  model.net->to(options.device());
  auto optimizer = make_optimizer(*model.net, options.optimizer());
  RunPosition start;
  start.settings = run_settings(options);  // what a resume of this run takes
  return Run(model, train, val, options, *optimizer, start).all_epochs();
}

TrainResult resume_segmentation(const std::string& checkpoint, Model& model, const SegmentationDataset& train,
                                const SegmentationDataset* val, const TrainOptions& options) {
  Communicator* comm = options.communicator().get();
  const bool main_rank = comm == nullptr || comm->rank() == 0;
  std::optional<RunLock> lock;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  RunPosition at;
  TrainOptions run = options;  // the checkpoint's settings, with options' epochs, patience and val_every
  // Every rank reads the checkpoint (the run folder is shared, or copied to each machine).
  on_every_rank(comm, [&] {
    const auto path = checkpoint_path(checkpoint);
    if (main_rank) {
      lock_run_dir(lock, options.run_dir());
    }
    torch::serialize::InputArchive archive;
    at = load_checkpoint(path, model, archive);
    const TrainOptions recorded = at.settings.empty() ? options : with_run_settings(options, at.settings, path);
    if (at.settings.empty() && main_rank && !options.quiet())
      std::fprintf(stderr, "%s: written before fcn kept a run's settings: it goes on with the settings given now (repeat the flags it started with)\n",
                   path.c_str());
    run = recorded;
    run.epochs(options.epochs()).patience(options.patience()).val_every(options.val_every());
    if (options.on_resume()) options.on_resume()(model, recorded, run);
    if (run.epochs() < 1) fail("TrainOptions.epochs", "must be at least 1");
    check_patience(run, val);
    validate(run.augment());
    validate(run.optimizer());
    at.settings = run_settings(run);  // a raised epoch count is the run's from here on
    if (at.history.empty()) {  // a checkpoint from before the history was kept: take the log as it is
      std::ifstream in(options.run_dir() + "/metrics.jsonl");
      at.history.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (main_rank) check_room_for_run(run.run_dir(), *model.net, run.optimizer().name(), 0);
    if (main_rank) write_metrics(run.run_dir(), at.history);  // restores a line lost to a full disk or a crash
    model.net->to(run.device());
    optimizer = make_optimizer(*model.net, run.optimizer());
    load_optimizer_state(path, archive, *optimizer);
    if (at.epoch >= run.epochs() && !run.quiet() && main_rank)
      std::fprintf(stderr, "%s: already trained %ld of %ld epochs; raise --epochs to continue\n", path.c_str(),
                   static_cast<long>(at.epoch), static_cast<long>(run.epochs()));
  });
  return Run(model, train, val, run, *optimizer, at).all_epochs();
}

}  // namespace fcn
