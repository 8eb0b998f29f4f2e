// Training: a small FCN-8s overfits 4 fixed scenes; an interrupted run resumed from its checkpoint
// ends with exactly the weights of the uninterrupted run; divergence keeps the last good checkpoint.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/data/fashion_cells.h"
#include "fcn/data/fashion_scenes.h"
#include "fcn/eval/evaluate.h"
#include "fcn/formats/palette.h"
#include "fcn/formats/png.h"
#include "fcn/models/fcn.h"
#include "fcn/models/unet.h"
#include "fcn/models/winograd.h"
#include "fcn/serialize/model_file.h"
#include "fcn/train/checkpoint.h"
#include "fcn/train/optimizer.h"
#include "fcn/train/trainer.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/progress.h"
#include "test_util.h"

namespace fcn {
namespace {

namespace fs = std::filesystem;

const std::string& scenes() {
  static const std::string dir = [] {
    const std::string path = test::temp_dir() + "/trainer_scenes";
    fs::remove_all(path);
    write_fashion_scenes(path, FashionScenesOptions().train(8).val(4).size(32).seed(5));
    return path;
  }();
  return dir;
}

Model small_fcn8s(uint64_t seed) {
  torch::manual_seed(seed);
  Model model;
  model.net = std::make_shared<FCNImpl>(
      FCNOptions().stride(8).num_classes(11).backbone(BackboneOptions().width(0.125).in_channels(1)).fc_channels(32).fc_kernel(1).dropout(0.1));
  model.meta = default_meta(11, 1);
  return model;
}

TrainOptions options(const std::string& run, int64_t epochs) {
  return TrainOptions()
      .run_dir(test::temp_dir() + "/" + run)
      .epochs(epochs)
      .batch_size(4)
      .optimizer(OptimizerOptions().name("adamw").lr(3e-3).weight_decay(0).schedule("poly"))
      .augment(AugmentOptions().flip(true))
      .seed(9)
      .quiet(true);
}

TEST(Trainer, SmallFcn8sOverfitsFourScenes) {
  // The 4 scenes are the first train scenes; train and measure on them.
  const std::string dir = test::temp_dir() + "/four_scenes";
  fs::remove_all(dir);
  write_fashion_scenes(dir, FashionScenesOptions().train(4).val(1).size(32).seed(5));
  const SegmentationDataset train(dir, "train");
  auto model = small_fcn8s(1);
  auto o = options("overfit", 150);  // 150 steps at batch 4
  o.augment(AugmentOptions()).optimizer().lr(2e-3);
  train_segmentation(model, train, nullptr, o);
  const auto metrics = evaluate(model, train).metrics();
  EXPECT_GE(metrics.pixel_acc, 0.95) << "mean IU " << metrics.mean_iu;
}

std::vector<torch::Tensor> weights_of(const Model& model) {
  std::vector<torch::Tensor> out;
  for (const auto& p : model.net->parameters()) out.push_back(p.detach().clone());
  return out;
}

void expect_same_weights(const Model& a, const Model& b) {
  const auto wa = weights_of(a), wb = weights_of(b);
  ASSERT_EQ(wa.size(), wb.size());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_LE((wa[i] - wb[i]).abs().max().item<float>(), 1e-6f) << "parameter " << i;
}

// Each parameter of `a` within 1e-4 of the scale of `b`'s (training in another way, rounded
// differently); returns whether any differs bitwise (whether the other way ran at all).
bool expect_close_weights(const Model& a, const Model& b) {
  const auto wa = weights_of(a), wb = weights_of(b);
  bool any_differs = false;
  for (size_t i = 0; i < wa.size(); ++i) {
    const double scale = wb[i].abs().max().item<double>();
    EXPECT_LE((wa[i] - wb[i]).abs().max().item<double>(), 1e-4 * scale) << "parameter " << i;
    any_differs = any_differs || !torch::equal(wa[i], wb[i]);
  }
  return any_differs;
}

// TrainOptions.conv (fcn's Winograd by default; small_fcn8s's conv4_2..conv5_3 are 64 -> 64): the
// same training as LibTorch's direct convolution up to the transforms' rounding, and afterwards the
// process's own choice again; oneDNN's Winograd too where this CPU has it.
TEST(Trainer, WinogradTrainsAsDirectDoes) {
  const SegmentationDataset train(scenes(), "train");
  auto run = [&](ConvAlgorithm conv) {
    auto model = small_fcn8s(3);
    train_segmentation(model, train, nullptr, options(conv_algorithm_name(conv), 1).conv(conv));
    return model;
  };
  EXPECT_EQ(TrainOptions().conv(), ConvAlgorithm::kWinograd);
  const auto before = training_conv_algorithm();
  const auto direct = run(ConvAlgorithm::kDirect), winograd = run(ConvAlgorithm::kWinograd);
  EXPECT_EQ(training_conv_algorithm(), before);
  // fcn's trainer skips small_fcn8s's 4x4 maps (winograd_trains_well): direct there, bitwise or nearly.
  expect_close_weights(winograd, direct);
  if (!winograd_onednn_trains() || !winograd_supported()) return;
  const auto onednn = run(ConvAlgorithm::kWinogradOneDnn);  // oneDNN's serves every map size
  EXPECT_EQ(training_conv_algorithm(), before);
  EXPECT_TRUE(expect_close_weights(onednn, direct)) << "bitwise the direct run's weights: did oneDNN's Winograd train at all?";
}

// TrainOptions.layout: channels-last trains as NCHW does, up to the kernels' summation order, and
// leaves the net in NCHW afterwards (its conv weights contiguous again).
TEST(Trainer, ChannelsLastTrainsAsNchwDoes) {
  const SegmentationDataset train(scenes(), "train"), val(scenes(), "val");
  auto run = [&](TrainingLayout layout) {
    auto model = small_fcn8s(4);
    const auto name = layout == TrainingLayout::kNchw ? "nchw" : "channels_last";
    const auto result = train_segmentation(model, train, &val, options(name, 1).layout(layout).conv(ConvAlgorithm::kDirect));
    return std::make_pair(std::move(model), result.last_val.mean_iu);
  };
  const auto [nchw, nchw_iu] = run(TrainingLayout::kNchw);
  const auto [nhwc, nhwc_iu] = run(TrainingLayout::kChannelsLast);
  const bool any_differs = expect_close_weights(nhwc, nchw);
  EXPECT_TRUE(any_differs) << "bitwise the NCHW run's weights: did the run change layout at all?";
  for (const auto& p : nhwc.net->parameters()) EXPECT_TRUE(p.is_contiguous()) << "a parameter left channels-last";
  EXPECT_NEAR(nhwc_iu, nchw_iu, 1e-3);
}

// Kept decoded samples (fcn train --cache-mib): the later epochs and validations read them from
// memory, with two loader threads at once, and the run is the one that decodes every time.
TEST(Trainer, KeptSamplesTrainAsDecodedOnes) {
  SegmentationDataset kept_train(scenes(), "train"), kept_val(scenes(), "val");
  kept_train.keep_decoded(size_t{64} << 20);
  kept_val.keep_decoded(size_t{64} << 20);
  const SegmentationDataset train(scenes(), "train"), val(scenes(), "val");
  auto run = [&](const SegmentationDataset& t, const SegmentationDataset& v, const std::string& name) {
    auto model = small_fcn8s(6);
    const auto result = train_segmentation(model, t, &v, options(name, 2).workers(2).conv(ConvAlgorithm::kDirect));
    return std::make_pair(std::move(model), result.last_val.mean_iu);
  };
  const auto [decoded, decoded_iu] = run(train, val, "decoded");
  const auto [kept, kept_iu] = run(kept_train, kept_val, "kept");
  expect_same_weights(kept, decoded);
  EXPECT_EQ(kept_iu, decoded_iu);
  EXPECT_EQ(kept_train.kept_stats().samples, 8u);
  EXPECT_GE(kept_train.kept_stats().hits, 8u);  // the second epoch
  EXPECT_EQ(kept_val.kept_stats().samples, 4u);
  EXPECT_GE(kept_val.kept_stats().hits, 4u);  // the second validation
}

// nnU-Net's foreground oversampling in training: with foreground 1 every batch item is forced, so on a set where one
// image of six has foreground every item is that image, cropped on it: the run equals one on six copies of it, draw
// for draw. With foreground 0, it does not (the check can fail).
TEST(Trainer, ForegroundOversamplingSwapsImagesWithoutForegroundForOnesWithSome) {
  const auto folder = [](const std::string& name, bool copies) {
    const auto dir = test::temp_dir() + "/" + name;
    fs::remove_all(dir);
    fs::create_directories(dir + "/images"), fs::create_directories(dir + "/masks");
    const std::string classes = R"({"names": ["background", "thing"]})";
    write_file_atomic(dir + "/classes.json", classes.data(), classes.size());
    for (int i = 0; i < 6; ++i) {
      const int64_t k = copies ? 0 : i;
      torch::manual_seed(100 + static_cast<uint64_t>(k));
      write_png(dir + "/images/" + std::to_string(i) + ".png", torch::randint(0, 256, {20, 20, 1}, torch::kByte));
      auto mask = torch::zeros({20, 20}, torch::kByte);
      if (k == 0) mask.slice(0, 12, 15).slice(1, 2, 6).fill_(1);  // a small thing in image 0 alone
      write_png_indexed(dir + "/masks/" + std::to_string(i) + ".png", mask, voc_palette(2));
    }
    return dir;
  };
  const SegmentationDataset mixed(folder("fg_mixed", false), "train"), same(folder("fg_copies", true), "train");
  const auto run = [](const SegmentationDataset& data, double share, const std::string& name) {
    torch::manual_seed(7);
    Model model;
    model.net = std::make_shared<UNetImpl>(UNetOptions().depth(1).base_channels(4).in_channels(1).num_classes(2).padding(Padding::kSame));
    model.meta = default_meta(2, 1);
    auto o = options(name, 1).batch_size(3).conv(ConvAlgorithm::kDirect);
    o.augment(AugmentOptions().crop(8).foreground(share));
    train_segmentation(model, data, nullptr, o);
    return model;
  };
  const auto forced = run(mixed, 1.0, "fg_forced"), copies = run(same, 1.0, "fg_forced_copies"), plain = run(mixed, 0.0, "fg_plain");
  expect_same_weights(forced, copies);
  const auto a = weights_of(forced), b = weights_of(plain);
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i) differs = differs || !torch::equal(a[i], b[i]);
  EXPECT_TRUE(differs) << "foreground 0 trained as foreground 1 did: the check cannot fail";
}

TEST(Trainer, ResumeEqualsTheUninterruptedRun) {
  const SegmentationDataset train(scenes(), "train"), val(scenes(), "val");
  auto straight = small_fcn8s(2);
  const auto start = std::chrono::steady_clock::now();
  const auto full = train_segmentation(straight, train, &val, options("straight", 2));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(full.seconds, 0.0);
  EXPECT_LE(full.seconds, wall);  // training time is counted once

  // Stopped mid-epoch (after 3 of 2 x 2 steps: epoch 2, step 1), then resumed.
  auto first = small_fcn8s(2);
  const auto stopped = train_segmentation(first, train, &val, options("resumed", 2).stop_after_steps(3));
  EXPECT_TRUE(stopped.interrupted);
  Model resumed;
  const auto result = resume_segmentation(test::temp_dir() + "/resumed", resumed, train, &val, options("resumed", 2));
  EXPECT_FALSE(result.interrupted);
  EXPECT_GT(result.seconds, stopped.seconds);
  EXPECT_LT(result.seconds, 2 * wall + 1.0);  // the stopped part plus the rest, not counted twice
  expect_same_weights(straight, resumed);

  // Stopped at the epoch boundary, as after `--epochs 1`, then resumed for the second epoch with options that set
  // other steps (as `fcn train --resume` with its defaults passed before 2026-12-07: it then trained otherwise, without
  // a word): the checkpoint's settings are taken, and on_resume sees them; epochs come from the options.
  auto boundary = small_fcn8s(2);
  train_segmentation(boundary, train, &val, options("boundary", 2).stop_after_steps(2));
  Model continued;
  auto other = TrainOptions().run_dir(test::temp_dir() + "/boundary").epochs(2).quiet(true);  // batch 8, SGD, no flip, seed 0
  int64_t recorded_batch = 0;
  float recorded_lr = 0;
  other.on_resume([&](const Model&, const TrainOptions& recorded, TrainOptions& run) {
    recorded_batch = recorded.batch_size(), recorded_lr = static_cast<float>(run.optimizer().lr());
  });
  resume_segmentation(test::temp_dir() + "/boundary/checkpoint.pt", continued, train, &val, other);
  EXPECT_EQ(recorded_batch, 4);
  EXPECT_EQ(recorded_lr, 3e-3f);
  expect_same_weights(straight, continued);
  EXPECT_TRUE(fs::exists(test::temp_dir() + "/boundary/best.fcn"));
  // Settings written by a newer fcn that this one cannot read are one error naming the checkpoint.
  EXPECT_NE(test::error_of([&] { with_run_settings(TrainOptions(), "{\"epochs\": 2}", "x/checkpoint.pt"); }).find("x/checkpoint.pt: holds run settings"),
            std::string::npos);
  const auto kept = options("kept", 3).class_weights(torch::tensor({0.25f, 1.5f}));
  const auto back = with_run_settings(TrainOptions(), run_settings(kept), "kept");
  EXPECT_EQ(run_settings(back), run_settings(kept));  // every setting goes through, the class weights as float32
}

// A checkpoint written before fcn kept a run's settings goes on with the options given, and says so (nothing else
// can be known of how it started).
TEST(Trainer, ACheckpointWithoutSettingsGoesOnWithTheOptionsGiven) {
  const SegmentationDataset train(scenes(), "train");
  auto model = small_fcn8s(2);
  train_segmentation(model, train, nullptr, options("unkept", 2).stop_after_steps(2));
  const auto path = test::temp_dir() + "/unkept/checkpoint.pt";
  {  // as an earlier fcn wrote it: the same, without "settings"
    Model stored;
    torch::serialize::InputArchive archive;
    auto at = load_checkpoint(path, stored, archive);
    ASSERT_FALSE(at.settings.empty());
    auto optimizer = make_optimizer(*stored.net, options("unkept", 2).optimizer());
    load_optimizer_state(path, archive, *optimizer);
    at.settings.clear();
    save_checkpoint(path, stored, *optimizer, at);
  }
  int64_t recorded_batch = 0;
  auto given = options("unkept", 2).batch_size(3).quiet(false);
  given.on_resume([&](const Model&, const TrainOptions& recorded, TrainOptions&) { recorded_batch = recorded.batch_size(); });
  Model resumed;
  testing::internal::CaptureStderr();
  resume_segmentation(path, resumed, train, nullptr, given);
  const auto said = testing::internal::GetCapturedStderr();
  EXPECT_EQ(recorded_batch, 3);
  EXPECT_NE(said.find(path + ": written before fcn kept a run's settings: it goes on with the settings given now"), std::string::npos) << said;
}

// The `conv` and `layout` of each metrics.jsonl line of a run folder.
std::vector<std::pair<std::string, std::string>> paths_logged(const std::string& run) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto bytes = read_file(test::temp_dir() + "/" + run + "/metrics.jsonl");
  std::istringstream log(std::string(bytes.begin(), bytes.end()));
  for (std::string line; std::getline(log, line);) {
    const auto j = nlohmann::json::parse(line);
    out.emplace_back(j.at("conv").get<std::string>(), j.at("layout").get<std::string>());
  }
  return out;
}

