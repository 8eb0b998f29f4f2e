#include "flags.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <torch/utils.h>

#include "fcn/infer/predictor.h"
#include "fcn/models/backbone.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"
#include "fcn/util/threads.h"

namespace fcn::cli {
namespace {

// Library option -> the flag that sets it, in every verb that has it.
const std::map<std::string, std::string>& option_flags() {
  static const std::map<std::string, std::string> flags = {
      {"NetRecipe.arch", "--arch"},
      {"NetRecipe.classes", "--classes"},
      {"NetRecipe.in_channels", "--in-channels"},
      {"NetRecipe.fc_channels", "--fc-channels"},
      {"NetRecipe.fc_kernel", "--fc-kernel"},
      {"backbone", "--backbone"},
      {"FCNOptions.geometry", "--geometry"},
      {"UNetOptions.padding", "--padding"},
      {"UNetOptions.upsample", "--upsample"},
      {"PredictOptions.tile", "--tile"},
      {"PredictOptions.overlap", "--overlap"},
      {"PredictOptions.batch", "--batch"},
      {"PredictOptions.resize", "--resize"},
      {"PredictOptions.scales", "--scales"},
      {"VolumeOptions.resample", "--spacing"},
      {"VolumeOptions.pixel_mm", "--spacing"},
      {"TrainOptions.run_dir", "--out"},
      {"TrainOptions.epochs", "--epochs"},
      {"TrainOptions.patience", "--patience"},
      {"TrainOptions.val_every", "--val-every"},
      {"TrainOptions.batch_size", "--batch"},
      {"TrainOptions.reduction", "--reduction"},
      {"TrainOptions.loss", "--loss"},
      {"AugmentOptions.min_scale", "--scale-min/--scale-max"},
      {"AugmentOptions.crop", "--crop"},
      {"AugmentOptions.rotate", "--rotate"},
      {"AugmentOptions.shift", "--shift"},
      {"AugmentOptions.elastic_alpha", "--elastic alpha"},
      {"AugmentOptions.elastic_grid", "--elastic grid"},
      {"AugmentOptions.gamma", "--gamma"},
      {"AugmentOptions.foreground", "--foreground"},
      {"WeightMapOptions", "--weight-map"},
      {"UNetOptions.dropout", "--dropout"},
      {"PredictOptions.threshold", "--threshold"},
      {"TrainOptions.optimizer", "--optimizer"},
      {"OptimizerOptions.name", "--optimizer"},
      {"OptimizerOptions.schedule", "--schedule"},
      {"OptimizerOptions.lr", "--lr"},
      {"OptimizerOptions.weight_decay", "--weight-decay"},
      {"OptimizerOptions.momentum", "--momentum"},
      {"OptimizerOptions.bias_lr_mult", "--bias-lr-mult"},
      {"Limits.max_pixels", "--max-pixels"},
      {"TrainOptions.overwrite", "--overwrite"},
      {"BenchOptions.batch", "--batch"},
      {"PretrainOptions.epochs", "--epochs"},
      {"PretrainOptions.batch_size", "--batch"},
      {"PretrainOptions.input_size", "--input-size"},
      {"FashionScenesOptions.size", "--size"},
      {"FashionScenesOptions.train/val", "--train/--val"},
      {"FashionCellsOptions.size", "--size"},
      {"FashionCellsOptions.train/val", "--train/--val"},
      {"OnnxExportOptions.opset", "--opset"},
      {"OnnxExportOptions.height/width", "--size"},
      {"OnnxExportOptions.dynamic", "--dynamic"},
      {"BenchOptions.mode", "--mode"},
      {"BenchOptions.runs", "--runs"},
      {"dtype", "--dtype"},
      {"PredictOptions.dtype", "--dtype"},
      {"BenchOptions.dtype", "--dtype"},
      {"class", "--class"},
  };
  return flags;
}

// The text of a whole number CLI11 reads as `is_unsigned` (strtoull / strtoll, base 0) and would
// wrap or clamp: a minus sign for an unsigned flag, a value past 64 bits for either. "" if fine.
std::string whole_number_problem(const std::string& text, bool is_unsigned) {
  const auto digits = text.find_first_not_of(" \t+");
  const bool negative = digits != std::string::npos && text[digits] == '-';
  if (is_unsigned && negative) return "must not be negative, got " + text;
  errno = 0;
  char* end = nullptr;
  if (is_unsigned)
    std::strtoull(text.c_str(), &end, 0);
  else
    std::strtoll(text.c_str(), &end, 0);
  if (errno == ERANGE) return text + " is out of range (a 64-bit " + (is_unsigned ? "unsigned " : "") + "integer)";
  // As CLI11 converts (the whole text, base 0); said here, ahead of a range check's "Value abc not in range 1 to N".
  if (text.empty() || end != text.c_str() + text.size()) return "'" + text + "' is not a whole number";
  return "";
}

}  // namespace

void check_whole_numbers(CLI::App& app) {
  for (CLI::Option* option : app.get_options()) {
    const std::string type = option->get_type_name();
    const bool is_unsigned = type.rfind("UINT", 0) == 0;
    if (!is_unsigned && type.rfind("INT", 0) != 0) continue;
    // transform: ahead of the option's own checks (CLI11 runs them in order, and check() appends)
    option->transform(CLI::Validator([is_unsigned](std::string& text) { return whole_number_problem(text, is_unsigned); }, ""));
  }
  for (CLI::App* verb : app.get_subcommands([](CLI::App*) { return true; })) check_whole_numbers(*verb);
}

void orientation_case(CLI::Option* option) {
  option->transform(CLI::Validator(
      [](std::string& text) {
        std::string upper = text;
        std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        text = upper == "STORED" ? "stored" : upper.size() == 3 ? upper : text;
        return std::string();
      },
      ""));
}

void add_max_pixels_flag(CLI::App* cmd) {
  cmd->add_option_function<int64_t>(
         "--max-pixels", [](const int64_t& pixels) { set_max_pixels(pixels); },
         "refuse images with more pixels than this, before decoding (default " + std::to_string(limits().max_pixels) +
             " = 16384^2; env FCN_MAX_PIXELS)");  // set_max_pixels refuses a count below 1, in one line
}

void add_cache_flag(CLI::App* cmd, int64_t& mib, const std::string& what) {
  cmd->add_option("--cache-mib", mib,
                  "MiB per split for decoded samples kept in memory after their first read, so " + what +
                      " read no files\n  (held compactly: a 64x64 RGB scene with its mask is 16 KiB; past the budget, samples are decoded\n"
                      "  each time; 0: none kept)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->capture_default_str();
}

void add_device_flag(CLI::App* cmd, std::string& device) {
  cmd->add_option("--device", device, "cpu | cuda | cuda:N")->capture_default_str();
}

void add_dtype_flag(CLI::App* cmd, std::string& dtype) {
  cmd->add_option("--dtype", dtype, "fp32 | bf16 (the net in bfloat16: CPUs with AVX512-BF16/AMX, GPUs)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
}

void add_conv_flag(CLI::App* cmd, std::string& conv, const std::string& auto_text) {
  cmd->add_option("--conv", conv,
                  "auto | direct | winograd | winograd-onednn: 3x3 convs by LibTorch's direct kernels or Winograd F(4x4,3x3)\n"
                  "  by fcn's kernels (any CPU; inference: with fc6-sized layers by im2col + sgemm; training: on maps from 32x32)\n"
                  "  or, training only, by oneDNN's (AVX-512 CPUs); auto: " + auto_text)
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "direct", "winograd", "winograd-onednn"}));
}

