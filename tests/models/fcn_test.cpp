// FCN-32s/16s/8s: golden vs the PyTorch definitions in oracle/nets.py (the Caffe voc-fcn nets for
// the reference geometry), staged-training identities, and input-sized output for any input.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/cost.h"
#include "fcn/models/fcn.h"
#include "fcn/models/model.h"
#include "fcn/models/registry.h"
#include "test_util.h"

namespace fcn {
namespace {

class FCNGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(FCNGolden, MatchesPyTorchOnOddNonSquareInput) { test::check_golden_case(GetParam(), 1e-4); }

INSTANTIATE_TEST_SUITE_P(Cases, FCNGolden,
                         ::testing::Values("fcn32s_reference", "fcn16s_reference", "fcn8s_reference", "fcn32s_same",
                                           "fcn16s_same", "fcn8s_same"));

// FCNs on the ResNet family against nets.SameFCN on nets.ResNet (torchvision's blocks and stage builder,
// widths scaled): the backbone, the skips from layer2/layer3 and the folded batch norms of inference.
INSTANTIATE_TEST_SUITE_P(ResNets, FCNGolden,
                         ::testing::Values("fcn32s_resnet18-w0.25", "fcn16s_resnet18-w0.25", "fcn8s_resnet18-w0.25", "fcn8s_resnet50-w0.125",
                                           "fcn8s_resnext50_32x4d-w0.25", "fcn16s_wide_resnet50_2-w0.125"));

// The paper's AlexNet and GoogLeNet (torchvision's Inception modules; once with its transform_input) and VGG with
// batch norm in both geometries.
INSTANTIATE_TEST_SUITE_P(OtherBackbones, FCNGolden,
                         ::testing::Values("fcn8s_alexnet-w0.25", "fcn16s_googlenet-w0.125", "fcn8s_googlenet-w0.25_transform_input",
                                           "fcn8s_vgg11_bn-w0.25", "fcn8s_reference_vgg11_bn-w0.25"));

FCNOptions small(int64_t stride, Geometry geometry) {
  return FCNOptions().stride(stride).num_classes(4).backbone(BackboneOptions().width(0.125)).geometry(geometry).fc_channels(16);
}

// A coarse net as if trained: random weights everywhere, upsampling moved off bilinear.
FCN trained_like(int64_t stride, Geometry geometry) {
  torch::manual_seed(stride);
  FCN net(small(stride, geometry));
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) p.add_(torch::randn_like(p) * 0.1);
  net->eval();
  return net;
}

TEST(FCN, NewScoreLayersStartAtZero) {
  FCN net(small(8, Geometry::kSame));
  EXPECT_EQ(net->score_fr->weight.abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(net->score_pool4->weight.abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(net->score_pool3->weight.abs().sum().item<float>(), 0.0f);
}

TEST(FCN, FromCoarserStartsWhereTheCoarserStopped) {
  for (const auto& [from, to] : std::vector<std::pair<int64_t, int64_t>>{{32, 16}, {16, 8}, {32, 8}}) {
    auto coarse = trained_like(from, Geometry::kSame);
    auto fine = FCN::from_coarser(*coarse, to);
    fine->eval();
    EXPECT_EQ(fine->options.stride(), to);
    c10::InferenceMode guard;
    const auto x = torch::randn({1, 3, 71, 90});
    const auto expected = coarse->forward(x);
    ASSERT_GT(expected.abs().max().item<float>(), 1e-3f);  // not trivially zero
    EXPECT_LE(test::relative_error(fine->forward(x), expected), 1e-5) << from << "s -> " << to << "s";
  }
}

TEST(FCN, FromCoarserInReferenceGeometryKeepsWeightsAndZeroSkips) {
  // Caffe's graph re-upsamples the fused map (x2 then x16), which is not exactly x32 bilinear;
  // what carries over exactly is every shared layer, with the new skip at zero.
  auto coarse = trained_like(32, Geometry::kReference);
  auto fine = FCN::from_coarser(*coarse, 16);
  EXPECT_TRUE(torch::equal(fine->score_fr->weight, coarse->score_fr->weight));
  EXPECT_TRUE(torch::equal(fine->fc6->weight, coarse->fc6->weight));
  EXPECT_EQ(fine->score_pool4->weight.abs().sum().item<float>(), 0.0f);
}

TEST(FCN, AtOnceScalesTheSkipsAsTheReferenceDoes) {
  // voc-fcn8s-atonce: score_pool4(0.01 pool4), score_pool3(0.0001 pool3). By linearity that is the
  // plain net with those factors folded into the score layers' weights (biases unchanged).
  for (const auto geometry : {Geometry::kSame, Geometry::kReference}) {
    auto plain = trained_like(8, geometry);
    FCN at_once(small(8, geometry).at_once(true));
    at_once->eval();
    torch::NoGradGuard no_grad;
    for (auto& item : at_once->named_parameters()) item.value().copy_(plain->named_parameters()[item.key()]);
    plain->score_pool4->weight.mul_(kAtOnceScalePool4);
    plain->score_pool3->weight.mul_(kAtOnceScalePool3);
    const auto x = torch::randn({1, 3, 64, 70});
    EXPECT_LE(test::relative_error(at_once->forward(x), plain->forward(x)), 1e-5);
    EXPECT_TRUE(net_config(*at_once)["at_once"].get<bool>());
  }
}

TEST(FCN, FromCoarserRejectsANonFinerStride) {
  auto coarse = trained_like(16, Geometry::kSame);
  EXPECT_NE(test::error_of([&] { FCN::from_coarser(*coarse, 32); }).find("not finer"), std::string::npos);
}

TEST(FCN, FromClassifierTakesBackboneAndFcWeights) {
  torch::manual_seed(5);
  Classifier classifier(ClassifierOptions().backbone(BackboneOptions().width(0.125)).input_size(64).fc_channels(12).num_classes(7));
  auto conv = convolutionalize(*classifier);
  auto net = FCN::from_classifier(*conv, FCNOptions().stride(32).num_classes(3));
  EXPECT_EQ(net->options.fc_kernel(), 2);
  EXPECT_TRUE(torch::equal(net->fc6->weight, conv->fc6->weight));
  EXPECT_TRUE(torch::equal(net->backbone->named_parameters()["conv3_1.weight"], classifier->backbone->named_parameters()["conv3_1.weight"]));
  EXPECT_EQ(net->score_fr->weight.size(0), 3);
  net->eval();
  c10::InferenceMode guard;
  EXPECT_EQ(net->forward(torch::randn({1, 3, 50, 61})).sizes(), (std::vector<int64_t>{1, 3, 50, 61}));
}

TEST(FCN, OutputIsInputSizedForAnySize) {
  for (const auto geometry : {Geometry::kReference, Geometry::kSame}) {
    for (const int64_t stride : {32, 16, 8}) {
      auto net = trained_like(stride, geometry);
      c10::InferenceMode guard;
      std::vector<std::pair<int64_t, int64_t>> sizes = {{33, 47}, {97, 64}, {224, 224}, {500, 375}, {1, 1}};
      for (const auto& [h, w] : sizes) {
        const auto y = net->forward(torch::randn({1, 3, h, w}));
        EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 4, h, w}))
            << geometry_name(geometry) << " stride " << stride << " at " << h << "x" << w;
      }
    }
  }
}

