// The flags the verbs share, each added by one function so a concept has one name, one help text
// and one default everywhere (as llama.cpp's common/arg.cpp does), the parsers behind them, and
// the map from library option names in fcn::Error subjects ("PredictOptions.overlap") to flags.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include "fcn/formats/nifti.h"
#include "fcn/models/registry.h"
#include "fcn/models/winograd.h"

namespace fcn {
struct PredictOptions;
}

namespace fcn::cli {

// --max-pixels N: Limits.max_pixels for the images this verb reads.
void add_max_pixels_flag(CLI::App* cmd);
// --cache-mib N: memory for decoded samples per split read (SegmentationDataset::keep_decoded).
void add_cache_flag(CLI::App* cmd, int64_t& mib, const std::string& what);
// --device cpu | cuda | cuda:N (default cpu).
void add_device_flag(CLI::App* cmd, std::string& device);
// --dtype fp32 | bf16 (default fp32).
void add_dtype_flag(CLI::App* cmd, std::string& dtype);
// --conv auto | direct | winograd | winograd-onednn: how 3x3 convolutions run; `auto_text` says what auto is.
void add_conv_flag(CLI::App* cmd, std::string& conv, const std::string& auto_text);
// --layout of fcn train and fcn pretrain (fcn::TrainingLayout).
void add_layout_flag(CLI::App* cmd, std::string& layout);
// --size H or HxW; `what` says what the size is for.
void add_size_flag(CLI::App* cmd, std::string& size, const std::string& what);
// --threads N[,N...]: intra-op threads (bench measures each count; the others use the last).
void add_threads_flag(CLI::App* cmd, std::vector<int>& threads, const std::string& default_text);
// --json: print a JSON summary instead of text.
void add_json_flag(CLI::App* cmd, bool& json, const std::string& keys = "");
// --out PATH; `what` says what is written. Its folder is made as the flag is read (output_file); `folder`: PATH is the
// folder the verb writes into (predict, data), else a file, and a folder there is an error naming it.
CLI::Option* add_out_flag(CLI::App* cmd, std::string& out, const std::string& what, bool folder = false);
// `option` names a file fcn writes: its folder is made as the flag is read, so that a missing folder costs no work
// (fcn pretrain trained for the whole run, then could not write its model into one; fcn report scored the split
// first); a file on the way is an error naming it, and so is a folder that takes no files (read-only, or not the
// user's), or a folder where the file would go (found at the rename, after the work). make_parent_folder: the folder
// alone; check_writable_folder: the last check alone, for `path` in `folder`.
CLI::Option* output_file(CLI::Option* option);
void make_parent_folder(const std::string& path);
void check_writable_folder(const std::string& folder, const std::string& path);
// `output`, given to `flag`, is not the file `input` that the verb reads (fcn export m.fcn --pth m.fcn wrote a
// state_dict over the model it exported): an fcn::Error naming both, before any work. Nothing where either is empty.
void check_not_input(const std::string& output, const std::string& flag, const std::string& input);
// The folders make_parent_folder made in this run, removed where they hold no file: fcn calls it when a verb fails, so
// that a flag refused after --out (or work that failed before writing) leaves no empty folder behind.
void remove_unused_output_folders();
// The run folder of fcn train and fcn pretrain: --run-dir, else --resume's (a folder, or the folder of the
// checkpoint file it names), else OUT without .fcn plus .run.
std::string run_folder_of(const std::string& out, const std::string& run_dir, const std::string& resume);
// How fcn predict and fcn eval run a net on an image, so that eval measures what predict delivers:
// --tile, --overlap, --scales and --threshold (into `options`), --tta and --resize (text, into `flags`).
struct InferenceFlags {
  std::vector<std::string> tta;
  std::string resize;
  const CLI::Option* threshold = nullptr;  // --threshold and --overlap, to tell whether they were given
  const CLI::Option* overlap = nullptr;
};
void add_inference_flags(CLI::App* cmd, PredictOptions& options, InferenceFlags& flags);
// What fcn eval and fcn report segment a split with before their flags: PredictOptions with small
// images 8 to a forward pass (fcn predict's --batch counts tiles, default 1).
PredictOptions scoring_options();
// --tta and --resize into `options` (an error naming --resize when it is not H or HxW; one naming --overlap when it
// is given without --tile, whose tiles it overlaps).
void apply_inference_flags(const InferenceFlags& flags, PredictOptions& options);
// A line on stderr where --threshold was given for a net that is not binary (it takes each pixel's most probable
// class, and the flag goes unread): `model` names it.
void warn_unread_threshold(const InferenceFlags& flags, const NetImpl& net, const std::string& model);
// The recipe of a fresh net (--arch, --classes, --in-channels, --backbone, --geometry,
// --fc-channels, --fc-kernel, --frozen-upsampling, --input-size, --depth, --base-channels,
// --padding, --upsample, --batch-norm), with NetRecipe's defaults, for init, train and bench.
void add_recipe_flags(CLI::App* cmd, NetRecipe& recipe);
// Each recipe flag's value in `recipe`, by flag ("--arch": "fcn8s", "--depth": 4; --backbone by its canonical name), to
// compare the flags given with a net given as it is (a resumed run's, a model file's). One table in flags.cpp says
// which nets read each flag and where its value lies.
std::map<std::string, nlohmann::json> recipe_values(const NetRecipe& recipe);

// "cpu" | "cuda" | "cuda:N"; an error naming --device when CUDA is not available.
torch::Device parse_device(const std::string& text);
// "500" -> (500, 500); "375x500" -> (375, 500) as height x width. Throws fcn::Error naming `flag`.
std::pair<int64_t, int64_t> parse_size(const std::string& text, const std::string& flag);
// --window's "LOW,HIGH" (e.g. "-1000,400"): finite, LOW < HIGH. Throws fcn::Error naming --window.
VolumeWindow parse_window(const std::string& text);
// --spacing's "MM" (square pixels) or "X,Y" (mm across, down) as {x, y}: pixel_mm_problem's bounds. Throws
// fcn::Error naming --spacing; `words` are what else the flag takes ("median", "none"), for the message.
std::array<double, 2> parse_spacing(const std::string& text, const std::string& words);
// A pixel size for messages: "0.8" (square) or "0.8 x 0.7".
std::string pixel_text(const std::array<double, 2>& pixel_mm);
// --largest: "all" (empty: every class), or classes by number or name, each a class of `names` other than background.
std::vector<int64_t> parse_largest(const std::string& text, const std::vector<std::string>& names);
// --largest's help: the same flag in predict and eval.
extern const char* const kLargestHelp;  // --window LOW,HIGH or pLOW,pHIGH (percentiles)
// "w0=10,sigma=5" (or positionally "10,5") -> values for `keys` in order, starting from `values`
// (the defaults); a key left out keeps its default. Throws fcn::Error naming `flag`.
std::vector<double> parse_key_values(const std::string& text, const std::string& flag, const std::vector<std::string>& keys,
                                     std::vector<double> values);
// --conv's "direct" | "winograd" | "winograd-onednn" as the algorithm; an error naming --conv where
// fcn was built without oneDNN, for winograd-onednn outside `training`, or where this CPU has no
// oneDNN Winograd training kernels.
ConvAlgorithm parse_conv(const std::string& text, bool training);
// The most threads a flag may ask for (--threads, --workers): past the CPUs threads only share
// cores, and past this starting them alone takes longer than the work (1,024 OpenMP threads: 15 s
// for one 64x64 image on 2 cores; 100,000 never got going).
constexpr int kMaxThreads = 1024;
// Applies --threads to LibTorch (the last count; none given: LibTorch's default); refuses counts
// below 1 or above kMaxThreads, and warns on stderr above the CPUs this process may use.
void apply_threads(const std::vector<int>& threads);

// The flag a library option is set by ("PredictOptions.overlap" -> "--overlap"); the subject
// itself when no flag sets it.
std::string flag_for(const std::string& subject);
// The error as the CLI prints it: option names in the subject and the message become flags.
std::string cli_message(const std::string& subject, const std::string& message);

// Adds to every integer flag of `app` and its verbs (type INT or UINT in --help) a check that the
// text is a whole number the flag's type holds: CLI11 2.1 reads "-1" as 2^64 - 1 for an unsigned
// 64-bit flag (--seed) and clamps 99999999999999999999 to the largest 64-bit value, silently.
void check_whole_numbers(CLI::App& app);
// An --orient option's value in the case the library reads: orientation codes upper case (ras -> RAS), "stored"
// (any case) lower case; anything else as given, for the verb's own error.
void orientation_case(CLI::Option* option);

// This process's command line (from /proc/self/cmdline) without `flags` and their values: what each
// rank of a --nproc job runs.
std::vector<std::string> command_line_without(const std::vector<std::string>& flags);

// A flag that sets how a run's steps go (--batch, --lr, ...), and where the settings JSON its checkpoint keeps
// (run_settings, pretrain_settings) has its value: JSON pointers, the first saying whether a switch is on. A resumed
// run takes these from its checkpoint (until 2026-12-07 the command line's flags, given or not, replaced the run's
// without a word: a run started with --batch 4 --crop 32 --lr 0.01 went on with batch 8, no crop and lr 0.001).
struct SettingFlag {
  const char* flag;
  std::vector<const char*> keys;
  bool may_change = false;  // --epochs, --patience, --val-every: given, it changes the run; left out, the run's
};
// With --resume: a flag given (`given`) that asks for another value (`asked`: the settings this command line says)
// than the run's (`recorded`) is an fcn::Error naming the run's value, but for one that may change; `instead` is what
// else to do ("start afresh with --overwrite").
void check_setting_flags(const std::vector<SettingFlag>& flags, const std::function<bool(const std::string&)>& given,
                         const nlohmann::json& asked, const nlohmann::json& recorded, const std::string& run, const std::string& instead);
// The run's settings taken where no flag is given and this command line alone would have said otherwise, as flags:
// " --batch 4 --crop 32 --flip".
std::string settings_kept(const std::vector<SettingFlag>& flags, const std::function<bool(const std::string&)>& given,
                          const nlohmann::json& asked, const nlohmann::json& recorded);
// "RUN: resumed with the run's own --batch 4 ... (flags given beside --resume must agree)" on stdout, where any were kept.
void say_settings_kept(const std::string& run, const std::string& kept);

}  // namespace fcn::cli
