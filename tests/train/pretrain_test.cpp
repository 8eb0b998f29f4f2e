// fcn pretrain's classifier training (fcn/train/pretrain.h) on the real Fashion-MNIST files
// (Debian's dataset-fashion-mnist): that it learns, the input statistics it stores, the conv
// algorithm it trains with, and that the net it times for --tune is the net it trains.
#include "fcn/train/pretrain.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "test_util.h"
#include "fcn/data/fashion_mnist.h"
#include "fcn/infer/fast_path.h"
#include "fcn/train/checkpoint.h"
#include "fcn/models/winograd.h"
#include "fcn/util/progress.h"
#include "fcn/util/threads.h"

namespace fcn {
namespace {

PretrainOptions small_run() {
  return PretrainOptions()
      .backbone("resnet18-w0.25")  // batch norm: learns in 32 steps, where VGG without it has not started
      .train_images(2048)
      .test_images(1000)
      .optimizer(OptimizerOptions().name("adamw").lr(3e-3).weight_decay(1e-4).schedule("cosine"))
      .quiet(true);
}

// A pretraining stopped midway (Ctrl-C, or here the step limit) leaves a checkpoint; --resume goes on from that
// step with the classifier, weights, optimiser state and dropout stream it had, and ends where one uninterrupted run
// ends. A run folder holding a checkpoint refuses a fresh run unless told to overwrite. (It had no checkpoint: a
// Ctrl-C lost the whole run.)
TEST(Pretrain, StoppedMidwayAndResumedEndsWhereOneRunEnds) {
  const auto run = [](const std::string& name) {
    return PretrainOptions()
        .backbone("vgg11-w0.125")  // fc6/fc7 with dropout: the resumed run must draw the same masks
        .fc_channels(16)
        .epochs(2)
        .train_images(192)
        .test_images(64)
        .batch_size(32)
        .seed(7)
        .quiet(true)
        .run_dir(test::fresh_dir(name));
  };
  const auto whole = pretrain_fashion_mnist(run("pretrain_whole"));
  ASSERT_FALSE(whole.interrupted);
  auto halves = run("pretrain_halves");
  const auto first = pretrain_fashion_mnist(PretrainOptions(halves).stop_after_steps(8));  // epoch 1, step 2 of 6
  ASSERT_TRUE(first.interrupted);
  EXPECT_EQ(first.epochs_done, 1);
  const auto message = test::error_of([&] { pretrain_fashion_mnist(halves); });
  EXPECT_NE(message.find("holds an earlier pretraining (checkpoint.pt); continue it with --resume"), std::string::npos) << message;
  // Resumed with another classifier and other step settings asked for (as fcn pretrain --resume with its defaults
  // passed before 2026-12-07, when it trained with them, and another classifier was an error): the checkpoint's are
  // taken, and on_resume sees them (fcn pretrain refuses a flag given otherwise there).
  int64_t recorded_batch = 0, recorded_fc = 0;
  auto resumed = PretrainOptions(halves).resume(true).fc_channels(8).batch_size(16).seed(3).optimizer(OptimizerOptions().name("sgd").lr(0.5));
  resumed.on_resume([&](const PretrainOptions& recorded, PretrainOptions&) {
    recorded_batch = recorded.batch_size(), recorded_fc = recorded.fc_channels();
  });
  const auto second = pretrain_fashion_mnist(resumed);
  EXPECT_EQ(recorded_batch, 32);
  EXPECT_EQ(recorded_fc, 16);
  ASSERT_FALSE(second.interrupted);
  EXPECT_EQ(second.epochs_done, 2);
  const auto a = whole.model.net->parameters(), b = second.model.net->parameters();
  ASSERT_EQ(a.size(), b.size());
  // To rounding: the threads' partial sums of a weight gradient may meet in another order on a busy machine (bit for
  // bit on an idle one); the dropout masks of a stream not given back move the weights far more.
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_LE((a[i] - b[i]).abs().max().item<double>(), 1e-5 * b[i].abs().max().item<double>()) << "parameter " << i;
  EXPECT_NEAR(second.test_accuracy, whole.test_accuracy, 1.0 / 64);
  {  // a second pretraining in the folder while one runs: refused at once, the first one's checkpoint untouched
    const RunLock running(halves.run_dir(), "fcn pretrain");
    const auto busy = test::error_of([&] { pretrain_fashion_mnist(PretrainOptions(halves).overwrite(true)); });
    EXPECT_NE(busy.find(halves.run_dir() + ": is in use by another fcn pretrain (pid "), std::string::npos) << busy;
    EXPECT_TRUE(std::filesystem::exists(halves.run_dir() + "/checkpoint.pt"));
  }
  // Stopped with the flag that Ctrl-C sets: the checkpoint at that step, and the flag cleared.
  InterruptGuard::request();
  EXPECT_TRUE(pretrain_fashion_mnist(PretrainOptions(halves).overwrite(true)).interrupted);
  EXPECT_FALSE(InterruptGuard::requested());
}

TEST(Pretrain, LearnsTheClassesAndStoresTheCanvasStatistics) {
  const auto result = pretrain_fashion_mnist(small_run());
  EXPECT_GT(result.test_accuracy, 0.5);  // chance is 0.1; this run reaches ~0.75
  EXPECT_EQ(result.model.meta.class_names, fashion_mnist_classes());
  // Mean and standard deviation of all 60,000 training items centred on the 32 x 32 black canvas,
  // from sums over the 28 x 28 pixels (the padding adds zeros to the count only).
  const auto pixels = read_fashion_mnist("train").images.to(torch::kDouble).div(255.0);
  const double n = 60000.0 * 32 * 32, sum = pixels.sum().item<double>(), squares = pixels.pow(2).sum().item<double>();
  const double mean = sum / n, stddev = std::sqrt((squares - n * mean * mean) / (n - 1));
  ASSERT_EQ(result.model.meta.normalization.mean.size(), 1u);
  EXPECT_NEAR(result.model.meta.normalization.mean[0], mean, 1e-5);
  EXPECT_NEAR(result.model.meta.normalization.std[0], stddev, 1e-5);
}

// fcn pretrain --tune times pretrain_classifier's net and caches the choice under its key: the key
// must be the trained net's, or the cached choice would never be found.
TEST(Pretrain, TheNetTimedForTuneIsTheNetTrained) {
  const auto options = small_run().train_images(64).test_images(64);
  const auto result = pretrain_fashion_mnist(options);
  const auto timed = pretrain_classifier(options);
  EXPECT_EQ(tune_key(*timed, 32, 32, 64, torch::kFloat, true).str(), tune_key(*result.model.net, 32, 32, 64, torch::kFloat, true).str());
  EXPECT_NE(tune_key(*pretrain_classifier(PretrainOptions(options).backbone("resnet18-w0.125")), 32, 32, 64, torch::kFloat, true).str(),
            tune_key(*timed, 32, 32, 64, torch::kFloat, true).str());
}

// PretrainOptions.conv is what the step runs (one SGD step: Winograd's rounding differs from direct
// convolution's in the weights it leaves), and the process's own choice holds again afterwards.
TEST(Pretrain, TrainsWithTheOptionsConvAlgorithm) {
  if (!winograd_supported()) GTEST_SKIP() << "fcn built without oneDNN: no Winograd";
  // Full width: conv1_2 (64 -> 64 channels on 32 x 32 maps) is a layer fcn's Winograd trains.
  const auto one_step = PretrainOptions()
                            .backbone("vgg16")
                            .train_images(16)
                            .batch_size(16)
                            .test_images(16)
                            .optimizer(OptimizerOptions().name("sgd").lr(0.1).momentum(0).weight_decay(0).schedule("fixed"))
                            .quiet(true);
  auto weight = [](const PretrainResult& r) { return r.model.net->named_parameters()["backbone.conv1_2.weight"].detach().clone(); };
  const auto direct = weight(pretrain_fashion_mnist(PretrainOptions(one_step).conv(ConvAlgorithm::kDirect)));
  const auto again = weight(pretrain_fashion_mnist(PretrainOptions(one_step).conv(ConvAlgorithm::kDirect)));
  const auto winograd = weight(pretrain_fashion_mnist(PretrainOptions(one_step).conv(ConvAlgorithm::kWinograd)));
  EXPECT_TRUE(torch::equal(direct, again));  // deterministic: a difference below is the algorithm's
  EXPECT_FALSE(torch::equal(direct, winograd));
  EXPECT_TRUE(torch::allclose(direct, winograd, 1e-3, 1e-5));
  EXPECT_EQ(training_conv_algorithm(), ConvAlgorithm::kDirect);
}

// The least OpenBLAS thread count a second thread saw while `run` ran.
template <class Run>
int least_openblas_threads_during(Run run) {
  std::atomic<bool> done{false};
  std::atomic<int> least{openblas_threads()};
  std::thread watcher([&] {
    while (!done) {
      least = std::min(least.load(), openblas_threads());
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  run();
  done = true;
  watcher.join();
  return least;
}

// A program of one's own that never calls use_available_cpus(): while pretraining runs, OpenBLAS (the
// Linear layers' BLAS) is on the calling thread, and its own thread count is back afterwards; a count
// the user set with OPENBLAS_NUM_THREADS is left alone.
TEST(Pretrain, RunsOpenBlasOnTheCallingThreadThenGivesItsCountBack) {
  ::unsetenv("OPENBLAS_NUM_THREADS");
  const int before = openblas_threads();
  if (set_openblas_threads(2) != 2) GTEST_SKIP() << "LibTorch's BLAS here is not OpenBLAS's pthreads build";
  const auto run = [] { pretrain_fashion_mnist(small_run().train_images(128).test_images(64)); };
  EXPECT_EQ(least_openblas_threads_during(run), 1);
  EXPECT_EQ(openblas_threads(), 2);
  ::setenv("OPENBLAS_NUM_THREADS", "2", 1);
  EXPECT_EQ(least_openblas_threads_during(run), 2);
  ::unsetenv("OPENBLAS_NUM_THREADS");
  set_openblas_threads(std::max(1, before));
}

}  // namespace
}  // namespace fcn