void add_layout_flag(CLI::App* cmd, std::string& layout) {
  cmd->add_option("--layout", layout, "auto | nchw | channels-last: activations and conv weights during training;\n"
                                      "  auto: on a CPU, the choice fcn tune --mode train (or --tune) cached for this step, else\n"
                                      "  inference's rule: channels-last on CPUs with AVX-512 or where fcn has its Winograd kernels\n"
                                      "  (built with oneDNN: 1.1-1.2x faster steps), else NCHW")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "nchw", "channels-last"}));
}

ConvAlgorithm parse_conv(const std::string& text, bool training) {
  const auto conv = parse_conv_algorithm(text, "--conv");
  if (conv != ConvAlgorithm::kDirect && !winograd_supported())
    fail("--conv", text + ": fcn was built without oneDNN (libdnnl-dev); use --conv direct");
  if (conv == ConvAlgorithm::kWinogradOneDnn && !training)
    fail("--conv", "winograd-onednn is a training choice (oneDNN's Winograd training kernels); inference runs fcn's Winograd kernel: use --conv winograd");
  if (conv == ConvAlgorithm::kWinogradOneDnn && !winograd_onednn_trains())
    fail("--conv", "winograd-onednn: oneDNN has no Winograd training kernels on this CPU (they need AVX-512); use --conv winograd or direct");
  return conv;
}

