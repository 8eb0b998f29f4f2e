// fcn: the command-line tool. Verbs live in cmd_*.cpp; this file wires them and turns every
// error into one line on stderr and a non-zero exit code.
#include <c10/util/Exception.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

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

// The innermost verb the command line names ("fcn data split": split).
const CLI::App& named_verb(const CLI::App& app) {
  for (const CLI::App* verb : app.get_subcommands()) return named_verb(*verb);
  return app;
}

std::string verb_path(const CLI::App& verb) {
  return verb.get_parent() == nullptr ? verb.get_name() : verb_path(*verb.get_parent()) + " " + verb.get_name();
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// " (did you mean --epochs?)" where one of the verb's long flags is within two edits of `flag`.
std::string nearest_flag(const CLI::App& verb, const std::string& flag) {
  std::string best;
  size_t best_distance = 3;
  for (const CLI::Option* option : verb.get_options())
    for (const auto& name : option->get_lnames())
      if (const size_t d = edit_distance(flag, "--" + name); d < best_distance) best_distance = d, best = "--" + name;
  return best.empty() ? "" : " (did you mean " + best + "?)";
}

// A command-line word the verb takes no flag or place for: "fcn train has no flag --epoch (did you mean
// --epochs?)". CLI11 checks required flags before leftovers, so a mistyped flag was reported as "--arch is
// required"; the word the user mistyped is said first now. Empty when every word was taken.
std::string unexpected_word(const CLI::App& app, int argc, char** argv) {
  const CLI::App& verb = named_verb(app);
  const auto left = verb.remaining(false);
  for (int i = 1; i < argc; ++i) {  // the first in the command line's order
    const std::string word = argv[i];
    if (std::find(left.begin(), left.end(), word) == left.end()) continue;
    const std::string name = verb_path(verb), help = " (see " + name + " --help)";
    if (word.size() > 1 && word[0] == '-') {
      const std::string flag = word.substr(0, word.find('='));
      return name + " has no flag " + flag + nearest_flag(verb, flag) + help;
    }
    const auto verbs = verb.get_subcommands([](const CLI::App*) { return true; });
    if (!verbs.empty()) {
      std::string names;
      for (const CLI::App* v : verbs) names += (names.empty() ? "" : ", ") + v->get_name();
      return name + " has no verb '" + word + "' (" + names + ")" + help;
    }
    return name + " takes no argument '" + word + "' here" + help;
  }
  return "";
}

// Usage errors exit 2 (as getopt's and argparse's), --help 0; a verb's own exit status (1 for inputs it
// skipped, 130 when stopped) passes through.
int usage_error(CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  if (dynamic_cast<const CLI::RuntimeError*>(&e) != nullptr || e.get_exit_code() == 0) return app.exit(e);
  if (const auto word = unexpected_word(app, argc, argv); !word.empty()) {
    std::cerr << "fcn: error: " << fcn::printable(word) << "\n";
    return 2;
  }
  app.exit(e);
  return 2;
}

// The verb the command line names, run; every error as one line on stderr: exit status 2 for a
// command line fcn cannot read, 1 for every other error.
int run_verb(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return usage_error(app, e, argc, argv);
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
  app.failure_message([](const CLI::App* root, const CLI::Error& e) {
    return "fcn: error: " + fcn::printable(e.what()) + " (see " + verb_path(named_verb(*root)) + " --help)\n";
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