// A resumed run trains on the path its checkpoint records (TrainOptions.keep_run_path), not the
// options' (fcn train --resume passes the rule's), so it ends as the uninterrupted run on that path
// did; keep_run_path(false) changes path. oneDNN's Winograd recorded where it is absent becomes fcn's.
TEST(Trainer, ResumeKeepsTheRunsPath) {
  const SegmentationDataset train(scenes(), "train");
  const auto direct_nchw = [](const std::string& run) {
    return options(run, 2).conv(ConvAlgorithm::kDirect).layout(TrainingLayout::kNchw);
  };
  const auto elsewhere = [](const std::string& run) {
    return options(run, 2).conv(ConvAlgorithm::kWinograd).layout(TrainingLayout::kChannelsLast);
  };
  auto straight = small_fcn8s(2);
  train_segmentation(straight, train, nullptr, direct_nchw("path_straight"));
  const std::pair<std::string, std::string> direct{"direct", "nchw"};
  ASSERT_EQ(paths_logged("path_straight"), (std::vector<std::pair<std::string, std::string>>{direct, direct}));

  auto first = small_fcn8s(2);
  train_segmentation(first, train, nullptr, direct_nchw("path_kept").stop_after_steps(3));
  Model model;
  torch::serialize::InputArchive archive;
  const auto at = load_checkpoint(test::temp_dir() + "/path_kept/checkpoint.pt", model, archive);
  EXPECT_EQ(std::make_pair(at.conv, at.layout), direct);
  Model kept;
  resume_segmentation(test::temp_dir() + "/path_kept", kept, train, nullptr, elsewhere("path_kept"));
  EXPECT_EQ(paths_logged("path_kept"), paths_logged("path_straight"));
  expect_same_weights(straight, kept);

  auto second = small_fcn8s(2);
  train_segmentation(second, train, nullptr, direct_nchw("path_changed").stop_after_steps(3));
  Model changed;
  resume_segmentation(test::temp_dir() + "/path_changed", changed, train, nullptr, elsewhere("path_changed").keep_run_path(false));
  const auto logged = paths_logged("path_changed");
  ASSERT_EQ(logged.size(), 2u);
  EXPECT_EQ(logged[0], direct);
  EXPECT_EQ(logged[1], std::make_pair(std::string(winograd_supported() ? "winograd" : "direct"), std::string("channels_last")));
  if (!winograd_supported()) return;
  // A checkpoint that records oneDNN's Winograd (from an AVX-512 machine), or a name this fcn does
  // not know (a later version's), resumed here: fcn's Winograd where oneDNN's is absent; the options'.
  const std::string onednn_here = winograd_onednn_trains() ? "winograd_onednn" : "winograd";
  for (const auto& [recorded, expected] : {std::make_pair("winograd_onednn", onednn_here), std::make_pair("fft", std::string("winograd"))}) {
    const std::string run = std::string("path_") + recorded;
    auto third = small_fcn8s(2);
    train_segmentation(third, train, nullptr, direct_nchw(run).stop_after_steps(3));
    RunPosition moved;
    {
      torch::serialize::InputArchive in;
      moved = load_checkpoint(test::temp_dir() + "/" + run + "/checkpoint.pt", model, in);
    }
    moved.conv = recorded;
    const auto optimizer = make_optimizer(*model.net, direct_nchw(run).optimizer());
    save_checkpoint(test::temp_dir() + "/" + run + "/checkpoint.pt", model, *optimizer, moved);
    Model resumed;
    EXPECT_NO_THROW(resume_segmentation(test::temp_dir() + "/" + run, resumed, train, nullptr, elsewhere(run)));
    EXPECT_EQ(paths_logged(run).back().first, expected) << recorded;
  }
}