void add_size_flag(CLI::App* cmd, std::string& size, const std::string& what) {
  cmd->add_option("--size", size, what + ": H or HxW (height x width)")->capture_default_str();
}

void add_threads_flag(CLI::App* cmd, std::vector<int>& threads, const std::string& default_text) {
  cmd->add_option("--threads", threads, "intra-op threads, e.g. 2 (bench: counts to measure, e.g. 1,2); default: " + default_text)
      ->delimiter(',');
}

void add_json_flag(CLI::App* cmd, bool& json, const std::string& keys) {
  cmd->add_flag("--json", json, keys.empty() ? "print a JSON summary" : "print JSON (" + keys + ")");
}

void add_inference_flags(CLI::App* cmd, PredictOptions& options, InferenceFlags& flags) {
  cmd->add_option("--tile", options.tile, "overlap-tile inference with tiles of this side (px); 0 = whole image")
      ->capture_default_str();
  flags.overlap = cmd->add_option("--overlap", options.overlap, "pixels shared by neighbouring tiles")->capture_default_str();
  cmd->add_option("--tta", flags.tta, "test-time augmentation: flip and/or rot90 (probabilities averaged)")
      ->check(CLI::IsMember({"flip", "rot90"}))
      ->delimiter(',');
  cmd->add_option("--scales", options.scales,
                  "multi-scale inference: segment the image resized by each factor, e.g. 0.75,1,1.25 (probabilities averaged)")
      ->delimiter(',')
      ->capture_default_str();
  flags.threshold = cmd->add_option("--threshold", options.threshold, "binary nets: foreground where its probability exceeds this")
                        ->capture_default_str();
  cmd->add_option("--resize", flags.resize, "resize images to HxW for the net (stretches; default: pad and crop)");
}

PredictOptions scoring_options() {
  PredictOptions options;
  options.batch = 8;
  return options;
}

void apply_inference_flags(const InferenceFlags& flags, PredictOptions& options) {
  if (flags.overlap != nullptr && flags.overlap->count() > 0 && options.tile == 0)
    fail("--overlap", "is the overlap of --tile's tiles, and --tile is not given (the whole image is one pass)");
  if (!flags.resize.empty()) std::tie(options.resize_height, options.resize_width) = parse_size(flags.resize, "--resize");
  for (const auto& t : flags.tta) (t == "flip" ? options.flip : options.rot90) = true;
}

void warn_unread_threshold(const InferenceFlags& flags, const NetImpl& net, const std::string& model) {
  if (flags.threshold == nullptr || flags.threshold->count() == 0 || net.num_classes() == 1) return;
  std::fprintf(stderr, "fcn: warning: --threshold is for binary nets (one logit: --classes 1); %s has %ld classes and takes each pixel's most probable: --threshold unused\n",
               printable(model).c_str(), static_cast<long>(net.num_classes()));
}

void check_writable_folder(const std::string& folder, const std::string& path) {
  if (::access(folder.c_str(), W_OK | X_OK) != 0) fail(folder, "cannot write " + path + " there: " + std::strerror(errno));
}

namespace {
std::vector<std::filesystem::path>& made_folders() {  // the topmost folder each make_parent_folder call made
  static std::vector<std::filesystem::path> folders;
  return folders;
}
}  // namespace

