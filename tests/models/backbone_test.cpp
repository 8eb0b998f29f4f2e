// Backbones beyond VGG: torchvision's AlexNet and ResNets give torchvision's logits after import;
// convolutionalization identities on them; FCN-32s/16s/8s on every backbone (input-sized output,
// staged training starting where the coarser net stopped, transfer from the classifier).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/formats/npy.h"
#include "fcn/models/alexnet.h"
#include "fcn/models/convolutionalize.h"
#include "fcn/models/fcn.h"
#include "fcn/models/registry.h"
#include "fcn/models/resnet.h"
#include "fcn/serialize/weights.h"
#include "test_util.h"

namespace fcn {
namespace {

Classifier import_golden(const std::string& name) {
  const auto file = test::golden("tv_" + name + ".pth");
  const auto weights = read_state_dict(file);
  auto net = name == "alexnet"                ? import_torchvision_alexnet(weights, file)
             : name == "vgg11_bn"               ? import_torchvision_vgg(weights, file, 11, true)
             : name.rfind("googlenet", 0) == 0 ? import_torchvision_googlenet(weights, file, name == "googlenet_ti")
             : name == "resnext50_8x8d"         ? import_torchvision_resnet(weights, file, 50, 8, 8)
                                               : import_torchvision_resnet(weights, file, std::stoi(name.substr(6)));
  net->eval();
  return net;
}

class TorchvisionGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchvisionGolden, ImportedClassifierGivesTorchvisionsLogits) {
  auto net = import_golden(GetParam());
  c10::InferenceMode guard;
  const auto y = net->forward(read_npy(test::golden("tv_" + GetParam() + "_input.npy")));
  EXPECT_LE(test::relative_error(y, read_npy(test::golden("tv_" + GetParam() + "_output.npy"))), 1e-4) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Classifiers, TorchvisionGolden, ::testing::Values("alexnet", "vgg11_bn", "resnet18", "resnet50", "resnext50_8x8d", "googlenet", "googlenet_ti"));

TEST(Backbones, NamesRoundTripAndShapesFollowTheFamilies) {
  for (const std::string name : {"vgg16", "vgg11-w0.25", "vgg16_bn", "vgg13_bn-w0.5", "resnext50_32x4d", "resnext101_32x8d-w0.25", "wide_resnet50_2", "wide_resnet101_2-w0.5", "alexnet", "alexnet-w0.5", "resnet18", "resnet101-w0.25", "googlenet-w0.5"})
    EXPECT_EQ(backbone_name(parse_backbone(name)), name);
  EXPECT_EQ(backbone_output_side(parse_backbone("alexnet"), 224), 6);  // torchvision's 6 x 6 pool5
  EXPECT_EQ(backbone_output_side(parse_backbone("resnet50"), 224), 7);
  EXPECT_EQ(make_backbone(parse_backbone("resnet50-w0.25"))->channels(32), 512);  // 4 x 128
  EXPECT_EQ(make_backbone(parse_backbone("alexnet-w0.5"))->channels(16), 96);
  EXPECT_EQ(make_backbone(parse_backbone("googlenet"))->channels(8), 480);  // inception3b
  EXPECT_EQ(make_backbone(parse_backbone("googlenet"))->channels(32), 1024);
  EXPECT_EQ(backbone_output_side(parse_backbone("googlenet"), 224), 7);
  EXPECT_TRUE(parse_backbone("vgg16_bn").batch_norm());
  EXPECT_EQ(parse_backbone("resnext101_32x8d").groups(), 32);
  EXPECT_EQ(parse_backbone("resnext101_32x8d").width_per_group(), 8);
  EXPECT_EQ(parse_backbone("wide_resnet50_2").width_per_group(), 128);
  EXPECT_EQ(make_backbone(parse_backbone("resnext50_32x4d-w0.125"))->channels(32), 256);  // 4 x 64, as ResNet-50's
  EXPECT_FALSE(parse_backbone("vgg16").batch_norm());
  for (const std::string bad : {"resnet20", "alexnet8", "vgg16-w0", "googlenet22", "lenet5", "vgg_bn", "resnet50_bn", "vgg16_bn_bn", "resnext18_32x4d", "resnext50", "resnext50_32x4",
                                "resnext50_1x4d", "wide_resnet50", "wide_resnet50_1", "resnet50_32x4d", "wide_resnet34_2"})
    EXPECT_NE(test::error_of([&] { parse_backbone(bad); }).find("backbone"), std::string::npos) << bad;
}

TEST(Backbones, SameLayoutMapsAreExactlyInputOverStride) {
  for (const std::string name : {"vgg16-w0.0625", "vgg16_bn-w0.0625", "alexnet-w0.125", "resnet18-w0.125", "resnet50-w0.0625", "googlenet-w0.125"}) {
    auto options = parse_backbone(name);
    options.layout(BackboneLayout::kSame);
    const auto backbone = make_backbone(options);
    backbone->eval();
    c10::InferenceMode guard;
    const auto f = backbone->forward(torch::randn({1, 3, 64, 96}));
    EXPECT_EQ(f.stride8.sizes(), (std::vector<int64_t>{1, backbone->channels(8), 8, 12})) << name;
    EXPECT_EQ(f.stride16.sizes(), (std::vector<int64_t>{1, backbone->channels(16), 4, 6})) << name;
    EXPECT_EQ(f.stride32.sizes(), (std::vector<int64_t>{1, backbone->channels(32), 2, 3})) << name;
    EXPECT_EQ(backbone->output_side(64), 2) << name;
    EXPECT_DOUBLE_EQ(backbone->coord_map(16).scale, 16) << name;
  }
}

TEST(Convolutionalize, AlexNetAtItsTrainingSizeIsTheClassifierAndLargerInputsGiveWindows) {
  torch::manual_seed(0);
  Classifier classifier(ClassifierOptions()
                            .backbone(parse_backbone("alexnet-w0.125"))
                            .input_size(224)
                            .fc_channels(16)
                            .num_classes(5));
  classifier->eval();
  EXPECT_EQ(classifier->options.kernel(), 6);  // fc6 reads 6 x 6 x 32 = 9216 / 8 numbers
  auto conv = convolutionalize(*classifier);
  conv->eval();
  c10::InferenceMode guard;
  const auto x = torch::randn({1, 3, 224, 224});
  const auto heat = conv->forward(x);
  ASSERT_EQ(heat.sizes(), (std::vector<int64_t>{1, 5, 1, 1}));
  EXPECT_LE(test::relative_error(heat.flatten(1), classifier->forward(x)), 1e-5);
  // 288 x 320: pool5 is 8 x 9, so the heatmap is 3 x 4 cells, each the dense head on its 6 x 6 window.
  const auto big = torch::randn({1, 3, 288, 320});
  const auto map = conv->forward(big);
  const auto pool5 = classifier->backbone->forward(big).stride32;
  ASSERT_EQ(map.sizes(), (std::vector<int64_t>{1, 5, pool5.size(2) - 5, pool5.size(3) - 5}));
  for (int64_t i = 0; i < map.size(2); ++i)
    for (int64_t j = 0; j < map.size(3); ++j) {
      const auto window = pool5.slice(2, i, i + 6).slice(3, j, j + 6).flatten(1);
      EXPECT_LE(test::relative_error(map.select(3, j).select(2, i), classifier->dense_head(window)), 1e-5) << i << "," << j;
    }
}

TEST(Convolutionalize, ResNetHeatmapAveragesToTheClassifiersLogits) {
  auto classifier = import_golden("resnet18");
  auto conv = convolutionalize(*classifier);
  conv->eval();
  c10::InferenceMode guard;
  const auto x = read_npy(test::golden("tv_resnet18_input.npy"));
  const auto heat = conv->forward(x);  // fc as a 1x1 conv on every layer4 cell
  EXPECT_EQ(heat.size(2), 2);
  EXPECT_LE(test::relative_error(heat.mean({2, 3}), read_npy(test::golden("tv_resnet18_output.npy"))), 1e-4);
}

TEST(Convolutionalize, GoogLeNetCellsAreTheClassifierOnEachInception5bCell) {
  // The paper's FCN-GoogLeNet: no average pool, the classifier as a 1x1 conv over inception5b.
  auto classifier = import_golden("googlenet");
  auto conv = convolutionalize(*classifier);
  conv->eval();
  c10::InferenceMode guard;
  const auto x = read_npy(test::golden("tv_googlenet_input.npy"));
  const auto heat = conv->forward(x);
  const auto cells = classifier->backbone->forward(x).stride32;
  ASSERT_EQ(heat.sizes(), (std::vector<int64_t>{1, 1000, cells.size(2), cells.size(3)}));
  EXPECT_LE(test::relative_error(heat.select(3, 2).select(2, 1), classifier->dense_head(cells.select(3, 2).select(2, 1))), 1e-5);
  EXPECT_LE(test::relative_error(heat.mean({2, 3}), read_npy(test::golden("tv_googlenet_output.npy"))), 1e-4);
}

FCN trained_like(const std::string& backbone, int64_t stride) {
  torch::manual_seed(stride);
  const int64_t fc = has_fc_head(parse_backbone(backbone).family()) ? 16 : 0;
  FCN net(FCNOptions().stride(stride).num_classes(3).backbone(parse_backbone(backbone)).fc_channels(fc).fc_kernel(3));
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) p.add_(torch::randn_like(p) * 0.1);
  for (auto& item : net->named_buffers())
    if (item.key().find("running_var") != std::string::npos) item.value().uniform_(0.5, 1.5);
  net->eval();
  return net;
}