TEST(Trainer, CtrlCWritesAResumableCheckpoint) {
  const SegmentationDataset train(scenes(), "train");
  auto model = small_fcn8s(3);
  InterruptGuard::request();
  const auto result = train_segmentation(model, train, nullptr, options("ctrl_c", 1));
  EXPECT_TRUE(result.interrupted);
  EXPECT_FALSE(InterruptGuard::requested());
  Model resumed;
  EXPECT_FALSE(resume_segmentation(test::temp_dir() + "/ctrl_c", resumed, train, nullptr, options("ctrl_c", 1)).interrupted);
}

TEST(Trainer, DivergenceStopsAndKeepsTheLastGoodCheckpoint) {
  const SegmentationDataset train(scenes(), "train");
  auto model = small_fcn8s(4);
  train_segmentation(model, train, nullptr, options("diverge", 1));
  const auto checkpoint = test::temp_dir() + "/diverge/checkpoint.pt";
  const auto before = read_file(checkpoint);
  auto wild = options("diverge", 2);  // a resume takes the run's settings: on_resume is where a caller changes them
  wild.on_resume([](const Model&, const TrainOptions&, TrainOptions& run) { run.optimizer().lr(1e30); });
  Model resumed;
  const auto message = test::error_of([&] { resume_segmentation(checkpoint, resumed, train, nullptr, wild); });
  EXPECT_NE(message.find("diverged"), std::string::npos) << message;
  EXPECT_NE(message.find("e+"), std::string::npos) << message;  // lr ~1e+30, not 31 digits and ".000000"
  EXPECT_EQ(message.find(".000000"), std::string::npos) << message;
  EXPECT_EQ(read_file(checkpoint), before);
}

