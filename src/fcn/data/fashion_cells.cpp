#include "fcn/data/fashion_cells.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/data/fashion_scenes.h"
#include "fcn/formats/palette.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"

namespace fcn {
namespace {

constexpr float kBorderDarkening = 0.5f;

struct Placement {
  int64_t top, left, side;
};

// Against a random item already placed: offset by 55-85% of the sides in a random direction, so
// the boxes overlap and the inks usually touch.
Placement place_touching(const std::vector<Placement>& placed, int64_t side, int64_t size, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  if (placed.empty())
    return {static_cast<int64_t>(rng() % static_cast<uint64_t>(size - side + 1)),
            static_cast<int64_t>(rng() % static_cast<uint64_t>(size - side + 1)), side};
  const auto& anchor = placed[rng() % placed.size()];
  const double angle = 2 * 3.14159265358979 * uniform(rng);
  const double reach = (0.55 + 0.3 * uniform(rng)) * 0.5 * static_cast<double>(anchor.side + side);
  auto clamp = [&](double v) { return std::clamp<int64_t>(std::lround(v), 0, size - side); };
  const double cy = static_cast<double>(anchor.top) + 0.5 * static_cast<double>(anchor.side) + reach * std::sin(angle);
  const double cx = static_cast<double>(anchor.left) + 0.5 * static_cast<double>(anchor.side) + reach * std::cos(angle);
  return {clamp(cy - 0.5 * static_cast<double>(side)), clamp(cx - 0.5 * static_cast<double>(side)), side};
}

// Pixels of an item that touch (8-neighbourhood) an item with a higher id: the one-pixel border.
torch::Tensor contact_border(const torch::Tensor& instances) {
  const auto ids = instances.to(torch::kFloat).unsqueeze(0).unsqueeze(0);
  const auto highest_near = torch::max_pool2d(ids, 3, 1, 1)[0][0];
  return (instances > 0) & (highest_near > instances.to(torch::kFloat));
}

}  // namespace

Scene compose_cells(const FashionMnist& items, const FashionCellsOptions& options, const std::string& split, int64_t index) {
  torch::NoGradGuard no_grad;
  std::mt19937_64 rng(scene_seed(options.seed() ^ 0xC311u, split, index));
  const int64_t size = options.size();
  auto image = scene_background(rng, size);
  auto instances = torch::zeros({size, size}, torch::kLong);
  const int64_t count = options.min_items() + static_cast<int64_t>(rng() % static_cast<uint64_t>(options.max_items() - options.min_items() + 1));
  std::vector<Placement> placed;
  for (int64_t k = 0; k < count; ++k) {
    const auto [item, ink] = random_item_ink(items, options.min_scale(), options.max_scale(), size, rng);
    const int64_t side = ink.size(0);
    const auto at = place_touching(placed, side, size, rng);
    placed.push_back(at);
    const auto visible = paint_item(image, ink, at.top, at.left, rng);
    instances.slice(0, at.top, at.top + side).slice(1, at.left, at.left + side).masked_fill_(visible, k + 1);
  }
  const auto border = contact_border(instances);
  instances.masked_fill_(border, 0);
  image = torch::where(border, image * kBorderDarkening, image);
  return {image.clamp(0.0f, 1.0f).mul(255.0f).round().to(torch::kByte), (instances > 0).to(torch::kByte), instances.to(torch::kByte)};
}

void write_fashion_cells(const std::string& dir, const FashionCellsOptions& options, const std::function<void(int64_t, int64_t)>& progress) {
  if (options.size() < 48) fail("FashionCellsOptions.size", std::to_string(options.size()) + " is too small for touching items; use at least 48");
  check_image_size("FashionCellsOptions.size", options.size(), options.size());
  if (options.train() < 1 || options.val() < 1) fail("FashionCellsOptions.train/val", "need at least one scene in each split");
  if (options.min_items() < 2 || options.max_items() < options.min_items() || options.max_items() > 250)
    fail("fashion-cells", "items per scene must satisfy 2 <= min <= max <= 250");
  const std::vector<std::string> names = {"background", "item"};
  const nlohmann::json classes = {{"names", names}, {"colors", voc_palette(2)}, {"ignore_label", 255},
                                  {"source", "Fashion-MNIST cells (touching items, instance masks)"},
                                  {"seed", options.seed()}, {"size", options.size()}};
  write_voc_scenes(dir, options.train(), options.val(), options.source(), classes,
                   [&](const FashionMnist& items, const std::string& split, int64_t i) { return compose_cells(items, options, split, i); },
                   progress);
}

}  // namespace fcn
