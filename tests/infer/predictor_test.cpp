// Inference: whole-image prediction equals the net's forward, overlap-tiled prediction equals
// whole-image prediction (exactly for a valid U-Net, whose receptive field is its border; within a
// stated tolerance for a trained FCN-8s), test-time augmentation is the average it claims, and
// bad images are clear errors or handled.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/data/fashion_scenes.h"
#include "fcn/eval/evaluate.h"
#include "fcn/formats/image.h"
#include "fcn/formats/npy.h"
#include "fcn/formats/png.h"
#include "fcn/infer/heatmap.h"
#include "fcn/infer/picture.h"
#include "fcn/infer/predictor.h"
#include "fcn/models/classifier.h"
#include "fcn/models/convolutionalize.h"
#include "fcn/models/fcn.h"
#include "fcn/models/unet.h"
#include "fcn/train/trainer.h"
#include "test_util.h"

namespace fcn {
namespace {

namespace fs = std::filesystem;

void randomize(torch::nn::Module& net, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : net.parameters()) p.normal_(0, 0.1);
}

Model random_unet(Padding padding, int64_t in_channels = 1) {
  Model model;
  model.net = std::make_shared<UNetImpl>(
      UNetOptions().depth(2).base_channels(4).in_channels(in_channels).num_classes(3).padding(padding));
  randomize(*model.net, 3);
  model.meta = default_meta(3, in_channels);
  return model;
}

Model random_fcn8s(int64_t in_channels = 3) {
  Model model;
  model.net = std::make_shared<FCNImpl>(
      FCNOptions().stride(8).num_classes(4).backbone(BackboneOptions().width(0.0625).in_channels(in_channels)).fc_channels(8).fc_kernel(1));
  randomize(*model.net, 4);
  model.meta = default_meta(4, in_channels);
  return model;
}

// The model's prediction of `image` whole and with --tile/--overlap.
std::pair<Prediction, Prediction> whole_and_tiled(const Model& model, const torch::Tensor& image, int64_t tile, int64_t overlap) {
  PredictOptions tiled;
  tiled.tile = tile;
  tiled.overlap = overlap;
  return {Predictor(model)(image), Predictor(model, torch::kCPU, tiled)(image)};
}

double label_agreement(const Prediction& a, const Prediction& b) {
  return a.labels.eq(b.labels).to(torch::kDouble).mean().item<double>();
}

TEST(MirrorPad, EqualsPeriodicReflectionForAnyAmount) {
  const auto x = torch::arange(5, torch::kFloat).view({1, 1, 1, 5}).expand({1, 1, 2, 5}).contiguous();
  const auto y = mirror_pad(x, 0, 0, 13, 11);  // pads far larger than the side
  ASSERT_EQ(y.size(3), 5 + 13 + 11);
  // Reflection without repeating the edge has period 2 * (5 - 1) = 8: index i -> |((i mod 8) + 8) mod 8 ...|
  for (int64_t j = 0; j < y.size(3); ++j) {
    int64_t i = ((j - 13) % 8 + 8) % 8;
    if (i > 4) i = 8 - i;
    EXPECT_EQ(y[0][0][1][j].item<float>(), static_cast<float>(i)) << "column " << j;
  }
  EXPECT_TRUE(torch::equal(mirror_pad(x, 1, 1, 2, 3), torch::reflection_pad2d(x, {2, 3, 1, 1})));
  const auto one = torch::ones({1, 1, 1, 1});
  EXPECT_TRUE(torch::equal(mirror_pad(one, 2, 2, 2, 2), torch::ones({1, 1, 5, 5})));
}

TEST(TileWindow, SmoothSymmetricAndOneInside) {
  const auto w = tile_window(256, 64);
  EXPECT_TRUE(torch::equal(w, w.flip({0})));
  EXPECT_GT(w.min().item<float>(), 0.0f);
  EXPECT_LT(w[0].item<float>(), 1e-3f);
  EXPECT_EQ(w.slice(0, 64, 192).min().item<float>(), 1.0f);
  EXPECT_TRUE((w.slice(0, 1, 64) >= w.slice(0, 0, 63)).all().item<bool>());  // rises monotonically
}

// class_labels is argmax(0), faster: random scores of 1, 2, 11 and 150 classes, and ties (scores rounded
// to a few values), where the first class of the largest score wins as in argmax.
// Outlines by hand: two objects side by side show the line between them (drawn on both sides),
// inner pixels and background keep the picture, and the image's edge is no other id.
// Three 2 x 2 pictures in rows of 2 with a 1-pixel gutter: 5 x 5, the fourth place and the gutters white.
TEST(Picture, GridLaysPicturesInRowsWithWhiteGutters) {
  std::vector<torch::Tensor> pictures;
  for (int v : {10, 20, 30}) pictures.push_back(torch::full({2, 2, 3}, v, torch::kByte));
  const auto laid = grid(pictures, 2, 1);
  ASSERT_EQ(laid.sizes(), (std::vector<int64_t>{5, 5, 3}));
  const auto value = [&](int64_t y, int64_t x) { return laid[y][x][0].item<int>(); };
  EXPECT_EQ(std::make_tuple(value(0, 0), value(1, 1), value(0, 3), value(4, 1), value(4, 4)), std::make_tuple(10, 10, 20, 30, 255));
  EXPECT_EQ(std::make_tuple(value(0, 2), value(2, 0)), std::make_tuple(255, 255));  // gutters
}

TEST(Picture, OutlinesMarkEachObjectsPixelsBesideAnotherId) {
  const auto ids = torch::tensor({{0, 0, 0, 0, 0, 0, 0, 0},  //
                                  {0, 1, 1, 1, 2, 2, 2, 0},
                                  {0, 1, 1, 1, 2, 2, 2, 0},
                                  {0, 1, 1, 1, 2, 2, 2, 0},
                                  {0, 0, 0, 0, 0, 0, 0, 0},
                                  {3, 3, 3, 0, 0, 0, 0, 0},
                                  {3, 3, 3, 0, 0, 0, 0, 0},
                                  {3, 3, 3, 0, 0, 0, 0, 0}},
                                 torch::kLong);
  const auto expected = torch::tensor({{0, 0, 0, 0, 0, 0, 0, 0},  //
                                       {0, 1, 1, 1, 1, 1, 1, 0},
                                       {0, 1, 0, 1, 1, 0, 1, 0},
                                       {0, 1, 1, 1, 1, 1, 1, 0},
                                       {0, 0, 0, 0, 0, 0, 0, 0},
                                       {1, 1, 1, 0, 0, 0, 0, 0},
                                       {0, 0, 1, 0, 0, 0, 0, 0},
                                       {0, 0, 1, 0, 0, 0, 0, 0}},
                                      torch::kBool);
  const auto picture = torch::full({8, 8, 3}, 7, torch::kByte);
  const auto drawn = with_outlines(picture, ids, {200, 100, 50});
  const auto edge = drawn.select(2, 0).eq(200);
  EXPECT_TRUE(torch::equal(edge, expected)) << edge;
  EXPECT_TRUE(drawn.select(2, 1).masked_select(edge).eq(100).all().item<bool>());
  const auto kept = edge.logical_not().unsqueeze(2).expand({8, 8, 3});
  EXPECT_TRUE(torch::equal(drawn.masked_select(kept), picture.masked_select(kept)));
}

TEST(Predictor, ClassLabelsAreArgmaxOverTheClassPlanes) {
  torch::manual_seed(5);
  for (const int64_t classes : {1, 2, 11, 150}) {
    const auto scores = torch::randn({classes, 37, 53});
    EXPECT_TRUE(torch::equal(class_labels(scores), scores.argmax(0))) << classes;
    const auto tied = scores.mul(1.5).round();  // about seven values: many pixels with two classes tied
    EXPECT_TRUE(torch::equal(class_labels(tied), tied.argmax(0))) << classes;
    EXPECT_EQ(class_labels(tied).scalar_type(), torch::kLong);
  }
  const auto all_equal = torch::zeros({4, 3, 3});
  EXPECT_EQ(class_labels(all_equal).max().item<int64_t>(), 0);
  EXPECT_NE(test::error_of([] { class_labels(torch::zeros({3, 3})); }).find("K x H x W"), std::string::npos);
}

TEST(Predictor, WholeImageIsTheNetOnTheMirrorPaddedImage) {
  const auto model = random_fcn8s();
  const Predictor predict(model);
  torch::manual_seed(0);
  const auto image = torch::rand({3, 45, 70});
  const auto logits = predict.logits(image);
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{4, 45, 70}));
  c10::InferenceMode guard;
  const auto input = torch::reflection_pad2d(normalize(image, model.meta.normalization).unsqueeze(0), {0, 26, 0, 19});
  const auto expected = model.net->forward(input)[0].slice(1, 0, 45).slice(2, 0, 70);
  EXPECT_LE(test::relative_error(logits, expected), 1e-6);
  const auto result = predict(image);
  EXPECT_TRUE(torch::equal(result.labels, expected.argmax(0)));
  EXPECT_LE((result.probs.sum(0) - 1).abs().max().item<float>(), 1e-5f);
}