TEST(Trainer, ClassCountMismatchIsAClearError) {
  const SegmentationDataset train(scenes(), "train");
  Model model = small_fcn8s(5);
  model.net = std::make_shared<FCNImpl>(FCNOptions().num_classes(3).backbone(BackboneOptions().width(0.125).in_channels(1)).fc_channels(8));
  const auto message = test::error_of([&] { train_segmentation(model, train, nullptr, options("mismatch", 1)); });
  EXPECT_NE(message.find("11 classes, the model predicts 3"), std::string::npos) << message;
}

// U-Net as its paper trains it: a binary net, weight map, elastic deformation, rotation, gamma,
// CE + Dice. Resume stays exact (the augmentation and the cached weight maps are keyed by the seed).
const std::string& cells() {
  static const std::string dir = [] {
    const std::string path = test::temp_dir() + "/trainer_cells";
    fs::remove_all(path);
    write_fashion_cells(path, FashionCellsOptions().train(4).val(2).size(48).min_items(3).max_items(4).seed(2));
    return path;
  }();
  return dir;
}

Model binary_unet(uint64_t seed) {
  torch::manual_seed(seed);
  Model model;
  model.net = std::make_shared<UNetImpl>(
      UNetOptions().depth(2).base_channels(4).in_channels(1).num_classes(1).batch_norm(true).dropout(0.5));
  model.meta = default_meta(1, 1);
  return model;
}

