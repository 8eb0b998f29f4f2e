// The registry: every architecture round-trips through its JSON config, recipes build the nets
// their names promise, and nets print themselves the way LibTorch modules do.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/fcn.h"
#include "fcn/models/registry.h"
#include "fcn/models/unet.h"
#include "test_util.h"

namespace fcn {
namespace {

NetRecipe small(const std::string& arch) {
  NetRecipe recipe;
  recipe.arch = arch;
  recipe.backbone = "vgg11-w0.0625";
  recipe.fc_channels = 8;
  recipe.input_size = 64;
  recipe.base_channels = 4;
  recipe.depth = 2;
  return recipe;
}

TEST(Registry, EveryArchitectureRoundTripsThroughItsConfig) {
  for (const std::string arch : {"classifier", "fcn32s", "fcn16s", "fcn8s", "unet"}) {
    const auto net = make_net(small(arch));
    const auto config = net_config(*net);
    const auto again = build_net(config);
    EXPECT_EQ(net_config(*again), config) << arch;
    EXPECT_EQ(again->arch(), net->arch());
  }
  EXPECT_EQ(architectures(), (std::vector<std::string>{"classifier", "conv-classifier", "fcn", "unet", "torchvision-fcn"}));
}

TEST(Registry, RecipeDefaultsAreThePapersNets) {
  NetRecipe recipe;
  recipe.arch = "fcn8s";
  recipe.backbone = "vgg16-w0.25";
  recipe.classes = 11;
  recipe.in_channels = 1;
  const auto config = net_config(*make_net(recipe));
  // fc6/fc7 are VGG16's 4096 scaled by the width, fc6 7x7 (the classifier's k at 224).
  EXPECT_EQ(config["fc_channels"], 1024);
  EXPECT_EQ(config["fc_kernel"], 7);
  EXPECT_EQ(config["stride"], 8);
  EXPECT_EQ(config["geometry"], "same");
  EXPECT_EQ(config["backbone"]["in_channels"], 1);
  EXPECT_EQ(net_config(*make_net(NetRecipe{"unet"}))["base_channels"], 64);
}

TEST(Registry, BadNamesAreErrorsNamingTheField) {
  EXPECT_NE(test::error_of([] { make_net(NetRecipe{"fcn9s"}); }).find("NetRecipe.arch"), std::string::npos);
  auto recipe = small("fcn8s");
  recipe.backbone = "lenet5";
  EXPECT_NE(test::error_of([&] { make_net(recipe); }).find("backbone"), std::string::npos);
  EXPECT_NE(test::error_of([] { build_net(nlohmann::json{{"arch", "segnet"}}, "m.fcn"); }).find("known: classifier"), std::string::npos);
  EXPECT_NE(test::error_of([] { build_net(nlohmann::json{{"arch", "fcn"}}, "m.fcn"); }).find("m.fcn: bad model config"),
            std::string::npos);
}

TEST(Registry, NetsPrintThemselvesAsLibTorchModulesDo) {
  auto recipe = small("fcn8s");
  recipe.classes = 3;
  const std::string printed = c10::str(*make_net(recipe));
  EXPECT_EQ(printed.rfind("fcn::FCN(stride=8, classes=3, backbone=vgg11-w0.0625, geometry=same, fc_channels=8, fc_kernel=7)", 0), 0u)
      << printed;
  EXPECT_NE(printed.find("(backbone): fcn::VGG(vgg11-w0.0625, in_channels=3, first_padding=1)"), std::string::npos) << printed;
  EXPECT_NE(printed.find("(score_pool3): torch::nn::Conv2d(16, 3, kernel_size=[1, 1]"), std::string::npos) << printed;
  EXPECT_NE(c10::str(*make_net(small("unet"))).find("fcn::UNet(depth=2, base_channels=4"), std::string::npos);
}

}  // namespace
}  // namespace fcn
