// U-Net's augmentations (rotation, shift, elastic deformation, gamma): labels stay labels (nearest),
// alpha = 0 is the identity, image, mask, instances and weights move together, and a seed fixes the draw.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/data/transforms.h"
#include "test_util.h"

namespace fcn {
namespace {

Sample marker_sample() {
  // A 6 x 6 bright marker on a dark image, labelled 2 in the mask, instance 7, weight 5.
  auto image = torch::full({1, 40, 48}, 0.1);
  auto mask = torch::ones({40, 48}, torch::kLong);
  image.slice(1, 17, 23).slice(2, 27, 33).fill_(0.9);
  mask.slice(0, 17, 23).slice(1, 27, 33).fill_(2);
  Sample s{image, mask, "marker"};
  s.instances = (mask == 2).to(torch::kLong) * 7;
  s.weights = torch::where(mask == 2, torch::full({40, 48}, 5.0), torch::ones({40, 48}));
  return s;
}

TEST(Elastic, AlphaZeroIsTheIdentity) {
  const auto s = marker_sample();
  std::mt19937_64 rng(1);
  const auto grid = warp_grid(40, 48, AugmentOptions().elastic_alpha(0.0), rng);
  const auto identity = warp_grid(40, 48, AugmentOptions(), rng);
  EXPECT_LE((grid - identity).abs().max().item<float>(), 1e-6);
  const auto out = augment(s, AugmentOptions().elastic_alpha(1e-9), rng);  // warps, by nothing
  EXPECT_LE((out.image - s.image).abs().max().item<float>(), 1e-4);
  EXPECT_TRUE(torch::equal(out.mask, s.mask));
  EXPECT_TRUE(torch::equal(out.instances, s.instances));
}

TEST(Elastic, LabelsStayInputLabelsAndEverythingMovesTogether) {
  const auto s = marker_sample();
  for (uint64_t seed = 0; seed < 10; ++seed) {
    std::mt19937_64 rng(seed);
    const auto out = augment(s, AugmentOptions().elastic_alpha(5).rotate(15).shift(4), rng);
    const auto labels = std::get<0>(torch::_unique(out.mask));
    for (int64_t i = 0; i < labels.size(0); ++i) EXPECT_TRUE(labels[i].item<int64_t>() == 1 || labels[i].item<int64_t>() == 2);
    const auto marked = out.mask == 2;
    ASSERT_GT(marked.sum().item<int64_t>(), 0) << "seed " << seed;
    // Where the mask says marker, the image is bright, the instance is 7 and the weight near 5 (on the
    // marker's edge, nearest and bicubic/bilinear interpolation round differently: above the midpoints).
    EXPECT_GT(out.image[0].masked_select(marked).min().item<float>(), 0.35) << "seed " << seed;
    EXPECT_TRUE(torch::equal(out.instances == 7, marked)) << "seed " << seed;
    EXPECT_GT(out.weights.masked_select(marked).min().item<float>(), 2.2) << "seed " << seed;
    // And the image's brightest pixel is under the marker label.
    const int64_t brightest = out.image[0].argmax().item<int64_t>();
    EXPECT_TRUE(marked.flatten()[brightest].item<bool>()) << "seed " << seed;
  }
}

TEST(Elastic, ActuallyDeformsAndIsDeterministicPerSeed) {
  const auto s = marker_sample();
  const auto options = AugmentOptions().elastic_alpha(10);
  std::mt19937_64 a(42), b(42), c(43);
  const auto first = augment(s, options, a), again = augment(s, options, b), other = augment(s, options, c);
  EXPECT_TRUE(torch::equal(first.image, again.image));
  EXPECT_TRUE(torch::equal(first.mask, again.mask));
  EXPECT_FALSE(torch::equal(first.mask, s.mask));
  EXPECT_FALSE(torch::equal(first.mask, other.mask));
}

TEST(Gamma, ChangesGreyValuesOnlyAndKeepsRange) {
  const auto s = marker_sample();
  std::mt19937_64 rng(5);
  const auto out = augment(s, AugmentOptions().gamma(2.0), rng);
  EXPECT_TRUE(torch::equal(out.mask, s.mask));
  EXPECT_FALSE(torch::allclose(out.image, s.image));
  EXPECT_GE(out.image.min().item<float>(), 0.0f);
  EXPECT_LE(out.image.max().item<float>(), 1.0f);
  // A float .npy image past 0..1 (values -2.2..4.2 and one 1.0): gamma over that range, by hand, with the exponent
  // the 0..1 image got from the same seed; warps keep the values within the range.
  const double exponent = std::log(out.image[0][0][0].item<double>()) / std::log(0.1);
  auto wide = s;
  wide.image = s.image * 8 - 3;
  wide.image[0][0][0] = 1.0;
  std::mt19937_64 same(5);
  const auto g = augment(wide, AugmentOptions().gamma(2.0), same).image;
  const auto expected = ((wide.image + 2.2) / 6.4).pow(exponent) * 6.4 - 2.2;
  EXPECT_TRUE(torch::allclose(g, expected, 1e-5, 1e-5)) << (g - expected).abs().max().item<float>();
  EXPECT_GT(std::abs(g[0][0][0].item<double>() - 1.0), 0.05);  // the middle moved
  EXPECT_NEAR(g.min().item<double>(), -2.2, 1e-5);              // not clamped at 0 as a 0..1 image's would be
  const auto warped = augment(wide, AugmentOptions().rotate(30), same).image;
  EXPECT_GE(warped.min().item<float>(), -2.2f - 1e-5f);
  EXPECT_LE(warped.max().item<float>(), 4.2f + 1e-5f);
  EXPECT_LT(warped.min().item<float>(), -0.5f);  // not clamped to 0..1
}

// nnU-Net's foreground oversampling: with foreground 1 every crop of an image with foreground holds some, each
// present class as likely as another (a 1-pixel class as often as a large one), centred on the pixel as far as
// the image allows; image and mask cut at one place; void is no foreground; foreground 0 draws as before.
TEST(Crop, ForegroundOversamplingPlacesCropsOnEachClassAlike) {
  const int64_t h = 60, w = 80, c = 16;
  auto image = (torch::arange(h * w, torch::kFloat) / (h * w)).view({1, h, w});  // each pixel's place in its value
  auto mask = torch::zeros({h, w}, torch::kLong);
  mask.slice(0, 0, 30).slice(1, 40, 80).fill_(1);  // a large class
  mask[50][3] = 2;                                   // one pixel, near a corner
  mask.slice(0, 55, 60).fill_(kIgnoreLabel);         // void: not foreground
  const Sample s{image, mask, "two classes"};
  int64_t with_two = 0, with_one = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    std::mt19937_64 rng(seed);
    const auto out = augment(s, AugmentOptions().crop(c).foreground(1.0), rng);
    ASSERT_EQ(out.mask.sizes(), (std::vector<int64_t>{c, c}));
    const int64_t top = std::llround(out.image[0][0][0].item<double>() * h * w) / w, left = std::llround(out.image[0][0][0].item<double>() * h * w) % w;
    ASSERT_TRUE(torch::equal(out.mask, mask.slice(0, top, top + c).slice(1, left, left + c))) << seed;  // image and mask together
    const bool two = out.mask.eq(2).any().item<bool>(), one = out.mask.eq(1).any().item<bool>();
    ASSERT_TRUE(two || one) << seed;
    with_two += two, with_one += one;
    if (two && !one) EXPECT_EQ(std::make_pair(top, left), std::make_pair(int64_t{42}, int64_t{0})) << seed;  // 50 - 8, clamped at 0
  }
  EXPECT_GT(with_two, 160);  // half the draws, 200 expected (binomial sd 10)
  EXPECT_LT(with_two, 240);
  EXPECT_GT(with_one, 160);
  // A class asked for (the trainer's class-balanced draw): every crop on it; one the image lacks: any present.
  for (uint64_t seed = 0; seed < 50; ++seed) {
    std::mt19937_64 rng(seed);
    EXPECT_TRUE(augment(s, AugmentOptions().crop(c).foreground(1.0).foreground_class(2), rng).mask.eq(2).any().item<bool>()) << seed;
    const auto any = augment(s, AugmentOptions().crop(c).foreground(1.0).foreground_class(7), rng).mask;
    EXPECT_TRUE(any.eq(1).any().item<bool>() || any.eq(2).any().item<bool>()) << seed;
  }
  // Random crops hold the 1-pixel class about (16 x 16 places of 45 x 65) 9% of the time; foreground 0 draws as before.
  int64_t random_two = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    std::mt19937_64 a(seed), b(seed);
    const auto out = augment(s, AugmentOptions().crop(c), a), same = augment(s, AugmentOptions().crop(c).foreground(0.0), b);
    ASSERT_TRUE(torch::equal(out.image, same.image));
    random_two += out.mask.eq(2).any().item<bool>();
  }
  EXPECT_LT(random_two, 80);
  // Only void and background: a random crop, no error.
  const Sample empty{image, torch::where(mask > 0, torch::full_like(mask, kIgnoreLabel), mask), "no foreground"};
  std::mt19937_64 rng(3);
  EXPECT_EQ(augment(empty, AugmentOptions().crop(c).foreground(1.0), rng).mask.sizes(), (std::vector<int64_t>{c, c}));
}

