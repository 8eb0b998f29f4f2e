// Crop offsets from layer geometry (Caffe's coord_map): the published voc-fcn values, and other
// geometries against a brute-force alignment of coordinate ramps pushed through real layers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fcn/models/coord_map.h"
#include "fcn/models/fcn.h"
#include "fcn/models/vgg.h"
#include "test_util.h"

namespace fcn {
namespace {

FCNImpl reference_fcn(int64_t stride) {
  FCNOptions options;
  options.stride(stride).num_classes(2).geometry(Geometry::kReference).fc_channels(8).fc_kernel(7);
  options.backbone().width(0.0625);
  return FCNImpl(options);
}

TEST(CoordMap, CaffeVocFcnCropsArePinned) {
  // Caffe voc-fcn32s/16s/8s (VGG16, conv1_1 pad 100, fc6 7x7): Crop offsets 19; 5, 27; 5, 9, 31.
  EXPECT_EQ(reference_fcn(32).crops().output, 19);
  const auto fcn16 = reference_fcn(16).crops();
  EXPECT_EQ(fcn16.pool4, 5);
  EXPECT_EQ(fcn16.output, 27);
  const auto fcn8 = reference_fcn(8).crops();
  EXPECT_EQ(fcn8.pool4, 5);
  EXPECT_EQ(fcn8.pool3, 9);
  EXPECT_EQ(fcn8.output, 31);
}

// One layer of a 1-D chain: a conv/pool window or a transposed conv.
struct Layer {
  bool transposed;
  int64_t kernel, stride, padding;
};

// Pushes x (values = input coordinates) through the layer with a symmetric kernel that sums to
// one: a uniform window for conv/pool, bilinear interpolation for a transposed conv. Away from the
// borders, each output value is then the input coordinate that output pixel is centred on.
torch::Tensor ramp_step(const torch::Tensor& x, const Layer& layer) {
  const int64_t k = layer.kernel;
  if (!layer.transposed)
    return torch::conv1d(x, torch::full({1, 1, k}, 1.0 / static_cast<double>(k), torch::kDouble), {}, layer.stride, layer.padding);
  const double f = static_cast<double>((k + 1) / 2);
  const double centre = k % 2 == 1 ? f - 1 : f - 0.5;
  auto w = torch::empty({1, 1, k}, torch::kDouble);
  for (int64_t i = 0; i < k; ++i) w[0][0][i] = 1 - std::abs(static_cast<double>(i) - centre) / f;
  return torch::conv_transpose1d(x, w, {}, layer.stride, layer.padding);
}

torch::Tensor ramp_through(torch::Tensor x, const std::vector<Layer>& layers) {
  for (const auto& layer : layers) x = ramp_step(x, layer);
  return x.flatten();
}

CoordMap map_of(const std::vector<Layer>& layers) {
  CoordMap map;
  for (const auto& l : layers)
    map = map.then(l.transposed ? transposed_map(l.kernel, l.stride, l.padding) : conv_map(l.kernel, l.stride, l.padding));
  return map;
}

// The shift d that makes from[y + d] == to[y] over the interior of `to`, searched exhaustively.
int64_t brute_force_offset(const torch::Tensor& from_tensor, const torch::Tensor& to_tensor) {
  const auto from = from_tensor.contiguous(), to = to_tensor.contiguous();
  const double* a = from.data_ptr<double>();
  const double* b = to.data_ptr<double>();
  const int64_t n = to.size(0), m = from.size(0);
  for (int64_t d = 0; d + n / 2 < m; ++d) {
    bool all = true;
    for (int64_t y = n / 3; y < 2 * n / 3 && all; ++y) all = y + d < m && std::abs(a[y + d] - b[y]) < 1e-6;
    if (all) return d;
  }
  ADD_FAILURE() << "no crop aligns the two maps";
  return -1;
}

std::vector<Layer> vgg_blocks(const std::vector<int>& convs_per_block, int64_t first_padding) {
  std::vector<Layer> layers;
  for (size_t b = 0; b < convs_per_block.size(); ++b) {
    for (int i = 0; i < convs_per_block[b]; ++i) layers.push_back({false, 3, 1, b == 0 && i == 0 ? first_padding : 1});
    layers.push_back({false, 2, 2, 0});
  }
  return layers;
}

std::vector<Layer> operator+(std::vector<Layer> a, const std::vector<Layer>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// An FCN-8s-shaped net over `blocks` pools: skips from the last-but-one and last-but-two pools.
void check_against_brute_force(const std::vector<int>& blocks, int64_t first_padding, int64_t fc_kernel) {
  const int64_t length = 6000;
  const auto ramp = torch::arange(length, torch::kDouble).view({1, 1, length});
  const size_t n = blocks.size();
  const auto upto = [&](size_t pools) {
    auto all = vgg_blocks(blocks, first_padding);
    size_t seen = 0, i = 0;
    for (; i < all.size() && seen < pools; ++i) seen += all[i].stride == 2 ? 1 : 0;
    return std::vector<Layer>(all.begin(), all.begin() + static_cast<int64_t>(i));
  };
  const auto pool_a = upto(n - 1), pool_b = upto(n - 2);
  const auto score = upto(n) + std::vector<Layer>{{false, fc_kernel, 1, 0}};
  const auto fused_a = score + std::vector<Layer>{{true, 4, 2, 0}};
  const auto fused_b = fused_a + std::vector<Layer>{{true, 4, 2, 0}};
  const int64_t last = (int64_t{1} << n) / 4;  // stride left after the two x2 fusions
  const auto output = fused_b + std::vector<Layer>{{true, 2 * last, last, 0}};

  EXPECT_EQ(crop_offset(map_of(pool_a), map_of(fused_a)), brute_force_offset(ramp_through(ramp, pool_a), ramp_through(ramp, fused_a)));
  EXPECT_EQ(crop_offset(map_of(pool_b), map_of(fused_b)), brute_force_offset(ramp_through(ramp, pool_b), ramp_through(ramp, fused_b)));
  EXPECT_EQ(crop_offset(map_of(output), CoordMap{}), brute_force_offset(ramp_through(ramp, output), ramp.flatten()));
  // The map itself: output pixel y sits at scale * y + offset on the input.
  const auto values = ramp_through(ramp, score);
  const auto map = map_of(score);
  for (int64_t y : {values.size(0) / 3, values.size(0) / 2})
    EXPECT_NEAR(values[y].item<double>(), map.scale * static_cast<double>(y) + map.offset, 1e-6);
}

TEST(CoordMap, Vgg16ReferenceMatchesBruteForce) { check_against_brute_force({2, 2, 3, 3, 3}, 100, 7); }

TEST(CoordMap, FourPoolBackboneAndOtherPaddingMatchBruteForce) {
  check_against_brute_force({2, 2, 2, 2}, 100, 7);  // stride 16 backbone
  check_against_brute_force({1, 1, 2, 2, 2}, 60, 3);  // VGG11 layout, smaller pad and fc6
}

TEST(CoordMap, BackboneMapIsComposedFromItsLayers) {
  BackboneOptions options;
  options.width(0.0625).layout(BackboneLayout::kCaffe);
  const VGGImpl vgg(options);
  // conv1_1 pad 100 shifts by -99; each pool doubles and moves the centre by half a pixel.
  EXPECT_DOUBLE_EQ(vgg.coord_map(32).scale, 32);
  EXPECT_DOUBLE_EQ(vgg.coord_map(32).offset, -99 + 15.5);
  EXPECT_DOUBLE_EQ(vgg.coord_map(8).offset, -99 + 3.5);
}

TEST(CoordMap, UnalignableMapsAreAnError) {
  EXPECT_NE(test::error_of([] { crop_offset({2, 0}, {1, 0}); }).find("cannot be aligned"), std::string::npos);
  EXPECT_NE(test::error_of([] { crop_offset({1, 0.5}, {1, 0}); }).find("not a whole"), std::string::npos);
}

}  // namespace
}  // namespace fcn
