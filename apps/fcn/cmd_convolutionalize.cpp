#include <iostream>

#include "commands.h"
#include "fcn/models/convolutionalize.h"
#include "fcn/models/cost.h"
#include "fcn/serialize/model_file.h"
#include "fcn/util/error.h"

namespace fcn::cli {

void add_convolutionalize(CLI::App& app) {
  auto* cmd = app.add_subcommand("convolutionalize",
                                 "Turn a classifier into a fully convolutional net (fc layers -> convs, same weights)\n"
                                 "  example: fcn convolutionalize vgg16.fcn --out vgg16-conv.fcn\n"
                                 "  The result maps any input of at least the training size to a class heatmap.");
  static std::string path, out;
  cmd->add_option("CLASSIFIER", path, "classifier model file (fcn import / fcn init --arch classifier)")->required();
  add_out_flag(cmd, out, "model file to write")->required();
  cmd->callback([] {
    check_not_input(out, "--out", path);  // the segmenter over its classifier: the classifier gone
    auto model = load_model(path);
    // Keeps the classifier alive: model.net is replaced below.
    const auto classifier = std::dynamic_pointer_cast<ClassifierImpl>(model.net);
    if (classifier == nullptr) fail(path, "is a '" + model.net->arch() + "' model, not a classifier");
    model.net = convolutionalize(*classifier).ptr();
    save_model(out, model);
    std::cout << "wrote " << out << ": fc6 is now a " << classifier->options.kernel() << "x" << classifier->options.kernel()
              << " conv, fc7/fc8 1x1 convs; " << parameter_count(*model.net) << " parameters (unchanged)\n";
  });
}

}  // namespace fcn::cli
