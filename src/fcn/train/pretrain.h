// Classifier pretraining on Fashion-MNIST: the transfer-learning source of the FCN pipeline
// (the paper starts from ImageNet classifiers; here a VGG-style classifier learns the 10 clothing
// classes from the 28x28 images, zero-padded to 32x32 (or input_size) so five pools leave a 1x1 pool5).
#pragma once

#include <functional>

#include <torch/arg.h>
#include <torch/types.h>

#include "fcn/data/fashion_mnist.h"
#include "fcn/infer/fast_path.h"
#include "fcn/models/classifier.h"
#include "fcn/models/model.h"
#include "fcn/models/winograd.h"
#include "fcn/train/optimizer.h"

namespace fcn {

struct PretrainOptions {
  TORCH_ARG(std::string, backbone) = "vgg16-w0.25";
  TORCH_ARG(int64_t, fc_channels) = 256;  // fc6/fc7 of VGG/AlexNet (ResNet and GoogLeNet have none)
  TORCH_ARG(int64_t, input_size) = 32;    // the 28 x 28 items centred on a black S x S canvas (AlexNet needs >= 64)
  TORCH_ARG(int64_t, epochs) = 1;
  TORCH_ARG(int64_t, train_images) = 0;  // 0: all 60000
  TORCH_ARG(int64_t, test_images) = 0;   // 0: all 10000
  TORCH_ARG(int64_t, batch_size) = 64;
  TORCH_ARG(OptimizerOptions, optimizer) = OptimizerOptions().name("adamw").lr(1e-3).weight_decay(1e-4).schedule("cosine");
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(std::string, source) = kFashionMnistDir;
  TORCH_ARG(torch::Device, device) = torch::kCPU;
  TORCH_ARG(TrainingLayout, layout) = TrainingLayout::kAuto;  // as TrainOptions.layout
  TORCH_ARG(ConvAlgorithm, conv) = ConvAlgorithm::kDirect;    // as TrainOptions.conv (fcn pretrain --tune may choose Winograd)
  TORCH_ARG(bool, quiet) = false;
  // RUN_DIR/checkpoint.pt after every epoch, and at the step where SIGINT/SIGTERM (Ctrl-C) stops the run; empty:
  // none (and Ctrl-C ends the process as usual).
  TORCH_ARG(std::string, run_dir) = "";
  // Continue from RUN_DIR/checkpoint.pt at the step it was written: its classifier, weights, optimiser state and
  // dropout stream (on_resume below), so that the resumed run ends where the uninterrupted one would have (on the
  // CPU). Without it, a checkpoint there is an error.
  TORCH_ARG(bool, resume) = false;
  TORCH_ARG(bool, overwrite) = false;  // start afresh where RUN_DIR holds a checkpoint (removed first)
  TORCH_ARG(int64_t, stop_after_steps) = 0;  // > 0: stop as Ctrl-C would after this many steps of this call (tests)
  // On resume: the run goes on as it started, with the classifier and settings its checkpoint keeps (pretrain_settings:
  // backbone, fc_channels, input_size, train_images, batch_size, optimizer, seed) whatever these options say of them
  // (until 2026-12-07 these options' were taken, and the classifier had to be asked for again), and epochs from these
  // options. Called before any step with the options the run started with (`recorded`) and those
  // the resumed run takes (`run`), which it may change: fcn pretrain refuses a flag given otherwise, and takes the
  // run's epochs where --epochs is not given.
  TORCH_ARG(std::function<void(const PretrainOptions& recorded, PretrainOptions& run)>, on_resume);
};

// The settings of a pretraining, as JSON its checkpoint keeps: backbone, fc_channels, input_size, epochs,
// train_images, batch_size, optimizer, seed. with_pretrain_settings: `options` with them in place; an fcn::Error naming `source` for other JSON.
std::string pretrain_settings(const PretrainOptions& options);
PretrainOptions with_pretrain_settings(PretrainOptions options, const std::string& settings, const std::string& source);

struct PretrainResult {
  Model model;  // a Classifier with Fashion-MNIST class names and normalisation
  double test_accuracy = 0;
  double seconds = 0;     // training time, over every invocation of a resumed run
  bool interrupted = false;  // stopped by Ctrl-C: the checkpoint holds the run, the model is not finished
  int64_t epochs_done = 0;
};

PretrainResult pretrain_fashion_mnist(const PretrainOptions& options);

// The classifier pretrain_fashion_mnist trains, freshly initialised: for timing its training step
// on this CPU (fcn pretrain --tune) with the same tune key. fcn::Error for a bad option.
std::shared_ptr<ClassifierImpl> pretrain_classifier(const PretrainOptions& options);

// Fraction of `images` (N x 28 x 28 uint8) the classifier labels as `labels`.
double classifier_accuracy(Model& model, const FashionMnist& data, int64_t limit, torch::Device device);

}  // namespace fcn
