#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "fcn/io/model_file.h"
#include "fcn/models/classifier.h"
#include "fcn/models/fcn.h"
#include "fcn/models/unet.h"
#include "fcn/util/error.h"

namespace fcn::cli {

void add_init(CLI::App& app) {
  auto* cmd = app.add_subcommand("init", "Create a freshly initialised model file\n"
                                         "  example: fcn init --arch fcn8s --backbone vgg16-w0.25 --classes 11 --out fcn8s.fcn\n"
                                         "  example: fcn init --arch unet --padding valid --depth 4 --classes 2 --out unet.fcn");
  static std::string arch, backbone = "vgg16", geometry = "same", padding = "same", upsample = "transposed", out;
  static int64_t classes = 0, in_channels = 3, fc_channels = 0, depth = 4, base_channels = 64, input_size = 224;
  static uint64_t seed = 0;
  static bool batch_norm = false, frozen_upsampling = false;
  cmd->add_option("--arch", arch, "fcn32s | fcn16s | fcn8s | unet | classifier")->required();
  cmd->add_option("--out", out, "model file to write")->required();
  cmd->add_option("--classes", classes, "number of classes (default: 21 for FCN, 2 for U-Net, 1000 for classifier)");
  cmd->add_option("--in-channels", in_channels, "input channels")->capture_default_str();
  cmd->add_option("--seed", seed, "random seed for the initial weights")->capture_default_str();
  cmd->add_option("--backbone", backbone, "FCN/classifier: vgg11|vgg13|vgg16|vgg19, optionally -wWIDTH (vgg16-w0.25)")->capture_default_str();
  cmd->add_option("--geometry", geometry, "FCN: reference (Caffe nets, pad 100 + crops) | same")->capture_default_str();
  cmd->add_option("--fc-channels", fc_channels, "FCN/classifier: fc6/fc7 width (default 4096 x backbone width)");
  cmd->add_flag("--frozen-upsampling", frozen_upsampling, "FCN: keep the bilinear upsampling fixed during training");
  cmd->add_option("--input-size", input_size, "classifier: training input size (multiple of 32)")->capture_default_str();
  cmd->add_option("--depth", depth, "U-Net: number of poolings")->capture_default_str();
  cmd->add_option("--base-channels", base_channels, "U-Net: channels at full resolution")->capture_default_str();
  cmd->add_option("--padding", padding, "U-Net: valid (the paper, output smaller) | same")->capture_default_str();
  cmd->add_option("--upsample", upsample, "U-Net: transposed | bilinear")->capture_default_str();
  cmd->add_flag("--batch-norm", batch_norm, "U-Net: batch norm after each conv");
  cmd->callback([] {
    torch::manual_seed(seed);
    if (in_channels < 1) fail("--in-channels", "must be positive");
    Model model;
    if (arch == "fcn32s" || arch == "fcn16s" || arch == "fcn8s" || arch == "classifier") {
      auto vgg = parse_backbone(backbone).in_channels(in_channels);
      const int64_t fc = fc_channels > 0 ? fc_channels : std::max<int64_t>(1, std::llround(4096 * vgg.width()));
      if (arch == "classifier") {
        model.net = std::make_shared<ClassifierImpl>(
            ClassifierOptions().backbone(vgg).input_size(input_size).fc_channels(fc).num_classes(classes > 0 ? classes : 1000));
      } else {
        model.net = std::make_shared<FCNImpl>(FCNOptions()
                                                  .stride(std::stoi(arch.substr(3)))
                                                  .num_classes(classes > 0 ? classes : 21)
                                                  .backbone(vgg)
                                                  .geometry(parse_geometry(geometry))
                                                  .fc_channels(fc)
                                                  .learnable_upsampling(!frozen_upsampling));
      }
    } else if (arch == "unet") {
      model.net = std::make_shared<UNetImpl>(UNetOptions()
                                                 .depth(depth)
                                                 .base_channels(base_channels)
                                                 .in_channels(in_channels)
                                                 .num_classes(classes > 0 ? classes : 2)
                                                 .padding(parse_padding(padding))
                                                 .upsample(parse_upsample(upsample))
                                                 .batch_norm(batch_norm));
    } else {
      fail("--arch", "'" + arch + "' is not one of fcn32s, fcn16s, fcn8s, unet, classifier");
    }
    model.meta = default_meta(model.net->num_classes(), model.net->in_channels());
    save_model(out, model);
    std::cout << "wrote " << out << ": " << arch << ", " << parameter_count(*model.net) / 1e6 << " M parameters\n";
  });
}

}  // namespace fcn::cli
