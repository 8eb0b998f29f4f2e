// One function per `fcn` verb: each adds its subcommand (flags, --help example, callback) to the app.
// The callbacks only parse flags, call the library and print; fcn::Error reaches main().
#pragma once

#include <CLI/CLI.hpp>
#include <torch/types.h>
#include <string>
#include <utility>

namespace fcn::cli {

void add_info(CLI::App& app);
void add_init(CLI::App& app);
void add_import(CLI::App& app);
void add_convolutionalize(CLI::App& app);
void add_forward(CLI::App& app);
void add_data(CLI::App& app);
void add_pretrain(CLI::App& app);
void add_train(CLI::App& app);
void add_eval(CLI::App& app);
void add_predict(CLI::App& app);
void add_heatmap(CLI::App& app);
void add_export(CLI::App& app);
void add_report(CLI::App& app);
void add_bench(CLI::App& app);

// "cpu" | "cuda" | "cuda:N"; an error naming --device when CUDA is not available.
torch::Device parse_device(const std::string& text);

// "500" -> (500, 500); "375x500" -> (375, 500) as height x width. Throws fcn::Error naming the flag.
std::pair<int64_t, int64_t> parse_size(const std::string& text, const std::string& flag);

}  // namespace fcn::cli
