#include "test_util.h"

#include <cstdlib>
#include <filesystem>

#include <unistd.h>

#include <torch/torch.h>

namespace fcn::test {

std::vector<char> nifti_file(int16_t code, int bytes, const std::vector<int64_t>& values, int16_t width, int16_t height, int16_t slices,
                             bool big_endian, float slope, float inter) {
  std::vector<char> file(352, 0);
  put<int32_t>(file, 0, 348, big_endian);
  const int16_t dims[8] = {3, width, height, slices, 1, 1, 1, 1};
  for (size_t i = 0; i < 8; ++i) put<int16_t>(file, 40 + 2 * i, dims[i], big_endian);
  put<int16_t>(file, 70, code, big_endian);
  put<int16_t>(file, 72, static_cast<int16_t>(8 * bytes), big_endian);
  const float pixdim[4] = {1, 0.5f, 0.75f, 2};
  for (size_t i = 0; i < 4; ++i) put<float>(file, 76 + 4 * i, pixdim[i], big_endian);
  put<float>(file, 108, 352, big_endian);
  put<float>(file, 112, slope, big_endian);
  put<float>(file, 116, inter, big_endian);
  put<int16_t>(file, 254, 1, big_endian);  // sform_code
  put<float>(file, 280, 0.5f, big_endian);  // srow_x[0]
  std::memcpy(file.data() + 344, "n+1\0", 4);
  for (const int64_t v : values) {
    char raw[8];
    std::memcpy(raw, &v, 8);  // little-endian host: the low bytes first
    if (big_endian) std::reverse(raw, raw + bytes);
    file.insert(file.end(), raw, raw + bytes);
  }
  return file;
}

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

std::string fresh_dir(const std::string& name) {
  const std::string dir = temp_dir() + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
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
