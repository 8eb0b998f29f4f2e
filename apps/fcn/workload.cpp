#include "workload.h"

#include <torch/torch.h>

#include "fcn/serialize/model_file.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"

namespace fcn::cli {

Model fresh_model(const NetRecipe& recipe) {
  Model model;
  model.net = make_net(recipe);
  model.meta = default_meta(model.net->num_classes(), model.net->in_channels());
  return model;
}

Model workload_model(const std::string& model_path, const NetRecipe& recipe) {
  if (!model_path.empty()) return load_model(model_path);
  torch::manual_seed(0);
  return fresh_model(recipe);
}

std::string workload_name(const std::string& model_path, const NetRecipe& recipe) {
  if (!model_path.empty()) return model_path;
  return recipe.arch == "unet" ? std::string("unet") : recipe.arch + " " + recipe.backbone + " " + recipe.geometry;
}

void check_batch(int64_t batch, const std::string& size, int64_t height, int64_t width) {
  if (batch < 1) fail("--batch", "must be at least 1, got " + std::to_string(batch));
  if (batch * height * width > limits().max_pixels)
    fail("--batch", std::to_string(batch) + " images of " + size + " exceed Limits.max_pixels (" +
                        std::to_string(limits().max_pixels) + " pixels per batch)");
}

}  // namespace fcn::cli