// Same-size images in one forward pass: the predictions of one at a time (float rounding aside);
// other sizes, and bad images, one at a time, each error naming its image.
TEST(Predictor, ImagesTogetherEqualOneAtATime) {
  const auto model = random_fcn8s();
  const Predictor predict(model);
  torch::manual_seed(1);
  const std::vector<torch::Tensor> images = {torch::rand({3, 45, 70}), torch::rand({3, 45, 70}), torch::rand({3, 45, 70})};
  const auto together = predict(images, {"a.png", "b.png", "c.png"});
  ASSERT_EQ(together.size(), 3u);
  for (size_t i = 0; i < images.size(); ++i) {
    const auto alone = predict(images[i]);
    EXPECT_LE((together[i].probs - alone.probs).abs().max().item<float>(), 1e-5f) << i;
    EXPECT_GE(label_agreement(together[i], alone), 0.999) << i;
    EXPECT_EQ(together[i].milliseconds, together[0].milliseconds) << "one pass: each image its equal share";
  }
  const auto mixed = predict({images[0], torch::rand({3, 33, 40})}, {"a.png", "d.png"});
  ASSERT_EQ(mixed.size(), 2u);
  EXPECT_EQ(mixed[1].labels.sizes(), (std::vector<int64_t>{33, 40}));
  EXPECT_TRUE(torch::equal(mixed[0].labels, predict(images[0]).labels));
  EXPECT_NE(test::error_of([&] { predict({images[0], torch::rand({3, 0, 70})}, {"a.png", "empty.png"}); }).find("empty.png"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { predict(images, {"a.png"}); }).find("source names"), std::string::npos);
}

