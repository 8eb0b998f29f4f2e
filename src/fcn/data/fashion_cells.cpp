#include "fcn/data/fashion_cells.h"

#include <filesystem>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/data/fashion_scenes.h"
#include "fcn/formats/palette.h"
#include "fcn/formats/png.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

constexpr double kInkThreshold = 0.1;  // as fashion_scenes: visible ink above 10% intensity
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

CellScene compose_cells(const FashionMnist& items, const FashionCellsOptions& options, const std::string& split, int64_t index) {
  torch::NoGradGuard no_grad;
  std::mt19937_64 rng(scene_seed(options.seed() ^ 0xC311u, split, index));
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const int64_t size = options.size();
  auto image = scene_background(rng, size);
  auto instances = torch::zeros({size, size}, torch::kLong);
  const int64_t count = options.min_items() + static_cast<int64_t>(rng() % static_cast<uint64_t>(options.max_items() - options.min_items() + 1));
  std::vector<Placement> placed;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t item = static_cast<int64_t>(rng() % static_cast<uint64_t>(items.images.size(0)));
    const double scale = options.min_scale() + (options.max_scale() - options.min_scale()) * uniform(rng);
    const int64_t side = std::min<int64_t>(size, std::lround(28 * scale));
    auto ink = items.images[item].to(torch::kFloat).div(255.0f).view({1, 1, 28, 28});
    ink = torch::upsample_bilinear2d(ink, {side, side}, false).view({side, side}).clamp(0.0f, 1.0f);
    if (uniform(rng) < 0.5) ink = ink.flip({1});
    const auto at = place_touching(placed, side, size, rng);
    placed.push_back(at);
    const float brightness = static_cast<float>(0.55 + 0.45 * uniform(rng));
    auto region = image.slice(0, at.top, at.top + side).slice(1, at.left, at.left + side);
    const auto alpha = (ink * 3.0f).clamp(0.0f, 1.0f);
    region.copy_(region * (1 - alpha) + alpha * (0.1f + brightness * ink));
    instances.slice(0, at.top, at.top + side).slice(1, at.left, at.left + side).masked_fill_(ink > kInkThreshold, k + 1);
  }
  const auto border = contact_border(instances);
  instances.masked_fill_(border, 0);
  image = torch::where(border, image * kBorderDarkening, image);
  return {image.clamp(0.0f, 1.0f).mul(255.0f).round().to(torch::kByte), (instances > 0).to(torch::kByte), instances.to(torch::kByte)};
}

void write_fashion_cells(const std::string& dir, const FashionCellsOptions& options, const std::function<void(int64_t, int64_t)>& progress) {
  if (options.size() < 48) fail("FashionCellsOptions.size", std::to_string(options.size()) + " is too small for touching items; use at least 48");
  if (options.train() < 1 || options.val() < 1) fail("FashionCellsOptions.train/val", "need at least one scene in each split");
  if (options.min_items() < 2 || options.max_items() < options.min_items() || options.max_items() > 250)
    fail("fashion-cells", "items per scene must satisfy 2 <= min <= max <= 250");
  namespace fs = std::filesystem;
  for (const char* sub : {"JPEGImages", "SegmentationClass", "SegmentationObject", "ImageSets/Segmentation"})
    fs::create_directories(fs::path(dir) / sub);
  const std::vector<std::string> names = {"background", "item"};
  const auto palette = voc_palette(2);
  const auto instance_palette = voc_palette(256);
  const int64_t total = options.train() + options.val();
  int64_t done = 0;
  for (const std::string split : {"train", "val"}) {
    const auto items = read_fashion_mnist(split == "train" ? "train" : "t10k", options.source());
    const int64_t n = split == "train" ? options.train() : options.val();
    std::string list;
    for (int64_t i = 0; i < n; ++i) {
      const auto scene = compose_cells(items, options, split, i);
      char id[32];
      std::snprintf(id, sizeof id, "%s_%05ld", split.c_str(), static_cast<long>(i));
      write_png(dir + "/JPEGImages/" + id + ".png", scene.image.unsqueeze(2));
      write_png_indexed(dir + "/SegmentationClass/" + id + ".png", scene.mask, palette);
      write_png_indexed(dir + "/SegmentationObject/" + id + ".png", scene.instances, instance_palette);
      list += std::string(id) + "\n";
      if (progress) progress(++done, total);
    }
    write_file_atomic(dir + "/ImageSets/Segmentation/" + split + ".txt", list.data(), list.size());
  }
  const nlohmann::json classes = {{"names", names}, {"colors", palette}, {"ignore_label", 255},
                                  {"source", "Fashion-MNIST cells (touching items, instance masks)"},
                                  {"seed", options.seed()}, {"size", options.size()}};
  const auto text = classes.dump(1);
  write_file_atomic(dir + "/classes.json", text.data(), text.size());
}

}  // namespace fcn
