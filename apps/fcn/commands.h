// One function per `fcn` verb: each adds its subcommand (flags, --help example, callback) to the app.
// The callbacks only parse flags, call the library and print; fcn::Error reaches main().
#pragma once

#include <CLI/CLI.hpp>

#include "flags.h"

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
void add_tune(CLI::App& app);

}  // namespace fcn::cli
