// Fashion-MNIST cells: a touching-objects benchmark made from real data, for U-Net's weight map.
// Each scene packs Fashion-MNIST items (real photos) so that they touch and overlap, like cells in
// the U-Net paper's microscopy images: every new item is placed against one already there, later
// items occluding earlier ones. Labels are binary (0 background, 1 item); instance ids say which
// item each pixel shows. Where two items meet, a one-pixel border is background in the labels
// and darkened in the image (the cell membrane of the paper's EM data), so separating touching
// items is learnable but thin: what the weight map is for. VOC layout with SegmentationObject/.
#pragma once

#include <functional>
#include <string>

#include <torch/arg.h>
#include <torch/types.h>

#include "fcn/data/fashion_mnist.h"
#include "fcn/data/fashion_scenes.h"

namespace fcn {

struct FashionCellsOptions {
  TORCH_ARG(int64_t, train) = 30;  // the paper's point: few annotated images
  TORCH_ARG(int64_t, val) = 100;
  TORCH_ARG(int64_t, size) = 96;
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(int64_t, min_items) = 4;
  TORCH_ARG(int64_t, max_items) = 7;
  TORCH_ARG(double, min_scale) = 1.0;  // item side = 28 * scale
  TORCH_ARG(double, max_scale) = 1.5;
  TORCH_ARG(std::string, source) = kFashionMnistDir;
};

// Scene `index` of a split (mask: 0 background, 1 item; instances 1..K); the same (seed, split,
// index) always gives the same scene.
Scene compose_cells(const FashionMnist& items, const FashionCellsOptions& options, const std::string& split, int64_t index);

// Writes DIR/{JPEGImages,SegmentationClass,SegmentationObject,ImageSets/Segmentation} + classes.json.
void write_fashion_cells(const std::string& dir, const FashionCellsOptions& options,
                         const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace fcn
