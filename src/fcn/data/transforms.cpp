#include "fcn/data/transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <torch/torch.h>

#include "fcn/util/error.h"
#include "fcn/util/limits.h"

namespace fcn {
namespace {

constexpr double kPi = 3.14159265358979323846;

// grid_sampler's codes (ATen): interpolation 0 bilinear, 1 nearest, 2 bicubic; padding 2 reflection.
enum Interpolation : int64_t { kBilinear = 0, kNearest = 1, kBicubic = 2 };
constexpr int64_t kReflection = 2;

torch::Tensor resample(const torch::Tensor& map, const torch::Tensor& grid, Interpolation mode) {
  const bool integer = !map.is_floating_point();
  auto x = map.to(torch::kFloat);
  const bool planar = x.dim() == 2;
  x = planar ? x.unsqueeze(0).unsqueeze(0) : x.unsqueeze(0);
  auto y = torch::grid_sampler(x, grid, mode, kReflection, true);
  y = planar ? y.squeeze(0).squeeze(0) : y.squeeze(0);
  return integer ? y.round().to(map.scalar_type()) : y;
}

torch::Tensor nearest_resize(const torch::Tensor& labels, int64_t h, int64_t w) {
  return torch::upsample_nearest2d(labels.unsqueeze(0).unsqueeze(0).to(torch::kFloat), {h, w})
      .squeeze(0)
      .squeeze(0)
      .to(labels.scalar_type());
}

void scale(Sample& out, double factor) {
  const int64_t h = std::max<int64_t>(1, std::lround(static_cast<double>(out.image.size(1)) * factor));
  const int64_t w = std::max<int64_t>(1, std::lround(static_cast<double>(out.image.size(2)) * factor));
  out.image = torch::upsample_bilinear2d(out.image.unsqueeze(0), {h, w}, false).squeeze(0);
  out.mask = nearest_resize(out.mask, h, w);
  if (out.instances.defined()) out.instances = nearest_resize(out.instances, h, w);
  if (out.weights.defined()) out.weights = torch::upsample_bilinear2d(out.weights.view({1, 1, out.weights.size(0), out.weights.size(1)}), {h, w}, false).view({h, w});
}

// The top-left corner of a crop of side c over `mask` (at least c x c) centred, as far as the mask allows, on a
// pixel of a foreground class (not background 0, not void): `wanted` where the mask holds it, else one drawn
// among those present; then the pixel. False where the mask has no foreground.
bool place_on_foreground(const torch::Tensor& mask, int64_t c, int64_t wanted, int64_t& top, int64_t& left, std::mt19937_64& rng) {
  const auto present = std::get<0>(torch::_unique(mask)).to(torch::kLong);
  std::vector<int64_t> classes;
  for (int64_t i = 0; i < present.size(0); ++i)
    if (const int64_t value = present[i].item<int64_t>(); value != 0 && value != kIgnoreLabel) classes.push_back(value);
  if (classes.empty()) return false;
  const bool held = std::find(classes.begin(), classes.end(), wanted) != classes.end();
  const auto pixels = torch::nonzero(mask.eq(held ? wanted : classes[rng() % classes.size()]));  // N x 2: row, column
  const auto pixel = pixels[static_cast<int64_t>(rng() % static_cast<uint64_t>(pixels.size(0)))];
  top = std::clamp<int64_t>(pixel[0].item<int64_t>() - c / 2, 0, mask.size(0) - c);
  left = std::clamp<int64_t>(pixel[1].item<int64_t>() - c / 2, 0, mask.size(1) - c);
  return true;
}

void crop(Sample& out, int64_t c, double foreground, int64_t wanted, std::mt19937_64& rng) {
  const int64_t pad_h = std::max<int64_t>(0, c - out.image.size(1)), pad_w = std::max<int64_t>(0, c - out.image.size(2));
  if (pad_h > 0 || pad_w > 0) {
    out.image = torch::constant_pad_nd(out.image, {0, pad_w, 0, pad_h}, 0.0);
    out.mask = torch::constant_pad_nd(out.mask, {0, pad_w, 0, pad_h}, static_cast<double>(kIgnoreLabel));
    if (out.instances.defined()) out.instances = torch::constant_pad_nd(out.instances, {0, pad_w, 0, pad_h}, 0.0);
    if (out.weights.defined()) out.weights = torch::constant_pad_nd(out.weights, {0, pad_w, 0, pad_h}, 0.0);
  }
  int64_t top = 0, left = 0;
  const bool on_foreground = foreground > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(rng) < foreground &&
                             place_on_foreground(out.mask, c, wanted, top, left, rng);
  if (!on_foreground) {  // no draw more than before where foreground is 0: a seed's crops stay the same
    top = static_cast<int64_t>(rng() % static_cast<uint64_t>(out.image.size(1) - c + 1));
    left = static_cast<int64_t>(rng() % static_cast<uint64_t>(out.image.size(2) - c + 1));
  }
  out.image = out.image.slice(1, top, top + c).slice(2, left, left + c);
  out.mask = out.mask.slice(0, top, top + c).slice(1, left, left + c);
  if (out.instances.defined()) out.instances = out.instances.slice(0, top, top + c).slice(1, left, left + c);
  if (out.weights.defined()) out.weights = out.weights.slice(0, top, top + c).slice(1, left, left + c);
}

void flip(Sample& out) {
  out.image = out.image.flip({2});
  out.mask = out.mask.flip({1});
  if (out.instances.defined()) out.instances = out.instances.flip({1});
  if (out.weights.defined()) out.weights = out.weights.flip({1});
}

bool warps(const AugmentOptions& o) { return o.rotate() > 0 || o.shift() > 0 || o.elastic_alpha() > 0; }

// The range an image's values keep through warps and gamma: 0..1, widened to the image's own values where they
// reach past it (a float .npy image is taken as stored).
std::pair<double, double> value_range(const torch::Tensor& image) {
  if (image.numel() == 0) return {0.0, 1.0};
  const auto [lowest, highest] = torch::aminmax(image);
  return {std::min(0.0, lowest.item<double>()), std::max(1.0, highest.item<double>())};
}

}  // namespace

void validate(const AugmentOptions& o) {
  auto positive_finite = [](double v) { return std::isfinite(v) && v > 0; };
  if (!positive_finite(o.min_scale()) || !positive_finite(o.max_scale()) || o.min_scale() > o.max_scale())
    fail("AugmentOptions.min_scale", "scales must be positive with min_scale <= max_scale (got " + number_text(o.min_scale()) +
                                         ", " + number_text(o.max_scale()) + ")");
  if (o.crop() < 0) fail("AugmentOptions.crop", "must be >= 0 (0: no crop), got " + std::to_string(o.crop()));
  if (o.crop() > 0) check_image_size("AugmentOptions.crop", o.crop(), o.crop());  // a crop is an image the net sees
  if (!(o.rotate() >= 0 && o.rotate() <= 180)) fail("AugmentOptions.rotate", "must be in 0..180 degrees");
  // Past an image's largest side a shift only mirrors the image round again, and far past it the sampling grid's
  // float coordinates lose their pixels (at 1e9 every pixel of a 64 x 64 scene samples one source pixel).
  const double side = static_cast<double>(limits().max_side);
  if (!(o.shift() >= 0 && o.shift() <= side)) fail("AugmentOptions.shift", "must be 0.." + number_text(side) + " pixels, got " + number_text(o.shift()));
  if (!(o.elastic_alpha() >= 0 && o.elastic_alpha() <= side))
    fail("AugmentOptions.elastic_alpha", "must be 0.." + number_text(side) + " pixels, got " + number_text(o.elastic_alpha()));
  if (o.elastic_grid() < 2) fail("AugmentOptions.elastic_grid", "must be at least 2 (the paper: 3)");
  if (!(o.gamma() >= 1) || !std::isfinite(o.gamma())) fail("AugmentOptions.gamma", "must be >= 1 (1: off)");
  if (!(o.foreground() >= 0 && o.foreground() <= 1))
    fail("AugmentOptions.foreground", "is the share of crops placed on foreground: 0..1 (nnU-Net: 0.33), got " + number_text(o.foreground()));
}

torch::Tensor warp_grid(int64_t height, int64_t width, const AugmentOptions& options, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  const double angle = options.rotate() > 0 ? options.rotate() * kPi / 180.0 * uniform(rng) : 0.0;
  const double shift_y = options.shift() > 0 ? options.shift() * uniform(rng) : 0.0;
  const double shift_x = options.shift() > 0 ? options.shift() * uniform(rng) : 0.0;
  // Source position of each output pixel: rotated about the centre, shifted, displaced.
  const double cy = 0.5 * static_cast<double>(height - 1), cx = 0.5 * static_cast<double>(width - 1);
  const auto ys = torch::arange(height, torch::kDouble).view({height, 1}) - cy;
  const auto xs = torch::arange(width, torch::kDouble).view({1, width}) - cx;
  auto source_y = std::cos(angle) * ys + std::sin(angle) * xs + cy + shift_y;
  auto source_x = -std::sin(angle) * ys + std::cos(angle) * xs + cx + shift_x;
  if (options.elastic_alpha() > 0) {
    const int64_t g = options.elastic_grid();
    std::normal_distribution<double> normal(0.0, options.elastic_alpha());
    auto coarse = torch::empty({1, 2, g, g}, torch::kDouble);
    auto* c = coarse.data_ptr<double>();
    for (int64_t i = 0; i < 2 * g * g; ++i) c[i] = normal(rng);
    const auto dense = torch::upsample_bicubic2d(coarse, {height, width}, true);
    source_y = source_y + dense[0][0];
    source_x = source_x + dense[0][1];
  }
  const auto grid_x = 2.0 * source_x / std::max<double>(1.0, static_cast<double>(width - 1)) - 1.0;
  const auto grid_y = 2.0 * source_y / std::max<double>(1.0, static_cast<double>(height - 1)) - 1.0;
  return torch::stack({grid_x.expand({height, width}), grid_y.expand({height, width})}, 2).unsqueeze(0).to(torch::kFloat);
}

Sample augment(const Sample& input, const AugmentOptions& options, std::mt19937_64& rng) {
  Sample out = input;
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const double factor = options.min_scale() + (options.max_scale() - options.min_scale()) * uniform(rng);
  if (std::abs(factor - 1.0) > 1e-9) scale(out, factor);
  if (warps(options)) {
    const auto grid = warp_grid(out.image.size(1), out.image.size(2), options, rng);
    const auto [low, high] = value_range(out.image);
    out.image = resample(out.image, grid, kBicubic).clamp(low, high);  // bicubic overshoots
    out.mask = resample(out.mask, grid, kNearest);
    if (out.instances.defined()) out.instances = resample(out.instances, grid, kNearest);
    if (out.weights.defined()) out.weights = resample(out.weights, grid, kBilinear);
  }
  if (options.crop() > 0) crop(out, options.crop(), options.foreground(), options.foreground_class(), rng);
  if (options.flip() && uniform(rng) < 0.5) flip(out);
  if (options.gamma() > 1) {
    const double log_gamma = std::log(options.gamma());
    const double g = std::exp(log_gamma * (2 * uniform(rng) - 1));
    const auto [low, high] = value_range(out.image);
    if (low == 0 && high == 1)
      out.image = out.image.clamp_min(0.0).pow(g);
    else  // values past 0..1 (a float .npy image): over that wider range, as nnU-Net's gamma over the image's own
      out.image = out.image.sub(low).div_(high - low).clamp_(0.0, 1.0).pow_(g).mul_(high - low).add_(low);
  }
  return out;
}

Batch collate(const std::vector<Sample>& samples) {
  TORCH_CHECK(!samples.empty(), "collate: no samples");
  std::vector<torch::Tensor> images, masks, weights;
  for (const auto& s : samples) {
    if (s.image.sizes() != samples[0].image.sizes())
      fail(s.id, "is " + c10::str(s.image.sizes()) + " but " + samples[0].id + " is " + c10::str(samples[0].image.sizes()) +
                     "; batches need one size: pass --crop PX or --batch 1");
    images.push_back(s.image);
    masks.push_back(s.mask);
    if (s.weights.defined()) weights.push_back(s.weights);
  }
  TORCH_CHECK(weights.empty() || weights.size() == samples.size(), "collate: some samples have weights, others not");
  return {torch::stack(images), torch::stack(masks), weights.empty() ? torch::Tensor() : torch::stack(weights)};
}

}  // namespace fcn
