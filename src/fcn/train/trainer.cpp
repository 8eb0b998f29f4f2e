#include "fcn/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/eval/evaluate.h"
#include "fcn/io/atomic_file.h"
#include "fcn/io/image.h"
#include "fcn/io/model_file.h"
#include "fcn/util/error.h"
#include "fcn/util/progress.h"

namespace fcn {
namespace {

namespace fs = std::filesystem;

// Where a run stands: what the checkpoint stores besides weights and optimiser state.
struct Position {
  int64_t epoch = 0;  // completed epochs
  int64_t step = 0;   // completed steps of the current epoch
  double best_mean_iu = -1;
  int64_t best_epoch = 0;
  double seconds = 0;
};

uint64_t mix(uint64_t seed, int64_t epoch, int64_t step) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(epoch + 1) + 0xD1B54A32D192ED03ull * static_cast<uint64_t>(step + 2);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void save_checkpoint(const std::string& path, const Model& model, torch::optim::Optimizer& optimizer, const Position& at) {
  torch::serialize::OutputArchive archive, weights, optimizer_state;
  archive.write("format", c10::IValue(std::string("fcn-checkpoint")));
  archive.write("model_config", c10::IValue(net_config(*model.net).dump()));
  archive.write("model_meta", c10::IValue(meta_to_json(model.meta).dump()));
  model.net->save(weights);
  archive.write("model", weights);
  optimizer.save(optimizer_state);
  archive.write("optimizer", optimizer_state);
  archive.write("epoch", c10::IValue(at.epoch));
  archive.write("step", c10::IValue(at.step));
  archive.write("best_mean_iu", c10::IValue(at.best_mean_iu));
  archive.write("best_epoch", c10::IValue(at.best_epoch));
  archive.write("seconds", c10::IValue(at.seconds));
  std::ostringstream bytes;
  archive.save_to(bytes);
  const auto text = bytes.str();
  write_file_atomic(path, text.data(), text.size());
}

torch::Tensor normalized_batch(const Model& model, const Batch& batch, const std::string& source) {
  std::vector<torch::Tensor> images;
  for (int64_t i = 0; i < batch.images.size(0); ++i) images.push_back(prepare_input(model, batch.images[i], source));
  return torch::cat(images);
}

TrainResult run(Model& model, const SegmentationDataset& train, const SegmentationDataset* val, const TrainOptions& options,
                torch::optim::Optimizer& optimizer, Position at) {
  const auto& run_dir = options.run_dir();
  const int64_t n = static_cast<int64_t>(train.size());
  const int64_t batch_size = std::min<int64_t>(options.batch_size(), n);
  const int64_t steps_per_epoch = (n + batch_size - 1) / batch_size;
  const int64_t total_steps = steps_per_epoch * options.epochs();
  check_class_count(train, *model.net);
  if (val != nullptr) check_class_count(*val, *model.net);
  auto& net = *model.net;
  net.to(options.device());
  InterruptGuard interrupt;
  TrainResult result;
  int64_t steps_this_run = 0;
  const auto started = std::chrono::steady_clock::now();
  const double seconds_before = at.seconds;  // of the earlier invocations of this run
  auto elapsed = [&] { return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  for (int64_t epoch = at.epoch; epoch < options.epochs(); ++epoch) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 shuffle_rng(mix(options.seed(), epoch, -1));
    std::shuffle(order.begin(), order.end(), shuffle_rng);
    net.train();
    double loss_sum = 0, lr = 0, pixels = 0;
    int64_t loss_count = 0;
    Progress progress("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs()), steps_per_epoch, options.quiet());
    for (int64_t step = at.step; step < steps_per_epoch; ++step) {
      const bool step_limit = options.stop_after_steps() > 0 && steps_this_run >= options.stop_after_steps();
      if (InterruptGuard::requested() || step_limit) {
        at.epoch = epoch;
        at.step = step;
        at.seconds = elapsed();
        save_checkpoint(run_dir + "/checkpoint.pt", model, optimizer, at);
        InterruptGuard::clear();
        if (!options.quiet())
          std::fprintf(stderr, "\n%s: checkpoint at epoch %ld step %ld written to %s/checkpoint.pt (continue with --resume %s)\n",
                       step_limit ? "step limit reached" : "interrupted", static_cast<long>(epoch), static_cast<long>(step), run_dir.c_str(), run_dir.c_str());
        result.interrupted = true;
        result.epochs_done = epoch;
        result.seconds = at.seconds;
        return result;
      }
      ++steps_this_run;
      torch::manual_seed(mix(options.seed(), epoch, step));
      std::mt19937_64 rng(mix(options.seed(), epoch, step) ^ 0x5bd1e995u);
      std::vector<Sample> samples;
      for (int64_t k = step * batch_size; k < std::min(n, (step + 1) * batch_size); ++k)
        samples.push_back(augment(train.get(static_cast<size_t>(order[static_cast<size_t>(k)])), options.augment(), rng));
      const auto batch = collate(samples);
      const auto targets = batch.masks.to(options.device());
      lr = scheduled_lr(options.optimizer(), static_cast<double>(epoch * steps_per_epoch + step) / static_cast<double>(total_steps));
      set_lr(optimizer, options.optimizer(), lr);
      if (!(targets != kIgnoreLabel).any().item<bool>()) continue;  // nothing to learn from (all void)
      const auto logits = net.forward(normalized_batch(model, batch, train.dir()).to(options.device()));
      const auto loss = segmentation_loss(logits, targets, options.class_weights(), options.reduction());
      const double value = loss.item<double>();
      if (!std::isfinite(value))
        fail(run_dir, "training diverged: loss is " + std::to_string(value) + " at epoch " + std::to_string(epoch + 1) + " step " +
                          std::to_string(step + 1) + " (lr " + std::to_string(lr) +
                          "); the last good checkpoint is kept in checkpoint.pt; lower --lr");
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      loss_sum += value;
      ++loss_count;
      pixels += static_cast<double>(targets.numel());
      char status[96];
      std::snprintf(status, sizeof status, "loss %.4f, %.0f px/s", loss_sum / static_cast<double>(loss_count),
                    pixels / std::max(progress.seconds(), 1e-9));
      progress.update(step + 1, status);
    }
    at.step = 0;
    at.epoch = epoch + 1;
    nlohmann::json line = {{"epoch", epoch + 1}, {"train_loss", loss_count > 0 ? loss_sum / static_cast<double>(loss_count) : 0.0},
                           {"lr", lr}};
    const bool validate_now = val != nullptr && ((epoch + 1) % std::max<int64_t>(1, options.val_every()) == 0 || epoch + 1 == options.epochs());
    if (validate_now) {
      const auto metrics = evaluate(model, *val, options.device()).metrics();
      result.last_val = metrics;
      line["val"] = {{"pixel_acc", metrics.pixel_acc}, {"mean_acc", metrics.mean_acc}, {"mean_iu", metrics.mean_iu}, {"fw_iu", metrics.fw_iu}};
      if (metrics.mean_iu > at.best_mean_iu) {
        at.best_mean_iu = metrics.mean_iu;
        at.best_epoch = epoch + 1;
        save_model(run_dir + "/best.fcn", model);
      }
    }
    at.seconds = elapsed();
    line["seconds"] = at.seconds;
    save_model(run_dir + "/last.fcn", model);
    save_checkpoint(run_dir + "/checkpoint.pt", model, optimizer, at);
    std::ofstream(run_dir + "/metrics.jsonl", std::ios::app) << line.dump() << "\n";
    char status[128];
    std::snprintf(status, sizeof status, "loss %.4f%s", line["train_loss"].get<double>(),
                  validate_now ? (", val mean IU " + std::to_string(result.last_val.mean_iu)).c_str() : "");
    progress.finish(status);
  }
  // Without validation (or before any ran), the final model is the best there is.
  if (val == nullptr || !fs::exists(run_dir + "/best.fcn")) save_model(run_dir + "/best.fcn", model);
  result.epochs_done = options.epochs();
  result.best_mean_iu = at.best_mean_iu;
  result.best_epoch = at.best_epoch;
  result.seconds = at.seconds;
  return result;
}

void prepare_run_dir(const std::string& run_dir) {
  if (run_dir.empty()) fail("--out", "a run folder is needed");
  std::error_code error;
  fs::create_directories(run_dir, error);
  if (error || !fs::is_directory(run_dir)) fail(run_dir, "cannot create the run folder: " + error.message());
}

}  // namespace

std::string checkpoint_path(const std::string& run_or_checkpoint) {
  const std::string path = fs::is_directory(run_or_checkpoint) ? run_or_checkpoint + "/checkpoint.pt" : run_or_checkpoint;
  if (!fs::exists(path)) fail(path, "no checkpoint here (a run folder holds checkpoint.pt after its first epoch)");
  return path;
}

TrainResult train_segmentation(Model& model, const SegmentationDataset& train, const SegmentationDataset* val,
                               const TrainOptions& options) {
  prepare_run_dir(options.run_dir());
  if (options.epochs() < 1) fail("--epochs", "must be at least 1");
  if (options.batch_size() < 1) fail("--batch", "must be at least 1");
  std::error_code ignored;
  fs::remove(options.run_dir() + "/metrics.jsonl", ignored);  // a fresh run starts a fresh log
  model.net->to(options.device());
  auto optimizer = make_optimizer(*model.net, options.optimizer());
  return run(model, train, val, options, *optimizer, Position{});
}

TrainResult resume_segmentation(const std::string& checkpoint, Model& model, const SegmentationDataset& train,
                                const SegmentationDataset* val, const TrainOptions& options) {
  const auto path = checkpoint_path(checkpoint);
  torch::serialize::InputArchive archive;
  Position at;
  try {
    archive.load_from(path);
    c10::IValue value;
    archive.read("format", value);
    if (!value.isString() || value.toStringRef() != "fcn-checkpoint") fail(path, "not an fcn checkpoint");
    archive.read("model_config", value);
    model.net = build_net(nlohmann::json::parse(value.toStringRef()), path);
    archive.read("model_meta", value);
    model.meta = meta_from_json(nlohmann::json::parse(value.toStringRef()), path);
    torch::serialize::InputArchive weights;
    archive.read("model", weights);
    model.net->load(weights);
    archive.read("epoch", value);
    at.epoch = value.toInt();
    archive.read("step", value);
    at.step = value.toInt();
    archive.read("best_mean_iu", value);
    at.best_mean_iu = value.toDouble();
    archive.read("best_epoch", value);
    at.best_epoch = value.toInt();
    archive.read("seconds", value);
    at.seconds = value.toDouble();
  } catch (const c10::Error& e) {
    fail(path, "unreadable checkpoint (truncated or corrupt?): " + first_line(e.what_without_backtrace()));
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("checkpoint holds a bad model config: ") + e.what());
  }
  prepare_run_dir(options.run_dir());
  model.net->to(options.device());
  auto optimizer = make_optimizer(*model.net, options.optimizer());
  try {
    torch::serialize::InputArchive state;
    archive.read("optimizer", state);
    optimizer->load(state);
  } catch (const c10::Error& e) {
    fail(path, "optimizer state does not match --optimizer " + options.optimizer().name() + ": " + first_line(e.what_without_backtrace()));
  }
  if (at.epoch >= options.epochs() && !options.quiet())
    std::fprintf(stderr, "%s: already trained %ld of %ld epochs; raise --epochs to continue\n", path.c_str(),
                 static_cast<long>(at.epoch), static_cast<long>(options.epochs()));
  return run(model, train, val, options, *optimizer, at);
}

Normalization dataset_normalization(const SegmentationDataset& dataset, int64_t channels, size_t max_images) {
  const size_t count = std::min(dataset.size(), max_images);
  auto sum = torch::zeros({channels}, torch::kDouble), sum_sq = torch::zeros({channels}, torch::kDouble);
  double pixels = 0;
  for (size_t i = 0; i < count; ++i) {
    const auto image = adapt_channels(read_image(dataset.image_path(i)), channels, dataset.image_path(i)).to(torch::kDouble);
    sum += image.sum({1, 2});
    sum_sq += image.pow(2).sum({1, 2});
    pixels += static_cast<double>(image.size(1) * image.size(2));
  }
  const auto mean = sum / pixels;
  const auto std = (sum_sq / pixels - mean.pow(2)).clamp_min(1e-6).sqrt();
  Normalization out;
  for (int64_t c = 0; c < channels; ++c) {
    out.mean.push_back(mean[c].item<double>());
    out.std.push_back(std[c].item<double>());
  }
  return out;
}

}  // namespace fcn
