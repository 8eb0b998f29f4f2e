#include "fcn/train/optimizer.h"

#include <cmath>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/train/fused_optimizers.h"
#include "fcn/util/error.h"

namespace fcn {

nlohmann::json optimizer_json(const OptimizerOptions& o) {
  return {{"name", o.name()},       {"lr", o.lr()},           {"momentum", o.momentum()},
          {"weight_decay", o.weight_decay()}, {"bias_lr_mult", o.bias_lr_mult()}, {"schedule", o.schedule()}};
}

OptimizerOptions optimizer_from_json(const nlohmann::json& j) {
  return OptimizerOptions()
      .name(j.at("name").get<std::string>())
      .lr(j.at("lr").get<double>())
      .momentum(j.at("momentum").get<double>())
      .weight_decay(j.at("weight_decay").get<double>())
      .bias_lr_mult(j.at("bias_lr_mult").get<double>())
      .schedule(j.at("schedule").get<std::string>());
}

void validate(const OptimizerOptions& o) {
  if (o.name() != "sgd" && o.name() != "adamw") fail("OptimizerOptions.name", "'" + o.name() + "' is not one of sgd, adamw");
  if (o.schedule() != "fixed" && o.schedule() != "poly" && o.schedule() != "cosine")
    fail("OptimizerOptions.schedule", "'" + o.schedule() + "' is not one of fixed, poly, cosine");
  if (!(o.lr() > 0) || !std::isfinite(o.lr())) fail("OptimizerOptions.lr", "must be a positive number");
  if (!(o.weight_decay() >= 0) || !std::isfinite(o.weight_decay()))
    fail("OptimizerOptions.weight_decay", "must be a number >= 0, got " + number_text(o.weight_decay()));
  if (!(o.momentum() >= 0 && o.momentum() < 1)) fail("OptimizerOptions.momentum", "must be in [0, 1), got " + number_text(o.momentum()));
  if (!(o.bias_lr_mult() >= 0) || !std::isfinite(o.bias_lr_mult()))
    fail("OptimizerOptions.bias_lr_mult", "must be a number >= 0, got " + number_text(o.bias_lr_mult()));
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Module& module, const OptimizerOptions& o) {
  validate(o);
  std::vector<torch::Tensor> weights, biases;
  for (const auto& item : module.named_parameters()) {
    if (!item.value().requires_grad()) continue;
    const auto& name = item.key();
    const bool bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    (bias ? biases : weights).push_back(item.value());
  }
  if (o.name() == "sgd") {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(weights, std::make_unique<torch::optim::SGDOptions>(
                                     torch::optim::SGDOptions(o.lr()).momentum(o.momentum()).weight_decay(o.weight_decay())));
    groups.emplace_back(biases, std::make_unique<torch::optim::SGDOptions>(
                                    torch::optim::SGDOptions(o.lr() * o.bias_lr_mult()).momentum(o.momentum())));
    return std::make_unique<FusedSGD>(groups, torch::optim::SGDOptions(o.lr()));
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(weights, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(o.lr()).weight_decay(o.weight_decay())));
  groups.emplace_back(biases, std::make_unique<torch::optim::AdamWOptions>(
                                  torch::optim::AdamWOptions(o.lr() * o.bias_lr_mult()).weight_decay(0.0)));
  return std::make_unique<FusedAdamW>(groups, torch::optim::AdamWOptions(o.lr()));
}

double scheduled_lr(const OptimizerOptions& o, double progress) {
  progress = std::min(std::max(progress, 0.0), 1.0);
  if (o.schedule() == "poly") return o.lr() * std::pow(1.0 - progress, 0.9);
  if (o.schedule() == "cosine") return o.lr() * 0.5 * (1.0 + std::cos(M_PI * progress));
  return o.lr();
}

void set_lr(torch::optim::Optimizer& optimizer, const OptimizerOptions& o, double lr) {
  auto& groups = optimizer.param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    const double group_lr = g == 1 ? lr * o.bias_lr_mult() : lr;
    if (o.name() == "sgd") static_cast<torch::optim::SGDOptions&>(groups[g].options()).lr(group_lr);
    else static_cast<torch::optim::AdamWOptions&>(groups[g].options()).lr(group_lr);
  }
}

}  // namespace fcn
