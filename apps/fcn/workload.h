// What fcn bench and fcn tune time: a model file, or without one a fresh net of the --arch recipe
// (seed 0, as fcn init builds it), at a --size and --batch checked before anything runs.
#pragma once

#include <cstdint>
#include <string>

#include "fcn/models/model.h"
#include "fcn/models/registry.h"

namespace fcn::cli {

// A fresh net of the recipe (weights from LibTorch's current seed) with the default meta: fcn init's.
Model fresh_model(const NetRecipe& recipe);
Model workload_model(const std::string& model_path, const NetRecipe& recipe);
// How the output names it: the file, else "fcn8s vgg16 reference" / "unet".
std::string workload_name(const std::string& model_path, const NetRecipe& recipe);
// --batch: at least one image, and batch x height x width within Limits.max_pixels.
void check_batch(int64_t batch, const std::string& size, int64_t height, int64_t width);

}  // namespace fcn::cli