TEST(FCN, BadInputsAreClearErrors) {
  FCN net(small(8, Geometry::kSame));
  EXPECT_NE(test::error_of([&] { net->forward(torch::zeros({1, 1, 64, 64})); }).find("1 channels"), std::string::npos);
  EXPECT_NE(test::error_of([&] { net->forward(torch::zeros({3, 64, 64})); }).find("N x C x H x W"), std::string::npos);
  EXPECT_NE(test::error_of([&] { FCN(FCNOptions().stride(4)); }).find("stride 4"), std::string::npos);
}

TEST(FCN, FrozenUpsamplingHasNoGradient) {
  FCN net(small(16, Geometry::kSame).learnable_upsampling(false));
  EXPECT_FALSE(net->upscore->weight.requires_grad());
  EXPECT_FALSE(net->upscore16->weight.requires_grad());
  EXPECT_TRUE(net->score_pool4->weight.requires_grad());
}

}  // namespace
}  // namespace fcn

namespace fcn {
namespace {

TEST(FlopCounter, ClassifierFlopsEqualTheHandCount) {
  // VGG16 at 224x224, quarter width: 2 * sum over layers of (output pixels x in x out x k x k).
  Classifier net(ClassifierOptions().backbone(BackboneOptions().width(0.25)).input_size(224).fc_channels(64).num_classes(10));
  const int64_t c[5] = {16, 32, 64, 128, 128};
  const int blocks[5] = {2, 2, 3, 3, 3};
  double macs = 0;
  int64_t in = 3, side = 224;
  for (int b = 0; b < 5; ++b) {
    for (int i = 0; i < blocks[b]; ++i) {
      macs += static_cast<double>(side * side * in * c[b] * 9);
      in = c[b];
    }
    side /= 2;
  }
  macs += 128.0 * 7 * 7 * 64 + 64.0 * 64 + 64.0 * 10;
  EXPECT_DOUBLE_EQ(forward_flops(*net, 224, 224), 2 * macs);
}

}  // namespace
}  // namespace fcn