TrainOptions unet_paper_options(const std::string& run, bool weight_map) {
  return options(run, 2)
      .batch_size(2)
      .loss(LossKind::kCrossEntropyDice)
      .weight_map(weight_map)
      .augment(AugmentOptions().flip(true).elastic_alpha(10).rotate(10).shift(2).gamma(1.5));
}

TEST(Trainer, UNetPaperTrainingResumesExactly) {
  const SegmentationDataset train(cells(), "train"), val(cells(), "val");
  ASSERT_TRUE(train.has_instances());
  auto straight = binary_unet(7);
  const auto full = train_segmentation(straight, train, &val, unet_paper_options("unet_straight", true));
  EXPECT_FALSE(std::isnan(full.last_val.mean_dice));
  auto first = binary_unet(7);
  EXPECT_TRUE(train_segmentation(first, train, &val, unet_paper_options("unet_resumed", true).stop_after_steps(3)).interrupted);
  Model resumed;
  resume_segmentation(test::temp_dir() + "/unet_resumed", resumed, train, &val, unet_paper_options("unet_resumed", true));
  expect_same_weights(straight, resumed);
  // The binary model file keeps one logit channel and two label classes.
  const auto best = load_model(test::temp_dir() + "/unet_straight/best.fcn");
  EXPECT_EQ(best.net->num_classes(), 1);
  EXPECT_EQ(best.net->label_classes(), 2);
  EXPECT_EQ(best.meta.class_names.size(), 2u);
  // The weight map changes what is learnt.
  auto unweighted = binary_unet(7);
  train_segmentation(unweighted, train, &val, unet_paper_options("unet_unweighted", false));
  EXPECT_GT((weights_of(unweighted)[0] - weights_of(straight)[0]).abs().max().item<float>(), 1e-6f);
}