// fcn::evaluate with options.batch > 1 (training's validation, fcn eval): the confusion matrix of one
// image at a time.
TEST(Predictor, EvaluateInPassesCountsAsOneAtATime) {
  const std::string dir = test::temp_dir() + "/eval_passes";
  fs::remove_all(dir);
  write_fashion_scenes(dir, FashionScenesOptions().train(7).val(1).size(32).seed(2));
  const SegmentationDataset scenes(dir, "train");
  Model model;
  model.net = std::make_shared<FCNImpl>(
      FCNOptions().stride(8).num_classes(scenes.num_classes()).backbone(BackboneOptions().width(0.0625).in_channels(1)).fc_channels(8).fc_kernel(1));
  randomize(*model.net, 5);
  model.meta = default_meta(scenes.num_classes(), 1);
  PredictOptions passes;
  passes.batch = 3;  // 7 images: passes of 3, 3 and 1
  const auto one = evaluate(model, scenes).matrix(), batched = evaluate(model, scenes, passes).matrix();
  EXPECT_GT(one.sum().item<int64_t>(), 6 * 32 * 32);  // every image scored (void pixels aside)
  EXPECT_EQ(batched.sum().item<int64_t>(), one.sum().item<int64_t>());
  EXPECT_LE((one - batched).abs().sum().item<int64_t>(), 4) << "at most a near-tie pixel or two may flip";
  // Each image's own scores, in split order, add up to the split's pixels.
  std::vector<ImageScore> per_image;
  const auto with_scores = evaluate(model, scenes, passes, torch::kCPU, true, {nullptr, nullptr, &per_image}).matrix();
  ASSERT_EQ(per_image.size(), 7u);
  int64_t pixels = 0;
  for (size_t i = 0; i < per_image.size(); ++i) {
    EXPECT_EQ(per_image[i].index, i);
    EXPECT_EQ(per_image[i].image, scenes.image_path(i));
    EXPECT_TRUE(per_image[i].metrics.mean_iu >= 0 && per_image[i].metrics.mean_iu <= 1) << i;
    pixels += per_image[i].pixels;
  }
  EXPECT_EQ(pixels, with_scores.sum().item<int64_t>());
  EXPECT_TRUE(torch::equal(with_scores, batched));
}

