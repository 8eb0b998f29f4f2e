#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "flags.h"
#include "training_path.h"
#include "fcn/models/backbone.h"
#include "fcn/serialize/model_file.h"
#include "fcn/train/pretrain.h"
#include "fcn/util/allocator.h"
#include "fcn/util/error.h"

namespace fcn::cli {
namespace {

// With --layout auto on a CPU: fcn tune --mode train's cached choice for the classifier's step (after
// timing the candidates first with --tune), else the training rule.
void choose_training_path(PretrainOptions& options, bool tune) {
  const bool auto_layout = options.layout() == TrainingLayout::kAuto;
  if (tune && !auto_layout) fail("--tune", "times the layout and the conv algorithm: leave --layout at auto");
  if (tune && !options.device().is_cpu()) fail("--tune", "times CPU paths; " + options.device().str() + " runs its own kernels");
  if (!auto_layout || !options.device().is_cpu()) return;
  const auto net = pretrain_classifier(options);
  const auto key = tune_key(*net, options.input_size(), options.input_size(), options.batch_size(), torch::kFloat, /*training=*/true);
  if (tune) tune_training_step(*net, {options.input_size(), options.input_size(), options.batch_size()}, key, options.quiet());
  if (const auto path = tuned_training_path(key, options.quiet())) options.layout(training_layout_of(*path)).conv(path->conv);
}

// run_folder_of, with --resume checked first: it must exist, a checkpoint file in the working folder is resumed
// from ".", and --run-dir beside it must name the same folder.
std::string pretrain_run_dir(const std::string& out, const std::string& run_dir, const std::string& resume) {
  namespace fs = std::filesystem;
  if (std::error_code error; !resume.empty() && !fs::exists(resume, error))
    fail(resume, "not found: --resume takes the run folder of an earlier fcn pretrain (OUT.run, or its checkpoint.pt)");
  const auto folder_of = [](const std::string& file) { return fs::path(file).has_parent_path() ? fs::path(file).parent_path().string() : "."; };
  const std::string resumed = resume.empty() || fs::is_directory(resume) ? resume : folder_of(resume);
  if (!run_dir.empty() && !resume.empty() && fs::weakly_canonical(run_dir) != fs::weakly_canonical(resumed))
    fail("--run-dir", run_dir + " is not the folder of --resume " + resume + ": give one of them");
  return run_folder_of(out, run_dir, resumed);
}

// With --resume: the run's own classifier and steps (pretrain_settings) where no flag is given, said in one line where this command
// line alone would have said otherwise; a flag given that asks for another step is an error naming the run's value.
void keep_pretraining_settings(PretrainOptions& options, const CLI::App* cmd, bool say) {
  static const std::vector<SettingFlag> flags = {
      {"--backbone", {"/backbone"}},   {"--fc-channels", {"/fc_channels"}}, {"--input-size", {"/input_size"}},
      {"--train-images", {"/train_images"}}, {"--batch", {"/batch_size"}}, {"--lr", {"/optimizer/lr"}},
      {"--optimizer", {"/optimizer/name"}}, {"--seed", {"/seed"}}, {"--epochs", {"/epochs"}, true}};
  const auto asked = nlohmann::json::parse(pretrain_settings(options));
  options.on_resume([cmd, say, asked, run_dir = options.run_dir()](const PretrainOptions& recorded, PretrainOptions& run) {
    const auto given = [cmd](const std::string& flag) { return cmd->get_option(flag)->count() > 0; };
    const auto settings = nlohmann::json::parse(pretrain_settings(recorded));
    check_setting_flags(flags, given, asked, settings, run_dir, "start afresh with --overwrite");
    if (!given("--epochs")) run.epochs(recorded.epochs());
    if (say) say_settings_kept(run_dir, settings_kept(flags, given, asked, settings));
  });
}

}  // namespace

void add_pretrain(CLI::App& app) {
  auto* cmd = app.add_subcommand("pretrain", "Train the VGG-style classifier on Fashion-MNIST (the transfer-learning source)\n"
                                             "  example: fcn pretrain --data fashion-mnist --out classifier.fcn --epochs 1 --train-images 20000");
  static std::string data = "fashion-mnist", out, device = "cpu", backbone = "vgg16-w0.25", optimizer = "adamw", layout = "auto", run_dir, resume;
  static int64_t epochs = 1, train_images = 0, batch = 64, fc_channels = 256, input_size = 32;
  static double lr = 1e-3;
  static uint64_t seed = 0;
  static bool json_output = false, tune = false, overwrite = false;
  cmd->add_option("--data", data, "fashion-mnist (Debian's dataset-fashion-mnist)")->capture_default_str();
  add_out_flag(cmd, out, "classifier model file to write")->required();
  cmd->add_option("--run-dir", run_dir, "run folder: checkpoint.pt after every epoch and at Ctrl-C, until OUT is written (default: OUT without .fcn + .run)");
  cmd->add_option("--resume", resume, "continue the pretraining in this run folder (or its checkpoint.pt) where it stopped");
  cmd->add_flag("--overwrite", overwrite, "start afresh where the run folder holds an earlier pretraining's checkpoint")->excludes("--resume");
  add_max_pixels_flag(cmd);
  cmd->add_option("--epochs", epochs, "passes over the training images")->capture_default_str();
  cmd->add_option("--train-images", train_images, "use the first N of a shuffled train split (0: all 60000)")->capture_default_str();
  cmd->add_option("--batch", batch, "batch size")->capture_default_str();
  cmd->add_option("--lr", lr, "learning rate (cosine decay)")->capture_default_str();
  cmd->add_option("--optimizer", optimizer, "adamw | sgd")->capture_default_str();
  cmd->add_option("--backbone", backbone, "vgg16-w0.25, alexnet-w0.25, googlenet-w0.25, resnet50-w0.25, ...")->capture_default_str();
  cmd->add_option("--fc-channels", fc_channels, "fc6/fc7 width (VGG, AlexNet)")->capture_default_str();
  cmd->add_option("--input-size", input_size, "canvas side the 28x28 items are centred on (AlexNet: 64)")->capture_default_str();
  cmd->add_option("--seed", seed, "random seed")->capture_default_str();
  add_layout_flag(cmd, layout);
  cmd->add_flag("--tune", tune,
                "with --layout auto: time the classifier's training step in each layout and conv algorithm on this CPU\n"
                "  first (as fcn tune --mode train; 2-3 s on 2 cores) and cache the winner");
  add_device_flag(cmd, device);
  add_json_flag(cmd, json_output);
  cmd->callback([cmd] {
    use_cpu_allocator_for_training();  // same shapes every step: keep freed activation blocks
    if (data != "fashion-mnist") fail("--data", "'" + data + "': pretraining reads fashion-mnist");
    if (cmd->get_option("--fc-channels")->count() > 0 && !has_fc_head(parse_backbone(backbone).family()))
      fail("--fc-channels", "is the fc6/fc7 width of VGG and AlexNet, and " + backbone + " has no fc layers (its classifier scores the pooled map)");
    auto options = PretrainOptions()
                       .backbone(backbone)
                       .fc_channels(fc_channels)
                       .input_size(input_size)
                       .epochs(epochs)
                       .train_images(train_images)
                       .batch_size(batch)
                       .optimizer(OptimizerOptions().name(optimizer).lr(lr).weight_decay(1e-4).schedule("cosine"))
                       .seed(seed)
                       .device(parse_device(device))
                       .layout(parse_training_layout(layout, "--layout"))
                       .quiet(json_output)
                       .run_dir(pretrain_run_dir(out, run_dir, resume))
                       .resume(!resume.empty())
                       .overwrite(overwrite);
    choose_training_path(options, tune);
    if (!resume.empty()) keep_pretraining_settings(options, cmd, !json_output);
    auto result = pretrain_fashion_mnist(options);
    if (result.interrupted) throw CLI::RuntimeError(130);
    save_model(out, result.model);
    std::error_code error;  // the run is finished and its classifier written: the checkpoint goes (the folder too, where empty)
    for (const char* name : {"/checkpoint.pt", "/.lock", ""}) std::filesystem::remove(options.run_dir() + name, error);
    if (json_output) {
      std::cout << nlohmann::json{{"model", out}, {"test_accuracy", result.test_accuracy}, {"train_seconds", result.seconds}}.dump(2) << "\n";
    } else {
      std::printf("wrote %s: Fashion-MNIST test accuracy %.2f%% after %.0f s of training\n", out.c_str(), 100 * result.test_accuracy,
                  result.seconds);
    }
  });
}

}  // namespace fcn::cli