void check_not_input(const std::string& output, const std::string& flag, const std::string& input) {
  std::error_code error;
  if (!output.empty() && !input.empty() && std::filesystem::equivalent(output, input, error) && !error)
    fail(output, flag + " names " + input + ", the file this command reads, and would replace it: write to another file");
}

void make_parent_folder(const std::string& path) {
  namespace fs = std::filesystem;
  const auto parent = fs::path(path).parent_path();
  std::error_code error;
  if (!parent.empty() && !fs::is_directory(parent, error)) {
    auto top = parent;
    for (auto up = parent; !up.empty(); up = up.parent_path()) {  // the nearest that exists must be a folder
      if (fs::exists(up, error) && !fs::is_directory(up, error))
        fail(up.string(), "is a file, not a folder (" + path + " would go under it)");
      if (fs::exists(up, error) || up == up.parent_path()) break;
      top = up;
    }
    fs::create_directories(parent, error);
    if (error) fail(parent.string(), "cannot create the folder for " + path + ": " + error.message());
    made_folders().push_back(top);
  }
  check_writable_folder(parent.empty() ? "." : parent.string(), path);
}

void remove_unused_output_folders() {
  namespace fs = std::filesystem;
  for (const auto& folder : made_folders()) {
    std::error_code error;
    bool empty = fs::is_directory(folder, error);
    for (fs::recursive_directory_iterator it(folder, error), end; empty && !error && it != end; it.increment(error))
      empty = it->symlink_status(error).type() == fs::file_type::directory;
    if (empty && !error) fs::remove_all(folder, error);
  }
  made_folders().clear();
}

std::string run_folder_of(const std::string& out, const std::string& run_dir, const std::string& resume) {
  namespace fs = std::filesystem;
  if (!run_dir.empty()) return run_dir;
  if (!resume.empty()) return fs::is_directory(resume) ? resume : fs::path(resume).parent_path().string();
  const bool fcn_suffix = out.size() > 4 && out.compare(out.size() - 4, 4, ".fcn") == 0;
  return (fcn_suffix ? out.substr(0, out.size() - 4) : out) + ".run";
}

CLI::Option* output_file(CLI::Option* option) {
  return option->each([option](const std::string& path) {
    if (std::error_code error; std::filesystem::is_directory(path, error))
      fail(path, "is a folder, and " + option->get_name() + " names a file to write: give the file's name");
    make_parent_folder(path);
  });
}

CLI::Option* add_out_flag(CLI::App* cmd, std::string& out, const std::string& what, bool folder) {
  auto* option = cmd->add_option("--out", out, what);
  return folder ? option->each([](const std::string& path) { make_parent_folder(path); }) : output_file(option);
}

