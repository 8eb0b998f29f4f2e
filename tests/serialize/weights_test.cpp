// Weight files: torch.save archives and safetensors read by name; every broken file is a
// one-line error naming the file and the key (acceptance 7).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/formats/torch_archive.h"
#include "fcn/serialize/weights.h"
#include "fcn/util/atomic_file.h"
#include "test_util.h"

namespace fcn {
namespace {

void expect_one_line_naming(const std::string& message, const std::string& file, const std::string& key) {
  EXPECT_NE(message.find(file), std::string::npos) << message;
  EXPECT_NE(message.find(key), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(Weights, PthAndSafetensorsHoldTheSameTensors) {
  const auto pth = read_state_dict(test::golden("small_vgg16.pth"));
  const auto safetensors = read_state_dict(test::golden("small_vgg16.safetensors"));
  ASSERT_EQ(pth.size(), 32u);  // 13 convs + 3 dense layers, weight and bias each
  std::map<std::string, torch::Tensor> by_name(safetensors.begin(), safetensors.end());
  for (const auto& [name, tensor] : pth) EXPECT_TRUE(torch::equal(tensor, by_name.at(name))) << name;
  EXPECT_EQ(pth.front().first, "features.0.weight");  // file order kept
}

// torch.save's legacy format (PyTorch before 1.6; torchvision's VGG and AlexNet weights): written by PyTorch
// with pickle protocol 2 and 4, and as PyTorch 0.3 wrote it (_rebuild_tensor), each the zip archive's tensors.
// It was "legacy (pre-1.6) PyTorch format; re-save it": a C++ user had to go through Python to import VGG16.
TEST(Weights, LegacyPthFilesHoldTheZipArchivesTensors) {
  const auto pth = read_state_dict(test::golden("small_vgg16.pth"));
  for (const char* name : {"small_vgg16_legacy.pth", "small_vgg16_legacy_p4.pth", "small_vgg16_pytorch03.pth"}) {
    const auto legacy = read_state_dict(test::golden(name));
    ASSERT_EQ(legacy.size(), pth.size()) << name;
    for (size_t i = 0; i < pth.size(); ++i) {
      EXPECT_EQ(legacy[i].first, pth[i].first) << name;  // file order kept
      EXPECT_TRUE(torch::equal(legacy[i].second, pth[i].second)) << name << " " << pth[i].first;
    }
  }
  // Cut anywhere (in the pickles, in a storage's count or its elements): one line naming the file.
  const auto bytes = read_file(test::golden("small_vgg16_legacy.pth"));
  ASSERT_TRUE(is_legacy_torch(bytes));
  for (const size_t keep : {size_t{20}, size_t{300}, bytes.size() / 2, bytes.size() - 3}) {
    const auto message = test::error_of([&] { parse_torch_legacy_dict(std::vector<char>(bytes.begin(), bytes.begin() + keep), "cut.pth"); });
    EXPECT_EQ(message.rfind("cut.pth: ", 0), 0u) << keep << ": " << message;
  }
  // A storage whose element count disagrees with its tensor's is refused before it is read: features.0.weight's
  // count (432, as 8 little-endian bytes) found after the pickles and made 433.
  auto wrong = bytes;
  const int64_t first_numel = parse_torch_legacy_dict(bytes, "x.pth").front().second.tensor.numel();
  std::vector<char> count(8);
  for (int i = 0; i < 8; ++i) count[i] = static_cast<char>((first_numel >> (8 * i)) & 0xff);
  const auto at = std::search(wrong.begin() + 300, wrong.end(), count.begin(), count.end());
  ASSERT_NE(at, wrong.end());
  *at = static_cast<char>(*at + 1);
  EXPECT_NE(test::error_of([&] { parse_torch_legacy_dict(wrong, "wrong.pth"); }).find("wrong.pth: storage '"), std::string::npos);
}

// fcn import auto (and fcn info of a .pth) tell the torchvision model by the keys alone: torchvision's own
// files (goldens written by torchvision), and synthetic VGG key sets (a conv count of no VGG).
TEST(Weights, TorchvisionFormatIsToldByTheKeys) {
  for (const auto& [file, format] : std::vector<std::pair<std::string, std::string>>{
           {"tv_alexnet.pth", "torchvision-alexnet"},   {"tv_resnet18.pth", "torchvision-resnet18"},
           {"tv_resnet50.pth", "torchvision-resnet50"}, {"tv_googlenet.pth", "torchvision-googlenet"},
           {"tv_googlenet_ti.pth", "torchvision-googlenet"}, {"tv_fcn_resnet50.pth", "torchvision-fcn-resnet50"},
           {"small_vgg16.pth", "torchvision-vgg16"},     {"small_vgg16_legacy.pth", "torchvision-vgg16"},
           {"tv_vgg11_bn.pth", "torchvision-vgg11_bn"}})
    EXPECT_EQ(torchvision_format(read_state_dict(test::golden(file))), format) << file;
  const auto keys = [](const std::vector<std::string>& names) {
    StateDict out;
    for (const auto& name : names) out.emplace_back(name, torch::zeros({1}));
    return out;
  };
  for (const auto& [convs, format] : std::vector<std::pair<int, std::string>>{{8, "torchvision-vgg11"}, {10, "torchvision-vgg13"}, {16, "torchvision-vgg19"}, {9, ""}}) {
    std::vector<std::string> names = {"classifier.0.weight", "classifier.6.weight"};
    for (int i = 0; i < convs; ++i) names.push_back("features." + std::to_string(3 * i) + ".weight");
    EXPECT_EQ(torchvision_format(keys(names)), format) << convs;
  }
  EXPECT_EQ(torchvision_format(keys({"encoder.weight", "decoder.weight"})), "");
  EXPECT_EQ(torchvision_unimported(keys({"encoder.weight", "decoder.weight"})), "");
}

// Every depth fcn imports, and the torchvision models it does not (named in the error instead of "none"), told
// by the keys and shapes torchvision's own state dicts have (tv_keys.json, written by torchvision 0.14).
TEST(Weights, TorchvisionModelsFcnDoesNotImportAreNamed) {
  std::ifstream in(test::golden("tv_keys.json"));
  const auto models = nlohmann::json::parse(in);
  const std::map<std::string, std::pair<std::string, std::string>> expected = {
      {"alexnet", {"torchvision-alexnet", ""}},
      {"vgg11", {"torchvision-vgg11", ""}},
      {"vgg16", {"torchvision-vgg16", ""}},
      {"vgg19", {"torchvision-vgg19", ""}},
      {"resnet18", {"torchvision-resnet18", ""}},
      {"resnet34", {"torchvision-resnet34", ""}},
      {"resnet50", {"torchvision-resnet50", ""}},
      {"resnet101", {"torchvision-resnet101", ""}},
      {"googlenet", {"torchvision-googlenet", ""}},
      {"fcn_resnet50", {"torchvision-fcn-resnet50", ""}},
      {"fcn_resnet101", {"torchvision-fcn-resnet101", ""}},
      {"vgg11_bn", {"torchvision-vgg11_bn", ""}},
      {"vgg16_bn", {"torchvision-vgg16_bn", ""}},
      {"resnet152", {"torchvision-resnet152", ""}},
      {"resnext50_32x4d", {"torchvision-resnext50_32x4d", ""}},
      {"resnext101_32x8d", {"torchvision-resnext101_32x8d", ""}},
      {"wide_resnet50_2", {"torchvision-wide_resnet50_2", ""}},
      {"deeplabv3_resnet50", {"", "deeplabv3_resnet50"}},
      {"deeplabv3_mobilenet_v3_large", {"", "deeplabv3_mobilenet_v3_large"}},
      {"lraspp_mobilenet_v3_large", {"", "lraspp_mobilenet_v3_large"}},
      {"densenet121", {"", "densenet"}},
      {"mobilenet_v2", {"", "mobilenet_v2"}},
      {"mobilenet_v3_large", {"", "mobilenet_v3"}},
      {"squeezenet1_0", {"", "squeezenet"}},
      {"efficientnet_b0", {"", "efficientnet"}},
      {"shufflenet_v2_x1_0", {"", "shufflenet_v2"}},
      {"regnet_y_400mf", {"", "regnet"}},
      {"convnext_tiny", {"", "convnext"}},
      {"vit_b_16", {"", "vit"}},
      {"swin_t", {"", "swin"}},
      {"mnasnet0_5", {"", "mnasnet"}},
      {"inception_v3", {"", "inception_v3"}}};
  ASSERT_EQ(models.size(), expected.size());
  for (const auto& [name, keys] : models.items()) {
    StateDict weights;  // shapes without values: meta tensors
    for (const auto& key : keys) weights.emplace_back(key[0].get<std::string>(), torch::empty(key[1].get<std::vector<int64_t>>(), torch::kMeta));
    ASSERT_EQ(expected.count(name), 1u) << name;
    EXPECT_EQ(torchvision_format(weights), expected.at(name).first) << name;
    EXPECT_EQ(torchvision_unimported(weights), expected.at(name).second) << name;
  }
}

// fcn's ResNet-152, ResNeXt-50 32x4d and Wide ResNet-50-2 (no golden files of their 100-270 MB) have torchvision's
// keys and shapes exactly, once renamed as the import renames them: the import's strict copy would take such files.
TEST(Weights, DeepWideAndGroupedResnetsHaveTorchvisionsKeysAndShapes) {
  std::ifstream in(test::golden("tv_keys.json"));
  const auto models = nlohmann::json::parse(in);
  for (const std::string name : {"resnet152", "resnext50_32x4d", "wide_resnet50_2"}) {
    std::map<std::string, std::vector<int64_t>> expected;
    for (const auto& key : models.at(name)) expected[key[0].get<std::string>()] = key[1].get<std::vector<int64_t>>();
    Classifier net(ClassifierOptions().backbone(parse_backbone(name)).input_size(224).fc_channels(0).num_classes(1000));
    std::map<std::string, std::vector<int64_t>> got;
    for (const auto& [key, tensor] : state_dict(*net)) {
      const auto renamed = key.rfind("backbone.", 0) == 0 ? key.substr(9) : key.rfind("fc8.", 0) == 0 ? "fc." + key.substr(4) : key;
      got[renamed] = tensor.sizes().vec();
    }
    EXPECT_EQ(got, expected) << name;
  }
}

TEST(Weights, MissingKeyIsNamed) {
  const auto file = test::golden("missing_key.pth");
  expect_one_line_naming(test::error_of([&] { import_torchvision_vgg(read_state_dict(file), file); }), file,
                         "features.28.weight");
}

TEST(Weights, WrongShapeIsNamed) {
  const auto file = test::golden("wrong_shape.pth");
  const auto message = test::error_of([&] { import_torchvision_vgg(read_state_dict(file), file); });
  expect_one_line_naming(message, file, "features.5.weight");
  EXPECT_NE(message.find("[32, 16, 5, 5]"), std::string::npos) << message;
}

TEST(Weights, UnexpectedKeyIsNamed) {
  const auto file = test::golden("extra_key.pth");
  expect_one_line_naming(test::error_of([&] { import_torchvision_vgg(read_state_dict(file), file); }), file,
                         "features.99.weight");
}

TEST(Weights, TruncatedAndForeignFilesAreClearErrors) {
  const std::string dir = test::temp_dir();
  const std::string truncated = dir + "/truncated.pth";
  std::filesystem::copy_file(test::golden("small_vgg16.pth"), truncated, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(truncated, 5000);
  expect_one_line_naming(test::error_of([&] { read_state_dict(truncated); }), truncated, "truncated");
  const std::string text = dir + "/notes.pth";
  std::ofstream(text) << "hello";
  expect_one_line_naming(test::error_of([&] { read_state_dict(text); }), text, "neither");
  const std::string cut = dir + "/cut.safetensors";
  std::filesystem::copy_file(test::golden("small_vgg16.safetensors"), cut, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(cut, 4000);
  expect_one_line_naming(test::error_of([&] { read_state_dict(cut); }), cut, "truncated");
  expect_one_line_naming(test::error_of([&] { read_state_dict(dir + "/absent.pth"); }), "absent.pth", "cannot open");
}

TEST(Weights, StrictLoadNamesMissingAndMisShapedKeys) {
  torch::nn::Linear layer(3, 2);
  StateDict weights = {{"weight", torch::zeros({2, 3})}};
  expect_one_line_naming(test::error_of([&] { load_state_dict(*layer, weights, "w.pth"); }), "w.pth", "'bias'");
  weights.emplace_back("bias", torch::zeros({3}));
  expect_one_line_naming(test::error_of([&] { load_state_dict(*layer, weights, "w.pth"); }), "w.pth", "'bias' has shape [3]");
}

TEST(Weights, NanAndInfiniteValuesAreNamedWithTheirCount) {
  torch::nn::Linear layer(3, 2);
  auto weight = torch::zeros({2, 3});
  weight[0][1] = std::numeric_limits<float>::quiet_NaN();
  weight[1][2] = -std::numeric_limits<float>::infinity();
  StateDict weights = {{"weight", weight}, {"bias", torch::zeros({2})}};
  const auto message = test::error_of([&] { load_state_dict(*layer, weights, "w.pth"); });
  expect_one_line_naming(message, "w.pth", "'weight' holds 1 NaN and 1 infinite value(s) of 6 as Float");
  // A float64 value past float32's range is infinite once in the net: refused as well.
  weights = {{"weight", torch::zeros({2, 3})}, {"bias", torch::tensor({1e300, 0.0}, torch::kDouble)}};
  expect_one_line_naming(test::error_of([&] { load_state_dict(*layer, weights, "w.pth"); }), "w.pth",
                         "'bias' holds 0 NaN and 1 infinite value(s) of 2");
  weights = {{"weight", torch::full({2, 3}, 3e38)}, {"bias", torch::zeros({2})}};  // large but finite: kept
  load_state_dict(*layer, weights, "w.pth");
  EXPECT_EQ(layer->weight[1][2].item<float>(), 3e38f);
}

TEST(Weights, WrittenStateDictReadsBack) {
  const std::string path = test::temp_dir() + "/written.pth";
  const StateDict weights = {{"a.weight", torch::randn({3, 4})}, {"b", torch::arange(5, torch::kLong)}};
  write_torch_state_dict(path, weights);
  const auto back = read_state_dict(path);
  ASSERT_EQ(back.size(), 2u);
  std::map<std::string, torch::Tensor> by_name(back.begin(), back.end());
  EXPECT_TRUE(torch::equal(by_name.at("a.weight"), weights[0].second));
  EXPECT_TRUE(torch::equal(by_name.at("b"), weights[1].second));
}

// write_torch_archive streams the archive into the file (no whole-archive buffer: a VGG16 import peaked at 2.2 GB
// with one, 1.3 GB without), and writes the bytes torch::pickle_save does: files stay what PyTorch and older fcn read.
TEST(Weights, StreamedArchivesAreTheBytesPickleSaveWrites) {
  const std::string path = test::temp_dir() + "/streamed.pth";
  c10::Dict<std::string, torch::Tensor> dict;
  dict.insert("a.weight", torch::randn({64, 33}));
  dict.insert("b", torch::arange(7, torch::kLong));
  dict.insert("c", torch::randn({5}).to(torch::kBFloat16));
  c10::impl::GenericDict root(c10::StringType::get(), c10::AnyType::get());
  root.insert("format", std::string("x"));
  root.insert("version", int64_t{3});
  root.insert("state_dict", dict);
  write_torch_archive(path, root, Durability::kAtomic);
  EXPECT_EQ(read_file(path), torch::pickle_save(root));
  const auto back = read_torch_archive(path);
  ASSERT_EQ(back.size(), 3u);
  EXPECT_TRUE(torch::equal(back[0].second, dict.at("a.weight")));
  EXPECT_TRUE(torch::equal(back[2].second, dict.at("c")));
}

}  // namespace
}  // namespace fcn
