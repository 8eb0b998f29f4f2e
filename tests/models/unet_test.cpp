// U-Net: golden vs oracle/nets.py for both paddings and upsamplings, the paper's sizes
// (572 -> 388), and clear errors naming the nearest legal sizes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/models/unet.h"
#include "test_util.h"

namespace fcn {
namespace {

class UNetGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(UNetGolden, MatchesPyTorch) { test::check_golden_case(GetParam(), 1e-4); }

INSTANTIATE_TEST_SUITE_P(Cases, UNetGolden,
                         ::testing::Values("unet_valid_transposed", "unet_valid_bilinear", "unet_same_transposed",
                                           "unet_same_bilinear"));

TEST(UNet, PaperSizes) {
  UNet net(UNetOptions().padding(Padding::kValid).base_channels(2).in_channels(1));
  EXPECT_EQ(net->output_size(572), 388);  // Ronneberger et al., Fig. 1
  EXPECT_EQ(net->input_size_for(388), 572);
  EXPECT_EQ(net->output_size(573), -1);
  const auto [below, above] = net->nearest_legal_sizes(573);
  EXPECT_EQ(below, 572);
  EXPECT_EQ(above, 588);
  c10::InferenceMode guard;
  net->eval();
  EXPECT_EQ(net->forward(torch::zeros({1, 1, 188, 204})).sizes(),
            (std::vector<int64_t>{1, 2, net->output_size(188), net->output_size(204)}));
}

TEST(UNet, IllegalValidSizeNamesTheNearestLegalSizes) {
  UNet net(UNetOptions().padding(Padding::kValid).base_channels(2).in_channels(1));
  const auto message = test::error_of([&] { net->forward(torch::zeros({1, 1, 573, 572})); });
  EXPECT_NE(message.find("573"), std::string::npos) << message;
  EXPECT_NE(message.find("572 and 588"), std::string::npos) << message;
}

TEST(UNet, SamePaddingReturnsInputSizedLogits) {
  for (const auto upsample : {Upsample::kTransposed, Upsample::kBilinear}) {
    UNet net(UNetOptions().depth(3).base_channels(4).num_classes(3).upsample(upsample).batch_norm(true));
    net->eval();
    c10::InferenceMode guard;
    for (const auto& [h, w] : std::vector<std::pair<int64_t, int64_t>>{{33, 47}, {97, 64}, {224, 224}, {500, 375}, {1, 1}})
      EXPECT_EQ(net->forward(torch::randn({1, 3, h, w})).sizes(), (std::vector<int64_t>{1, 3, h, w}));
  }
}

}  // namespace
}  // namespace fcn
