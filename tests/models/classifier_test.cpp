// Classifier vs torchvision: the same weights (imported from the .pth torchvision writes) give
// the same logits (acceptance 1 of the foundation issue).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/formats/npy.h"
#include "fcn/serialize/weights.h"
#include "test_util.h"

namespace fcn {
namespace {

TEST(ClassifierGolden, TorchvisionVgg16LogitsMatch) {
  auto net = import_torchvision_vgg(read_state_dict(test::golden("vgg16.pth")), "vgg16.pth");
  EXPECT_EQ(net->options.kernel(), 7);
  EXPECT_EQ(net->options.fc_channels(), 4096);
  EXPECT_EQ(net->options.num_classes(), 1000);
  net->eval();
  c10::InferenceMode guard;
  const auto y = net->forward(read_npy(test::golden("vgg16_input.npy")));
  EXPECT_LE(test::relative_error(y, read_npy(test::golden("vgg16_output.npy"))), 1e-4);
}

TEST(ClassifierGolden, SmallTorchvisionLayoutFromPthAndSafetensors) {
  const auto expected = read_npy(test::golden("small_vgg16_output.npy"));
  const auto x = read_npy(test::golden("small_vgg16_input.npy"));
  for (const char* file : {"small_vgg16.pth", "small_vgg16.safetensors"}) {
    auto net = import_torchvision_vgg(read_state_dict(test::golden(file)), file);
    EXPECT_EQ(net->options.backbone().width(), 0.25) << file;
    EXPECT_EQ(net->options.input_size(), 64) << file;  // 2x2 pool5 window
    net->eval();
    c10::InferenceMode guard;
    EXPECT_LE(test::relative_error(net->forward(x), expected), 1e-5) << file;
  }
}

TEST(Classifier, RejectsInputsSmallerThanFivePools) {
  Classifier net(ClassifierOptions().backbone(BackboneOptions().width(0.125)).input_size(32).fc_channels(8).num_classes(3));
  const auto message = test::error_of([&] { net->forward(torch::zeros({1, 3, 31, 40})); });
  EXPECT_NE(message.find("31x40"), std::string::npos) << message;
}

}  // namespace
}  // namespace fcn
