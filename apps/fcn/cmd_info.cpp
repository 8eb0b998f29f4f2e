#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "fcn/io/model_file.h"
#include "fcn/models/classifier.h"
#include "fcn/models/convolutionalize.h"
#include "fcn/util/error.h"

namespace fcn::cli {

std::pair<int64_t, int64_t> parse_size(const std::string& text, const std::string& flag) {
  int64_t h = 0, w = 0;
  char extra = 0;
  const int n = std::sscanf(text.c_str(), "%ldx%ld%c", &h, &w, &extra);
  if (n == 1) w = h;
  if ((n != 1 && n != 2) || h < 1 || w < 1 || h > 100000 || w > 100000)
    fail(flag, "'" + text + "' is not a size like 500 or 375x500 (height x width)");
  return {h, w};
}

void add_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Describe a model file: architecture, classes, parameters, FLOPs\n"
                                         "  example: fcn info fcn8s.fcn --size 500");
  static std::string path, size;
  static bool json_output = false;
  cmd->add_option("MODEL", path, "model file")->required();
  cmd->add_option("--size", size, "input size for FLOPs, H or HxW (default: the classifier's training size, else 224)");
  cmd->add_flag("--json", json_output, "print a JSON summary instead of text");
  cmd->callback([] {
    const auto model = load_model(path);
    auto& net = *model.net;
    int64_t default_size = 224;
    if (auto* c = dynamic_cast<ClassifierImpl*>(&net)) default_size = c->options.input_size();
    if (auto* c = dynamic_cast<ConvClassifierImpl*>(&net)) default_size = c->options.input_size();
    const auto [h, w] = size.empty() ? std::pair<int64_t, int64_t>{default_size, default_size} : parse_size(size, "--size");
    const double flops = forward_flops(net, h, w);
    nlohmann::json summary = {{"model", path},
                              {"config", net_config(net)},
                              {"classes", model.meta.class_names},
                              {"parameters", parameter_count(net)},
                              {"size", {h, w}},
                              {"gflops", flops / 1e9}};
    if (json_output) {
      std::cout << summary.dump(2) << "\n";
      return;
    }
    std::printf("%s\n  arch        %s\n  config      %s\n  classes     %zu (%s%s)\n  parameters  %.3f M\n"
                "  FLOPs       %.3f GFLOP at %ldx%ld (2 per multiply-add)\n",
                path.c_str(), net.arch().c_str(), net_config(net).dump().c_str(), model.meta.class_names.size(),
                model.meta.class_names.empty() ? "" : model.meta.class_names.front().c_str(),
                model.meta.class_names.size() > 1 ? ", ..." : "", parameter_count(net) / 1e6, flops / 1e9, h, w);
  });
}

}  // namespace fcn::cli