// A model scored on a dataset that names its classes in another order is an error naming the first that differs:
// scores are taken index by index (before, each class was scored against another's truth without a word). The same
// names in the same order, renamed classes, and a model's default names are scored.
TEST(Predictor, EvaluateRefusesTheModelsClassesInAnotherOrder) {
  const std::string dir = test::temp_dir() + "/eval_order";
  fs::remove_all(dir);
  write_fashion_scenes(dir, FashionScenesOptions().train(2).val(1).size(32).seed(2));
  const SegmentationDataset scenes(dir, "train");
  Model model;
  model.net = std::make_shared<UNetImpl>(UNetOptions().depth(1).base_channels(2).in_channels(1).num_classes(scenes.num_classes()));
  model.meta = default_meta(scenes.num_classes(), 1);
  EXPECT_NO_THROW(evaluate(model, scenes));  // class_0, class_1, ...
  model.meta.class_names = scenes.class_names();
  EXPECT_NO_THROW(evaluate(model, scenes));
  model.meta.class_names.back() = "boot";  // renamed: not checked
  EXPECT_NO_THROW(evaluate(model, scenes));
  model.meta.class_names = scenes.class_names();
  std::swap(model.meta.class_names[3], model.meta.class_names[5]);
  const auto message = test::error_of([&] { evaluate(model, scenes); });
  EXPECT_EQ(message, dir + ": names the model's classes in another order (its class 3 is '" + scenes.class_names()[3] + "', the model's is '" +
                         scenes.class_names()[5] + "'): fcn pairs classes by index, so each would meet another's truth; relabel the "
                         "masks in the model's order, or train a new model on this dataset");
}

// Masks made elsewhere are scored as the model is: the labels Predictor gives, written as palette PNGs
// (ID.png, as fcn predict names them), score the same confusion matrix; the ground truth scores
// perfectly; a missing, mis-sized or void prediction is an error naming its file.
TEST(Predictor, EvaluateMasksScoresWrittenLabelsAsTheModelIsScored) {
  const std::string dir = test::temp_dir() + "/eval_masks", predicted = dir + "-predicted";
  fs::remove_all(dir);
  fs::remove_all(predicted);
  fs::create_directories(predicted);
  write_fashion_scenes(dir, FashionScenesOptions().train(5).val(1).size(32).seed(4));
  const SegmentationDataset scenes(dir, "train");
  Model model;
  model.net = std::make_shared<FCNImpl>(
      FCNOptions().stride(8).num_classes(scenes.num_classes()).backbone(BackboneOptions().width(0.0625).in_channels(1)).fc_channels(8).fc_kernel(1));
  randomize(*model.net, 6);
  model.meta = default_meta(scenes.num_classes(), 1);
  PredictOptions one_at_a_time;
  one_at_a_time.batch = 1;
  const Predictor predict(model, torch::kCPU, one_at_a_time);
  for (size_t i = 0; i < scenes.size(); ++i)
    write_png_indexed(predicted_mask_path(predicted, scenes, i), predict(scenes.image_path(i)).labels.to(torch::kByte), model.meta.palette);
  const auto by_model = evaluate(model, scenes, one_at_a_time).matrix();
  std::vector<ImageScore> per_image;
  const auto by_masks = evaluate_masks(predicted, scenes, true, {nullptr, nullptr, &per_image}).matrix();
  EXPECT_TRUE(torch::equal(by_masks, by_model)) << by_masks << by_model;
  // Another framework's masks, ID.npy (or ID.tif) where there is no ID.png, are scored alike (they were "missing").
  const auto npy = predicted + "/" + scenes.id(2) + ".npy";
  write_npy(npy, predict(scenes.image_path(2)).labels.to(torch::kInt).contiguous());
  fs::remove(predicted + "/" + scenes.id(2) + ".png");
  EXPECT_EQ(predicted_mask_path(predicted, scenes, 2), npy);
  EXPECT_TRUE(torch::equal(evaluate_masks(predicted, scenes).matrix(), by_model));
  std::ofstream(predicted + "/" + scenes.id(2) + ".tif") << "x";  // two masks of one image: which to score is the user's call
  EXPECT_NE(test::error_of([&] { evaluate_masks(predicted, scenes); }).find(scenes.id(2) + ".tif are both predictions for "), std::string::npos);
  fs::remove(predicted + "/" + scenes.id(2) + ".tif");
  fs::remove(npy);
  write_png_indexed(predicted_mask_path(predicted, scenes, 2), predict(scenes.image_path(2)).labels.to(torch::kByte), model.meta.palette);
  ASSERT_EQ(per_image.size(), scenes.size());
  EXPECT_EQ(per_image[2].image, scenes.image_path(2));
  const auto truth = evaluate_masks(dir + "/SegmentationClass", scenes).metrics();  // the ground truth as predictions
  EXPECT_EQ(truth.pixel_acc, 1.0);
  EXPECT_EQ(truth.mean_iu, 1.0);
  // Bad predictions: each named, left out where a list is given.
  write_png_indexed(predicted_mask_path(predicted, scenes, 0), torch::zeros({31, 32}, torch::kByte), model.meta.palette);
  write_png_indexed(predicted_mask_path(predicted, scenes, 1), torch::full({32, 32}, 255, torch::kByte), model.meta.palette);
  fs::remove(predicted_mask_path(predicted, scenes, 2));
  std::vector<std::string> skipped;
  const auto rest = evaluate_masks(predicted, scenes, true, {nullptr, &skipped}).matrix();
  ASSERT_EQ(skipped.size(), 3u);
  EXPECT_NE(skipped[0].find(scenes.id(0) + ".png: is 32x31 but its ground truth "), std::string::npos) << skipped[0];
  EXPECT_NE(skipped[1].find(scenes.id(1) + ".png: label 255 (void) at (0,0): a prediction gives every pixel a class"), std::string::npos)
      << skipped[1];
  EXPECT_NE(skipped[2].find(scenes.id(2) + ".png: missing: no prediction for "), std::string::npos) << skipped[2];
  EXPECT_EQ(rest.sum().item<int64_t>(), by_model.sum().item<int64_t>() - per_image[0].pixels - per_image[1].pixels - per_image[2].pixels);
  EXPECT_NE(test::error_of([&] { evaluate_masks(predicted, scenes); }).find(scenes.id(0) + ".png: is 32x31"), std::string::npos);
  EXPECT_NE(test::error_of([&] { evaluate_masks(dir + "/nothing", scenes); }).find("nothing: is neither a folder of predicted masks"), std::string::npos);
}