// Issue 13, item 6: metrics.jsonl is rewritten from the checkpoint's history, so a line lost to a
// full disk (or a crash between the two writes) is back after --resume.
TEST(Trainer, ResumeRebuildsALostMetricsLine) {
  const SegmentationDataset train(scenes(), "train");
  auto model = small_fcn8s(6);
  train_segmentation(model, train, nullptr, options("lost_line", 3).stop_after_steps(4));  // 2 epochs of 2 steps
  const auto log = test::temp_dir() + "/lost_line/metrics.jsonl";
  const auto two = read_file(log);
  ASSERT_EQ(std::count(two.begin(), two.end(), '\n'), 2);
  const std::string first_line(two.begin(), std::find(two.begin(), two.end(), '\n') + 1);
  write_file_atomic(log, first_line.data(), first_line.size());  // epoch 2's line lost
  Model resumed;
  resume_segmentation(test::temp_dir() + "/lost_line", resumed, train, nullptr, options("lost_line", 3));
  const auto three = read_file(log);
  EXPECT_EQ(std::count(three.begin(), three.end(), '\n'), 3);
  EXPECT_EQ(std::string(three.begin(), three.begin() + static_cast<std::ptrdiff_t>(two.size())), std::string(two.begin(), two.end()));
}

int64_t lines_of(const std::string& file) {
  const auto bytes = read_file(file);
  return std::count(bytes.begin(), bytes.end(), '\n');
}

