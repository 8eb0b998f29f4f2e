// Fashion-MNIST scenes: fcn's built-in real-data segmentation benchmark. Each scene places 2-4
// Fashion-MNIST items (real photos of clothing, not drawn here) at random scales and positions on
// a textured background, later items occluding earlier ones. Label = item class + 1 where the
// item's ink is visible, 0 = background. Train scenes use only the train split, val scenes only
// t10k. Written in the PASCAL VOC layout with a palette and classes.json. Deterministic per seed.
#pragma once

#include <functional>
#include <random>
#include <utility>
#include <string>

#include <nlohmann/json_fwd.hpp>
#include <torch/arg.h>
#include <torch/types.h>

#include "fcn/data/fashion_mnist.h"

namespace fcn {

struct FashionScenesOptions {
  TORCH_ARG(int64_t, train) = 2000;   // scenes from the train split
  TORCH_ARG(int64_t, val) = 300;      // scenes from t10k
  TORCH_ARG(int64_t, size) = 64;      // scene side in pixels
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(int64_t, min_items) = 2;
  TORCH_ARG(int64_t, max_items) = 4;
  TORCH_ARG(double, min_scale) = 1.0;  // item side = 28 * scale
  TORCH_ARG(double, max_scale) = 2.0;
  TORCH_ARG(std::string, source) = kFashionMnistDir;
};

struct Scene {
  torch::Tensor image;      // H x W uint8 (gray)
  torch::Tensor mask;       // H x W uint8 class indices
  torch::Tensor instances;  // H x W uint8 object ids (0: none), or undefined (fashion_cells.h has them)
};

// Scene `index` of a split; the same (seed, split, index) always gives the same scene.
Scene compose_scene(const FashionMnist& items, const FashionScenesOptions& options, const std::string& split, int64_t index);

// Writes DIR/{JPEGImages,SegmentationClass,ImageSets/Segmentation} and DIR/classes.json. Scenes that
// fcn made in DIR before are replaced whole; a dataset there of anyone else's is an fcn::Error naming DIR.
// `progress(done, total)` is called as scenes are written.
void write_fashion_scenes(const std::string& dir, const FashionScenesOptions& options,
                          const std::function<void(int64_t, int64_t)>& progress = {});

// The textured background of a size x size scene (float in ~[0, 1]) and the seed of scene `index`
// of a split: shared with fashion_cells.h.
torch::Tensor scene_background(std::mt19937_64& rng, int64_t size);
uint64_t scene_seed(uint64_t seed, const std::string& split, int64_t index);
// A random item (its index) and its ink in [0, 1], side = 28 x a uniform scale (at most `size`),
// mirrored half the time.
std::pair<int64_t, torch::Tensor> random_item_ink(const FashionMnist& items, double min_scale, double max_scale, int64_t size,
                                                  std::mt19937_64& rng);
// Blends `ink` into `image` (H x W float) at (top, left) with a random brightness; returns where
// its ink is visible (above 10% intensity): the pixels the item labels.
torch::Tensor paint_item(torch::Tensor& image, const torch::Tensor& ink, int64_t top, int64_t left, std::mt19937_64& rng);

// Both splits of scenes `compose(items, split, index)` makes (train scenes from Fashion-MNIST's train
// split, val from t10k) in the VOC layout, SegmentationObject/ too when scenes have instances;
// classes.json is `classes` (its "colors" are the mask palette; its "source", "Fashion-MNIST ...", marks
// the folder as fcn's: the entries of an earlier set there are removed first, anyone else's refused).
void write_voc_scenes(const std::string& dir, int64_t train, int64_t val, const std::string& source, const nlohmann::json& classes,
                      const std::function<Scene(const FashionMnist&, const std::string&, int64_t)>& compose,
                      const std::function<void(int64_t, int64_t)>& progress);

// background + the 10 Fashion-MNIST classes.
std::vector<std::string> fashion_scene_classes();

}  // namespace fcn
