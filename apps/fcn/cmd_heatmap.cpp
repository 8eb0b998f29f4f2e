#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "fcn/formats/image.h"
#include "fcn/formats/npy.h"
#include "fcn/formats/png.h"
#include "fcn/infer/heatmap.h"
#include "fcn/infer/picture.h"
#include "fcn/serialize/model_file.h"

namespace fcn::cli {

void add_heatmap(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "heatmap", "Where is a class? A classifier, convolutionalized, run on a larger image (FCN paper, figure 2)\n"
                 "  example: fcn heatmap classifier.fcn scene.png --class Trouser --out trouser-heatmap.png\n"
                 "  Writes the coarse class probability per window (stride 32), upsampled and blended over\n"
                 "  the image; --npy also saves the coarse map.");
  static std::string model_path, image_path, class_name, out, npy;
  static int64_t scale = 256;
  cmd->add_option("MODEL", model_path, "classifier (or convolutionalized classifier, or segmentation model)")->required();
  cmd->add_option("IMAGE", image_path, "image, larger than the classifier's training size")->required();
  cmd->add_option("--class", class_name, "class name (or index)")->required();
  add_out_flag(cmd, out, "PNG to write: image | heat map overlay")->required();
  output_file(cmd->add_option("--npy", npy, "also write the coarse h x w probabilities as .npy"));
  cmd->add_option("--min-side", scale, "enlarge small images (nearest) to at least this side in the picture")->capture_default_str();
  add_max_pixels_flag(cmd);
  cmd->callback([] {
    for (const auto& read : {model_path, image_path}) {
      check_not_input(out, "--out", read);
      check_not_input(npy, "--npy", read);
    }
    const auto model = load_model(model_path);
    const int64_t index = class_index(model.meta, class_name);
    const auto image = read_image(image_path);
    const auto heatmap = class_heatmap(model, image, index, image_path);
    const auto picture = hconcat({enlarge(to_rgb8(image), scale), enlarge(heatmap_picture(image, heatmap.full), scale)});
    write_png(out, picture);
    if (!npy.empty()) write_npy(npy, heatmap.coarse);
    const auto peak = heatmap.coarse.flatten().argmax().item<int64_t>();
    std::cout << "wrote " << out << ": '" << model.meta.class_names[static_cast<size_t>(index)] << "' probability on a "
              << heatmap.coarse.size(0) << "x" << heatmap.coarse.size(1) << " grid of windows, max "
              << heatmap.coarse.max().item<float>() << " at cell (" << peak / heatmap.coarse.size(1) << ", "
              << peak % heatmap.coarse.size(1) << ")\n";
  });
}

}  // namespace fcn::cli