TEST(Predictor, ValidUNetTilesEqualTheWholeImage) {
  // A valid U-Net's output pixel sees exactly its border's worth of input, so with mirrored
  // borders every tile computes the same numbers as the whole image.
  const auto model = random_unet(Padding::kValid);
  torch::manual_seed(1);
  const auto image = torch::rand({1, 150, 211});
  const auto whole = Predictor(model).logits(image);
  PredictOptions tiled;
  tiled.tile = 60;  // not legal for depth 2: rounded up to the next legal side
  tiled.overlap = 8;
  tiled.batch = 3;
  const auto tiles = Predictor(model, torch::kCPU, tiled).logits(image);
  ASSERT_EQ(whole.sizes(), (std::vector<int64_t>{3, 150, 211}));
  EXPECT_LE(test::relative_error(tiles, whole), 1e-5);
}

TEST(Predictor, SameUNetAndFcnTilesAreSeamlessAwayFromSeams) {
  // Same-padded nets see zeros at tile borders instead of the image, so tiles differ from the
  // whole image near tile edges; the smooth window hides them. Labels agree almost everywhere.
  for (const auto& model : {random_unet(Padding::kSame), random_fcn8s(1)}) {
    torch::manual_seed(2);
    const auto [whole, tiles] = whole_and_tiled(model, torch::rand({1, 130, 300}), 128, 32);
    EXPECT_GE(label_agreement(whole, tiles), 0.95) << model.net->arch();
  }
}

// A 500 x 700 poster of Fashion-MNIST scenes (the demo's kind of image).
std::pair<torch::Tensor, torch::Tensor> poster(int64_t height, int64_t width) {
  const auto items = read_fashion_mnist("t10k");
  const auto options = FashionScenesOptions().size(64).seed(11);
  auto image = torch::zeros({(height + 63) / 64 * 64, (width + 63) / 64 * 64}, torch::kByte);
  auto mask = torch::zeros_like(image);
  int64_t index = 0;
  for (int64_t y = 0; y < image.size(0); y += 64)
    for (int64_t x = 0; x < image.size(1); x += 64) {
      const auto scene = compose_scene(items, options, "val", index++);
      image.slice(0, y, y + 64).slice(1, x, x + 64).copy_(scene.image);
      mask.slice(0, y, y + 64).slice(1, x, x + 64).copy_(scene.mask);
    }
  return {image.slice(0, 0, height).slice(1, 0, width).unsqueeze(0).to(torch::kFloat).div(255),
          mask.slice(0, 0, height).slice(1, 0, width).to(torch::kLong)};
}

