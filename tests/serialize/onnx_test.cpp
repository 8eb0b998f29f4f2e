// ONNX export: the file written from C++ passes onnx::checker (inside export_onnx) and, run by
// OpenCV DNN (cv::dnn::readNetFromONNX), gives fcn's logits within 1e-3 for FCN-32s/16s/8s in both
// geometries and U-Net in both paddings (and both upsamplings), each at two input sizes; and the
// same in ONNX Runtime (CPU, the npm package onnxruntime-node driven by bench/peers/ort_peer.js).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/dnn.hpp>
#include <torch/torch.h>

#include "fcn/models/fcn.h"
#include "fcn/models/registry.h"
#include "fcn/models/unet.h"
#include "fcn/serialize/onnx_export.h"
#include "test_util.h"

namespace fcn {
namespace {

struct Case {
  std::string name;
  nlohmann::json config;
  std::vector<std::pair<int64_t, int64_t>> sizes;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

Model random_model(const nlohmann::json& config) {
  Model model;
  model.net = build_net(config);
  torch::manual_seed(7);
  torch::NoGradGuard no_grad;
  for (auto& p : model.net->parameters()) p.normal_(0, 0.2);  // score layers too (they start at zero)
  for (auto& b : model.net->buffers()) {
    if (b.is_floating_point()) b.uniform_(0.5, 1.5);  // batch-norm running statistics
  }
  model.net->eval();
  model.meta = default_meta(model.net->num_classes(), model.net->in_channels());
  return model;
}

torch::Tensor run_opencv(const std::string& path, const torch::Tensor& input) {
  auto net = cv::dnn::readNetFromONNX(path);
  const int sizes[] = {1, static_cast<int>(input.size(1)), static_cast<int>(input.size(2)), static_cast<int>(input.size(3))};
  const auto contiguous = input.contiguous();
  cv::Mat blob(4, sizes, CV_32F, contiguous.data_ptr<float>());
  net.setInput(blob);
  cv::Mat out = net.forward();
  std::vector<int64_t> shape(out.size.p, out.size.p + out.dims);
  return torch::from_blob(out.ptr<float>(), shape, torch::kFloat).clone();
}

// Where node or the package is absent the ONNX Runtime half is skipped, except under CI, which
// installs both (scripts/install-deps.sh): there a missing runtime is a failure.
std::string onnxruntime_missing() {
  const std::filesystem::path script = FCN_ORT_PEER;
  if (std::string(FCN_NODE).empty() || std::string(FCN_NODE).find("NOTFOUND") != std::string::npos) return "node not found";
  if (!std::filesystem::exists(script.parent_path() / "node_modules" / "onnxruntime-node" / "package.json"))
    return "onnxruntime-node is not installed in " + script.parent_path().string() + " (scripts/install-deps.sh)";
  return "";
}

torch::Tensor run_onnxruntime(const std::string& path, const torch::Tensor& input) {
  const auto contiguous = input.contiguous();
  const std::string in = path + ".in.f32", out = path + ".out.f32";
  std::ofstream(in, std::ios::binary).write(static_cast<const char*>(contiguous.data_ptr()), contiguous.nbytes());
  std::string shape;
  for (const auto d : input.sizes()) shape += (shape.empty() ? "" : ",") + std::to_string(d);
  const std::string command = std::string(FCN_NODE) + " " + FCN_ORT_PEER + " " + path + " --run " + in + " --shape " + shape +
                              " --output " + out + " --threads 1 > " + out + ".json";
  if (std::system(command.c_str()) != 0) {
    ADD_FAILURE() << command;
    return {};
  }
  std::ifstream file(out, std::ios::binary | std::ios::ate);
  auto result = torch::empty({static_cast<int64_t>(file.tellg()) / 4}, torch::kFloat);
  file.seekg(0).read(static_cast<char*>(result.data_ptr()), result.nbytes());
  return result;
}

class OnnxParity : public testing::TestWithParam<Case> {
 protected:
  // Each size of the case: the export and fcn's logits, then `check(path, input, expected)`.
  template <typename Check>
  void each_size(Check&& check) const;
};

template <typename Check>
void OnnxParity::each_size(Check&& check) const {
  const auto& c = GetParam();
  const auto model = random_model(c.config);
  for (const auto& [h, w] : c.sizes) {
    const std::string path = test::temp_dir() + "/" + c.name + "_" + std::to_string(h) + "x" + std::to_string(w) + ".onnx";
    OnnxExportOptions options;
    options.height = h;
    options.width = w;
    const auto summary = export_onnx(model, path, options);
    torch::manual_seed(h * 1000 + w);
    const auto input = torch::randn({1, model.net->in_channels(), h, w});
    torch::Tensor expected;
    {
      c10::InferenceMode guard;
      expected = model.net->forward(input);
    }
    // The exporter's own check of its traced graph against forward (relative, like export_onnx's).
    EXPECT_LE(summary.max_abs_error, 1e-4 * std::max(1.0, expected.abs().max().item<double>()));
    check(path, input, expected);
  }
}

void expect_logits(const std::string& path, const torch::Tensor& actual, const torch::Tensor& expected) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << path;
  const double error = (actual - expected).abs().max().item<double>();
  EXPECT_LE(error, 1e-3 * std::max(1.0, expected.abs().max().item<double>())) << path << " max |logit| "
                                                                             << expected.abs().max().item<double>();
}

TEST_P(OnnxParity, OpenCvDnnGivesFcnLogits) {
  each_size([](const std::string& path, const torch::Tensor& input, const torch::Tensor& expected) {
    expect_logits(path, run_opencv(path, input), expected);
  });
}

TEST_P(OnnxParity, OnnxRuntimeGivesFcnLogits) {
  if (const auto missing = onnxruntime_missing(); !missing.empty()) {
    if (std::getenv("CI") != nullptr) FAIL() << "ONNX Runtime peer missing under CI: " << missing;
    GTEST_SKIP() << missing;
  }
  each_size([](const std::string& path, const torch::Tensor& input, const torch::Tensor& expected) {
    const auto actual = run_onnxruntime(path, input);
    if (actual.defined()) expect_logits(path, actual.numel() == expected.numel() ? actual.view(expected.sizes()) : actual, expected);
  });
}

nlohmann::json fcn_config(int stride, const std::string& geometry) {
  // Reference: Caffe's fc6 7x7 (the crops assume it); same: an even kernel (asymmetric padding).
  const int fc_kernel = geometry == "reference" ? 7 : 2;
  return {{"arch", "fcn"}, {"stride", stride}, {"num_classes", 5}, {"geometry", geometry},
          {"backbone", {{"name", "vgg16-w0.0625"}, {"in_channels", 3}}}, {"fc_channels", 16}, {"fc_kernel", fc_kernel}, {"dropout", 0.5}, {"learnable_upsampling", true}};
}

nlohmann::json unet_config(const std::string& padding, const std::string& upsample, bool batch_norm) {
  return {{"arch", "unet"}, {"depth", 3}, {"base_channels", 4}, {"in_channels", 1}, {"num_classes", 3},
          {"padding", padding}, {"upsample", upsample}, {"batch_norm", batch_norm}};
}

nlohmann::json with(nlohmann::json config, const nlohmann::json& changes) {
  config.update(changes);
  return config;
}

INSTANTIATE_TEST_SUITE_P(
    Archs, OnnxParity,
    testing::Values(Case{"fcn32s_reference", fcn_config(32, "reference"), {{64, 64}, {75, 53}}},
                    Case{"fcn16s_reference", fcn_config(16, "reference"), {{64, 64}, {75, 53}}},
                    Case{"fcn8s_reference", fcn_config(8, "reference"), {{64, 64}, {75, 53}}},
                    Case{"fcn32s_same", fcn_config(32, "same"), {{64, 96}, {75, 53}}},
                    Case{"fcn16s_same", fcn_config(16, "same"), {{64, 96}, {75, 53}}},
                    Case{"fcn8s_same", fcn_config(8, "same"), {{64, 96}, {75, 53}}},
                    Case{"fcn8s_same_at_once", with(fcn_config(8, "same"), {{"at_once", true}}), {{64, 96}}},
                    Case{"fcn8s_reference_at_once", with(fcn_config(8, "reference"), {{"at_once", true}}), {{75, 53}}},
                    Case{"fcn8s_alexnet", with(fcn_config(8, "same"), {{"backbone", {{"name", "alexnet-w0.125"}, {"in_channels", 3}}}}),
                         {{64, 96}, {75, 53}}},
                    Case{"fcn8s_vgg16_bn", with(fcn_config(8, "same"), {{"backbone", {{"name", "vgg16_bn-w0.0625"}, {"in_channels", 3}}}}),
                         {{64, 96}}},
                    Case{"fcn16s_resnet18",
                         with(fcn_config(16, "same"), {{"backbone", {{"name", "resnet18-w0.125"}, {"in_channels", 3}}}, {"fc_channels", 0}}),
                         {{64, 96}, {75, 53}}},
                    Case{"fcn8s_googlenet",
                         with(fcn_config(8, "same"), {{"backbone", {{"name", "googlenet-w0.125"}, {"in_channels", 3}, {"transform_input", true}}},
                                                      {"fc_channels", 0}}),
                         {{64, 96}, {75, 53}}},
                    Case{"torchvision_fcn_resnet50",
                         {{"arch", "torchvision-fcn"}, {"backbone", {{"name", "resnet50-w0.0625"}, {"in_channels", 3}}},
                          {"num_classes", 4}, {"aux", true}},
                         {{64, 96}, {75, 53}}},
                    Case{"fcn8s_resnext50",
                         with(fcn_config(8, "same"), {{"backbone", {{"name", "resnext50_32x4d-w0.125"}, {"in_channels", 3}}}, {"fc_channels", 0}}),
                         {{64, 64}}},
                    Case{"fcn8s_resnet50", with(fcn_config(8, "same"), {{"backbone", {{"name", "resnet50-w0.0625"}, {"in_channels", 3}}}, {"fc_channels", 0}}),
                         {{64, 64}}},
                    Case{"unet_same_transposed", unet_config("same", "transposed", false), {{48, 64}, {37, 50}}},
                    Case{"unet_same_bilinear_bn", unet_config("same", "bilinear", true), {{48, 64}, {37, 50}}},
                    // A binary U-Net (one logit channel) with dropout, which export leaves out (eval mode).
                    Case{"unet_binary_dropout", with(unet_config("same", "transposed", true), {{"num_classes", 1}, {"dropout", 0.5}}),
                         {{48, 64}}},
                    Case{"unet_valid_transposed", unet_config("valid", "transposed", false), {{92, 92}, {108, 124}}},
                    Case{"unet_valid_bilinear", unet_config("valid", "bilinear", false), {{92, 92}, {108, 124}}}),
    [](const testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(OnnxExport, DynamicSizesAndClearErrors) {
  const auto unet = random_model(unet_config("same", "transposed", false));
  OnnxExportOptions options;
  options.height = options.width = 40;  // probe rounded up to a multiple of 8
  options.dynamic = true;
  const auto summary = export_onnx(unet, test::temp_dir() + "/dynamic.onnx", options);
  EXPECT_EQ(summary.input_multiple, 8);
  EXPECT_EQ(summary.input_shape, (std::vector<int64_t>{-1, 1, -1, -1}));
  const auto reference = random_model(fcn_config(8, "reference"));
  // A library error names the option (the CLI prints its flag, --dynamic / --size, instead).
  EXPECT_EQ(test::error_of([&] { export_onnx(reference, test::temp_dir() + "/r.onnx", options); })
                .rfind("OnnxExportOptions.dynamic: ", 0),
            0u);
  Model classifier;
  classifier.net = build_net({{"arch", "classifier"}, {"backbone", {{"name", "vgg11-w0.0625"}, {"in_channels", 3}}}, {"input_size", 32},
                              {"fc_channels", 8}, {"num_classes", 3}, {"dropout", 0.5}});
  classifier.meta = default_meta(3, 3);
  options.dynamic = false;
  EXPECT_NE(test::error_of([&] { export_onnx(classifier, test::temp_dir() + "/c.onnx", options); }).find("classifier"),
            std::string::npos);
}

}  // namespace
}  // namespace fcn
