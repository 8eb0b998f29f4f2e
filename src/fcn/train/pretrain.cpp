#include "fcn/train/pretrain.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <cmath>
#include <nlohmann/json.hpp>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "fcn/models/classifier.h"
#include "fcn/models/registry.h"
#include "fcn/train/checkpoint.h"
#include "fcn/train/fused_optimizers.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"
#include "fcn/util/progress.h"
#include "fcn/util/threads.h"

namespace fcn {
namespace {

// N x 28 x 28 uint8 -> N x S x S in [0, 1], the item centred on black (S = 32: 2 pixels each side).
torch::Tensor padded(const torch::Tensor& images, int64_t side) {
  const int64_t before = (side - 28) / 2, after = side - 28 - before;
  return torch::constant_pad_nd(images.to(torch::kFloat).div(255.0f), {before, after, before, after}, 0.0);
}

// The net's N x 1 x S x S input (channels-last where the net's weights are).
torch::Tensor prepare(const torch::Tensor& images, const Model& model, torch::Device device, bool channels_last = false) {
  const auto& net = dynamic_cast<const ClassifierImpl&>(*model.net);
  const auto x = model_input(model, padded(images, net.options.input_size()).unsqueeze(1), "fashion-mnist").to(device);
  return channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
}

}  // namespace

double classifier_accuracy(Model& model, const FashionMnist& data, int64_t limit, torch::Device device) {
  c10::InferenceMode guard;
  model.net->eval();
  const int64_t n = limit > 0 ? std::min(limit, data.images.size(0)) : data.images.size(0);
  int64_t correct = 0;
  for (int64_t start = 0; start < n; start += 256) {
    const int64_t end = std::min(n, start + 256);
    const auto x = prepare(data.images.slice(0, start, end), model, device);
    correct += (model.net->forward(x).argmax(1).cpu() == data.labels.slice(0, start, end)).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

std::shared_ptr<ClassifierImpl> pretrain_classifier(const PretrainOptions& options) {
  if (options.input_size() < 28) fail("PretrainOptions.input_size", "must be at least 28 (the items' side)");
  check_image_size("PretrainOptions.input_size", options.input_size(), options.input_size());
  const auto backbone = parse_backbone(options.backbone()).in_channels(1);
  return std::make_shared<ClassifierImpl>(ClassifierOptions()
                                              .backbone(backbone)
                                              .input_size(options.input_size())
                                              .fc_channels(has_fc_head(backbone.family()) ? options.fc_channels() : 0)
                                              .num_classes(10));
}

namespace {

// The state of the generator that dropout on `device` draws from (the CPU's, or the GPU's), to store in a checkpoint
// and give back on --resume.
torch::Tensor generator_state(torch::Device device) {
  at::Generator generator = at::globalContext().defaultGenerator(device);
  const std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}
// A run resumed on another kind of device than it stopped on draws a stream of its own (its numbers differ anyway).
void set_generator_state(torch::Device device, const RunPosition& at) {
  if (!at.rng_state.defined() || at.rng_device != c10::DeviceTypeName(device.type(), /*lower_case=*/true)) return;
  at::Generator generator = at::globalContext().defaultGenerator(device);
  const std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(at.rng_state);
}

// A fresh run's folder: made, and an earlier run's checkpoint there refused (removed with overwrite), as fcn train does.
// The folder is locked first: a second pretraining in it fails at once, naming the first.
std::unique_ptr<RunLock> prepare_run_dir(const PretrainOptions& options) {
  namespace fs = std::filesystem;
  if (options.run_dir().empty()) return nullptr;
  std::error_code error;
  auto lock = std::make_unique<RunLock>(options.run_dir(), "fcn pretrain");
  const auto checkpoint = options.run_dir() + "/checkpoint.pt";
  if (options.resume() || !fs::exists(checkpoint, error)) return lock;
  if (!options.overwrite())
    fail(options.run_dir(), "holds an earlier pretraining (checkpoint.pt); continue it with --resume " + options.run_dir() +
                                ", or start over with --overwrite");
  fs::remove(checkpoint, error);
  return lock;
}

// A resumed pretraining's options: the checkpoint's settings (where it keeps them), epochs from `asked`, then on_resume's say.
PretrainOptions resumed_options(const PretrainOptions& asked, const RunPosition& at) {
  const auto source = asked.run_dir() + "/checkpoint.pt";
  const PretrainOptions recorded = at.settings.empty() ? asked : with_pretrain_settings(asked, at.settings, source);
  if (at.settings.empty() && !asked.quiet())
    std::fprintf(stderr, "%s: written before fcn kept a run's settings: it goes on with the settings given now (repeat the flags it started with)\n",
                 source.c_str());
  PretrainOptions run = recorded;
  run.epochs(asked.epochs());
  if (asked.on_resume()) asked.on_resume()(recorded, run);
  if (run.epochs() < 1) fail("PretrainOptions.epochs", "must be at least 1");
  if (run.batch_size() < 1) fail("PretrainOptions.batch_size", "must be at least 1");
  validate(run.optimizer());
  return run;
}

// The run in RUN_DIR/checkpoint.pt: its classifier into `model`, and into `options` the settings it goes on with
// (resumed_options), whose classifier must be the checkpoint's (it is, but for a checkpoint that kept no settings and
// flags that build another).
RunPosition resumed_run(const PretrainOptions& asked, PretrainOptions& options, Model& model, torch::serialize::InputArchive& archive) {
  if (asked.run_dir().empty()) fail("PretrainOptions.resume", "needs the run folder of the checkpoint (PretrainOptions.run_dir)");
  const auto path = checkpoint_path(asked.run_dir());
  const auto at = load_checkpoint(path, model, archive);
  options = resumed_options(asked, at);
  const auto have = net_config(*model.net), want = net_config(*pretrain_classifier(options));
  if (have != want)
    fail(path, "holds the pretraining of " + have.dump() + ", and the flags given build " + want.dump() +
                   ": give the run's --backbone, --fc-channels and --input-size to --resume it");
  return at;
}

// The epochs of one pretraining, from `at` on; a checkpoint after each epoch and at a Ctrl-C (where run_dir is set).
class Pretraining {
 public:
  Pretraining(const PretrainOptions& options, const FashionMnist& train, PretrainResult& result, torch::optim::Optimizer& optimizer, bool channels_last)
      : options_(options), train_(train), result_(result), optimizer_(optimizer), channels_last_(channels_last),
        n_(options.train_images() > 0 ? std::min(options.train_images(), train.images.size(0)) : train.images.size(0)),
        steps_per_epoch_((n_ + options.batch_size() - 1) / options.batch_size()) {}

  int64_t images() const { return n_; }

  // false where Ctrl-C stopped it (the checkpoint written at that step).
  bool run(RunPosition& at) {
    const auto start = std::chrono::steady_clock::now();
    const double before = at.seconds;  // the invocations before this one (a resumed run)
    const auto seconds = [&] { return before + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    for (int64_t epoch = at.epoch; epoch < options_.epochs(); ++epoch) {
      result_.model.net->train();
      auto generator = at::detail::createCPUGenerator(options_.seed() * 1000003u + static_cast<uint64_t>(epoch));
      const auto order = torch::randperm(train_.images.size(0), generator).slice(0, 0, n_);
      Progress progress("pretrain epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options_.epochs()), steps_per_epoch_, options_.quiet());
      double loss_sum = 0;
      for (int64_t step = epoch == at.epoch ? at.step : 0; step < steps_per_epoch_; ++step) {
        const bool step_limit = options_.stop_after_steps() > 0 && steps_ >= options_.stop_after_steps();
        if (!options_.run_dir().empty() && (InterruptGuard::requested() || step_limit)) return stop(at, epoch, step, seconds(), step_limit);
        ++steps_;
        loss_sum += step_loss(epoch, step, order);
        char status[32];
        std::snprintf(status, sizeof status, "loss %.4f", loss_sum / static_cast<double>(step + 1 - (epoch == at.epoch ? at.step : 0)));
        progress.update(step + 1, status);
      }
      progress.finish();
      save(at, epoch + 1, 0, seconds());
    }
    at.seconds = seconds();
    return true;
  }

 private:
  double step_loss(int64_t epoch, int64_t step, const torch::Tensor& order) {
    const auto& batch = options_.batch_size();
    const auto index = order.slice(0, step * batch, std::min(n_, (step + 1) * batch));
    const auto x = prepare(train_.images.index_select(0, index), result_.model, options_.device(), channels_last_);
    const auto y = train_.labels.index_select(0, index).to(options_.device());
    set_lr(optimizer_, options_.optimizer(),
           scheduled_lr(options_.optimizer(), static_cast<double>(epoch * steps_per_epoch_ + step) /
                                                  static_cast<double>(options_.epochs() * steps_per_epoch_)));
    const auto loss = torch::nn::functional::cross_entropy(result_.model.net->forward(x), y);
    const double value = loss.item<double>();
    if (!std::isfinite(value)) fail("pretrain", "training diverged (loss " + number_text(value) + "); lower --lr");
    clear_gradients(optimizer_);
    loss.backward();
    optimizer_.step();
    return value;
  }

  void save(RunPosition& at, int64_t epoch, int64_t step, double seconds) {
    at.epoch = epoch, at.step = step, at.seconds = seconds;  // pretrain_fashion_mnist's result reads them from `at`
    if (options_.run_dir().empty()) return;
    at.rng_state = generator_state(options_.device());
    at.rng_device = c10::DeviceTypeName(options_.device().type(), /*lower_case=*/true);
    writing_into_run(options_.run_dir(), [&] { save_checkpoint(options_.run_dir() + "/checkpoint.pt", result_.model, optimizer_, at); });
  }

  bool stop(RunPosition& at, int64_t epoch, int64_t step, double seconds, bool step_limit) {
    save(at, epoch, step, seconds);
    InterruptGuard::clear();
    if (!options_.quiet())
      std::fprintf(stderr, "\n%s: checkpoint at epoch %ld step %ld written to %s/checkpoint.pt (continue with --resume %s)\n",
                   step_limit ? "step limit reached" : "interrupted", static_cast<long>(epoch), static_cast<long>(step),
                   options_.run_dir().c_str(), options_.run_dir().c_str());
    return false;
  }

  const PretrainOptions& options_;
  const FashionMnist& train_;
  PretrainResult& result_;
  torch::optim::Optimizer& optimizer_;
  const bool channels_last_;
  const int64_t n_, steps_per_epoch_;
  int64_t steps_ = 0;  // steps of this call
};

}  // namespace

std::string pretrain_settings(const PretrainOptions& o) {
  return nlohmann::json{{"backbone", o.backbone()},         {"fc_channels", o.fc_channels()}, {"input_size", o.input_size()},
                        {"epochs", o.epochs()},             {"train_images", o.train_images()}, {"batch_size", o.batch_size()},
                        {"optimizer", optimizer_json(o.optimizer())}, {"seed", o.seed()}}
      .dump();
}

PretrainOptions with_pretrain_settings(PretrainOptions o, const std::string& settings, const std::string& source) {
  try {
    const auto j = nlohmann::json::parse(settings);
    o.epochs(j.at("epochs").get<int64_t>()).train_images(j.at("train_images").get<int64_t>()).batch_size(j.at("batch_size").get<int64_t>());
    o.optimizer(optimizer_from_json(j.at("optimizer"))).seed(j.at("seed").get<uint64_t>());
    o.backbone(j.at("backbone").get<std::string>()).fc_channels(j.at("fc_channels").get<int64_t>()).input_size(j.at("input_size").get<int64_t>());
  } catch (const nlohmann::json::exception& e) {
    fail(source, std::string("holds pretraining settings fcn cannot read (") + e.what() + ")");
  }
  return o;
}

PretrainResult pretrain_fashion_mnist(const PretrainOptions& asked) {
  PretrainOptions options = asked;  // a resumed run's: its checkpoint's settings (resumed_options)
  if (options.epochs() < 1) fail("PretrainOptions.epochs", "must be at least 1");
  if (options.batch_size() < 1) fail("PretrainOptions.batch_size", "must be at least 1");
  const OpenBlasOnCallingThread blas;  // its Linear layers: a pool of its own would spin against OpenMP's
  torch::manual_seed(options.seed());
  const auto train = read_fashion_mnist("train", options.source());
  const auto test = read_fashion_mnist("t10k", options.source());
  PretrainResult result;
  if (!options.resume()) {  // a resumed run's classifier and metadata (its statistics too) are its checkpoint's
    result.model.net = pretrain_classifier(options);
    result.model.meta = default_meta(10, 1);
    result.model.meta.class_names = fashion_mnist_classes();
    // Statistics of the padded training images, stored in the model file for every later use.
    const auto canvas = padded(train.images, options.input_size());
    result.model.meta.normalization = {{canvas.mean().item<double>()}, {canvas.std().item<double>()}};
  }
  const auto lock = prepare_run_dir(options);
  RunPosition at;
  torch::serialize::InputArchive archive;
  if (options.resume()) {
    at = resumed_run(asked, options, result.model, archive);
    set_generator_state(options.device(), at);
  }
  at.settings = pretrain_settings(options);  // what a resume of this run takes
  result.model.net->to(options.device());
  const bool channels_last = training_channels_last(options.layout(), options.device());
  to_layout(*result.model.net, channels_last);
  if (!options.run_dir().empty()) check_room_for_run(options.run_dir(), *result.model.net, options.optimizer().name(), 0);
  auto optimizer = make_optimizer(*result.model.net, options.optimizer());
  if (options.resume()) load_optimizer_state(options.run_dir() + "/checkpoint.pt", archive, *optimizer);
  if (options.resume() && at.epoch >= options.epochs() && !options.quiet())
    std::fprintf(stderr, "%s/checkpoint.pt: already pretrained %ld of %ld epochs; raise --epochs to continue\n", options.run_dir().c_str(),
                 static_cast<long>(at.epoch), static_cast<long>(options.epochs()));
  const TrainingConvScope convs(options.conv());
  std::optional<InterruptGuard> interrupt;  // with a run folder, Ctrl-C writes a checkpoint instead of ending the process
  if (!options.run_dir().empty()) interrupt.emplace();
  Pretraining pretraining(options, train, result, *optimizer, channels_last);
  result.interrupted = !pretraining.run(at);
  result.seconds = at.seconds;
  result.epochs_done = at.epoch;
  to_layout(*result.model.net, false);
  if (result.interrupted) return result;
  result.test_accuracy = classifier_accuracy(result.model, test, options.test_images(), options.device());
  result.model.meta.training = nlohmann::json{{"task", "pretrain fashion-mnist"},  {"epochs", options.epochs()},
                                              {"train_images", pretraining.images()}, {"seed", options.seed()},
                                              {"train_seconds", result.seconds}, {"test_accuracy", result.test_accuracy}}
                                   .dump();
  result.model.net->to(torch::kCPU);
  return result;
}

}  // namespace fcn