TEST(Predictor, TiledEqualsWholeOnA700x500SceneForATrainedFcn8s) {
  // Issue acceptance: --tile 256 --overlap 64 agrees with whole-image labels on >= 99.5% of the
  // pixels, and probabilities agree within 1e-3 away from the seams (the overlap bands, widened
  // by `kSeam` pixels) and from the image border.
  const std::string dir = test::temp_dir() + "/tile_scenes";
  fs::remove_all(dir);
  write_fashion_scenes(dir, FashionScenesOptions().train(32).val(1).size(64).seed(7));
  torch::manual_seed(5);
  Model model;
  model.net = std::make_shared<FCNImpl>(
      FCNOptions().stride(8).num_classes(11).backbone(BackboneOptions().width(0.125).in_channels(1)).fc_channels(32).fc_kernel(1).dropout(0));
  model.meta = default_meta(11, 1);
  const SegmentationDataset train(dir, "train");
  train_segmentation(model, train, nullptr,
                     TrainOptions().run_dir(test::temp_dir() + "/tile_run").epochs(6).batch_size(4).quiet(true).seed(1).optimizer(
                         OptimizerOptions().name("adamw").lr(3e-3).weight_decay(0)));

  const auto [image, mask] = poster(500, 700);
  const auto [whole, tiles] = whole_and_tiled(model, image, 256, 64);
  const double agree = label_agreement(whole, tiles);
  EXPECT_GE(agree, 0.995);
  // Background is about half of the poster; above it, the model has learned something.
  EXPECT_GE(whole.labels.eq(mask).to(torch::kDouble).mean().item<double>(), 0.55) << "the model did not learn";

  // Tiles start every 192 px; overlap bands are [192k, 192k + 64). Away from them and the border:
  constexpr int64_t kSeam = 32;
  auto away = torch::ones({500, 700}, torch::kBool);
  for (int64_t start = 192; start < 700; start += 192) {
    away.slice(0, std::max<int64_t>(0, start - kSeam), std::min<int64_t>(500, start + 64 + kSeam)).fill_(false);
    away.slice(1, std::max<int64_t>(0, start - kSeam), start + 64 + kSeam).fill_(false);
  }
  away.slice(0, 500 - kSeam, 500).fill_(false);
  away.slice(1, 700 - kSeam, 700).fill_(false);
  const auto difference = (whole.probs - tiles.probs).abs().amax(0).masked_select(away);
  ASSERT_GT(difference.numel(), 500 * 700 / 6);
  EXPECT_LE(difference.max().item<float>(), 1e-3f) << "label agreement " << agree;
}

TEST(Predictor, FlipTtaAveragesTheMirroredPrediction) {
  const auto model = random_fcn8s();
  torch::manual_seed(3);
  const auto image = torch::rand({3, 40, 56});
  PredictOptions options;
  options.flip = true;
  const auto tta = Predictor(model, torch::kCPU, options)(image);
  const Predictor plain(model);
  const auto expected = (torch::softmax(plain.logits(image), 0) + torch::softmax(plain.logits(image.flip({2})), 0).flip({2})) / 2;
  EXPECT_LE((tta.probs - expected).abs().max().item<float>(), 1e-6f);
  options.rot90 = true;
  EXPECT_LE((Predictor(model, torch::kCPU, options)(image).probs.sum(0) - 1).abs().max().item<float>(), 1e-5f);
  // All eight views of a 40 x 56 image: the 40 x 56 and the 56 x 40 ones each go through the net
  // together; the same as each view alone, turned back and averaged.
  auto all_views = torch::zeros_like(expected);
  for (const bool flip : {false, true})
    for (int64_t r = 0; r < 4; ++r) {
      const auto seen = torch::rot90(flip ? image.flip({2}) : image, r, {1, 2});
      const auto back = torch::rot90(torch::softmax(plain.logits(seen), 0), -r, {1, 2});
      all_views += flip ? back.flip({2}) : back;
    }
  const auto eight = Predictor(model, torch::kCPU, options)(image);
  EXPECT_LE((eight.probs - all_views / 8).abs().max().item<float>(), 1e-5f);
  EXPECT_TRUE(torch::equal(eight.labels, eight.probs.argmax(0)));
}

