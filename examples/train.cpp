// Train a segmentation net on a dataset folder through the library API (no CLI):
//   train DATA RUN_DIR OUT.fcn  ->  RUN_DIR/ (checkpoint.pt, best.fcn, metrics.jsonl), OUT.fcn
// A small U-Net, two epochs: the run `fcn train --data DATA --arch unet --depth 2 --base-channels 8
// --epochs 2 --batch 4 --run-dir RUN_DIR --out OUT.fcn` makes (the tests compare the weights).
#include <iostream>

#include <torch/torch.h>

#include "fcn/data/stats.h"
#include "fcn/models/registry.h"
#include "fcn/serialize/model_file.h"
#include "fcn/train/trainer.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: train DATA RUN_DIR OUT.fcn\n";
    return 2;
  }
  try {
    const fcn::SegmentationDataset train(argv[1], "train"), val(argv[1], "val");  // VOC layout or images/ + masks/
    fcn::NetRecipe recipe;  // what fcn init / fcn train's --arch, --depth, ... name
    recipe.arch = "unet";
    recipe.depth = 2;
    recipe.base_channels = 8;
    recipe.classes = train.num_classes();
    recipe.in_channels = train.get(0).image.size(0) == 1 ? 1 : 3;
    torch::manual_seed(0);  // the initial weights
    fcn::Model model{fcn::make_net(recipe), fcn::default_meta(recipe.classes, recipe.in_channels)};
    model.meta.class_names = train.class_names();
    model.meta.palette = train.palette();
    model.meta.normalization = fcn::dataset_normalization(train, recipe.in_channels);

    const auto options = fcn::TrainOptions().run_dir(argv[2]).epochs(2).batch_size(4).overwrite(true);
    const fcn::TrainResult result = fcn::train_segmentation(model, train, &val, options);  // checkpoints; Ctrl-C safe
    fcn::save_model(argv[3], fcn::load_model(std::string(argv[2]) + "/best.fcn"));  // the best by validation mean IU
    std::cout << "best epoch " << result.best_epoch << " of " << result.epochs_done << ", val mean IU "
              << result.best_mean_iu << "\n";
  } catch (const std::exception& e) {
    std::cerr << "train: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
