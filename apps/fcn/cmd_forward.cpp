#include <chrono>
#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "fcn/formats/image.h"
#include "fcn/formats/npy.h"
#include "fcn/serialize/model_file.h"
#include "fcn/util/error.h"

namespace fcn::cli {

void add_forward(CLI::App& app) {
  auto* cmd = app.add_subcommand("forward", "Run a model's net once on one input and write its raw logits as float32 .npy\n"
                                            "  example: fcn forward fcn8s.fcn scene.png --out logits.npy\n"
                                            "  example: fcn forward fcn8s.fcn batch.npy --out logits.npy\n"
                                            "  An image is normalised with the model's stored statistics; a .npy\n"
                                            "  (float32, N x C x H x W) is fed to the net as is. No padding or tiling:\n"
                                            "  the net's own output (fcn predict segments any size).");
  static std::string path, input, out, device = "cpu";
  cmd->add_option("MODEL", path, "model file")->required();
  cmd->add_option("INPUT", input, "image file (a .npy image: H x W or C x H x W, preprocessed as predict does), or the net's "
                                  "input as a float32 N x C x H x W .npy (as it is)")->required();
  add_out_flag(cmd, out, "logits .npy to write")->required();
  add_device_flag(cmd, device);
  add_max_pixels_flag(cmd);
  cmd->callback([] {
    for (const auto& read : {path, input}) check_not_input(out, "--out", read);
    const auto model = load_model(path);
    const auto target = parse_device(device);
    torch::Tensor x;
    if (is_npy_path(input)) x = read_npy(input);
    if (x.defined() && x.dim() == 4) {  // the net's input as it is; fewer dimensions: an image
      if (x.scalar_type() != torch::kFloat) fail(input, std::string("must hold float32, found ") + c10::toString(x.scalar_type()));
      if (x.size(1) != model.net->in_channels())
        fail(input, "must be N x " + std::to_string(model.net->in_channels()) + " x H x W, found shape " +
                        c10::str(x.sizes()));
    } else {
      x = model_input(model, read_image(input), input);
    }
    c10::InferenceMode guard;
    model.net->eval();
    model.net->to(target);
    const auto start = std::chrono::steady_clock::now();
    const auto logits = model.net->forward(x.to(target)).to(torch::kCPU, torch::kFloat);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    write_npy(out, logits);
    std::cout << "wrote " << out << ": logits " << c10::str(logits.sizes()) << " from input " << c10::str(x.sizes())
              << " in " << ms << " ms\n";
  });
}

}  // namespace fcn::cli
