#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "training_path.h"
#include "fcn/data/dataset.h"
#include "fcn/data/stats.h"
#include "fcn/formats/image.h"
#include "fcn/formats/npy.h"
#include "fcn/bench/benchmark.h"
#include "fcn/infer/fast_path.h"
#include "fcn/models/backbone.h"
#include "fcn/models/convolutionalize.h"
#include "fcn/models/fcn.h"
#include "fcn/models/registry.h"
#include "fcn/models/unet.h"
#include "fcn/serialize/model_file.h"
#include "fcn/train/distributed.h"
#include "fcn/train/trainer.h"
#include "fcn/util/allocator.h"
#include "fcn/util/error.h"
#include "fcn/util/progress.h"
#include "fcn/util/threads.h"

namespace fcn::cli {
namespace {

struct TrainFlags {
  NetRecipe recipe;  // --arch and a fresh net's shape, as in fcn init and fcn bench
  bool overwrite = false;
  std::vector<std::string> given;  // the flags on the command line ("--arch", ...)
  bool gave(const std::string& flag) const { return std::find(given.begin(), given.end(), flag) != given.end(); }
  std::string data, init, from, weights, out, run_dir, resume, device = "cpu";
  std::string optimizer = "sgd", schedule = "poly", reduction = "mean", loss = "ce", class_weights = "none";
  std::string weight_map, elastic;  // "w0=10,sigma=5", "alpha=10,grid=3"; empty: off
  std::string conv = "auto", layout = "auto";
  int64_t epochs = 10, batch = 8, val_every = 1, patience = 0, crop = 0;
  double lr = 1e-3, momentum = 0.9, weight_decay = 5e-4, bias_lr_mult = 1.0, min_scale = 1.0, max_scale = 1.0;
  double rotate = 0, shift = 0, gamma = 1, foreground = 0;
  uint64_t seed = 0;
  bool flip = false, json_output = false, no_check = false, tune = false;
  // Data parallel: ranks started here (--nproc), or this process as one rank of a launcher's job.
  int64_t nproc = 1, workers = 0, rank = -1, world_size = -1, cache_mib = 1024;
  double dist_timeout = 300;
  std::string dist_url;
};

// --class-weights; median frequencies from the data check's train histogram where it ran (else the masks are read).
torch::Tensor class_weights_from(const std::string& choice, const TrainingData& data) {
  const auto& train = *data.train;
  if (choice == "none") return {};
  if (choice == "auto" || choice == "median-freq") {
    const auto& checked = data.report.split_histograms;
    return median_frequency_weights(!checked.empty() && checked.front().defined() ? checked.front() : class_histogram(train));
  }
  auto weights = read_npy(choice).to(torch::kFloat).flatten();
  if (weights.size(0) != train.num_classes())
    fail(choice, "holds " + std::to_string(weights.size(0)) + " class weights, the data has " + std::to_string(train.num_classes()) + " classes");
  return weights;
}

// Transfer learning: the classifier (convolutionalized here if it is not yet) under a new score layer.
Model from_classifier_file(const std::string& path, const NetRecipe& recipe, int64_t classes) {
  const int64_t stride = fcn_stride(recipe.arch);
  if (stride == 0) fail("--init", "transfer from a classifier needs an FCN --arch (fcn32s, fcn16s, fcn8s)");
  auto source = load_model(path);
  auto conv = std::dynamic_pointer_cast<ConvClassifierImpl>(source.net);
  if (auto classifier = std::dynamic_pointer_cast<ClassifierImpl>(source.net)) conv = convolutionalize(*classifier).ptr();
  if (conv == nullptr) fail(path, "is a '" + source.net->arch() + "' model, not a classifier");
  Model model;
  const auto options =
      FCNOptions().stride(stride).num_classes(classes).geometry(parse_geometry(recipe.geometry)).at_once(recipe.at_once);
  model.net = FCN::from_classifier(*conv, options).ptr();
  model.meta = default_meta(classes, model.net->in_channels());
  model.meta.normalization = source.meta.normalization;  // the classifier's inputs
  return model;
}

// Staged training: a finer FCN that starts where the coarser one stopped.
Model from_coarser_file(const std::string& path, int64_t stride, int64_t classes) {
  auto source = load_model(path);
  auto coarser = std::dynamic_pointer_cast<FCNImpl>(source.net);
  if (coarser == nullptr || stride == 0) fail(path, "--from needs an FCN model and an FCN --arch");
  if (coarser->num_classes() != classes)
    fail(path, "has " + std::to_string(coarser->num_classes()) + " output channels, the new net " + std::to_string(classes));
  return {FCN::from_coarser(*coarser, stride).ptr(), source.meta};
}

// What a net given as it is (a resumed run's, --weights') is for a recipe flag: --arch's name (fcn32s, unet, ...), --backbone's, or the value of its
// config key (--depth: "depth"); null where the net has no such setting.
nlohmann::json net_value(const std::string& flag, const NetImpl& net, const nlohmann::json& config) {
  if (flag == "--arch") return net.arch() == "fcn" ? "fcn" + std::to_string(config.value("stride", 0)) + "s" : net.arch();
  if (flag == "--classes") return net.num_classes();
  if (flag == "--in-channels") return net.in_channels();
  if (flag == "--backbone") return config.contains("backbone") ? nlohmann::json(backbone_name(backbone_from_config(config["backbone"]))) : nullptr;
  if (flag == "--frozen-upsampling") return config.contains("learnable_upsampling") ? nlohmann::json(!config["learnable_upsampling"].get<bool>()) : nullptr;
  if (flag == "--dropout" && net.arch() != "unet") return nullptr;  // FCN's dropout is not the flag's
  std::string key = flag.substr(2);
  std::replace(key.begin(), key.end(), '-', '_');
  return config.contains(key) ? config[key] : nullptr;
}

// Where the net comes from as it is (a checkpoint, a model file), in an error's words.
struct NetSource {
  std::string holds;  // "the run in RUN trains", "FILE holds"
  std::string rule;   // "--resume continues a run as it started"
  std::string other;  // what to do instead, after "give FLAG VALUE, or "
};

// With --resume or --weights the net is the checkpoint's or the file's: a recipe flag beside it that asks for
// another net is an error naming the flag and the net's own value (it went unheeded without a word: --arch fcn8s
// continued an FCN-32s run; --weights of an FCN-8s trained it as FCN-8s under --arch fcn32s).
void check_net_flags(const TrainFlags& f, const NetImpl& net, const NetSource& source) {
  const auto& r = f.recipe;
  const auto config = net.config();
  const auto asked = recipe_values(r);
  for (const auto& flag : f.given) {
    const auto want = asked.find(flag);
    if (want == asked.end() || ((flag == "--fc-channels" || flag == "--fc-kernel") && want->second == 0)) continue;  // 0: the backbone's
    const auto have = net_value(flag, net, config);
    if (have.is_null() || have == want->second) continue;
    const auto said = [](const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
    const bool flag_only = have.is_boolean();  // given: on; so the net's is off
    fail(flag, (flag_only ? source.holds + " without it" : said(want->second) + ", but " + source.holds + " " + said(have)) + ", and " +
                   source.rule + ": " + (flag_only ? "leave " + flag + " out" : "give " + flag + " " + said(have)) + ", or " + source.other);
  }
}

// The flags that set how a run's steps go, and where run_settings (train/trainer.h) keeps each: a resumed run
// takes these from its checkpoint.
const std::vector<SettingFlag>& setting_flags() {
  static const std::vector<SettingFlag> flags = {
      {"--batch", {"/batch_size"}},         {"--optimizer", {"/optimizer/name"}},
      {"--lr", {"/optimizer/lr"}},          {"--momentum", {"/optimizer/momentum"}},
      {"--weight-decay", {"/optimizer/weight_decay"}}, {"--bias-lr-mult", {"/optimizer/bias_lr_mult"}},
      {"--schedule", {"/optimizer/schedule"}}, {"--loss", {"/loss"}},
      {"--reduction", {"/reduction"}},      {"--class-weights", {"/class_weights"}},
      {"--weight-map", {"/weight_map", "/weight_map_options/w0", "/weight_map_options/sigma"}},
      {"--crop", {"/augment/crop"}},        {"--foreground", {"/augment/foreground"}},
      {"--scale-min", {"/augment/min_scale"}}, {"--scale-max", {"/augment/max_scale"}},
      {"--flip", {"/augment/flip"}},        {"--rotate", {"/augment/rotate"}},
      {"--shift", {"/augment/shift"}},      {"--elastic", {"/augment/elastic_alpha", "/augment/elastic_grid"}},
      {"--gamma", {"/augment/gamma"}},      {"--seed", {"/seed"}},
      {"--epochs", {"/epochs"}, true},      {"--patience", {"/patience"}, true}, {"--val-every", {"/val_every"}, true}};
  return flags;
}

NetSource resumed_source(const std::string& run) {
  return {"the run in " + run + " trains", "--resume continues a run as it started",
          "start a new run from it (--from " + run + "/last.fcn, --weights " + run + "/last.fcn)"};
}

// The net's inputs where no flag gives them: channels.json's count, else the first image's: as many as it holds
// where each is data (channels_are_data: a .npy array, a multispectral TIFF's bands, RGB + near-infrared);
// else its colour ahead of alpha: a TIFF's as it declares it (gray + 2 alphas: 1), gray or gray + alpha 1,
// RGB or RGBA 3.
int64_t data_channels(const SegmentationDataset& train) {
  if (train.channels() > 0) return train.channels();
  const int64_t first = train.get(0).image.size(0);
  const auto& path = train.image_path(0);
  if (first > 1 && (channels_are_data(path) || first > 4)) return first;
  if (const int64_t colour = tiff_colour_channels(path); colour > 0 && colour <= first) return colour;
  return first <= 2 ? 1 : 3;
}

// The net to train, from exactly one of --init (classifier), --from (coarser FCN), --weights, or
// fresh from the recipe (classes and input channels from the data unless given).
Model starting_point(TrainFlags& f, const SegmentationDataset& train) {
  if (static_cast<int>(!f.init.empty()) + static_cast<int>(!f.from.empty()) + static_cast<int>(!f.weights.empty()) > 1)
    fail("--init/--from/--weights", "give at most one starting point");
  const int64_t stride = fcn_stride(f.recipe.arch);
  if (stride == 0 && f.recipe.arch != "unet" && f.recipe.arch != "torchvision-fcn")
    fail("--arch", "'" + f.recipe.arch + "' is not one of fcn32s, fcn16s, fcn8s, unet, torchvision-fcn");
  if (!f.weights.empty()) {
    auto model = load_model(f.weights);
    check_net_flags(f, *model.net, {f.weights + " holds", "--weights trains that net as it is", "leave --weights out for a fresh net"});
    return model;
  }
  // --classes 1 on two-class data: a binary net (one logit channel, sigmoid).
  const bool binary = f.gave("--classes") && f.recipe.classes == 1 && train.num_classes() == 2;
  const int64_t classes = binary ? 1 : train.num_classes();
  if (f.gave("--classes") && f.recipe.classes != classes)
    fail("--classes", std::to_string(f.recipe.classes) + " but the data has " + std::to_string(train.num_classes()) +
                          " classes (" + train.classes_source() + "; --classes 1 makes a binary net for two-class data)");
  if (!f.init.empty()) return from_classifier_file(f.init, f.recipe, classes);
  if (!f.from.empty()) return from_coarser_file(f.from, stride, classes);
  f.recipe.classes = classes;
  if (!f.gave("--in-channels")) f.recipe.in_channels = data_channels(train);
  Model model;
  model.net = make_net(f.recipe);
  model.meta = default_meta(classes, f.recipe.in_channels);
  model.meta.normalization = dataset_normalization(train, f.recipe.in_channels);
  return model;
}

// starting_point's net, checked against channels.json's count where the data names its channels (a net
// of 3 inputs would read 4 MRI modalities as RGB with alpha and drop one without a word), else against a
// count of channels that are all data where more than one (before the first epoch, not at the first sample).
Model starting_model(TrainFlags& f, const SegmentationDataset& train) {
  auto model = starting_point(f, train);
  const int64_t holds = data_channels(train);
  if ((train.channels() > 0 || (channels_are_data(train.image_path(0)) && holds > 1)) && model.net->in_channels() != holds)
    fail(f.gave("--in-channels") ? "--in-channels" : "the starting net",
         "takes " + std::to_string(model.net->in_channels()) + " input channel(s) but " +
             (train.channels() > 0 ? train.dir() + "/channels.json names " + std::to_string(holds)
                                   : train.image_path(0) + " holds " + std::to_string(holds) + ", each one data") +
             " (the images' channels)");
  // A gray net started from a file (a Fashion-MNIST classifier) on colour images sees them as gray: said, not silent.
  const std::string source = !f.init.empty() ? f.init : !f.from.empty() ? f.from : f.weights;
  if (!source.empty() && model.net->in_channels() == 1 && holds == 3)
    std::fprintf(stderr, "fcn: warning: %s takes 1 input channel and %s's images are colour: the net sees them as gray "
                         "(luminance); a fresh net (--in-channels 3) or a colour classifier sees their colour\n",
                 printable(source).c_str(), printable(train.dir()).c_str());
  const bool trained = !f.weights.empty() || !f.from.empty();  // a segmenter already: it keeps what its inputs are
  if (trained && model.meta.slice_context != train.slice_context())
    fail(!f.weights.empty() ? f.weights : f.from, "was trained on " + std::to_string(slices_a_sample(model.meta.slice_context)) + " slice(s) a sample but " +
                                                      train.dir() + " holds " + std::to_string(slices_a_sample(train.slice_context())) +
                                                      " (fcn data unstack --context)");
  model.meta.slice_context = train.slice_context();  // fcn predict gives volumes to it as it was trained
  // A segmenter fine-tuned on slices made otherwise from volumes: the new model takes volumes as the data holds them.
  const auto warn_slicing = [&](const std::string& was, const std::string& now) {
    std::fprintf(stderr, "fcn: warning: %s was trained on slices %s, and %s holds %s: the new model takes volumes as %s holds them\n",
                 printable(!f.weights.empty() ? f.weights : f.from).c_str(), was.c_str(), printable(train.dir()).c_str(), now.c_str(),
                 printable(train.dir()).c_str());
  };
  if (trained && model.meta.pixel_mm && model.meta.pixel_mm != train.pixel_mm())
    warn_slicing("of " + pixel_text(*model.meta.pixel_mm) + " mm pixels",
                 train.pixel_mm() ? pixel_text(*train.pixel_mm()) + " mm pixels" : "slices as stored (no slicing.json)");
  model.meta.pixel_mm = train.pixel_mm();  // fcn predict resamples volumes to the pixels it was trained on
  if (trained && !model.meta.axes.empty() && model.meta.axes != train.slice_axes())
    warn_slicing("cut as " + model.meta.axes, train.slice_axes().empty() ? "slices as stored" : train.slice_axes() + " ones");
  model.meta.axes = train.slice_axes();  // fcn predict cuts volumes as it was trained
  return model;
}

// What the run read: its splits' pairs, the check's seconds (null: --no-check), the samples kept in memory.
nlohmann::json data_summary(const TrainingData& data, double check_seconds) {
  nlohmann::json pairs = nlohmann::json::object();
  size_t kept = 0, bytes = 0;
  for (const auto* split : {&data.train, &data.val}) {
    if (!split->has_value()) continue;
    pairs[(*split)->split()] = (*split)->size();
    kept += (*split)->kept_stats().samples, bytes += (*split)->kept_stats().bytes;
  }
  return {{"pairs", pairs},
          {"check_seconds", check_seconds >= 0 ? nlohmann::json(check_seconds) : nlohmann::json()},
          {"kept_samples", kept},
          {"kept_mib", static_cast<double>(bytes) / 1048576.0}};
}

// data_summary in one line: "data: 6 train + 2 val pairs, checked in 0.1 s; 8 kept decoded in memory (0.1 MiB; --cache-mib)".
std::string data_line(const nlohmann::json& summary) {
  std::string text = "data:";
  for (const auto& [split, count] : summary.at("pairs").items())
    text += (text.size() > 5 ? " + " : " ") + std::to_string(count.get<size_t>()) + " " + split;
  text += " pairs";
  if (summary.at("pairs").contains("all")) text += " (images/ + masks/ without splits: all for training, no validation; fcn data split holds some out)";
  char rest[128];
  const auto& seconds = summary.at("check_seconds");
  if (seconds.is_null())
    std::snprintf(rest, sizeof rest, " (not checked: --no-check)");
  else
    std::snprintf(rest, sizeof rest, ", checked in %.1f s", seconds.get<double>());
  text += rest;
  std::snprintf(rest, sizeof rest, "; %zu kept decoded in memory (%.1f MiB; --cache-mib)", summary.at("kept_samples").get<size_t>(),
                summary.at("kept_mib").get<double>());
  return text + rest;
}

// The splits this run trains and validates on. Bad data should fail now, not hours into a run: every
// pair is read first (unless --no-check), through the datasets training uses, so that the check is also
// the first epoch's decoding of what --cache-mib keeps.
TrainingData read_data(const TrainFlags& f, size_t keep_bytes, bool quiet, double& seconds) {
  std::unique_ptr<Progress> progress;  // a bar per split on a terminal, gone when the check is over
  const bool bars = !quiet && isatty(fileno(stderr)) != 0;
  int splits = 0;  // train, then val
  const auto start = std::chrono::steady_clock::now();
  auto data = open_training_data(f.data, keep_bytes, !f.no_check, [&](int64_t done, int64_t total) {
    if (done == 1) progress = std::make_unique<Progress>(splits++ == 0 ? "check train" : "check val", total, !bars);
    progress->update(done);
  });
  seconds = f.no_check ? -1 : std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();  // -1: not checked
  if (bars && progress) std::fprintf(stderr, "\r\x1b[K");
  for (const auto& warning : data.report.warnings) std::fprintf(stderr, "fcn: warning: %s\n", printable(warning).c_str());
  const auto& errors = data.report.errors;
  if (!errors.empty())
    throw Error(errors.front() + (errors.size() > 1 ? " (and " + std::to_string(errors.size() - 1) +
                                                          " more problems: fcn data check " + f.data + ")"
                                                    : ""));
  return data;
}

std::string run_dir_of(const TrainFlags& f) { return run_folder_of(f.out, f.run_dir, f.resume); }

AugmentOptions augment_options(const TrainFlags& f) {
  auto options = AugmentOptions().min_scale(f.min_scale).max_scale(f.max_scale).crop(f.crop).flip(f.flip);
  options.rotate(f.rotate).shift(f.shift).gamma(f.gamma).foreground(f.foreground);
  if (!f.elastic.empty()) {
    const auto values = parse_key_values(f.elastic, "--elastic", {"alpha", "grid"}, {10.0, 3.0});
    if (values[1] != std::floor(values[1])) fail("--elastic", "grid must be a whole number, got " + std::to_string(values[1]));
    options.elastic_alpha(values[0]).elastic_grid(static_cast<int64_t>(values[1]));
  }
  validate(options);
  return options;
}

WeightMapOptions weight_map_options(const std::string& text) {
  if (text.empty()) return {};
  const auto values = parse_key_values(text == "paper" ? "" : text, "--weight-map", {"w0", "sigma"}, {10.0, 5.0});
  const auto options = WeightMapOptions().w0(values[0]).sigma(values[1]);
  validate(options);
  return options;
}

// Every flag of the run checked here, before the data is read (the class weights come from the data later).
TrainOptions train_options(const TrainFlags& f) {
  const auto options = TrainOptions()
                           .run_dir(run_dir_of(f))
                           .epochs(f.epochs)
                           .batch_size(f.batch)
                           .optimizer(OptimizerOptions()
                                          .name(f.optimizer)
                                          .lr(f.lr)
                                          .momentum(f.momentum)
                                          .weight_decay(f.weight_decay)
                                          .bias_lr_mult(f.bias_lr_mult)
                                          .schedule(f.schedule))
                           .augment(augment_options(f))
                           .reduction(parse_reduction(f.reduction))
                           .loss(parse_loss_kind(f.loss))
                           .weight_map(!f.weight_map.empty())
                           .weight_map_options(weight_map_options(f.weight_map))
                           .seed(f.seed)
                           .val_every(f.val_every)
                           .patience(f.patience)
                           .device(parse_device(f.device))
                           .quiet(f.json_output)
                           .overwrite(f.overwrite)
                           .workers(f.workers)
                           .conv(f.conv == "auto" ? training_rule_path().conv : parse_conv(f.conv, true))
                           .layout(parse_training_layout(f.layout, "--layout"))
                           .keep_run_path(f.layout == "auto" && f.conv == "auto");  // --resume: the run's own path
  validate(options.optimizer());
  return options;
}

// An argument as a POSIX shell reads it back: as it is where that is safe, else in single quotes.
std::string shell_quoted(const std::string& arg) {
  const bool plain = !arg.empty() && std::all_of(arg.begin(), arg.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || std::strchr("_./=:,+-@%", c) != nullptr;
  });
  if (plain) return arg;
  std::string quoted = "'";
  for (const char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// "fcn train --data ...": this process's command line, quoted for a shell; in a rank that --nproc
// started, the user's.
std::string train_command() {
  if (const char* launched = std::getenv("FCN_TRAIN_COMMAND")) return launched;
  std::string command = "fcn";
  const auto args = command_line_without({});
  for (size_t i = 1; i < args.size(); ++i) command += " " + shell_quoted(args[i]);
  return command;
}

// How the run was asked for, in every model file it writes (the run folder's snapshots and --out):
// what fcn info and fcn report show, and the command line to run it again (as typed: relative paths stay so).
nlohmann::json provenance(const TrainFlags& f) {
  const char* init = !f.init.empty() ? "classifier" : !f.from.empty() ? "coarser" : !f.weights.empty() ? "weights" : "random";
  std::error_code error;  // the data as an absolute path, so fcn report finds it from any folder
  const auto data = std::filesystem::absolute(f.data, error).lexically_normal().string();
  return {{"task", "train"}, {"arch", f.recipe.arch}, {"data", error ? f.data : data}, {"init", init}, {"epochs", f.epochs},
          {"seed", f.seed},  {"lr", f.lr},            {"optimizer", f.optimizer},    {"command", train_command()}};
}

// A resumed run's provenance: as it started (the command, the net's source), with the epochs it runs to now and
// the command that resumed it. Before 2026-12-07 --out got this command line's values (--arch's default, the
// defaults of flags left out) in place of the run's.
nlohmann::json resumed_provenance(const Model& resumed, int64_t epochs) {
  auto training = nlohmann::json::parse(resumed.meta.training, nullptr, /*allow_exceptions=*/false);
  if (!training.is_object()) training = nlohmann::json::object();
  training["epochs"] = epochs;
  training["resumed_by"] = train_command();
  return training;
}

// With --resume: the run's own settings where no flag is given (said in one line where the command line alone would
// have said otherwise), a flag given that asks for another step an error; --epochs, --patience and --val-every may
// change, and are the run's where not given.
void keep_run_settings(const TrainFlags& f, const nlohmann::json& asked, const TrainOptions& recorded, TrainOptions& run, bool say) {
  const auto run_dir = run_dir_of(f);
  const auto settings = nlohmann::json::parse(run_settings(recorded));
  const auto given = [&f](const std::string& flag) { return f.gave(flag); };
  check_setting_flags(setting_flags(), given, asked, settings, run_dir, "start a new run from it (--weights " + run_dir + "/last.fcn)");
  if (!f.gave("--epochs")) run.epochs(recorded.epochs());
  if (!f.gave("--patience")) run.patience(recorded.patience());
  if (!f.gave("--val-every")) run.val_every(recorded.val_every());
  if (say) say_settings_kept(run_dir, settings_kept(setting_flags(), given, asked, settings));
}

// The best snapshot, with the run's provenance, becomes --out; then the summary.
void finish(const TrainFlags& f, nlohmann::json training, const TrainResult& result, const std::string& run_dir, const nlohmann::json& data) {
  auto best = load_model(run_dir + "/best.fcn");
  // Without validation (no val split, or every validation undefined) best.fcn is the last epoch.
  const bool validated = result.best_epoch > 0;
  const int64_t best_epoch = validated ? result.best_epoch : result.epochs_done;
  const auto best_mean_iu = validated ? nlohmann::json(result.best_mean_iu) : nlohmann::json(nullptr);
  training.update({{"epochs_done", result.epochs_done},
                   {"train_seconds", result.seconds},
                   {"best_epoch", best_epoch},
                   {"best_val_mean_iu", best_mean_iu}});
  best.meta.training = training.dump();
  save_model(f.out, best);
  if (f.json_output) {
    std::cout << nlohmann::json{{"model", f.out},
                                {"run_dir", run_dir},
                                {"train_seconds", result.seconds},
                                {"best_epoch", best_epoch},
                                {"best_val_mean_iu", best_mean_iu},
                                {"epochs_done", result.epochs_done},
                                {"stopped_early", result.stopped_early},
                                {"data", data}}
                     .dump(2)
              << "\n";
  } else {
    std::printf("%s\n", data_line(data).c_str());
    char which[96];
    if (validated)
      std::snprintf(which, sizeof which, "best epoch %ld, val mean IU %.4f", static_cast<long>(best_epoch), result.best_mean_iu);
    else
      std::snprintf(which, sizeof which, "epoch %ld, the last: no validation ran", static_cast<long>(best_epoch));
    std::printf("wrote %s (%s) after %.0f s%s; run folder %s\n", f.out.c_str(), which, result.seconds,
                result.stopped_early ? (", stopped early at epoch " + std::to_string(result.epochs_done)).c_str() : "", run_dir.c_str());
  }
}

// The training step's workload: the image size (--crop, else the first training image's) and the per-rank batch.
StepShape step_shape(const TrainFlags& f, const SegmentationDataset& train, int64_t world) {
  int64_t height = f.crop, width = f.crop;
  if (height <= 0) {
    const auto image = train.get(0).image;
    height = image.size(-2), width = image.size(-1);
  }
  return {height, width, std::max<int64_t>(1, f.batch / world)};
}

// --tune times CPU paths on one process, for a fresh run whose layout and conv are left to it.
void check_tune_flag(const TrainFlags& f, int64_t world) {
  if (f.layout != "auto" || f.conv != "auto") fail("--tune", "times the layout and the conv algorithm: leave --layout and --conv at auto");
  if (world > 1) fail("--tune", "times one process; run fcn tune --mode train first, then start the ranks");
  if (!f.resume.empty()) fail("--tune", "not with --resume: tune before the run starts");
  if (!parse_device(f.device).is_cpu()) fail("--tune", "times CPU paths; " + f.device + " runs its own kernels");
}

// This process's place in a data-parallel job: the launcher's environment, then the flags.
DistributedOptions job_of(const TrainFlags& f) {
  if (f.workers < 0 || f.workers > kMaxThreads)
    fail("--workers", "must be 0 to " + std::to_string(kMaxThreads) + ", got " + std::to_string(f.workers));
  if (!(f.dist_timeout > 0)) fail("--dist-timeout", "must be positive");
  auto job = distributed_from_environment();
  if (f.rank >= 0) job.rank(f.rank).rank_source("--rank");
  if (f.world_size >= 0) job.world_size(f.world_size).world_size_source("--world-size");
  if (!f.dist_url.empty()) set_dist_url(job, f.dist_url);
  job.timeout_seconds(f.dist_timeout);
  validate(job);
  if (job.world_size() > f.batch)
    fail("--batch", std::to_string(f.batch) + " is the global batch, split across " + std::to_string(job.world_size()) +
                        " ranks: give at least one sample per rank");
  return job;
}

// --nproc N: what every rank would refuse is refused once, here; then the ranks start.
void launch_ranks(const TrainFlags& f) {
  if (std::getenv("RANK") != nullptr || f.rank >= 0)
    fail("--nproc", "starts its own ranks; this process is already one (RANK or --rank is set): drop one of them");
  job_of(f);
  if (f.nproc > f.batch)
    fail("--batch", std::to_string(f.batch) + " is the global batch, split across --nproc " + std::to_string(f.nproc) +
                        " ranks: give at least one sample per rank");
  train_options(f);
  double seconds = 0;
  read_data(f, 0, f.json_output, seconds);
  ::setenv("FCN_TRAIN_COMMAND", train_command().c_str(), 1);  // what the ranks' model files record
  auto rank_args = command_line_without({"--nproc"});
  rank_args.push_back("--no-check");  // checked above, once
  const int64_t threads = std::max<int64_t>(1, available_cpus() / f.nproc);
  const int code = launch_local(f.nproc, rank_args, threads);
  if (code != 0) throw CLI::RuntimeError(code);
}

// A training flag that the chosen optimizer or loss does not read is one line, not a flag left unheeded
// (--momentum under AdamW; --class-weights, --weight-map, --reduction under --loss dice: each trained without it).
void check_unread_training_flags(const TrainFlags& f) {
  if (f.gave("--momentum") && f.optimizer != "sgd")
    fail("--momentum", "is SGD's, and --optimizer " + f.optimizer + " does not read it (AdamW's betas are LibTorch's: 0.9, 0.999)");
  if (f.loss != "dice") return;
  for (const char* flag : {"--class-weights", "--weight-map", "--reduction"})
    if (f.gave(flag) && !(std::string(flag) == "--class-weights" && f.class_weights == "none"))
      fail(flag, "weighs the cross-entropy, and --loss dice has none: --loss ce+dice takes both, or leave " + std::string(flag) + " out");
}

void run_train(TrainFlags& f) {
  check_unread_training_flags(f);
  // Staged training's usual slip (--from fcn32s.fcn --out fcn32s.fcn) wrote the finer net over the coarser one at the end.
  for (const auto& [flag, read] : {std::pair{"--init", f.init}, {"--from", f.from}, {"--weights", f.weights}, {"--class-weights", f.class_weights}})
    check_not_input(f.out, "--out", read);
  if (f.nproc > 1) return launch_ranks(f);
  const auto job = job_of(f);
  if (f.tune) check_tune_flag(f, job.world_size());
  auto options = train_options(f);  // every flag before the data is read
  const auto comm = job.world_size() > 1 ? Communicator::connect(job) : nullptr;
  const bool main_rank = job.rank() == 0;
  use_cpu_allocator_for_training();  // same shapes every step: keep freed activation blocks
  double check_seconds = 0;
  auto data = read_data(f, static_cast<size_t>(f.cache_mib) << 20, f.json_output || !main_rank, check_seconds);  // per split
  SegmentationDataset& train = *data.train;
  SegmentationDataset* val = data.val ? &*data.val : nullptr;
  options.class_weights(class_weights_from(f.class_weights, data));
  options.communicator(comm);
  if (!main_rank) options.quiet(true);
  if (comm != nullptr) options.device(rank_device(options.device(), job));
  torch::manual_seed(f.seed);
  Model model;
  TrainResult result;
  nlohmann::json training;  // the provenance --out gets: this run's, or a resumed run's as it started
  if (!f.resume.empty()) {
    options.on_resume([&f, &training, main_rank, asked = nlohmann::json::parse(run_settings(options))](
                          const Model& resumed, const TrainOptions& recorded, TrainOptions& run) {
      check_net_flags(f, *resumed.net, resumed_source(run_dir_of(f)));
      keep_run_settings(f, asked, recorded, run, main_rank && !f.json_output);
      training = resumed_provenance(resumed, run.epochs());
    });
    result = resume_segmentation(f.resume, model, train, val, options);
  } else {
    model = starting_model(f, train);
    model.meta.class_names = train.class_names();
    model.meta.palette = train.palette();
    // The run folder's snapshots carry the provenance too (fcn report reads the data from best.fcn).
    training = provenance(f);
    model.meta.training = training.dump();
    if (f.layout == "auto" && f.conv == "auto" && options.device().is_cpu() && train.size() > 0) {
      const auto shape = step_shape(f, train, job.world_size());
      const auto key = tune_key(*model.net, shape.height, shape.width, shape.batch, torch::kFloat, /*training=*/true);
      if (f.tune) tune_training_step(*model.net, shape, key, f.json_output);
      if (const auto path = tuned_training_path(key, options.quiet())) options.layout(training_layout_of(*path)).conv(path->conv);
    }
    result = train_segmentation(model, train, val, options);
  }
  if (result.interrupted) throw CLI::RuntimeError(130);
  if (main_rank) finish(f, training, result, options.run_dir(), data_summary(data, check_seconds));
}

void add_training_flags(CLI::App* cmd, TrainFlags& f) {
  cmd->add_option("--epochs", f.epochs, "epochs in the whole run")->capture_default_str();
  cmd->add_option("--batch", f.batch, "batch size (the global batch: split across ranks)")->capture_default_str();
  cmd->add_option("--lr", f.lr, "base learning rate")->capture_default_str();
  cmd->add_option("--optimizer", f.optimizer, "sgd | adamw")->capture_default_str();
  cmd->add_option("--schedule", f.schedule, "fixed | poly | cosine")->capture_default_str();
  cmd->add_option("--momentum", f.momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--weight-decay", f.weight_decay, "weight decay")->capture_default_str();
  cmd->add_option("--bias-lr-mult", f.bias_lr_mult, "learning-rate multiplier for biases (Caffe FCN: 2)")->capture_default_str();
  cmd->add_option("--loss", f.loss, "ce (softmax / binary cross-entropy) | dice | ce+dice")->capture_default_str();
  cmd->add_option("--reduction", f.reduction, "cross-entropy over pixels: mean (over valid pixels) | sum (the FCN paper's)")
      ->capture_default_str();
  cmd->add_option("--weight-map", f.weight_map,
                  "U-Net's border weights: w0=10,sigma=5 (or 'paper'); from instance masks, else connected components");
  cmd->add_option("--class-weights", f.class_weights, "none | auto | median-freq | FILE.npy")->capture_default_str();
  cmd->add_option("--crop", f.crop, "random crop side (pads with ignore); 0: none")->capture_default_str();
  cmd->add_option("--foreground", f.foreground,
                  "the share of batch items forced to show foreground (nnU-Net's oversampling: 0.33), class-balanced: a class "
                  "of the train masks' drawn, each as likely, an image holding it in place of one that does not, its --crop "
                  "centred on it")
      ->capture_default_str();
  cmd->add_option("--scale-min", f.min_scale, "random scale lower bound")->capture_default_str();
  cmd->add_option("--scale-max", f.max_scale, "random scale upper bound")->capture_default_str();
  cmd->add_flag("--flip", f.flip, "random horizontal flips");
  cmd->add_option("--rotate", f.rotate, "random rotation in [-DEG, DEG]")->capture_default_str();
  cmd->add_option("--shift", f.shift, "random shift in [-PX, PX] per axis")->capture_default_str();
  cmd->add_option("--elastic", f.elastic, "U-Net's elastic deformation: alpha=10,grid=3 (px std of displacements on a grid x grid lattice)");
  cmd->add_option("--gamma", f.gamma, "random grey-value gamma in [1/G, G] (1: off)")->capture_default_str();
  cmd->add_option("--val-every", f.val_every, "epochs between validations")->check(CLI::Range(int64_t{1}, int64_t{1} << 30))->capture_default_str();
  cmd->add_option("--patience", f.patience, "early stopping: end the run after N epochs without a better validation mean IU (0: off)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--seed", f.seed, "random seed")->capture_default_str();
  cmd->add_option("--workers", f.workers, "threads that read and augment the next batches ahead of the step (0: none)")
      ->capture_default_str();
  add_cache_flag(cmd, f.cache_mib, "the epochs and validations after the data check");
  add_conv_flag(cmd, f.conv, "fcn tune --mode train's cached choice (with --layout auto), else fcn's Winograd where fcn was built\n  with oneDNN (train step at 320x320 ~1.4x faster than direct on an AVX-512 Zen 5 and the AVX2 proxy), else direct;\n  with --resume and --layout auto: the path the run started on (its checkpoint records it)");
  add_layout_flag(cmd, f.layout);
  cmd->add_flag("--tune", f.tune,
                "where nothing is cached for this net, image size and batch on this CPU, time the training path\n"
                "  candidates first (as fcn tune --mode train; seconds for small nets) and cache the winner");
}

void add_distributed_flags(CLI::App* cmd, TrainFlags& f) {
  cmd->add_option("--nproc", f.nproc, "data parallel: start N ranks on this machine (threads split between them)")
      ->capture_default_str();
  cmd->add_option("--dist-url", f.dist_url, "tcp://HOST:PORT of rank 0's rendezvous (else MASTER_ADDR / MASTER_PORT)");
  cmd->add_option("--rank", f.rank, "this process's rank (else RANK, or SLURM_PROCID)");
  cmd->add_option("--world-size", f.world_size, "ranks in the job (else WORLD_SIZE, or SLURM_NTASKS)");
  cmd->add_option("--dist-timeout", f.dist_timeout, "seconds a rank waits for the others before failing")->capture_default_str();
}

}  // namespace

void add_train(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "train", "Train a segmentation net on a dataset folder, with checkpoints, resume and validation\n"
               "  example: fcn train --data scenes --arch fcn32s --init classifier.fcn --out fcn32s.fcn --epochs 4\n"
               "  example: fcn train --data scenes --arch fcn16s --from fcn32s.fcn --out fcn16s.fcn\n"
               "  example: fcn train --data scenes --arch fcn32s --out fcn32s.fcn --resume fcn32s.run\n"
               "  The run folder (default MODEL.run/) holds checkpoint.pt, last.fcn, best.fcn and metrics.jsonl;\n"
               "  Ctrl-C writes a checkpoint. The best model by validation mean IU is copied to --out.\n"
               "  example: fcn train --data scenes --arch fcn8s --out fcn8s.fcn --nproc 2 --batch 8   (2 ranks x 4)\n"
               "  With torchrun / srun: each rank is `fcn train ...` with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set;\n"
               "  --batch is the global batch, split across the ranks.\n"
               "  A fresh net (no --init/--from/--weights) is the one --arch/--backbone/... name in fcn init.");
  static TrainFlags f;
  cmd->add_option("--data", f.data, "dataset folder (VOC layout or images/ + masks/)")->required();
  add_recipe_flags(cmd, f.recipe);
  add_out_flag(cmd, f.out, "model file to write (the best by validation mean IU)")->required();
  cmd->add_option("--run-dir", f.run_dir, "run folder (default: OUT without .fcn + .run)");
  cmd->add_option("--init", f.init, "start from a classifier (convolutionalized; transfer learning)");
  cmd->add_option("--from", f.from, "start from a coarser FCN (staged training 32s -> 16s -> 8s)");
  cmd->add_option("--weights", f.weights, "start from a model file's weights");
  cmd->add_option("--resume", f.resume, "continue the run in this folder (or checkpoint.pt): the net it trains, as it started")
      ->excludes("--init")
      ->excludes("--from")
      ->excludes("--weights");
  add_training_flags(cmd, f);
  add_distributed_flags(cmd, f);
  add_device_flag(cmd, f.device);
  add_json_flag(cmd, f.json_output, "model, run_dir, train_seconds, best_epoch, best_val_mean_iu, epochs_done, stopped_early");
  cmd->add_flag("--no-check", f.no_check, "skip reading every pair before training");
  cmd->add_flag("--overwrite", f.overwrite, "replace an earlier run in the run folder (without it: an error, or --resume)");
  add_max_pixels_flag(cmd);
  cmd->callback([cmd] {
    for (const auto* option : cmd->get_options())
      if (option->count() > 0) f.given.push_back(option->get_name());
    if (!f.gave("--arch") && f.resume.empty() && f.weights.empty())  // a resumed run's net, or a file's, is as it is
      throw CLI::RequiredError("--arch: is required: the net to train (fcn32s, fcn16s, fcn8s, unet, torchvision-fcn); only --resume and --weights go without it",
                               CLI::ExitCodes::RequiredError);  // a usage error, as CLI11's own (exit 2)
    run_train(f);
  });
}

}  // namespace fcn::cli