namespace {
bool is_fcn(const std::string& arch) { return fcn_stride(arch) > 0; }
bool is_unet(const std::string& arch) { return arch == "unet"; }

bool every_net(const std::string&) { return true; }

// Each recipe flag: which nets read it, and its value in a recipe (compared with a net given as it is).
struct RecipeFlag {
  const char* flag;
  const char* readers;  // in an error's words; null: every net
  bool (*reads)(const std::string& arch);
  nlohmann::json (*value)(const NetRecipe& r);
};
const RecipeFlag kRecipeFlags[] = {
    {"--arch", nullptr, every_net, [](const NetRecipe& r) -> nlohmann::json { return r.arch; }},
    {"--classes", nullptr, every_net, [](const NetRecipe& r) -> nlohmann::json { return r.classes; }},
    {"--in-channels", nullptr, every_net, [](const NetRecipe& r) -> nlohmann::json { return r.in_channels; }},
    {"--backbone", "FCNs, torchvision-fcn and the classifier, not U-Net (its encoder is its own)", [](const std::string& a) { return !is_unet(a); },
     [](const NetRecipe& r) -> nlohmann::json { return r.backbone.empty() ? r.backbone : backbone_name(parse_backbone(r.backbone)); }},
    {"--geometry", "FCNs (fcn32s, fcn16s, fcn8s)", is_fcn, [](const NetRecipe& r) -> nlohmann::json { return r.geometry; }},
    {"--fc-kernel", "FCNs (fcn32s, fcn16s, fcn8s)", is_fcn, [](const NetRecipe& r) -> nlohmann::json { return r.fc_kernel; }},
    {"--frozen-upsampling", "FCNs (fcn32s, fcn16s, fcn8s)", is_fcn, [](const NetRecipe& r) -> nlohmann::json { return r.frozen_upsampling; }},
    {"--fc-channels", "FCNs and the classifier", [](const std::string& a) { return is_fcn(a) || a == "classifier"; },
     [](const NetRecipe& r) -> nlohmann::json { return r.fc_channels; }},
    {"--at-once", "FCN-16s and FCN-8s (the skips it scales)", [](const std::string& a) { return is_fcn(a) && a != "fcn32s"; },
     [](const NetRecipe& r) -> nlohmann::json { return r.at_once; }},
    {"--aux", "torchvision-fcn", [](const std::string& a) { return a == "torchvision-fcn"; }, [](const NetRecipe& r) -> nlohmann::json { return r.aux; }},
    {"--input-size", "the classifier", [](const std::string& a) { return a == "classifier"; },
     [](const NetRecipe& r) -> nlohmann::json { return r.input_size; }},
    {"--depth", "U-Net", is_unet, [](const NetRecipe& r) -> nlohmann::json { return r.depth; }},
    {"--base-channels", "U-Net", is_unet, [](const NetRecipe& r) -> nlohmann::json { return r.base_channels; }},
    {"--padding", "U-Net", is_unet, [](const NetRecipe& r) -> nlohmann::json { return r.padding; }},
    {"--upsample", "U-Net", is_unet, [](const NetRecipe& r) -> nlohmann::json { return r.upsample; }},
    {"--batch-norm", "U-Net", is_unet, [](const NetRecipe& r) -> nlohmann::json { return r.batch_norm; }},
    {"--dropout", "U-Net", is_unet, [](const NetRecipe& r) -> nlohmann::json { return r.dropout; }},
};

// A recipe flag that --arch's net does not read is one line, not a flag left unheeded (--depth on an FCN, --backbone
// on U-Net, --at-once on FCN-32s: each built the net without it).
void check_recipe_flags(const CLI::App& cmd, const NetRecipe& r) {
  if (!is_fcn(r.arch) && !is_unet(r.arch) && r.arch != "classifier" && r.arch != "torchvision-fcn") return;  // --arch's own error
  for (const auto& f : kRecipeFlags)
    if (cmd.get_option(f.flag)->count() > 0 && !f.reads(r.arch))
      fail(f.flag, std::string("is read by ") + f.readers + ", and --arch " + r.arch + " builds a net without it: leave it out");
}
}  // namespace

std::map<std::string, nlohmann::json> recipe_values(const NetRecipe& r) {
  std::map<std::string, nlohmann::json> values;
  for (const auto& f : kRecipeFlags) values.emplace(f.flag, f.value(r));
  return values;
}

