#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "fcn/models/cost.h"
#include "fcn/models/registry.h"
#include "fcn/serialize/model_file.h"
#include "workload.h"

namespace fcn::cli {

void add_init(CLI::App& app) {
  auto* cmd = app.add_subcommand("init", "Create a freshly initialised model file\n"
                                         "  example: fcn init --arch fcn8s --backbone vgg16-w0.25 --classes 11 --out fcn8s.fcn\n"
                                         "  example: fcn init --arch unet --padding valid --depth 4 --classes 2 --out unet.fcn\n"
                                         "  The same --arch/--backbone/... flags give the same net in fcn train and fcn bench.");
  static NetRecipe recipe;
  static std::string out;
  static uint64_t seed = 0;
  add_recipe_flags(cmd, recipe);
  cmd->get_option("--arch")->required()->default_str("");  // required: a default shown in --help would never be used
  add_out_flag(cmd, out, "model file to write")->required();
  cmd->add_option("--seed", seed, "random seed for the initial weights")->capture_default_str();
  cmd->callback([] {
    torch::manual_seed(seed);
    const Model model = fresh_model(recipe);
    save_model(out, model);
    std::cout << "wrote " << out << ": " << recipe.arch << ", " << parameter_count(*model.net) / 1e6 << " M parameters\n";
  });
}

}  // namespace fcn::cli
