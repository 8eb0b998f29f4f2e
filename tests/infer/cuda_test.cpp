// The CUDA path against the CPU: the same net, weights and input give the same logits, the same
// predicted masks and the same training step on a GPU. TF32 is off in these tests, so both sides
// compute in fp32 (LibTorch's cuDNN default rounds conv inputs to TF32: ~1e-3 relative).
// Skipped where LibTorch sees no CUDA device (CI); scripts/gpu-check.sh runs them on a GPU machine.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "fcn/data/fashion_mnist.h"
#include "fcn/infer/predictor.h"
#include "fcn/models/model.h"
#include "fcn/models/unet.h"
#include "fcn/train/loss.h"
#include "fcn/train/pretrain.h"
#include "test_util.h"

namespace fcn {
namespace {

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible to this LibTorch";
    tf32_ = at::globalContext().allowTF32CuDNN();
    at::globalContext().setAllowTF32CuDNN(false);
  }
  void TearDown() override {
    if (torch::cuda::is_available()) at::globalContext().setAllowTF32CuDNN(tf32_);
  }
  const torch::Device gpu{torch::kCUDA, 0};

 private:
  bool tf32_ = true;
};

std::shared_ptr<NetImpl> seeded_unet(uint64_t seed) {
  auto net = std::make_shared<UNetImpl>(UNetOptions().depth(2).base_channels(8).in_channels(1).num_classes(3).padding(Padding::kValid));
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) p.normal_(0, 0.1);
  return net;
}

double mask_agreement(const Prediction& a, const Prediction& b) {
  return a.labels.cpu().eq(b.labels.cpu()).to(torch::kDouble).mean().item<double>();
}

// A pretraining stopped and resumed on the GPU ends where one run ends: its dropout draws from the GPU's generator,
// whose state the checkpoint keeps (until 2026-12-07 only the CPU's was kept, so a resumed GPU run drew other masks).
TEST_F(Cuda, PretrainingStoppedAndResumedEndsWhereOneRunEnds) {
  if (!std::filesystem::exists(std::string(kFashionMnistDir))) GTEST_SKIP() << "no Fashion-MNIST at " << kFashionMnistDir;
  const auto run = [&](const std::string& name) {
    return PretrainOptions().backbone("vgg11-w0.125").fc_channels(16).epochs(2).train_images(192).test_images(64).batch_size(32).seed(7)
        .quiet(true).device(gpu).run_dir(test::fresh_dir(name));
  };
  at::globalContext().setDeterministicCuDNN(true);
  const auto whole = pretrain_fashion_mnist(run("cuda_pretrain_whole"));
  const auto halves = run("cuda_pretrain_halves");
  ASSERT_TRUE(pretrain_fashion_mnist(PretrainOptions(halves).stop_after_steps(8)).interrupted);
  const auto second = pretrain_fashion_mnist(PretrainOptions(halves).resume(true));
  at::globalContext().setDeterministicCuDNN(false);
  const auto a = whole.model.net->parameters(), b = second.model.net->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)  // other dropout masks move the weights by ~1e-2 of their scale
    EXPECT_LE((a[i] - b[i]).abs().max().item<double>(), 1e-4 * b[i].abs().max().item<double>()) << "parameter " << i;
}

TEST_F(Cuda, NetsGiveTheCpuLogits) {
  // Each net built twice from one seed: the same weights, one copy moved to the GPU.
  for (const bool unet : {false, true}) {
    const auto net = unet ? seeded_unet(1) : test::small_fcn8s("vgg11-w0.125");
    const auto on_gpu = unet ? seeded_unet(1) : test::small_fcn8s("vgg11-w0.125");
    on_gpu->to(gpu);
    net->eval(), on_gpu->eval();
    torch::manual_seed(2);
    const auto x = torch::rand({2, net->in_channels(), 188, 188});
    c10::InferenceMode guard;
    const auto cpu_logits = net->forward(x);
    const auto gpu_logits = on_gpu->forward(x.to(gpu));
    ASSERT_TRUE(gpu_logits.is_cuda());
    ASSERT_EQ(gpu_logits.sizes(), cpu_logits.sizes());
    EXPECT_LE(test::relative_error(gpu_logits.cpu(), cpu_logits), 1e-5);
  }
}

// fcn predict --device cuda: the masks fcn predict writes on the CPU, tiles and blending included.
TEST_F(Cuda, PredictorGivesTheCpuMasks) {
  Model cpu_model, gpu_model;
  cpu_model.net = seeded_unet(3);
  gpu_model.net = seeded_unet(3);  // the same weights in a net of its own: Predictor moves the net it is given
  cpu_model.meta = gpu_model.meta = default_meta(3, 1);
  PredictOptions options;
  options.tile = 124;
  options.overlap = 32;
  options.channels_last = false;
  const Predictor on_cpu(cpu_model, torch::kCPU, options), on_gpu(gpu_model, gpu, options);
  torch::manual_seed(4);
  const auto image = torch::rand({1, 150, 230});
  const auto a = on_cpu(image), b = on_gpu(image);
  EXPECT_LE((a.probs - b.probs.cpu()).abs().max().item<float>(), 1e-5f);
  EXPECT_GE(mask_agreement(a, b), 0.9999);
}

// One SGD step on the GPU: the loss and the updated weights of the same step on the CPU. Dropout is
// off (eval mode): each device draws its masks from its own generator.
TEST_F(Cuda, TrainingStepGivesTheCpuUpdate) {
  const auto net = test::small_fcn8s("vgg11-w0.125"), on_gpu = test::small_fcn8s("vgg11-w0.125");
  on_gpu->to(gpu);
  net->eval(), on_gpu->eval();
  torch::manual_seed(5);
  const auto x = torch::rand({2, 3, 96, 96});
  auto targets = torch::randint(0, 3, {2, 96, 96}, torch::kLong);
  targets.index_put_({0, torch::indexing::Slice(0, 10)}, 255);  // void pixels, ignored
  std::vector<double> losses;
  for (const auto& [model, device] : {std::pair{net, torch::Device(torch::kCPU)}, std::pair{on_gpu, gpu}}) {
    torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    const auto loss = segmentation_loss(model->forward(x.to(device)), targets.to(device));
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    losses.push_back(loss.item<double>());
  }
  EXPECT_NEAR(losses[1], losses[0], 1e-5 * std::abs(losses[0]));
  const auto cpu_params = net->named_parameters(), gpu_params = on_gpu->named_parameters();
  for (const auto& item : cpu_params)
    EXPECT_LE(test::relative_error(gpu_params[item.key()].cpu(), item.value()), 1e-5) << item.key();
}

}  // namespace
}  // namespace fcn