// Early stopping: a run whose validation stopped improving ends `patience` epochs after its best,
// resumes to the same place, and trains on when given more patience.
TEST(Trainer, PatienceEndsARunThatStoppedImproving) {
  const SegmentationDataset train(scenes(), "train"), val(scenes(), "val");
  const std::string log = test::temp_dir() + "/patience/metrics.jsonl";
  auto still = [](int64_t patience) {  // steps of 1e-12 leave every weight as it was: no epoch beats the first
    auto o = options("patience", 10).patience(patience);
    o.optimizer().lr(1e-12);
    return o;
  };
  auto model = small_fcn8s(7);
  const auto stopped = train_segmentation(model, train, &val, still(2));
  EXPECT_TRUE(stopped.stopped_early);
  EXPECT_EQ(stopped.best_epoch, 1);
  EXPECT_EQ(stopped.epochs_done, 3);
  EXPECT_EQ(lines_of(log), 3);

  Model same;
  const auto again = resume_segmentation(test::temp_dir() + "/patience", same, train, &val, still(2));
  EXPECT_TRUE(again.stopped_early);
  EXPECT_EQ(again.epochs_done, 3);
  EXPECT_EQ(lines_of(log), 3);

  Model longer;
  const auto more = resume_segmentation(test::temp_dir() + "/patience", longer, train, &val, still(3));
  EXPECT_TRUE(more.stopped_early);
  EXPECT_EQ(more.epochs_done, 4);
  EXPECT_EQ(lines_of(log), 4);

  auto unchecked = small_fcn8s(7);
  EXPECT_NE(test::error_of([&] { train_segmentation(unchecked, train, nullptr, options("patience_without_val", 2).patience(1)); })
                .find("TrainOptions.patience: early stopping needs validation data"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { train_segmentation(unchecked, train, &val, options("patience_negative", 2).patience(-1)); })
                .find("TrainOptions.patience: must be >= 0"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { train_segmentation(unchecked, train, &val, options("val_every_zero", 2).val_every(0)); })
                .find("TrainOptions.val_every: must be at least 1 (epochs between validations), got 0"),
            std::string::npos);
}

