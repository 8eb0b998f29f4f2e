#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "fcn/models/registry.h"
#include "fcn/serialize/model_file.h"
#include "fcn/serialize/weights.h"
#include "fcn/util/error.h"

namespace fcn::cli {

void add_import(CLI::App& app) {
  auto* cmd = app.add_subcommand("import", "Import a classifier's weights from PyTorch (.pth) or safetensors\n"
                                           "  example: fcn import torchvision-vgg16 vgg16.pth --out vgg16.fcn\n"
                                           "  (vgg16.pth as written by torch.save(torchvision.models.vgg16().state_dict(), f))");
  static std::string format, file, out;
  cmd->add_option("FORMAT", format, "torchvision-vgg11 | torchvision-vgg13 | torchvision-vgg16 | torchvision-vgg19")->required();
  cmd->add_option("FILE", file, "weights: .pth/.pt (torch.save) or .safetensors")->required();
  add_out_flag(cmd, out, "model file to write")->required();
  cmd->callback([] {
    const std::string prefix = "torchvision-vgg";
    int64_t depth = 0;
    if (format.rfind(prefix, 0) == 0) {
      const auto rest = format.substr(prefix.size());
      if (rest == "11" || rest == "13" || rest == "16" || rest == "19") depth = std::stoi(rest);
    }
    if (depth == 0) fail("FORMAT", "'" + format + "' is not one of torchvision-vgg11, -vgg13, -vgg16, -vgg19");
    Model model;
    model.net = import_torchvision_vgg(read_state_dict(file), file, depth).ptr();
    model.meta = default_meta(model.net->num_classes(), model.net->in_channels());
    save_model(out, model);
    std::cout << "wrote " << out << ": classifier from " << file << ", " << net_config(*model.net).dump() << "\n";
  });
}

}  // namespace fcn::cli