void add_recipe_flags(CLI::App* cmd, NetRecipe& r) {
  cmd->parse_complete_callback([cmd, &r] { check_recipe_flags(*cmd, r); });
  cmd->add_option("--arch", r.arch, "fcn32s | fcn16s | fcn8s | unet | classifier | torchvision-fcn (--backbone resnet50|101)")
      ->capture_default_str();
  cmd->add_option("--classes", r.classes, "number of classes (default: 21 FCN, 2 U-Net, 1000 classifier; train: the data's)")
      ->check(CLI::Range(int64_t{1}, int64_t{65536}));
  cmd->add_option("--in-channels", r.in_channels, "input channels (train: the data's)")->capture_default_str();
  cmd->add_option("--backbone", r.backbone,
                  "FCN/classifier: vgg11|13|16|19 (with batch norm: vgg16_bn), alexnet, googlenet, resnet18|34|50|101|152, resnext50_32x4d, wide_resnet50_2, optionally -wWIDTH (vgg16-w0.25)")
      ->capture_default_str();
  cmd->add_option("--geometry", r.geometry, "FCN: same | reference (the Caffe VGG nets: pad 100 + crops)")->capture_default_str();
  cmd->add_option("--fc-channels", r.fc_channels, "FCN/classifier: fc6/fc7 width (default 4096 x backbone width; ResNet: none)");
  cmd->add_option("--fc-kernel", r.fc_kernel, "FCN: fc6 kernel (default: the classifier's k at 224, VGG 7, AlexNet 6)");
  cmd->add_flag("--frozen-upsampling", r.frozen_upsampling, "FCN: keep the bilinear upsampling fixed during training");
  cmd->add_flag("--aux", r.aux, "torchvision-fcn: the auxiliary head on layer3 (0.5 x its loss in training)");
  cmd->add_flag("--at-once", r.at_once, "FCN: skips scaled as the reference's at-once FCN-8s (pool4 x 0.01, pool3 x 0.0001)");
  cmd->add_option("--input-size", r.input_size, "classifier: training input size (multiple of 32)")->capture_default_str();
  cmd->add_option("--depth", r.depth, "U-Net: number of poolings")->capture_default_str();
  cmd->add_option("--base-channels", r.base_channels, "U-Net: channels at full resolution")->capture_default_str();
  cmd->add_option("--padding", r.padding, "U-Net: same | valid (the paper, output smaller)")->capture_default_str();
  cmd->add_option("--upsample", r.upsample, "U-Net: transposed | bilinear")->capture_default_str();
  cmd->add_flag("--batch-norm", r.batch_norm, "U-Net: batch norm after each conv");
  cmd->add_option("--dropout", r.dropout, "U-Net: dropout at the end of the contracting path (the paper: 0.5)")->capture_default_str();
}

torch::Device parse_device(const std::string& text) {
  if (text == "cpu") return torch::kCPU;
  if (text.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      fail("--device", "'" + text + "': no CUDA device is available to this LibTorch (build against a CUDA LibTorch on a GPU machine)");
    try {
      return torch::Device(text);
    } catch (const c10::Error&) {
    }
  }
  fail("--device", "'" + text + "' is not cpu, cuda or cuda:N");
}

std::pair<int64_t, int64_t> parse_size(const std::string& text, const std::string& flag) {
  int64_t h = 0, w = 0;
  char extra = 0;
  const int n = std::sscanf(text.c_str(), "%ldx%ld%c", &h, &w, &extra);
  if (n == 1) w = h;
  if ((n != 1 && n != 2) || h < 1 || w < 1 || h > 100000 || w > 100000)
    fail(flag, "'" + text + "' is not a size like 500 or 375x500 (height x width)");
  check_image_size(flag, h, w, "'" + text + (n == 2 ? "' (height x width)" : "'"));  // 100000 x 100000 would ask for 114 GB up front
  return {h, w};
}

// --largest: "all" (empty), or classes by number or name, each a class of the model other than background.
std::vector<int64_t> parse_largest(const std::string& text, const std::vector<std::string>& names) {
  if (text == "all") return {};
  std::vector<int64_t> classes;
  std::stringstream parts(text);
  for (std::string part; std::getline(parts, part, ',');) {
    const auto named = std::find(names.begin(), names.end(), part);
    const bool number = !part.empty() && part.size() < 7 && part.find_first_not_of("0123456789") == std::string::npos;
    const int64_t c = named != names.end() ? named - names.begin() : number ? std::stoll(part) : -1;
    if (c < 1 || c >= static_cast<int64_t>(names.size()))
      fail("--largest", "'" + part + "' is not a class of the model other than background (1.." + std::to_string(names.size() - 1) +
                            " or a class name), nor 'all'");
    classes.push_back(c);
  }
  return classes;
}

const char* const kLargestHelp =
    "keep only each class's largest object, the rest background (nnU-Net's 'keep the largest component': one organ, "
    "islands elsewhere removed): all, or classes by number or name (e.g. 1,liver); through a NIfTI volume 3-D "
    "(26-connected), in an image 8-connected; probabilities are left as the net gave them";