TEST(FCNOnEveryBackbone, InputSizedOutputAndStagedTrainingStartsWhereTheCoarserStopped) {
  for (const std::string backbone : {"alexnet-w0.125", "vgg11_bn-w0.125", "resnet18-w0.125", "resnet50-w0.0625", "resnext50_32x4d-w0.125",
                                     "wide_resnet50_2-w0.0625", "googlenet-w0.125"}) {
    for (const auto& [from, to] : std::vector<std::pair<int64_t, int64_t>>{{32, 16}, {16, 8}}) {
      auto coarse = trained_like(backbone, from);
      auto fine = FCN::from_coarser(*coarse, to);
      fine->eval();
      c10::InferenceMode guard;
      const auto x = torch::randn({1, 3, 71, 90});
      const auto expected = coarse->forward(x);
      ASSERT_EQ(expected.sizes(), (std::vector<int64_t>{1, 3, 71, 90})) << backbone;
      ASSERT_GT(expected.abs().max().item<float>(), 1e-3f);
      EXPECT_LE(test::relative_error(fine->forward(x), expected), 1e-5) << backbone << " " << from << "s -> " << to << "s";
    }
  }
}

TEST(FCNOnEveryBackbone, FromClassifierCarriesTheBackboneWithItsBatchNormStatistics) {
  auto classifier = import_golden("resnet18");
  auto conv = convolutionalize(*classifier);
  auto net = FCN::from_classifier(*conv, FCNOptions().stride(8).num_classes(4));
  EXPECT_EQ(net->options.fc_channels(), 0);
  EXPECT_TRUE(net->fc6.is_empty());
  EXPECT_TRUE(torch::equal(net->backbone->named_buffers()["layer2.1.bn2.running_var"],
                           classifier->backbone->named_buffers()["layer2.1.bn2.running_var"]));
  EXPECT_EQ(test::error_of([] { FCN(FCNOptions().backbone(parse_backbone("resnet18")).geometry(Geometry::kReference)); })
                .find("backbone: resnet18 has no Caffe layout"),
            0u);
}