TEST(AugmentOptions, NonsenseIsRefusedNamingTheField) {
  EXPECT_EQ(test::error_of([] { validate(AugmentOptions().crop(8).foreground(1.5)); }),
            "AugmentOptions.foreground: is the share of crops placed on foreground: 0..1 (nnU-Net: 0.33), got 1.5");
  EXPECT_NO_THROW(validate(AugmentOptions().foreground(0.33)));  // without a crop: samples chosen in training, not crops
  EXPECT_NE(test::error_of([] { validate(AugmentOptions().crop(-5)); }).find("AugmentOptions.crop"), std::string::npos);
  // A shift of 1e9 px made each scene one pixel's value (the grid's float coordinates that far out lose their pixels).
  EXPECT_EQ(test::error_of([] { validate(AugmentOptions().shift(1e9)); }), "AugmentOptions.shift: must be 0..65536 pixels, got 1e+09");
  EXPECT_NO_THROW(validate(AugmentOptions().shift(40).elastic_alpha(10)));
  // A crop is an image the net sees: over the image limits it is refused before any allocation.
  EXPECT_NE(test::error_of([] { validate(AugmentOptions().crop(100000)); }).find("AugmentOptions.crop: image is 100000x100000"),
            std::string::npos);
  EXPECT_NO_THROW(validate(AugmentOptions().crop(16384)));
  EXPECT_NE(test::error_of([] { validate(AugmentOptions().min_scale(2).max_scale(0.5)); }).find("min_scale"), std::string::npos);
  EXPECT_NE(test::error_of([] { validate(AugmentOptions().elastic_alpha(-1)); }).find("elastic_alpha"), std::string::npos);
  EXPECT_NE(test::error_of([] { validate(AugmentOptions().gamma(0.5)); }).find("gamma"), std::string::npos);
}

}  // namespace
}  // namespace fcn
