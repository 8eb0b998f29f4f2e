#include "test_util.h"

#include <cstdlib>
#include <filesystem>

#include <unistd.h>

#include <torch/torch.h>

namespace fcn::test {

const std::string& goldens() {
  static const std::string dir = [] {
    const std::string path = FCN_GOLDENS;
    if (!std::filesystem::exists(path + "/cases.json")) {
      const std::string command = std::string(FCN_PYTHON) + " " + FCN_ORACLE_DIR + "/make_goldens.py " + path;
      if (std::system(command.c_str()) != 0) throw std::runtime_error("oracle failed: " + command);
    }
    return path;
  }();
  return dir;
}

const std::string& temp_dir() {
  static const std::string dir = [] {
    const auto path = std::filesystem::temp_directory_path() / ("fcn-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    static struct Cleanup {
      std::filesystem::path path;
      ~Cleanup() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
      }
    } cleanup{path};
    return path.string();
  }();
  return dir;
}

std::string golden(const std::string& file) { return goldens() + "/" + file; }

double relative_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  EXPECT_EQ(actual.sizes(), expected.sizes());
  if (actual.sizes() != expected.sizes()) return 1e9;
  const double scale = expected.abs().max().item<double>();
  return (actual - expected).abs().max().item<double>() / std::max(scale, 1e-12);
}

}  // namespace fcn::test

#include <fstream>

#include <nlohmann/json.hpp>

#include "fcn/formats/npy.h"
#include "fcn/models/model.h"
#include "fcn/models/registry.h"
#include "fcn/serialize/weights.h"

namespace fcn::test {

void check_golden_case(const std::string& name, double tolerance) {
  std::ifstream in(golden("cases.json"));
  const auto cases = nlohmann::json::parse(in);
  for (const auto& c : cases) {
    if (c.at("name") != name) continue;
    auto net = build_net(c.at("config"), name);
    load_state_dict(*net, read_state_dict(golden(name + ".pth")), name + ".pth");
    net->eval();
    c10::InferenceMode guard;
    const auto y = net->forward(read_npy(golden(name + "_input.npy")));
    EXPECT_LE(relative_error(y, read_npy(golden(name + "_output.npy"))), tolerance) << name;
    return;
  }
  ADD_FAILURE() << "no golden case " << name;
}

std::vector<torch::Tensor> gradient_inputs(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                           bool input_grad, bool weight_grad) {
  std::vector<torch::Tensor> wanted;
  if (input_grad) wanted.push_back(x);
  if (weight_grad) wanted.push_back(weight);
  if (weight_grad && bias.defined()) wanted.push_back(bias);
  return wanted;
}

GradientPair gradients_against(const torch::Tensor& y, const torch::Tensor& expected, const std::vector<torch::Tensor>& wanted) {
  const auto upstream = torch::randn(expected.sizes());
  return {torch::autograd::grad({y}, wanted, {upstream}), torch::autograd::grad({expected}, wanted, {upstream})};
}

std::shared_ptr<NetImpl> small_fcn8s(const std::string& backbone) {
  NetRecipe recipe;
  recipe.arch = "fcn8s";
  recipe.backbone = backbone;
  recipe.fc_channels = 16;
  recipe.fc_kernel = 2;
  recipe.classes = 3;
  torch::manual_seed(0);
  auto net = make_net(recipe);
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters())
    if (p.abs().max().item<float>() == 0) p.normal_(0, 0.1);
  return net;
}

}  // namespace fcn::test