TEST(TorchvisionFCN, Resnet50WithAuxGivesTorchvisionsOutAndAux) {
  const auto file = test::golden("tv_fcn_resnet50.pth");
  auto net = import_torchvision_fcn(read_state_dict(file), file, 50);
  net->eval();
  EXPECT_TRUE(net->options.aux());
  EXPECT_EQ(net->num_classes(), 21);
  c10::InferenceMode guard;
  const auto outputs = net->forward_with_aux(read_npy(test::golden("tv_fcn_resnet50_input.npy")));
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_EQ(outputs[0].sizes(), (std::vector<int64_t>{1, 21, 224, 320}));
  EXPECT_LE(test::relative_error(outputs[0], read_npy(test::golden("tv_fcn_resnet50_out.npy"))), 1e-4);
  EXPECT_LE(test::relative_error(outputs[1], read_npy(test::golden("tv_fcn_resnet50_aux.npy"))), 1e-4);
  // The registry rebuilds it from its config, and a plain ResNet-50 file is not one.
  EXPECT_EQ(net_config(*build_net(net_config(*net))), net_config(*net));
  const auto resnet = test::golden("tv_resnet50.pth");
  EXPECT_NE(test::error_of([&] { import_torchvision_fcn(read_state_dict(resnet), resnet, 50); }).find("missing key 'backbone.conv1.weight'"),
            std::string::npos);
}

TEST(Import, WrongFamilyMissingKeyAndWrongShapeNameTheKey) {
  const auto vgg = test::golden("small_vgg16.pth");
  EXPECT_NE(test::error_of([&] { import_torchvision_alexnet(read_state_dict(vgg), vgg); })
                .find("missing key 'classifier.1.weight' (torchvision alexnet)"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { import_torchvision_resnet(read_state_dict(vgg), vgg, 18); }).find("missing key 'conv1.weight'"),
            std::string::npos);
  const auto missing = test::golden("tv_resnet18_missing.pth");
  EXPECT_NE(test::error_of([&] { import_torchvision_resnet(read_state_dict(missing), missing, 18); })
                .find("missing key 'layer2.1.bn2.running_var' (torchvision resnet18)"),
            std::string::npos);
  const auto wrong = test::golden("tv_resnet18_wrong_shape.pth");
  EXPECT_NE(test::error_of([&] { import_torchvision_resnet(read_state_dict(wrong), wrong, 18); })
                .find("key 'layer3.0.conv1.weight' has shape [256, 128, 1, 1], expected [256, 128, 3, 3]"),
            std::string::npos);
  const auto resnet = test::golden("tv_resnet18.pth");
  EXPECT_NE(test::error_of([&] { import_torchvision_resnet(read_state_dict(resnet), resnet, 50); }).find("(torchvision resnet50)"),
            std::string::npos);
}

}  // namespace
}  // namespace fcn
