// Model files: every architecture round-trips with identical outputs and metadata; broken
// files are one-line errors naming the file (acceptance 7).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/classifier.h"
#include "fcn/models/fcn.h"
#include "fcn/models/registry.h"
#include "fcn/models/unet.h"
#include "fcn/formats/png.h"
#include "fcn/serialize/model_file.h"
#include "test_util.h"

namespace fcn {
namespace {

std::vector<std::shared_ptr<NetImpl>> every_arch() {
  const auto vgg = BackboneOptions().width(0.125);
  return {std::make_shared<ClassifierImpl>(ClassifierOptions().backbone(vgg).input_size(64).fc_channels(8).num_classes(3)),
          std::make_shared<ConvClassifierImpl>(ClassifierOptions().backbone(vgg).input_size(64).fc_channels(8).num_classes(3)),
          std::make_shared<FCNImpl>(FCNOptions().stride(8).backbone(vgg).geometry(Geometry::kReference).fc_channels(8).num_classes(3)),
          std::make_shared<FCNImpl>(FCNOptions().stride(16).backbone(vgg).fc_channels(8).num_classes(3).learnable_upsampling(false)),
          std::make_shared<UNetImpl>(UNetOptions().depth(2).base_channels(4).batch_norm(true).padding(Padding::kValid))};
}

TEST(ModelFile, EveryArchRoundTrips) {
  const std::string path = test::temp_dir() + "/model.fcn";
  for (auto& net : every_arch()) {
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) p.normal_();
    net->eval();
    Model model{net, default_meta(net->num_classes(), net->in_channels())};
    model.meta.class_names[1] = "cat";
    save_model(path, model);
    const auto loaded = load_model(path);
    EXPECT_EQ(loaded.net->arch(), net->arch());
    EXPECT_EQ(net_config(*loaded.net), net_config(*net));
    EXPECT_EQ(loaded.meta.class_names[1], "cat");
    EXPECT_EQ(loaded.meta.palette[1], (std::array<uint8_t, 3>{128, 0, 0}));  // VOC: class 1 is maroon
    const auto x = torch::randn({1, 3, 92, 92});
    EXPECT_TRUE(torch::equal(loaded.net->forward(x), net->forward(x))) << net->arch();
  }
}

// A 2.5-D net's slice context travels with it (absent from files of one slice); one that does not match
// the net's inputs (2N + 1 slices as channels) is refused by name.
TEST(ModelFile, SliceContextRoundTripsAndMustMatchTheInputs) {
  const std::string path = test::temp_dir() + "/context.fcn";
  Model model{std::make_shared<UNetImpl>(UNetOptions().depth(1).base_channels(4).in_channels(3)), default_meta(2, 3)};
  save_model(path, model);
  EXPECT_EQ(load_model(path).meta.slice_context, 0);
  EXPECT_FALSE(meta_to_json(model.meta).contains("slice_context"));
  model.meta.slice_context = 1;
  save_model(path, model);
  EXPECT_EQ(load_model(path).meta.slice_context, 1);
  EXPECT_NE(test::error_of([&] { model_input(load_model(path), torch::rand({1, 8, 8}), "gray.png"); })
                .find("gray.png: has 1 channel(s), and the model is a 2.5-D net"),
            std::string::npos);  // not three equal slices without a word
  EXPECT_EQ(model_input(load_model(path), torch::rand({3, 8, 8}), "rgb.png").sizes(), (std::vector<int64_t>{1, 3, 8, 8}));
  model.meta.slice_context = 2;  // 5 slices for a net of 3 inputs
  save_model(path, model);
  const auto error = test::error_of([&] { load_model(path); });
  EXPECT_NE(error.find("context.fcn: slice_context 2 gives a net 5 slices of each channel as its inputs, but it has 3 inputs"), std::string::npos) << error;
  Model two{std::make_shared<UNetImpl>(UNetOptions().depth(1).base_channels(4).in_channels(6)), default_meta(2, 6)};
  two.meta.slice_context = 1;  // two channels' slices k-1..k+1
  save_model(path, two);
  EXPECT_EQ(model_input(load_model(path), torch::rand({6, 8, 8}), "six.npy").sizes(), (std::vector<int64_t>{1, 6, 8, 8}));
  const auto three = test::error_of([&] { model_input(load_model(path), torch::rand({3, 8, 8}), "rgb.png"); });
  EXPECT_NE(three.find("rgb.png: has 3 channel(s), and the model is a 2.5-D net that takes 6: a volume's slices k-1..k+1 of each of its 2 channels"),
            std::string::npos)
      << three;
  auto json = meta_to_json(model.meta);
  json["slice_context"] = -1;
  EXPECT_NE(test::error_of([&] { meta_from_json(json, "m"); }).find("slice_context -1 is not 0..8"), std::string::npos);
}

// The pixels a net was trained on (fcn data unstack --spacing) travel with it, absent where slices were as
// stored; a size that is not one is refused by name.
TEST(ModelFile, PixelSizeRoundTripsAndIsChecked) {
  const std::string path = test::temp_dir() + "/pixels.fcn";
  Model model{std::make_shared<UNetImpl>(UNetOptions().depth(1).base_channels(4).in_channels(1)), default_meta(2, 1)};
  save_model(path, model);
  EXPECT_EQ(load_model(path).meta.pixel_mm, std::nullopt);
  EXPECT_FALSE(meta_to_json(model.meta).contains("pixel_mm"));
  model.meta.pixel_mm = {{0.8, 0.75}};
  save_model(path, model);
  EXPECT_EQ(load_model(path).meta.pixel_mm, (std::optional<std::array<double, 2>>{{0.8, 0.75}}));
  auto json = meta_to_json(model.meta);
  json["pixel_mm"] = {0.8, -1};
  EXPECT_EQ(test::error_of([&] { meta_from_json(json, "m"); }), "m: pixel_mm: a pixel's sides must be 0.001..1000 mm (got 0.8 x -1)");
  json["pixel_mm"] = {0.8};
  EXPECT_NE(test::error_of([&] { meta_from_json(json, "m"); }).find("m: bad model metadata"), std::string::npos);
  // The orientation its slices were cut in, the same way.
  EXPECT_FALSE(meta_to_json(model.meta).contains("axes"));
  model.meta.axes = "RAS";
  save_model(path, model);
  EXPECT_EQ(load_model(path).meta.axes, "RAS");
  json = meta_to_json(model.meta);
  json["axes"] = "RAR";
  EXPECT_EQ(test::error_of([&] { meta_from_json(json, "m"); }), "m: axes 'RAR' is not an orientation (three letters, one of R/L, A/P and S/I each)");
}

TEST(ModelFile, TruncatedFileIsAOneLineErrorNamingIt) {
  const std::string path = test::temp_dir() + "/cut.fcn";
  auto net = every_arch()[2];
  save_model(path, {net, default_meta(3, 3)});
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  const auto message = test::error_of([&] { load_model(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(ModelFile, ForeignFilesAreRejectedByName) {
  const std::string text = test::temp_dir() + "/text.fcn";
  std::ofstream(text) << "not a model";
  EXPECT_NE(test::error_of([&] { load_model(text); }).find("not an fcn model file"), std::string::npos);
  const std::string png = test::temp_dir() + "/photo.png";  // fcn predict photo.png model.fcn: the arguments swapped
  write_png(png, torch::zeros({2, 2, 1}, torch::kByte));
  EXPECT_NE(test::error_of([&] { load_model(png); }).find("photo.png: is an image, not a model file: the model comes first"), std::string::npos);
  // A weights file is a zip archive too, but not a model.
  const auto weights = test::golden("small_vgg16.pth");
  const auto message = test::error_of([&] { load_model(weights); });
  EXPECT_NE(message.find(weights), std::string::npos) << message;
  // Each weights format is named as one, with the command that makes a model of it (was "no 'format' entry").
  EXPECT_NE(message.find("is a weights file (a PyTorch state dict), not an fcn model file: fcn import auto " + weights), std::string::npos) << message;
  for (const auto& [file, kind] : std::vector<std::pair<std::string, std::string>>{{"small_vgg16_legacy.pth", "a state dict in torch.save's legacy format"},
                                                                                   {"small_vgg16.safetensors", "safetensors"}})
    EXPECT_NE(test::error_of([&] { load_model(test::golden(file)); }).find("is a weights file (" + kind + "), not an fcn model file"), std::string::npos)
        << file;
}

}  // namespace
}  // namespace fcn
