// NIfTI volumes segmented slice by slice (infer/volume.h): each slice as the Predictor segments the
// window-mapped image by hand, probabilities and objects gathered in place, a failed slice void and
// NaN, a stop after a slice, bad options one-line errors, and the picture's tiles as blended by hand.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/data/instances.h"
#include "fcn/infer/picture.h"
#include "fcn/infer/volume.h"
#include "fcn/models/unet.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"
#include "test_util.h"

namespace fcn {
namespace {

// A small gray U-Net, weights (and biases, unless zero_bias) normal with std `scale`: 0.1 labels
// these volumes in patches of classes 0 and 2, several objects through the slices.
Model gray_unet(double scale = 0.1, bool zero_bias = false) {
  Model model;
  torch::manual_seed(5);
  model.net = std::make_shared<UNetImpl>(UNetOptions().depth(2).base_channels(4).in_channels(1).num_classes(3).padding(Padding::kSame));
  torch::manual_seed(5);
  torch::NoGradGuard no_grad;
  for (auto& p : model.net->named_parameters()) {
    p.value().normal_(0, scale);
    if (zero_bias && p.key().find("bias") != std::string::npos) p.value().zero_();
  }
  model.meta = default_meta(3, 1);
  return model;
}

// A CT-like volume: `slices` x 20 x 24 int16 voxels in -1000..1000, in 4 x 4 patches.
NiftiVolume ct_volume(int64_t slices) {
  torch::manual_seed(9);
  NiftiVolume volume;
  volume.slices = slices, volume.height = 20, volume.width = 24;
  const auto patches = torch::randint(-1000, 1000, {slices, 5, 6}, torch::kShort);
  volume.voxels = patches.repeat_interleave(4, 1).repeat_interleave(4, 2).contiguous();
  return volume;
}

// Slice k as the net should see it: (v - low) / (high - low), clamped to 0..1, 1 x H x W.
torch::Tensor by_hand(const NiftiVolume& volume, int64_t k, double low, double high) {
  return ((volume.voxels[k].to(torch::kDouble) - low) / (high - low)).clamp(0, 1).to(torch::kFloat).unsqueeze(0);
}

TEST(SegmentVolume, EachSliceAsThePredictorSegmentsItWithProbabilitiesAndObjects) {
  const Predictor predictor(gray_unet());
  const auto volume = ct_volume(11);  // a pass of 8 and one of 3
  VolumeOptions options;
  options.window = {{-1000.0, 1000.0}};
  options.probabilities = options.objects = true;
  std::vector<int64_t> seen;
  const auto result = segment_volume(predictor, volume, options, [&](const SliceResult& slice) {
    seen.push_back(slice.slice);
    EXPECT_EQ(slice.source, "ct.nii slice " + std::to_string(slice.slice));
    EXPECT_TRUE(torch::allclose(slice.image, by_hand(volume, slice.slice, -1000, 1000), 0, 1e-6));
    return true;
  }, "ct.nii");
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  ASSERT_TRUE(result.complete());
  EXPECT_TRUE(result.failed_slices.empty());
  EXPECT_EQ(result.window, (std::pair<double, double>{-1000.0, 1000.0}));
  EXPECT_EQ(result.labels.scalar_type(), torch::kByte);
  EXPECT_EQ(result.labels.sizes(), (std::vector<int64_t>{11, 20, 24}));
  for (int64_t k = 0; k < 11; ++k) {
    const auto one = predictor(by_hand(volume, k, -1000, 1000));
    EXPECT_TRUE(torch::allclose(result.probabilities.select(1, k), one.probs, 0, 1e-4)) << k;  // a pass of 8 or 3 vs one
    EXPECT_LE(result.labels[k].to(torch::kLong).ne(one.labels).sum().item<int64_t>(), 2) << k;  // ties at float rounding
  }
  EXPECT_GT(std::get<0>(torch::_unique(result.labels)).size(0), 1) << "labels of more than one class";
  EXPECT_GE(result.object_count, 3);
  VolumeObjects objects(255);  // the objects are VolumeObjects' over the labels
  for (int64_t k = 0; k < 11; ++k) objects.add(result.labels[k]);
  EXPECT_EQ(result.object_count, objects.count());
  EXPECT_EQ(result.objects_per_class, objects.per_class(3));
  EXPECT_EQ(result.objects.scalar_type(), torch::kInt);  // 4 bytes a voxel
  for (int64_t k = 0; k < 11; ++k) EXPECT_TRUE(torch::equal(result.objects[k].to(torch::kLong), objects.page(k, result.labels[k]))) << k;
  // Without a window: the volume's own range; without the options, no probabilities or objects.
  const auto plain = segment_volume(predictor, volume);
  const double low = volume.voxels.min().item<double>(), high = volume.voxels.max().item<double>();
  EXPECT_EQ(plain.window, (std::pair<double, double>{low, high}));
  EXPECT_FALSE(plain.probabilities.defined() || plain.objects.defined());
  EXPECT_LE(plain.labels[3].to(torch::kLong).ne(predictor(by_hand(volume, 3, low, high)).labels).sum().item<int64_t>(), 2);
  // largest: each class's largest object through the volume (26-connected), the rest background.
  VolumeOptions largest;
  largest.window = options.window;
  largest.largest = std::vector<int64_t>{};
  largest.objects = true;
  const auto kept = segment_volume(predictor, volume, largest);
  auto ids = torch::zeros(result.labels.sizes(), torch::kLong);
  for (int64_t k = 0; k < 11; ++k) ids[k].copy_(objects.page(k, result.labels[k]));
  EXPECT_TRUE(torch::equal(kept.labels, keep_largest_objects(result.labels, ids)));
  EXPECT_FALSE(torch::equal(kept.labels, result.labels));
  EXPECT_LE(kept.object_count, 3);  // one a class at most, found after the filter
  // Filtered and found in one labelling: the ids, count and per class that VolumeObjects gives over the filtered
  // labels, page by page; with a minimum size too (the largest chosen among all, then specks left out); without
  // objects, the same labels.
  for (const int64_t min_object : {int64_t{1}, int64_t{49}}) {  // the one object kept has 48 voxels
    largest.min_object = min_object;
    const auto filtered = segment_volume(predictor, volume, largest);
    EXPECT_TRUE(torch::equal(filtered.labels, kept.labels));
    VolumeObjects after(255, min_object);
    for (int64_t k = 0; k < 11; ++k) after.add(kept.labels[k]);
    EXPECT_EQ(filtered.object_count, after.count()) << min_object;
    EXPECT_EQ(filtered.object_count, min_object == 1 ? 1 : 0);
    EXPECT_EQ(filtered.objects_per_class, after.per_class(3)) << min_object;
    EXPECT_EQ(filtered.objects.scalar_type(), torch::kInt);
    for (int64_t k = 0; k < 11; ++k)
      EXPECT_TRUE(torch::equal(filtered.objects[k].to(torch::kLong), after.page(k, kept.labels[k]))) << k << " " << min_object;
  }
  largest.objects = false;
  EXPECT_TRUE(torch::equal(segment_volume(predictor, volume, largest).labels, kept.labels));
  // min_object: objects of fewer voxels through the volume are left out.
  options.min_object = 40;
  const auto large = segment_volume(predictor, volume, options);
  VolumeObjects large_objects(255, 40);
  for (int64_t k = 0; k < 11; ++k) large_objects.add(large.labels[k]);
  EXPECT_EQ(large.object_count, large_objects.count());
  EXPECT_LT(large.object_count, result.object_count);
}

// A case of two channels (MRI modalities): slice k of both given to a net of 2 inputs together, each
// channel mapped by its own range (or by the one window given); a count the net does not take is an
// error naming the case.
TEST(SegmentVolume, ChannelsOfACaseGoTogetherEachByItsOwnRange) {
  Model model;
  torch::manual_seed(5);
  model.net = std::make_shared<UNetImpl>(UNetOptions().depth(2).base_channels(4).in_channels(2).num_classes(3).padding(Padding::kSame));
  model.meta = default_meta(3, 2);
  const Predictor predictor(model);
  auto t2 = ct_volume(3), adc = ct_volume(3);
  adc.voxels = adc.voxels.flip(2).mul(3).add(500);  // another range and picture
  const auto range = [](const NiftiVolume& v) { return std::pair<double, double>{v.voxels.min().item<double>(), v.voxels.max().item<double>()}; };
  const auto [t2_low, t2_high] = range(t2);
  const auto [adc_low, adc_high] = range(adc);
  std::vector<torch::Tensor> seen;
  const std::vector<NiftiVolume> both{t2, adc};
  const auto result = segment_volume(predictor, both, {}, [&](const SliceResult& slice) {
    const auto expected = torch::cat({by_hand(t2, slice.slice, t2_low, t2_high), by_hand(adc, slice.slice, adc_low, adc_high)});
    EXPECT_TRUE(torch::allclose(slice.image, expected, 0, 1e-6)) << slice.slice;
    seen.push_back(slice.image);
    return true;
  }, "case");
  ASSERT_EQ(seen.size(), 3u);
  for (int64_t k = 0; k < 3; ++k) EXPECT_TRUE(torch::equal(volume_slice_image(both, result, k), seen[k])) << k;  // the image again, afterwards
  EXPECT_NE(test::error_of([&] { volume_slice_image(both, result, 3); }).find("volume_slice_image: has no slice 3 (slices 0..2)"), std::string::npos);
  EXPECT_NE(test::error_of([&] { volume_slice_image({t2}, result, 0); }).find("the channels are not those of the result"), std::string::npos);
  EXPECT_EQ(result.windows, (std::vector<std::pair<double, double>>{range(t2), range(adc)}));
  EXPECT_EQ(result.window, range(t2));
  const auto one = predictor(torch::cat({by_hand(t2, 1, t2_low, t2_high), by_hand(adc, 1, adc_low, adc_high)}));
  EXPECT_LE(result.labels[1].to(torch::kLong).ne(one.labels).sum().item<int64_t>(), 2);
  VolumeOptions by_percentiles;  // each channel its own percentiles
  by_percentiles.percentiles = {{2.0, 98.0}};
  const auto clipped = segment_volume(predictor, std::vector<NiftiVolume>{t2, adc}, by_percentiles);
  EXPECT_EQ(clipped.windows, (std::vector<std::pair<double, double>>{nifti_percentile_window(t2, 2, 98), nifti_percentile_window(adc, 2, 98)}));
  EXPECT_GT(clipped.windows[1].first, adc_low);
  by_percentiles.window = {{0.0, 1.0}};
  EXPECT_NE(test::error_of([&] { segment_volume(predictor, std::vector<NiftiVolume>{t2, adc}, by_percentiles); }).find("both voxel values and percentiles given"), std::string::npos);
  VolumeOptions windowed;
  windowed.window = {{-1000.0, 1000.0}};
  EXPECT_EQ(segment_volume(predictor, std::vector<NiftiVolume>{t2, adc}, windowed).windows[1], (std::pair<double, double>{-1000.0, 1000.0}));
  EXPECT_NE(test::error_of([&] { segment_volume(predictor, t2, {}, {}, "t2.nii"); }).find("t2.nii: is a case of 1 channel(s) but the model takes 2"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { segment_volume(predictor, std::vector<NiftiVolume>{t2, adc, t2}, {}, {}, "c"); }).find("a case of 3 channel(s)"),
            std::string::npos);
  auto small = ct_volume(2);
  EXPECT_NE(test::error_of([&] { segment_volume(predictor, std::vector<NiftiVolume>{t2, small}, {}, {}, "c"); }).find("c: has channels of different sizes"),
            std::string::npos);
}

// A 2.5-D net (slice_context 1) is given slices k-1, k, k+1 as its three channels, the end slices
// repeated past the ends; a case of several channels is no input for it.
TEST(SegmentVolume, TwoAndAHalfDNetSeesEachSliceWithItsNeighbours) {
  Model model;
  torch::manual_seed(5);
  model.net = std::make_shared<UNetImpl>(UNetOptions().depth(2).base_channels(4).in_channels(3).num_classes(3).padding(Padding::kSame));
  model.meta = default_meta(3, 3);
  model.meta.slice_context = 1;
  const Predictor predictor(model);
  const auto volume = ct_volume(4);
  VolumeOptions options;
  options.window = {{-1000.0, 1000.0}};
  std::vector<int64_t> seen;
  std::vector<torch::Tensor> images;
  const auto result = segment_volume(predictor, volume, options, [&](const SliceResult& slice) {
    const int64_t k = slice.slice;
    const auto expected = torch::cat({by_hand(volume, std::max<int64_t>(k - 1, 0), -1000, 1000), by_hand(volume, k, -1000, 1000),
                                      by_hand(volume, std::min<int64_t>(k + 1, 3), -1000, 1000)});
    EXPECT_TRUE(torch::allclose(slice.image, expected, 0, 1e-6)) << k;
    seen.push_back(k), images.push_back(slice.image);
    return true;
  });
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(result.slice_context, 1);
  for (int64_t k : {0, 3}) EXPECT_TRUE(torch::equal(volume_slice_image({volume}, result, k), images[k])) << k;
  const auto one = predictor(torch::cat({by_hand(volume, 1, -1000, 1000), by_hand(volume, 2, -1000, 1000), by_hand(volume, 3, -1000, 1000)}));
  EXPECT_LE(result.labels[2].to(torch::kLong).ne(one.labels).sum().item<int64_t>(), 2);
  EXPECT_NE(test::error_of([&] { segment_volume(predictor, std::vector<NiftiVolume>{volume, volume}, {}, {}, "c"); })
                .find("c: is a case of 2 channel(s), but the model takes 1 channel(s)' slice with 1 neighbour(s) on either side"),
            std::string::npos);
  // A case of two channels to a net of 6 inputs: each channel's slices k-1..k+1 in turn.
  Model two;
  two.net = std::make_shared<UNetImpl>(UNetOptions().depth(1).base_channels(4).in_channels(6).num_classes(3).padding(Padding::kSame));
  two.meta = default_meta(3, 6);
  two.meta.slice_context = 1;
  auto other = volume;
  other.voxels = volume.voxels.neg();
  int64_t checked = 0;
  segment_volume(Predictor(two), std::vector<NiftiVolume>{volume, other}, options, [&](const SliceResult& slice) {
    const int64_t k = slice.slice, before = std::max<int64_t>(k - 1, 0), after = std::min<int64_t>(k + 1, 3);
    std::vector<torch::Tensor> planes;
    for (const NiftiVolume* channel : {&volume, static_cast<const NiftiVolume*>(&other)})
      for (const int64_t z : {before, k, after}) planes.push_back(by_hand(*channel, z, -1000, 1000));
    EXPECT_TRUE(torch::allclose(slice.image, torch::cat(planes), 0, 1e-6)) << k;
    ++checked;
    return true;
  });
  EXPECT_EQ(checked, 4);
}

// A net trained on slices resampled to 1 mm pixels (ModelMeta::pixel_mm) is given each slice of a volume
// of 0.5 x 0.75 mm voxels resampled so (24 x 20 -> 12 x 15), its scores resampled back before the labels:
// by hand, with LibTorch's bilinear resampling around the net's logits. Options override or switch it off.
TEST(SegmentVolume, SlicesResampledToThePixelsTheNetWasTrainedOn) {
  auto model = gray_unet();
  model.meta.pixel_mm = {{1.0, 1.0}};
  const Predictor predictor(model);
  auto volume = ct_volume(3);
  volume.header = parse_nifti(test::nifti_file(4, 2, std::vector<int64_t>(24 * 20 * 3, 0), 24, 20, 3), "x.nii").header;  // 0.5 x 0.75 mm
  VolumeOptions options;
  options.window = {{-1000.0, 1000.0}};
  options.probabilities = true;
  const auto result = segment_volume(predictor, volume, options, [&](const SliceResult& slice) {
    EXPECT_EQ(slice.image.sizes(), (std::vector<int64_t>{1, 20, 24}));  // as the volume holds it, for overlays
    EXPECT_EQ(slice.prediction.labels.sizes(), (std::vector<int64_t>{20, 24}));
    return true;
  });
  EXPECT_EQ(result.pixel_mm, model.meta.pixel_mm);
  EXPECT_EQ((std::pair<int64_t, int64_t>{result.net_height, result.net_width}), (std::pair<int64_t, int64_t>{15, 12}));
  EXPECT_EQ(result.labels.sizes(), (std::vector<int64_t>{3, 20, 24}));
  for (int64_t k = 0; k < 3; ++k) {
    const auto small = torch::upsample_bilinear2d(by_hand(volume, k, -1000, 1000).unsqueeze(0), {15, 12}, false)[0];
    const auto logits = torch::upsample_bilinear2d(predictor.logits(small).unsqueeze(0), {20, 24}, false)[0];
    const auto probs = torch::softmax(logits, 0);
    EXPECT_TRUE(torch::allclose(result.probabilities.select(1, k), probs, 0, 1e-4)) << k;
    EXPECT_LE(result.labels[k].to(torch::kLong).ne(probs.argmax(0)).sum().item<int64_t>(), 2) << k;
    EXPECT_FALSE(torch::allclose(result.probabilities.select(1, k), predictor(by_hand(volume, k, -1000, 1000)).probs, 0, 1e-3)) << k;
  }
  VolumeOptions as_stored = options;
  as_stored.resample = false;
  const auto stored = segment_volume(predictor, volume, as_stored);
  EXPECT_EQ(stored.pixel_mm, std::nullopt);
  EXPECT_EQ((std::pair<int64_t, int64_t>{stored.net_height, stored.net_width}), (std::pair<int64_t, int64_t>{20, 24}));
  EXPECT_TRUE(torch::allclose(stored.probabilities.select(1, 1), predictor(by_hand(volume, 1, -1000, 1000)).probs, 0, 1e-4));
  VolumeOptions own = options;
  own.pixel_mm = {{0.5, 0.75}};  // the volume's own voxels: nothing to resample
  const auto same = segment_volume(predictor, volume, own);
  EXPECT_EQ((std::pair<int64_t, int64_t>{same.net_height, same.net_width}), (std::pair<int64_t, int64_t>{20, 24}));
  EXPECT_TRUE(torch::allclose(same.probabilities.select(1, 2), stored.probabilities.select(1, 2)));
  const auto unsized = test::error_of([&] { segment_volume(predictor, ct_volume(2), options, {}, "ct.nii"); });
  EXPECT_EQ(unsized.rfind("ct.nii: gives no in-plane voxel size (pixdim), so its slices cannot be resampled to 1 x 1 mm pixels", 0), 0u) << unsized;
  PredictOptions scaled;
  scaled.scales = {1.0, 0.5};
  const auto both = test::error_of([&] { segment_volume(Predictor(model, torch::kCPU, scaled), volume, options); });
  EXPECT_EQ(both.rfind("VolumeOptions.resample: slices resampled to 1 x 1 mm pixels", 0), 0u) << both;
  own.pixel_mm = {{0, 1}};
  EXPECT_EQ(test::error_of([&] { segment_volume(predictor, volume, own); }), "VolumeOptions.pixel_mm: a pixel's sides must be 0.001..1000 mm (got 0 x 1)");
}

// A volume stored as sagittal slices (PSL), segmented by a net trained on RAS slices (ModelMeta::axes): each slice
// the net sees is the RAS cut's (the voxels by index by hand), the labels go back where the voxels lie (so the
// stored volume's labels are each cut slice's labels put back), and the picture shows the cut's slices.
TEST(SegmentVolume, VolumesCutInTheOrientationTheNetWasTrainedOn) {
  auto model = gray_unet();
  model.meta.axes = "RAS";
  const Predictor predictor(model);
  auto volume = ct_volume(8);  // 8 x 20 x 24: k, j, i
  auto bytes = test::nifti_file(4, 2, std::vector<int64_t>(24 * 20 * 8, 0), 24, 20, 8);
  const float rows[12] = {0, 0, -2, 0, -0.5F, 0, 0, 0, 0, 0.75F, 0, 0};  // x = -2k (L), y = -0.5i (P), z = 0.75j (S)
  for (size_t n = 0; n < 12; ++n) test::put<float>(bytes, 280 + 4 * n, rows[n]);
  volume.header = parse_nifti(bytes, "psl.nii").header;
  VolumeOptions options;
  options.window = {{-1000.0, 1000.0}};
  options.probabilities = true;
  const auto by_index = [&](int64_t s) {  // RAS slice s: rows along i reversed, columns along k reversed
    return ((volume.voxels.select(1, s).t().flip({0, 1}).to(torch::kDouble) + 1000) / 2000).clamp(0, 1).to(torch::kFloat).unsqueeze(0);
  };
  std::vector<torch::Tensor> seen;
  const auto result = segment_volume(predictor, volume, options, [&](const SliceResult& slice) {
    EXPECT_TRUE(torch::allclose(slice.image, by_index(slice.slice), 0, 1e-6)) << slice.slice;
    seen.push_back(slice.prediction.labels);
    return true;
  }, "psl.nii");
  EXPECT_EQ(result.axes, "RAS");
  EXPECT_EQ(result.slices, 20);  // along j
  ASSERT_EQ(seen.size(), 20u);
  EXPECT_TRUE(result.complete());
  EXPECT_EQ(result.labels.sizes(), (std::vector<int64_t>{8, 20, 24}));  // as stored
  for (int64_t s = 0; s < 20; ++s) {
    EXPECT_TRUE(torch::equal(result.labels.select(1, s).t().flip({0, 1}).to(torch::kLong), seen[static_cast<size_t>(s)])) << s;
    EXPECT_TRUE(torch::equal(volume_slice_labels(result, s).to(torch::kLong), seen[static_cast<size_t>(s)])) << s;
    EXPECT_TRUE(torch::equal(volume_slice_image({volume}, result, s), by_index(s))) << s;
  }
  EXPECT_FALSE(result.probabilities.isnan().any().item<bool>());
  EXPECT_GE(volume_overlay(volume, result).size(0), 4 * 384);  // 16 of the cut's 24 x 8 slices, enlarged to 384 x 128, in rows of 4
  VolumeOptions stored = options;
  stored.axes = "";  // as stored: slices along k
  EXPECT_EQ(segment_volume(predictor, volume, stored).slices, 8);
  EXPECT_EQ(test::error_of([&] { segment_volume(predictor, ct_volume(2), options, {}, "ct.nii"); }),
            "ct.nii: gives no orientation (neither sform nor qform), so its slices cannot be cut as RAS ones");
}

// Weights so large that any input but 0 overflows float32 (NaN scores) while a slice the net sees as 0
// (0.5 before the model's normalization: mean 0.5, std 0.5) scores 0 everywhere: every slice but that
// one fails, is void in the labels and NaN in the probabilities, and the rest go on.
TEST(SegmentVolume, FailedSliceIsVoidAndTheRestGoOn) {
  const Predictor predictor(gray_unet(1e19, true));
  auto volume = ct_volume(4);
  volume.voxels[2].fill_(0);  // the window's middle: 0.5
  VolumeOptions options;
  options.window = {{-1000.0, 1000.0}};
  options.probabilities = true;
  std::vector<std::string> errors;
  const auto result = segment_volume(predictor, volume, options, [&](const SliceResult& slice) {
    if (slice.error) {
      try {
        std::rethrow_exception(slice.error);
      } catch (const Error& e) {
        errors.push_back(e.what());
      }
    }
    EXPECT_EQ(static_cast<bool>(slice.error), !slice.prediction.labels.defined());
    return true;
  });
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_NE(errors[0].find("volume slice 0"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("scored NaN"), std::string::npos) << errors[0];
  EXPECT_TRUE(result.complete());
  EXPECT_EQ(result.failed_slices, (std::vector<int64_t>{0, 1, 3}));
  for (const int64_t k : {0, 1, 3}) {
    EXPECT_TRUE(result.labels[k].eq(255).all().item<bool>()) << k;
    EXPECT_TRUE(result.probabilities.select(1, k).isnan().all().item<bool>()) << k;
  }
  EXPECT_TRUE(result.labels[2].lt(3).all().item<bool>());
  EXPECT_TRUE(torch::allclose(result.probabilities.select(1, 2), torch::full({3, 20, 24}, 1.0 / 3)));
}

TEST(SegmentVolume, StopsAfterTheSliceOnSliceRefuses) {
  const Predictor predictor(gray_unet());
  const auto volume = ct_volume(6);
  VolumeOptions options;
  options.objects = true;
  int64_t calls = 0;
  const auto result = segment_volume(predictor, volume, options, [&](const SliceResult& slice) { return ++calls, slice.slice < 2; });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(result.slices_done, 3);
  EXPECT_FALSE(result.complete());
  EXPECT_TRUE(result.labels.slice(0, 3).eq(255).all().item<bool>());
  EXPECT_TRUE(result.labels.slice(0, 0, 3).lt(3).all().item<bool>());
  EXPECT_TRUE(result.objects.slice(0, 3).eq(0).all().item<bool>());
}

TEST(SegmentVolume, BadOptionsAreErrorsNamingThem) {
  const Predictor predictor(gray_unet());
  const auto volume = ct_volume(2);
  const auto message = [&](const VolumeOptions& options) {
    try {
      segment_volume(predictor, volume, options, {}, "ct.nii");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  VolumeOptions window;
  window.window = {{400.0, -1000.0}};
  EXPECT_NE(message(window).find("VolumeOptions: the window must be two finite voxel values, low < high (got 400, -1000)"), std::string::npos) << message(window);
  window.window = {{0.0, std::nan("")}};
  EXPECT_NE(message(window).find("VolumeOptions: the window must be"), std::string::npos);
  window.window = {{0.0, 1.0}}, window.percentiles = {{1.0, 99.0}};
  EXPECT_NE(message(window).find("VolumeOptions: both voxel values and percentiles given"), std::string::npos) << message(window);
  window.window.reset(), window.percentiles = {{99.0, 1.0}};
  EXPECT_NE(message(window).find("VolumeOptions: the percentiles must be 0 <= low < high <= 100 (got 99, 1)"), std::string::npos) << message(window);
  VolumeOptions min_object;
  min_object.min_object = 0;
  EXPECT_NE(message(min_object).find("VolumeOptions.min_object: must be at least 1"), std::string::npos) << message(min_object);
  NiftiVolume huge;  // probabilities past the tensor limit (voxels never read: the check comes first)
  huge.slices = 4096, huge.height = huge.width = 1 << 15;
  huge.voxels = torch::zeros({1, 1, 1});
  VolumeOptions probabilities;
  probabilities.probabilities = true;
  try {
    segment_volume(predictor, huge, probabilities, {}, "big.nii");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("big.nii: VolumeOptions.probabilities: 3 classes' probabilities"), std::string::npos) << e.what();
  }
}

// The picture: 16 of 20 slices evenly spaced (first and last included), in rows of 4, each the
// window-mapped slice with its labels' colours blended in at 0.5, enlarged to 128 (x7 here: 20 -> 140).
TEST(VolumeOverlay, SixteenSlicesInRowsOfFourBlendedAsByHand) {
  const Predictor predictor(gray_unet());
  const auto volume = ct_volume(20);
  VolumeOptions options;
  options.window = {{-800.0, 800.0}};
  const auto result = segment_volume(predictor, volume, options);
  const auto picture = volume_overlay(volume, result);
  const int64_t side = 7, tile_h = 20 * side, tile_w = 24 * side, gap = 4;
  ASSERT_EQ(picture.dim(), 3);
  EXPECT_EQ(picture.size(0), 4 * tile_h + 3 * gap);
  EXPECT_GT(picture.size(1), 4 * tile_w + 3 * gap);  // and the legend
  for (const auto& [i, k] : std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {5, 6}, {15, 19}}) {
    const auto gray = (by_hand(volume, k, -800, 800)[0] * 255).round();
    const auto palette = torch::tensor(std::vector<int64_t>{result.palette[0][0], result.palette[0][1], result.palette[0][2], result.palette[1][0],
                                                            result.palette[1][1], result.palette[1][2], result.palette[2][0], result.palette[2][1],
                                                            result.palette[2][2]}).view({3, 3}).to(torch::kDouble);
    const auto colours = palette.index({result.labels[k].to(torch::kLong)});
    const auto expected = (0.5 * gray.to(torch::kDouble).unsqueeze(-1) + 0.5 * colours).repeat_interleave(side, 0).repeat_interleave(side, 1);
    const int64_t row = i / 4, column = i % 4;
    const auto tile = picture.slice(0, row * (tile_h + gap), row * (tile_h + gap) + tile_h).slice(1, column * (tile_w + gap), column * (tile_w + gap) + tile_w);
    EXPECT_LE((tile.to(torch::kDouble) - expected).abs().max().item<double>(), 2) << "tile " << i << " (slice " << k << ")";
  }
}

}  // namespace
}  // namespace fcn