VolumeWindow parse_window(const std::string& text) {
  double low = 0, high = 0;
  char extra = 0;
  VolumeWindow window;
  if (std::sscanf(text.c_str(), "p%lf,p%lf%c", &low, &high, &extra) == 2) {
    window.percentiles = {low, high};
    if (const auto problem = window.problem(); !problem.empty()) fail("--window", "'" + text + "': " + problem + " (e.g. p0.5,p99.5)");
    return window;
  }
  if (std::sscanf(text.c_str(), "%lf,%lf%c", &low, &high, &extra) != 2 || !std::isfinite(low) || !std::isfinite(high) || !(low < high))
    fail("--window", "'" + text + "' is not LOW,HIGH with LOW < HIGH (the voxel values shown black and white, e.g. -1000,400) nor "
                     "pLOW,pHIGH (percentiles of each volume's own voxels, e.g. p0.5,p99.5)");
  window.values = {low, high};
  return window;
}

std::array<double, 2> parse_spacing(const std::string& text, const std::string& words) {
  double x = 0, y = 0;
  char extra = 0;
  const bool pair = std::sscanf(text.c_str(), "%lf,%lf%c", &x, &y, &extra) == 2;
  if (!pair && std::sscanf(text.c_str(), "%lf%c", &x, &extra) != 1)
    fail("--spacing", "'" + text + "' is not MM (square pixels, e.g. 0.8), X,Y (mm across and down, e.g. 0.8,0.7) nor " + words);
  if (!pair) y = x;
  const std::array<double, 2> pixel_mm{x, y};
  if (const auto problem = pixel_mm_problem(pixel_mm); !problem.empty()) fail("--spacing", "'" + text + "': " + problem);
  return pixel_mm;
}

std::string pixel_text(const std::array<double, 2>& pixel_mm) {
  const auto side = [](double mm) { return number_text(std::round(mm * 10000) / 10000); };
  return pixel_mm[0] == pixel_mm[1] ? side(pixel_mm[0]) : side(pixel_mm[0]) + " x " + side(pixel_mm[1]);
}

std::vector<double> parse_key_values(const std::string& text, const std::string& flag, const std::vector<std::string>& keys,
                                     std::vector<double> values) {
  std::string names;
  for (const auto& k : keys) names += (names.empty() ? "" : ", ") + k;
  std::stringstream parts(text);
  std::string part;
  size_t position = 0;
  while (std::getline(parts, part, ',')) {
    const auto equals = part.find('=');
    const std::string key = equals == std::string::npos ? (position < keys.size() ? keys[position] : "") : part.substr(0, equals);
    const std::string number = equals == std::string::npos ? part : part.substr(equals + 1);
    const auto at = std::find(keys.begin(), keys.end(), key);
    if (at == keys.end()) fail(flag, "'" + text + "': '" + part + "' is not one of " + names + " (e.g. " + keys[0] + "=...)");
    char* end = nullptr;
    const double value = std::strtod(number.c_str(), &end);
    if (number.empty() || *end != '\0' || !std::isfinite(value)) fail(flag, "'" + text + "': '" + number + "' is not a number");
    values[static_cast<size_t>(at - keys.begin())] = value;
    ++position;
  }
  return values;
}

void apply_threads(const std::vector<int>& threads) {
  for (const int t : threads) {
    if (t < 1) fail("--threads", "thread counts must be >= 1, got " + std::to_string(t));
    if (t > kMaxThreads) fail("--threads", std::to_string(t) + " is more than " + std::to_string(kMaxThreads) + " threads");
  }
  const int most = threads.empty() ? 0 : *std::max_element(threads.begin(), threads.end()), cpus = available_cpus();
  if (most > cpus)
    std::fprintf(stderr, "fcn: warning: --threads %d is more than the %d CPUs this process may use: threads will share cores\n",
                 most, cpus);
  if (!threads.empty()) torch::set_num_threads(threads.back());
}

std::string flag_for(const std::string& subject) {
  const auto& flags = option_flags();
  const auto found = flags.find(subject);
  return found == flags.end() ? subject : found->second;
}