// Item 7: one trainer per run folder, and no silent replacement of a finished run.
TEST(Trainer, RunFolderIsLockedAndNotSilentlyOverwritten) {
  const SegmentationDataset train(scenes(), "train");
  auto model = small_fcn8s(7);
  train_segmentation(model, train, nullptr, options("locked", 1));
  auto again = small_fcn8s(7);
  const auto message = test::error_of([&] { train_segmentation(again, train, nullptr, options("locked", 1)); });
  EXPECT_NE(message.find("holds an earlier run (checkpoint.pt); continue it with --resume"), std::string::npos) << message;
  EXPECT_NE(message.find("TrainOptions.overwrite"), std::string::npos) << message;
  EXPECT_NO_THROW(train_segmentation(again, train, nullptr, options("locked", 1).overwrite(true)));
  // Another process holds the lock: the trainer fails at once, naming its pid.
  const auto lock = test::temp_dir() + "/locked/.lock";
  const pid_t holder = fork();
  if (holder == 0) {
    const int fd = ::open(lock.c_str(), O_RDWR);
    ::flock(fd, LOCK_EX);
    const std::string pid = std::to_string(::getpid());
    (void)!::ftruncate(fd, 0);
    (void)!::pwrite(fd, pid.data(), pid.size(), 0);
    ::sleep(30);
    ::_exit(0);
  }
  // Until the child holds it and has written its pid (under a loaded ctest -j2 that took > 2 s once).
  const std::string child = std::to_string(holder);
  for (int i = 0; i < 1000; ++i) {
    const int fd = ::open(lock.c_str(), O_RDWR);
    const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
    if (!held) ::flock(fd, LOCK_UN);
    char text[32] = {};
    const bool named = ::pread(fd, text, sizeof text - 1, 0) == static_cast<ssize_t>(child.size()) && child == text;
    ::close(fd);
    if (held && named) break;
    ::usleep(20000);
  }
  const auto busy = test::error_of([&] { train_segmentation(again, train, nullptr, options("locked", 1).overwrite(true)); });
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  EXPECT_NE(busy.find("is in use by another fcn train (pid " + std::to_string(holder) + ")"), std::string::npos) << busy;
  EXPECT_NO_THROW(train_segmentation(again, train, nullptr, options("locked", 1).overwrite(true)));  // released with its holder
}

// Item 11: data whose every pixel is void makes no optimiser step: an error, not "loss 0.0000".
TEST(Trainer, AllVoidDataIsAnError) {
  const std::string dir = test::temp_dir() + "/all_void";
  fs::remove_all(dir);
  write_fashion_scenes(dir, FashionScenesOptions().train(4).val(1).size(32).seed(5));
  for (const auto& entry : fs::directory_iterator(dir + "/SegmentationClass"))
    write_png_indexed(entry.path().string(), torch::full({32, 32}, 255, torch::kByte), voc_palette(11));
  const SegmentationDataset train(dir, "train");
  auto model = small_fcn8s(8);
  const auto message = test::error_of([&] { train_segmentation(model, train, nullptr, options("all_void", 1)); });
  EXPECT_NE(message.find("is void (255): nothing to learn from"), std::string::npos) << message;
}

TEST(Trainer, NonsenseOptimizerSettingsAreRefused) {
  EXPECT_EQ(test::error_of([] { validate(OptimizerOptions().momentum(-1.5)); }), "OptimizerOptions.momentum: must be in [0, 1), got -1.5");
  EXPECT_NE(test::error_of([] { validate(OptimizerOptions().weight_decay(std::nan(""))); }).find("OptimizerOptions.weight_decay"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { validate(AugmentOptions().crop(-5)); }).find("AugmentOptions.crop"), std::string::npos);
  EXPECT_NE(test::error_of([] { validate(AugmentOptions().min_scale(0).max_scale(0)); }).find("AugmentOptions.min_scale"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { validate(AugmentOptions().min_scale(2).max_scale(0.5)); }).find("min_scale <= max_scale"),
            std::string::npos);
}

}  // namespace
}  // namespace fcn
