// fcn: the command-line tool. Verbs live in cmd_*.cpp; this file wires them and turns every
// error into one line on stderr and a non-zero exit code.
#include <c10/util/Exception.h>

#include <filesystem>
#include <iostream>
#include <string>

#include "commands.h"
#include "fcn/util/allocator.h"
#include "fcn/util/error.h"
#include "fcn/util/threads.h"

namespace {
// A filesystem error as fcn says every error, the path first: libstdc++'s "filesystem error: cannot create
// directories: Not a directory [out]" -> "out: cannot create directories: Not a directory".
std::string filesystem_message(const std::filesystem::filesystem_error& e) {
  std::string what = fcn::first_line(e.what());
  if (const std::string prefix = "filesystem error: "; what.rfind(prefix, 0) == 0) what.erase(0, prefix.size());
  if (e.path1().empty()) return what;
  if (const auto at = what.find(" [" + e.path1().string() + "]"); at != std::string::npos) what.erase(at);  // the paths, said first
  return e.path1().string() + (e.path2().empty() ? "" : " -> " + e.path2().string()) + ": " + what;
}

// The verb the command line names, run; every error as one line on stderr and exit status 1.
int run_verb(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const fcn::Error& e) {
    std::cerr << "fcn: error: " << fcn::printable(fcn::cli::cli_message(e.subject(), e.message())) << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "fcn: error: " << fcn::printable(fcn::first_line(e.what_without_backtrace())) << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "fcn: error: out of memory (a smaller --size, --batch or --tile needs less)\n";
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    std::cerr << "fcn: error: " << fcn::printable(filesystem_message(e)) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "fcn: error: " << fcn::printable(fcn::first_line(e.what())) << "\n";
    return 1;
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  fcn::install_cpu_allocator();  // big activations reused, not page-faulted back (see allocator.h)
  fcn::use_available_cpus();     // every CPU this process may use (LibTorch may count fewer: threads.h)
  CLI::App app{"fcn: semantic segmentation with Fully Convolutional Networks (C++, LibTorch)\n\n"
               "  fcn data fashion-scenes --out scenes\n"
               "  fcn pretrain --data fashion-mnist --out classifier.fcn\n"
               "  fcn train --data scenes --arch fcn32s --init classifier.fcn --out fcn32s.fcn\n"
               "  fcn eval fcn32s.fcn --data scenes\n"
               "  fcn predict fcn8s.fcn photos/ --out masks --overlay\n"
               "  fcn heatmap classifier.fcn scene.png --class Trouser --out heatmap.png\n"
               "  fcn export fcn8s.fcn --onnx fcn8s.onnx\n"
               "  fcn report fcn8s.run --out report.html\n"
               "  fcn bench --geometry reference --peers\n"
               "  fcn tune --geometry reference --size 500\n"
               "  fcn init --arch fcn8s --backbone vgg16-w0.25 --classes 11 --out fcn8s.fcn\n"
               "  fcn info fcn8s.fcn --size 500\n"
               "  fcn forward fcn8s.fcn image.png --out logits.npy\n",
               "fcn"};
  app.require_subcommand(1);
  // Flag errors as one line, like every other error.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "fcn: error: " + fcn::printable(e.what()) + " (see fcn --help)\n";
  });
  app.set_help_all_flag("--help-all", "Show help for every verb");
  fcn::cli::add_init(app);
  fcn::cli::add_info(app);
  fcn::cli::add_import(app);
  fcn::cli::add_convolutionalize(app);
  fcn::cli::add_forward(app);
  fcn::cli::add_data(app);
  fcn::cli::add_pretrain(app);
  fcn::cli::add_train(app);
  fcn::cli::add_eval(app);
  fcn::cli::add_predict(app);
  fcn::cli::add_heatmap(app);
  fcn::cli::add_export(app);
  fcn::cli::add_report(app);
  fcn::cli::add_bench(app);
  fcn::cli::add_tune(app);
  fcn::cli::check_whole_numbers(app);
  const int status = run_verb(app, argc, argv);
  if (status != 0) fcn::cli::remove_unused_output_folders();  // a refused flag after --out new/m.fcn leaves no new/
  return status;
}