std::string cli_message(const std::string& subject, const std::string& message) {
  std::string text = message;
  for (const auto& [option, flag] : option_flags()) {
    if (option.find('.') == std::string::npos) continue;  // plain words ("class") stay words in prose
    for (size_t at = text.find(option); at != std::string::npos; at = text.find(option, at + flag.size()))
      text.replace(at, option.size(), flag);
  }
  return subject.empty() ? text : flag_for(subject) + ": " + text;
}

std::vector<std::string> command_line_without(const std::vector<std::string>& flags) {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
  std::vector<std::string> kept;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto separate = [&](const std::string& flag) { return args[i] == flag; };
    const auto joined = [&](const std::string& flag) { return args[i].rfind(flag + "=", 0) == 0; };
    if (std::any_of(flags.begin(), flags.end(), separate)) {
      ++i;  // and its value
      continue;
    }
    if (!std::any_of(flags.begin(), flags.end(), joined)) kept.push_back(args[i]);
  }
  return kept;
}

namespace {

bool same_setting(const SettingFlag& s, const nlohmann::json& a, const nlohmann::json& b) {
  return std::all_of(s.keys.begin(), s.keys.end(), [&](const char* key) {
    const nlohmann::json::json_pointer at(key);
    return a.contains(at) && b.contains(at) && a[at] == b[at];
  });
}

// A setting as its flag says it: "0.01", "adamw", "alpha=10,grid=3"; "" where it is off.
std::string setting_text(const SettingFlag& s, const nlohmann::json& settings) {
  const auto value = [&](size_t i) { return settings.value(nlohmann::json::json_pointer(s.keys[i]), nlohmann::json()); };
  const auto said = [](const nlohmann::json& v) {
    return v.is_string() ? v.get<std::string>() : v.is_number_float() ? number_text(v.get<double>()) : v.dump();
  };
  const std::string flag = s.flag;
  if (flag == "--flip") return value(0) == true ? "on" : "";
  if (flag == "--weight-map") return value(0) == true ? "w0=" + said(value(1)) + ",sigma=" + said(value(2)) : "";
  if (flag == "--elastic") return value(0) != 0 ? "alpha=" + said(value(0)) + ",grid=" + said(value(1)) : "";
  if (flag == "--class-weights") return value(0).is_null() ? "none" : std::to_string(value(0).size()) + " weights " + said(value(0));
  return said(value(0));
}

}  // namespace

void check_setting_flags(const std::vector<SettingFlag>& flags, const std::function<bool(const std::string&)>& given,
                         const nlohmann::json& asked, const nlohmann::json& recorded, const std::string& run, const std::string& instead) {
  for (const auto& s : flags) {
    if (s.may_change || !given(s.flag) || same_setting(s, asked, recorded)) continue;
    const auto have = setting_text(s, recorded), want = setting_text(s, asked);
    fail(s.flag, (want.empty() ? std::string("off") : want) + ", but the run in " + run + " trains with " +
                     (have.empty() ? std::string("it off") : have) + ", and --resume continues a run as it started: " +
                     (have.empty() || s.flag == std::string("--class-weights") ? "leave " + std::string(s.flag) + " out" : "give " + std::string(s.flag) + " " + have + " or leave it out") +
                     ", or " + instead);
  }
}

std::string settings_kept(const std::vector<SettingFlag>& flags, const std::function<bool(const std::string&)>& given,
                          const nlohmann::json& asked, const nlohmann::json& recorded) {
  std::string kept;
  for (const auto& s : flags) {
    if (given(s.flag) || same_setting(s, asked, recorded)) continue;
    const auto text = setting_text(s, recorded);
    kept += std::string(" ") + s.flag + (text == "on" ? "" : " " + (text.empty() ? std::string("off") : text));
  }
  return kept;
}

void say_settings_kept(const std::string& run, const std::string& kept) {
  if (kept.empty()) return;
  std::printf("%s: resumed with the run's own%s (flags given beside --resume must agree)\n", run.c_str(), kept.c_str());
  std::fflush(stdout);
}

}  // namespace fcn::cli
