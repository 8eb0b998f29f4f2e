#include "fcn/train/pretrain.h"

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "fcn/models/classifier.h"
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

PretrainResult pretrain_fashion_mnist(const PretrainOptions& options) {
  if (options.epochs() < 1) fail("PretrainOptions.epochs", "must be at least 1");
  if (options.batch_size() < 1) fail("PretrainOptions.batch_size", "must be at least 1");
  const OpenBlasOnCallingThread blas;  // its Linear layers: a pool of its own would spin against OpenMP's
  torch::manual_seed(options.seed());
  const auto train = read_fashion_mnist("train", options.source());
  const auto test = read_fashion_mnist("t10k", options.source());
  PretrainResult result;
  auto net = pretrain_classifier(options);
  result.model.net = net;
  result.model.meta = default_meta(10, 1);
  result.model.meta.class_names = fashion_mnist_classes();
  // Statistics of the padded training images, stored in the model file for every later use.
  const auto canvas = padded(train.images, options.input_size());
  result.model.meta.normalization = {{canvas.mean().item<double>()}, {canvas.std().item<double>()}};
  net->to(options.device());
  const bool channels_last = training_channels_last(options.layout(), options.device());
  to_layout(*net, channels_last);
  auto optimizer = make_optimizer(*net, options.optimizer());
  const TrainingConvScope convs(options.conv());
  const int64_t n = options.train_images() > 0 ? std::min(options.train_images(), train.images.size(0)) : train.images.size(0);
  const int64_t steps_per_epoch = (n + options.batch_size() - 1) / options.batch_size();
  const auto start = std::chrono::steady_clock::now();
  for (int64_t epoch = 0; epoch < options.epochs(); ++epoch) {
    net->train();
    auto generator = at::detail::createCPUGenerator(options.seed() * 1000003u + static_cast<uint64_t>(epoch));
    const auto order = torch::randperm(train.images.size(0), generator).slice(0, 0, n);
    Progress progress("pretrain epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs()), steps_per_epoch, options.quiet());
    double loss_sum = 0;
    for (int64_t step = 0; step < steps_per_epoch; ++step) {
      const auto index = order.slice(0, step * options.batch_size(), std::min(n, (step + 1) * options.batch_size()));
      const auto x = prepare(train.images.index_select(0, index), result.model, options.device(), channels_last);
      const auto y = train.labels.index_select(0, index).to(options.device());
      set_lr(*optimizer, options.optimizer(),
             scheduled_lr(options.optimizer(), static_cast<double>(epoch * steps_per_epoch + step) /
                                                   static_cast<double>(options.epochs() * steps_per_epoch)));
      const auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
      const double value = loss.item<double>();
      if (!std::isfinite(value)) fail("pretrain", "training diverged (loss " + number_text(value) + "); lower --lr");
      clear_gradients(*optimizer);
      loss.backward();
      optimizer->step();
      loss_sum += value;
      char status[32];
      std::snprintf(status, sizeof status, "loss %.4f", loss_sum / static_cast<double>(step + 1));
      progress.update(step + 1, status);
    }
    progress.finish();
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  to_layout(*net, false);
  result.test_accuracy = classifier_accuracy(result.model, test, options.test_images(), options.device());
  result.model.meta.training = nlohmann::json{{"task", "pretrain fashion-mnist"},  {"epochs", options.epochs()},
                                              {"train_images", n},               {"seed", options.seed()},
                                              {"train_seconds", result.seconds}, {"test_accuracy", result.test_accuracy}}
                                   .dump();
  net->to(torch::kCPU);
  return result;
}

}  // namespace fcn
