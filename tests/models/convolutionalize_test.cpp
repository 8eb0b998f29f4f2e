// Convolutionalization (FCN paper 3.1): the fully convolutional net computes, at every stride-32
// window, exactly what the classifier computes on that window (acceptance 2).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/models/convolutionalize.h"
#include "fcn/models/cost.h"
#include "fcn/models/model.h"

namespace fcn {
namespace {

Classifier small_classifier() {
  torch::manual_seed(3);
  Classifier net(ClassifierOptions().backbone(BackboneOptions().width(0.125)).input_size(224).fc_channels(24).num_classes(5));
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) p.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(p.numel() / p.size(0))));
  net->eval();
  return net;
}

TEST(Convolutionalize, SameParametersNoneRetrained) {
  auto classifier = small_classifier();
  auto conv = convolutionalize(*classifier);
  EXPECT_EQ(parameter_count(*conv), parameter_count(*classifier));
  EXPECT_EQ(conv->fc6->weight.sizes(), (std::vector<int64_t>{24, 64, 7, 7}));
}

TEST(Convolutionalize, TrainingSizeGivesTheClassifierLogits) {
  auto classifier = small_classifier();
  auto conv = convolutionalize(*classifier);
  conv->eval();
  c10::InferenceMode guard;
  const auto x = torch::randn({2, 3, 224, 224});
  const auto heatmap = conv->forward(x);
  ASSERT_EQ(heatmap.sizes(), (std::vector<int64_t>{2, 5, 1, 1}));
  const auto logits = classifier->forward(x);
  EXPECT_LT((heatmap.flatten(1) - logits).abs().max().item<float>(), 1e-4f * logits.abs().max().item<float>());
}

TEST(Convolutionalize, LargerInputGivesAHeatmapOfWindowLogits) {
  auto classifier = small_classifier();
  auto conv = convolutionalize(*classifier);
  conv->eval();
  c10::InferenceMode guard;
  const auto x = torch::randn({1, 3, 384, 416});
  const auto heatmap = conv->forward(x);
  ASSERT_EQ(heatmap.sizes(), (std::vector<int64_t>{1, 5, 6, 7}));
  // Cell (i, j) = the dense head on the 7x7 pool5 window at (i, j), i.e. stride 32 in the input.
  const auto pool5 = classifier->backbone->forward(x).stride32;
  ASSERT_EQ(pool5.sizes(), (std::vector<int64_t>{1, 64, 12, 13}));
  const float scale = heatmap.abs().max().item<float>();
  for (int64_t i = 0; i < 6; ++i) {
    for (int64_t j = 0; j < 7; ++j) {
      const auto window = pool5.slice(2, i, i + 7).slice(3, j, j + 7).flatten(1);
      const auto expected = classifier->dense_head(window)[0];
      EXPECT_LT((heatmap.select(3, j).select(2, i)[0] - expected).abs().max().item<float>(), 1e-4f * scale)
          << "cell " << i << "," << j;
    }
  }
}

TEST(Convolutionalize, TooSmallInputNamesTheMinimum) {
  auto conv = convolutionalize(*small_classifier());
  try {
    conv->forward(torch::zeros({1, 3, 200, 300}));
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("224x224"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace fcn
