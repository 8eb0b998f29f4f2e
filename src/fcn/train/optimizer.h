// Optimisers and learning-rate schedules shared by segmentation training and classifier
// pretraining: SGD with momentum (the paper's) or AdamW; fixed, poly or cosine decay; biases
// optionally at twice the rate (the Caffe FCN solvers' lr_mult 2).
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

namespace fcn {

struct OptimizerOptions {
  TORCH_ARG(std::string, name) = "sgd";        // sgd | adamw
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(double, momentum) = 0.9;
  TORCH_ARG(double, weight_decay) = 5e-4;
  TORCH_ARG(double, bias_lr_mult) = 1.0;
  TORCH_ARG(std::string, schedule) = "poly";   // fixed | poly | cosine
};

void validate(const OptimizerOptions& options);  // throws fcn::Error naming the flag
// As a run's checkpoint keeps them (run_settings, pretrain_settings); nlohmann::json::exception for a JSON without them.
nlohmann::json optimizer_json(const OptimizerOptions& options);
OptimizerOptions optimizer_from_json(const nlohmann::json& json);
// Two parameter groups: weights, then biases (trainable parameters only).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Module& module, const OptimizerOptions& options);
// Learning rate at `progress` in [0, 1] of the run.
double scheduled_lr(const OptimizerOptions& options, double progress);
void set_lr(torch::optim::Optimizer& optimizer, const OptimizerOptions& options, double lr);

}  // namespace fcn
