#include <chrono>
#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "fcn/io/model_file.h"
#include "fcn/io/npy.h"
#include "fcn/util/error.h"
#include "fcn/io/image.h"

namespace fcn::cli {

void add_forward(CLI::App& app) {
  auto* cmd = app.add_subcommand("forward", "Run a model on one input and write its raw logits as float32 .npy\n"
                                            "  example: fcn forward fcn8s.fcn --input scene.png --output logits.npy\n"
                                            "  example: fcn forward fcn8s.fcn --input batch.npy --output logits.npy\n"
                                            "  An image is normalised with the model's stored statistics; a .npy\n"
                                            "  (float32, N x C x H x W) is fed to the net as is.");
  static std::string path, input, output;
  cmd->add_option("MODEL", path, "model file")->required();
  cmd->add_option("--input", input, "image file, or float32 NCHW .npy")->required();
  cmd->add_option("--output", output, "logits .npy to write")->required();
  cmd->callback([] {
    const auto model = load_model(path);
    torch::Tensor x;
    if (input.size() >= 4 && input.compare(input.size() - 4, 4, ".npy") == 0) {
      x = read_npy(input);
      if (x.scalar_type() != torch::kFloat) fail(input, std::string("must hold float32, found ") + c10::toString(x.scalar_type()));
      if (x.dim() != 4 || x.size(1) != model.net->in_channels())
        fail(input, "must be N x " + std::to_string(model.net->in_channels()) + " x H x W, found shape " +
                        c10::str(x.sizes()));
    } else {
      x = load_image(input, model.net->in_channels(), model.meta.normalization);
    }
    c10::InferenceMode guard;
    const auto start = std::chrono::steady_clock::now();
    const auto logits = model.net->forward(x);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    write_npy(output, logits.to(torch::kFloat));
    std::cout << "wrote " << output << ": logits " << c10::str(logits.sizes()) << " from input " << c10::str(x.sizes())
              << " in " << ms << " ms\n";
  });
}

}  // namespace fcn::cli