TEST(Predictor, ScalesAverageTheProbabilitiesOfTheResizedImage) {
  const auto model = random_fcn8s();
  torch::manual_seed(4);
  const auto image = torch::rand({3, 40, 56});
  const Predictor plain(model);
  const auto at = [&](double scale) {  // the probabilities of the image resized by `scale`, resized back
    const int64_t h = std::llround(40 * scale), w = std::llround(56 * scale);
    const auto scaled = torch::upsample_bilinear2d(image.unsqueeze(0), {h, w}, false)[0];
    return torch::upsample_bilinear2d(torch::softmax(plain.logits(scaled), 0).unsqueeze(0), {40, 56}, false)[0];
  };
  PredictOptions options;
  options.scales = {0.5, 1, 1.5};
  const Predictor multi(model, torch::kCPU, options);
  EXPECT_FALSE(multi.passes_together());
  const auto expected = (at(0.5) + torch::softmax(plain.logits(image), 0) + at(1.5)) / 3;
  const auto result = multi(image);
  EXPECT_LE((result.probs - expected).abs().max().item<float>(), 1e-5f);
  EXPECT_TRUE(torch::equal(result.labels, result.probs.argmax(0)));
  EXPECT_GT((result.probs - plain(image).probs).abs().max().item<float>(), 1e-3f);  // the scales change it
  options.scales = {1.5, 0.5, 1};  // any order: the same average to the bit (fcn predict --skip-existing takes it as the same)
  EXPECT_TRUE(torch::equal(Predictor(model, torch::kCPU, options)(image).probs, result.probs));

  options.scales = {};
  EXPECT_NE(test::error_of([&] { Predictor(model, torch::kCPU, options); }).find("PredictOptions.scales: needs at least one"),
            std::string::npos);
  options.scales = {0};
  EXPECT_NE(test::error_of([&] { Predictor(model, torch::kCPU, options); }).find("PredictOptions.scales: each must be between"),
            std::string::npos);
  options.scales = {0.5};
  options.resize_height = options.resize_width = 32;
  EXPECT_NE(test::error_of([&] { Predictor(model, torch::kCPU, options); }).find("PredictOptions.scales: resize the images"),
            std::string::npos);
}

TEST(Predictor, ChannelsAreAdaptedAndBadImagesNamed) {
  const auto model = random_fcn8s(3);
  const Predictor predict(model);
  torch::manual_seed(4);
  const auto rgb = torch::rand({3, 33, 40});
  const auto rgba = torch::cat({rgb, torch::rand({1, 33, 40})});
  EXPECT_TRUE(torch::equal(predict(rgba).labels, predict(rgb).labels));  // alpha dropped
  const auto gray = torch::rand({1, 33, 40});
  EXPECT_TRUE(torch::equal(predict(gray).labels, predict(gray.expand({3, -1, -1})).labels));  // replicated
  const auto gray_alpha = torch::cat({gray, torch::rand({1, 33, 40})});  // a PNG's LA: the gray, replicated
  EXPECT_TRUE(torch::equal(predict(gray_alpha).labels, predict(gray.expand({3, -1, -1})).labels));
  // A .npy array's channels are data: one is replicated as gray is, none dropped (4 is no RGBA) or mixed.
  EXPECT_TRUE(torch::equal(predict(gray, "gray.npy").labels, predict(gray.expand({3, -1, -1})).labels));
  EXPECT_EQ(test::error_of([&] { predict(rgba, "bands.npy"); }),
            "bands.npy: has 4 channels (a .npy array: each one data, none dropped or mixed), the model takes 3");
  EXPECT_NE(test::error_of([&] { predict(torch::zeros({3, 0, 0}), "empty.png"); }).find("empty.png"), std::string::npos);
  EXPECT_NE(test::error_of([&] { predict(std::string("/nonexistent/x.png")); }).find("/nonexistent/x.png"), std::string::npos);
  Model classifier;
  classifier.net = std::make_shared<ClassifierImpl>(
      ClassifierOptions().backbone(BackboneOptions().width(0.0625)).input_size(32).fc_channels(8).num_classes(3));
  classifier.meta = default_meta(3, 3);
  EXPECT_NE(test::error_of([&] { Predictor{classifier}; }).find("heatmap"), std::string::npos);
  // Bad options are named as the C++ caller set them, not as CLI flags.
  PredictOptions bad;
  bad.tile = 64;
  bad.overlap = 64;
  EXPECT_EQ(test::error_of([&] { Predictor(model, torch::kCPU, bad); }).rfind("PredictOptions.overlap: 64 must be smaller", 0), 0u);
  bad.tile = 3;  // runs as the net's smallest legal input: the message says so
  EXPECT_EQ(test::error_of([&] { Predictor(model, torch::kCPU, bad); }),
            "PredictOptions.overlap: 64 must be smaller than the tiles' output side, 32 (tile 3 runs as the net's legal input 32)");
  PredictOptions threshold;
  threshold.threshold = 2;
  EXPECT_EQ(test::error_of([&] { Predictor(model, torch::kCPU, threshold); }), "PredictOptions.threshold: must be in (0, 1), got 2");
}

