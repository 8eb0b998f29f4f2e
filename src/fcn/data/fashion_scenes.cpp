#include "fcn/data/fashion_scenes.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/formats/palette.h"
#include "fcn/formats/png.h"
#include "fcn/models/model.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"

namespace fcn {
namespace {

constexpr double kInkThreshold = 0.1;  // an item pixel is "visible ink" above 10% intensity

torch::Tensor random_field(std::mt19937_64& rng, int64_t rows, int64_t cols) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto field = torch::empty({rows, cols});
  auto* data = field.data_ptr<float>();
  for (int64_t i = 0; i < rows * cols; ++i) data[i] = normal(rng);
  return field;
}

}  // namespace

std::pair<int64_t, torch::Tensor> random_item_ink(const FashionMnist& items, double min_scale, double max_scale, int64_t size,
                                                  std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const int64_t item = static_cast<int64_t>(rng() % static_cast<uint64_t>(items.images.size(0)));
  const double scale = min_scale + (max_scale - min_scale) * uniform(rng);
  const int64_t side = std::min<int64_t>(size, std::lround(28 * scale));
  auto ink = items.images[item].to(torch::kFloat).div(255.0f).view({1, 1, 28, 28});
  ink = torch::upsample_bilinear2d(ink, {side, side}, false).view({side, side}).clamp(0.0f, 1.0f);
  if (uniform(rng) < 0.5) ink = ink.flip({1});
  return {item, ink};
}

torch::Tensor paint_item(torch::Tensor& image, const torch::Tensor& ink, int64_t top, int64_t left, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const float brightness = static_cast<float>(0.55 + 0.45 * uniform(rng));
  const int64_t side = ink.size(0);
  auto region = image.slice(0, top, top + side).slice(1, left, left + side);
  const auto alpha = (ink * 3.0f).clamp(0.0f, 1.0f);
  region.copy_(region * (1 - alpha) + alpha * (0.1f + brightness * ink));
  return ink > kInkThreshold;
}

// Smooth blotches + oriented stripes + grain: enough texture that "not dark" is not "item".
torch::Tensor scene_background(std::mt19937_64& rng, int64_t size) {
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  const float base = 0.05f + 0.3f * uniform(rng);
  auto blotches = torch::upsample_bilinear2d(random_field(rng, 4, 4).view({1, 1, 4, 4}), {size, size}, true).view({size, size});
  const float angle = 3.14159265f * uniform(rng), frequency = 0.2f + 0.8f * uniform(rng);
  auto coords = torch::arange(size, torch::kFloat);
  auto stripes = torch::sin(frequency * (coords.view({size, 1}) * std::cos(angle) + coords.view({1, size}) * std::sin(angle)));
  return base + 0.08f * blotches + 0.06f * uniform(rng) * stripes + 0.03f * random_field(rng, size, size);
}