TEST(Predictor, NanScoresAreAnErrorNamingTheImageNotClassZero) {
  auto model = random_fcn8s(3);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model.net->parameters()) p.fill_(1e20);  // finite weights, activations past float32's range
  }
  torch::manual_seed(5);
  const auto image = torch::rand({3, 33, 40});
  const Predictor predict(model);
  const auto message = test::error_of([&] { predict(image, "scene.png"); });
  EXPECT_EQ(message.rfind("scene.png: the model scored NaN at ", 0), 0u) << message;
  EXPECT_NE(message.find(" of 1320 pixels"), std::string::npos) << message;
  // Together in one pass, each image is named.
  const auto together = test::error_of([&] { predict({image, image}, {"a.png", "b.png"}); });
  EXPECT_EQ(together.rfind("a.png: the model scored NaN", 0), 0u) << together;
}

TEST(Predictor, ColorizeAndOverlayUseThePalette) {
  Prediction p;
  p.labels = torch::tensor({0, 1, 2, 255}).view({2, 2});
  p.probs = torch::zeros({3, 2, 2});
  p.palette = {{0, 0, 0}, {128, 0, 0}, {0, 128, 0}};
  const auto colors = p.colorize();
  EXPECT_EQ(colors[0][1][0].item<int>(), 128);
  EXPECT_EQ(colors[1][0][1].item<int>(), 128);
  EXPECT_EQ(colors[1][1][0].item<int>(), 160);  // outside the palette: grey
  const auto image = torch::ones({1, 2, 2});
  const auto overlay = p.overlay(image, 0.5);
  EXPECT_EQ(overlay[0][1][0].item<int>(), 192);  // (255 + 128) / 2 rounded
  EXPECT_EQ(overlay[0][1][1].item<int>(), 128);
  EXPECT_EQ(p.class_pixels(), (std::vector<int64_t>{1, 1, 1}));
  // Past 4 channels (bands, not colour) the first in gray; a 2.5-D net's picture is its centre slice.
  const auto bands = torch::stack({torch::full({2, 2}, 0.2f), torch::full({2, 2}, 1.0f), torch::zeros({2, 2}), torch::zeros({2, 2}),
                                   torch::zeros({2, 2})});
  EXPECT_EQ(p.overlay(bands, 0.0)[0][0][1].item<int>(), 51);  // 0.2 * 255
  p.picture_channel = 1;
  EXPECT_TRUE(torch::equal(p.overlay(bands, 0.0), torch::full({2, 2, 3}, 255, torch::kByte)));
}

TEST(Heatmap, ConvolutionalizedClassifierGivesPerWindowProbabilities) {
  torch::manual_seed(6);
  Model model;
  auto classifier = std::make_shared<ClassifierImpl>(
      ClassifierOptions().backbone(BackboneOptions().width(0.0625).in_channels(1)).input_size(32).fc_channels(8).num_classes(3));
  randomize(*classifier, 6);
  model.net = classifier;
  model.meta = default_meta(3, 1);
  const auto image = torch::rand({1, 96, 64});
  const auto heatmap = class_heatmap(model, image, 2, "scene.png");
  ASSERT_EQ(heatmap.coarse.sizes(), (std::vector<int64_t>{3, 2}));
  ASSERT_EQ(heatmap.full.sizes(), (std::vector<int64_t>{96, 64}));
  // The class-2 softmax of the convolutionalized classifier on the normalised image (cell by cell
  // equal to the classifier on its window: tests/models/convolutionalize_test.cpp).
  c10::InferenceMode guard;
  auto conv = convolutionalize(*classifier);
  conv->eval();
  const auto expected = torch::softmax(conv->forward(normalize(image, model.meta.normalization).unsqueeze(0)), 1)[0][2];
  EXPECT_LE((heatmap.coarse - expected).abs().max().item<float>(), 1e-6f);
  // Bilinear upsampling keeps the coarse values' range.
  EXPECT_LE(heatmap.full.max().item<float>(), expected.max().item<float>() + 1e-6f);
  EXPECT_NE(test::error_of([&] { class_heatmap(model, torch::rand({1, 16, 16}), 0, "small.png"); }).find("small.png"),
            std::string::npos);
  EXPECT_EQ(class_index(model.meta, "class_1"), 1);
  EXPECT_NE(test::error_of([&] { class_index(model.meta, "cat"); }).find("class_0"), std::string::npos);
}

}  // namespace
}  // namespace fcn