uint64_t scene_seed(uint64_t seed, const std::string& split, int64_t index) {
  // splitmix64 of (seed, split, index): independent streams per scene.
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(index) * 0xBF58476D1CE4E5B9ull + (split == "val" ? 0x94D049BB133111EBull : 0);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<std::string> fashion_scene_classes() {
  std::vector<std::string> names = {"background"};
  for (const auto& name : fashion_mnist_classes()) names.push_back(name);
  return names;
}

Scene compose_scene(const FashionMnist& items, const FashionScenesOptions& options, const std::string& split, int64_t index) {
  torch::NoGradGuard no_grad;
  std::mt19937_64 rng(scene_seed(options.seed(), split, index));
  const int64_t size = options.size();
  auto image = scene_background(rng, size);
  auto mask = torch::zeros({size, size}, torch::kByte);
  const int64_t count = options.min_items() + static_cast<int64_t>(rng() % static_cast<uint64_t>(options.max_items() - options.min_items() + 1));
  for (int64_t k = 0; k < count; ++k) {
    const auto [item, ink] = random_item_ink(items, options.min_scale(), options.max_scale(), size, rng);
    const int64_t side = ink.size(0);
    const int64_t top = static_cast<int64_t>(rng() % static_cast<uint64_t>(size - side + 1));
    const int64_t left = static_cast<int64_t>(rng() % static_cast<uint64_t>(size - side + 1));
    const auto visible = paint_item(image, ink, top, left, rng);
    mask.slice(0, top, top + side).slice(1, left, left + side).masked_fill_(visible, static_cast<uint8_t>(items.labels[item].item<int64_t>() + 1));
  }
  return {image.clamp(0.0f, 1.0f).mul(255.0f).round().to(torch::kByte), mask, {}};
}

namespace {
// A dataset folder's entries that write_voc_scenes writes.
constexpr const char* kSceneEntries[] = {"JPEGImages", "SegmentationClass", "SegmentationObject", "ImageSets/Segmentation", "classes.json"};

// Scenes fcn made in `dir` before (classes.json, written first, names Fashion-MNIST as the source) are removed whole,
// so that no scene of an earlier, larger or other set stays beside the new lists (20 scenes over 2000 left 1980 of
// the old ones in JPEGImages/, fashion-cells over fashion-scenes mixed both); a dataset of anyone else's is refused.
void clear_earlier_scenes(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  std::string found;
  for (const char* entry : kSceneEntries)
    if (found.empty() && fs::exists(dir / entry, error) && !(fs::is_directory(dir / entry, error) && fs::is_empty(dir / entry, error))) found = entry;
  if (found.empty()) return;
  const auto json = fs::is_regular_file(dir / "classes.json", error) ? nlohmann::json::parse(read_file((dir / "classes.json").string()), nullptr, false)
                                                                      : nlohmann::json();
  const bool ours = json.is_object() && json.contains("source") && json["source"].is_string() &&
                    json["source"].get<std::string>().rfind("Fashion-MNIST ", 0) == 0;
  if (!ours)
    fail(dir.string(), "already holds a dataset (" + found + ") that fcn data fashion-scenes or fashion-cells did not make: write the scenes into a new folder");
  for (const char* entry : kSceneEntries) fs::remove_all(dir / entry);
  if (fs::is_empty(dir / "ImageSets", error)) fs::remove(dir / "ImageSets", error);
}
}  // namespace

void write_voc_scenes(const std::string& dir, int64_t train, int64_t val, const std::string& source, const nlohmann::json& classes,
                      const std::function<Scene(const FashionMnist&, const std::string&, int64_t)>& compose,
                      const std::function<void(int64_t, int64_t)>& progress) {
  namespace fs = std::filesystem;
  const FashionMnist splits[] = {read_fashion_mnist("train", source), read_fashion_mnist("t10k", source)};  // before anything is removed
  clear_earlier_scenes(dir);
  for (const char* sub : {"JPEGImages", "SegmentationClass", "ImageSets/Segmentation"}) fs::create_directories(fs::path(dir) / sub);
  const auto text = classes.dump(1);  // first: a run stopped midway leaves scenes that the next one knows as fcn's
  write_file_atomic(dir + "/classes.json", text.data(), text.size());
  const auto palette = classes.at("colors").get<std::vector<std::array<uint8_t, 3>>>();
  const auto instance_palette = voc_palette(256);
  int64_t done = 0;
  for (const std::string split : {"train", "val"}) {
    const auto& items = splits[split == "train" ? 0 : 1];
    const int64_t n = split == "train" ? train : val;
    std::string list;
    for (int64_t i = 0; i < n; ++i) {
      const auto scene = compose(items, split, i);
      char id[32];
      std::snprintf(id, sizeof id, "%s_%05ld", split.c_str(), static_cast<long>(i));
      write_png(dir + "/JPEGImages/" + id + ".png", scene.image.unsqueeze(2));
      write_png_indexed(dir + "/SegmentationClass/" + id + ".png", scene.mask, palette);
      if (scene.instances.defined()) {
        fs::create_directories(fs::path(dir) / "SegmentationObject");
        write_png_indexed(dir + "/SegmentationObject/" + id + ".png", scene.instances, instance_palette);
      }
      list += std::string(id) + "\n";
      if (progress) progress(++done, train + val);
    }
    write_file_atomic(dir + "/ImageSets/Segmentation/" + split + ".txt", list.data(), list.size());
  }
}

void write_fashion_scenes(const std::string& dir, const FashionScenesOptions& options,
                          const std::function<void(int64_t, int64_t)>& progress) {
  if (options.size() < 32) fail("FashionScenesOptions.size", std::to_string(options.size()) + " is too small for 28-pixel items; use at least 32");
  check_image_size("FashionScenesOptions.size", options.size(), options.size());
  if (options.train() < 1 || options.val() < 1) fail("FashionScenesOptions.train/val", "need at least one scene in each split");
  if (options.min_items() < 1 || options.max_items() < options.min_items())
    fail("fashion-scenes", "items per scene must satisfy 1 <= min <= max");
  const auto names = fashion_scene_classes();
  const auto palette = default_meta(static_cast<int64_t>(names.size()), 1).palette;
  const nlohmann::json classes = {{"names", names}, {"colors", palette}, {"ignore_label", 255},
                                  {"source", "Fashion-MNIST scenes"}, {"seed", options.seed()}, {"size", options.size()}};
  write_voc_scenes(dir, options.train(), options.val(), options.source(), classes,
                   [&](const FashionMnist& items, const std::string& split, int64_t i) { return compose_scene(items, options, split, i); },
                   progress);
}

}  // namespace fcn
