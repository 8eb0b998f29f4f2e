#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "fcn/data/dataset.h"
#include "fcn/data/fashion_cells.h"
#include "fcn/data/fashion_scenes.h"
#include "fcn/data/stacks.h"
#include "fcn/data/stats.h"
#include "fcn/formats/image.h"
#include "fcn/formats/nifti.h"
#include "fcn/models/model.h"
#include "fcn/util/error.h"
#include "fcn/util/progress.h"

namespace fcn::cli {
namespace {

void add_fashion_scenes(CLI::App* cmd) {
  auto* scenes = cmd->add_subcommand("fashion-scenes",
                                     "Compose segmentation scenes from Fashion-MNIST items (VOC layout + classes.json)\n"
                                     "  example: fcn data fashion-scenes --out scenes --train 2000 --val 300 --size 64 --seed 0");
  static std::string out;
  static FashionScenesOptions options;
  static int64_t train = options.train(), val = options.val(), size = options.size();
  static uint64_t seed = 0;
  add_out_flag(scenes, out, "dataset folder to write (scenes fcn made there before are replaced)", /*folder=*/true)->required();
  scenes->add_option("--train", train, "scenes from the train split")->capture_default_str();
  scenes->add_option("--val", val, "scenes from the t10k split")->capture_default_str();
  scenes->add_option("--size", size, "scene side in pixels")->capture_default_str();
  scenes->add_option("--seed", seed, "random seed (same seed, same scenes)")->capture_default_str();
  add_max_pixels_flag(scenes);
  scenes->callback([] {
    Progress progress("fashion-scenes", train + val);
    write_fashion_scenes(out, options.train(train).val(val).size(size).seed(seed),
                         [&](int64_t done, int64_t) { progress.update(done); });
    progress.finish();
    std::cout << "wrote " << out << ": " << train << " train + " << val << " val scenes of " << size << "x" << size
              << ", 11 classes (background + 10 Fashion-MNIST)\n";
  });
}

void add_fashion_cells(CLI::App* cmd) {
  auto* cells = cmd->add_subcommand("fashion-cells",
                                    "Touching-objects scenes from Fashion-MNIST items, binary labels + instance masks (U-Net's setting)\n"
                                    "  example: fcn data fashion-cells --out cells --train 30 --val 100 --size 96");
  static std::string out;
  static FashionCellsOptions options;
  static int64_t train = options.train(), val = options.val(), size = options.size();
  static uint64_t seed = 0;
  add_out_flag(cells, out, "dataset folder to write (scenes fcn made there before are replaced)", /*folder=*/true)->required();
  cells->add_option("--train", train, "scenes from the train split")->capture_default_str();
  cells->add_option("--val", val, "scenes from the t10k split")->capture_default_str();
  cells->add_option("--size", size, "scene side in pixels")->capture_default_str();
  cells->add_option("--seed", seed, "random seed (same seed, same scenes)")->capture_default_str();
  add_max_pixels_flag(cells);
  cells->callback([] {
    Progress progress("fashion-cells", train + val);
    write_fashion_cells(out, options.train(train).val(val).size(size).seed(seed), [&](int64_t done, int64_t) { progress.update(done); });
    progress.finish();
    std::cout << "wrote " << out << ": " << train << " train + " << val << " val scenes of " << size << "x" << size
              << ", 2 classes (background, item) + instance masks in SegmentationObject/\n";
  });
}

// A 1-d tensor's values as T (empty where the tensor is undefined): pixel counts, class weights.
template <class T>
std::vector<T> values_of(const torch::Tensor& tensor) {
  if (!tensor.defined()) return {};
  const auto values = tensor.to(c10::CppTypeToScalarType<T>::value).contiguous();
  return {values.template data_ptr<T>(), values.template data_ptr<T>() + values.numel()};
}

// Per-class pixel counts of each split that could be read: {"train": [...], "val": [...]}.
nlohmann::json split_pixels(const DatasetReport& report) {
  auto out = nlohmann::json::object();
  for (size_t s = 0; s < report.splits.size() && s < report.split_histograms.size(); ++s)
    if (report.split_histograms[s].defined()) out[report.splits[s]] = values_of<int64_t>(report.split_histograms[s]);
  return out;
}

std::string millimetres(const std::array<double, 3>& mm) {
  std::string out;
  for (size_t axis = 0; axis < 3; ++axis) out += (axis ? " x " : "") + (std::isnan(mm[axis]) ? std::string("?") : number_text(std::round(mm[axis] * 1000) / 1000));
  return out;
}

// Each label's voxels over the label volumes and its share, named by the task's dataset.json where it names them.
void print_label_voxels(const std::vector<int64_t>& voxels, const std::map<int64_t, std::string>& names) {
  const double total = std::max<double>(1.0, static_cast<double>(std::accumulate(voxels.begin(), voxels.end(), int64_t{0})));
  std::printf("%-6s %-16s %14s %8s\n", "label", "name", "voxels", "share");
  for (size_t v = 0; v < voxels.size(); ++v)
    if (voxels[v] > 0)
      std::printf("%-6zu %-16s %14lld %7.3f%%\n", v, names.count(static_cast<int64_t>(v)) ? printable(names.at(static_cast<int64_t>(v))).c_str() : "",
                  static_cast<long long>(voxels[v]), 100.0 * static_cast<double>(voxels[v]) / total);
}

// A note where a class other than background holds under 1% of the labelled pixels (a lesion, a small organ): random
// crops rarely hold it, and the ways fcn train has to see it more (nnU-Net oversamples foreground).
void note_rare_classes(const std::vector<int64_t>& histogram, const std::vector<std::string>& names) {
  const double total = static_cast<double>(std::accumulate(histogram.begin(), histogram.end(), int64_t{0}));
  std::string rare;
  for (size_t c = 1; c < histogram.size(); ++c)
    if (histogram[c] > 0 && static_cast<double>(histogram[c]) < 0.01 * total)
      rare += (rare.empty() ? "" : ", ") + printable(c < names.size() ? names[c] : std::to_string(c));
  if (!rare.empty())
    std::printf("note: %s under 1%% of the pixels: random crops rarely hold it; fcn train --foreground 0.33 shows a class, each as likely, in a "
                "third of the batch items, crops centred on it (nnU-Net's oversampling), --loss ce+dice or --class-weights median-freq weigh it up\n",
                rare.c_str());
}

// --orient CODE of data check and unstack ("": as stored).
void check_orient_flag(const std::string& orient) {
  if (!orient.empty()) check_axis_codes(orient, "--orient");
}

// fcn data check on a folder of NIfTI cases: their headers' fingerprint (check_volume_folder), and with
// --masks their label volumes read and checked.
void check_volumes(const std::string& dir, const std::string& masks, const std::string& orient, bool json_output) {
  std::unique_ptr<Progress> progress;  // label volumes are read whole: a bar where there are some
  const auto report = check_volume_folder(
      dir, masks,
      [&](int64_t done, int64_t total) {
        if (done == 1) progress = std::make_unique<Progress>("check", total, json_output || total < 2);
        progress->update(done);
      },
      orient);
  if (progress) progress->finish();
  if (json_output) {
    auto cases = nlohmann::json::array();
    const auto list = [](const std::array<double, 3>& mm) {
      auto out = nlohmann::json::array();
      for (const double v : mm) out.push_back(std::isnan(v) ? nlohmann::json() : nlohmann::json(v));
      return out;
    };
    for (const auto& c : report.cases) {
      cases.push_back({{"name", c.name}, {"file", c.file}, {"channels", c.channels}, {"size", {c.width, c.height, c.slices}},
                       {"voxel_mm", list(c.voxel_mm)}, {"axes", c.axes}});
      if (!masks.empty()) cases.back()["mask"] = c.mask, cases.back()["labels"] = c.labels;
    }
    nlohmann::json out{{"volumes", dir}, {"cases", cases}, {"median_mm", list(report.median_mm)}, {"warnings", report.warnings},
                       {"errors", report.errors}};
    if (!masks.empty()) out["masks"] = masks, out["label_voxels"] = report.label_voxels;
    if (!orient.empty()) out["orient"] = orient;
    std::cout << out.dump(2) << "\n";
    if (!report.errors.empty()) throw CLI::RuntimeError(1);
    return;
  }
  std::printf("%s: %zu case(s) of NIfTI volumes (%s)\n", printable(dir).c_str(), report.cases.size(),
              masks.empty() ? "their headers; no voxel read" : ("their headers, and their label volumes in " + printable(masks) + " read").c_str());
  if (!orient.empty()) std::printf("sizes and voxels as the slices cut %s have them (columns, rows, slices); axes as stored\n", orient.c_str());
  std::printf("%-20s %8s %16s %22s %5s  %s\n", "case", "channels", "size (x y z)", "voxel (mm)", "axes", masks.empty() ? "slices" : "slices    labels");
  for (const auto& c : report.cases) {
    const auto size = std::to_string(c.width) + " " + std::to_string(c.height) + " " + std::to_string(c.slices);
    std::string labels;
    for (const auto v : c.labels) labels += (labels.empty() ? "" : ",") + std::to_string(v);
    auto plane = c.axes.empty() ? std::string("?") : slice_plane(c.axes);
    if (!masks.empty()) plane += std::string(plane.size() < 10 ? 10 - plane.size() : 1, ' ') + (c.mask.empty() ? std::string("none") : labels);
    std::printf("%-20s %8lld %16s %22s %5s  %s\n", printable(c.name).c_str(), static_cast<long long>(c.channels), size.c_str(),
                millimetres(c.voxel_mm).c_str(), c.axes.empty() ? "?" : c.axes.c_str(), plane.c_str());
  }
  std::printf("median voxel: %s mm\n", millimetres(report.median_mm).c_str());
  if (!masks.empty()) print_label_voxels(report.label_voxels, task_names(dir, "labels"));
  for (const auto& warning : report.warnings) std::printf("warning: %s\n", printable(warning).c_str());
  for (const auto& error : report.errors) std::printf("error: %s\n", printable(error).c_str());
  if (!report.errors.empty()) {
    std::printf("%zu problem%s found\n", report.errors.size(), report.errors.size() == 1 ? "" : "s");
    throw CLI::RuntimeError(1);
  }
  std::printf("next: fcn data unstack %s --masks %s%s%s --val 0.2 --out DATASET\n", printable(dir).c_str(),
              masks.empty() ? "LABEL_VOLUMES" : printable(masks).c_str(),
              !orient.empty() ? (" --orient " + orient).c_str() : report.mixed_orientations ? " --orient RAS" : "",
              report.mixed_scales ? " --spacing median" : "");
}

// DatasetReport::image_channels as JSON: {"3": images of 3 channels, ...}.
nlohmann::json image_channel_counts(const DatasetReport& report) {
  auto counts = nlohmann::json::object();
  for (const auto& [channels, seen] : report.image_channels) counts[std::to_string(channels)] = seen.first;
  return counts;
}

// What the images hold for a net, in check's lines: the channels channels.json names (or how many past a PNG's
// 4 each image holds), and how slices were cut from volumes (slicing.json).
void print_inputs(const DatasetReport& report) {
  std::string channels;
  for (const auto& name : report.channel_names) channels += (channels.empty() ? "" : ", ") + name;
  if (!channels.empty()) std::printf("channels: %s (channels.json; every image has %zu)\n", printable(channels).c_str(), report.channel_names.size());
  const auto& counts = report.image_channels;
  // Past 4, or where the first image's channels are all data (a .npy array, RGB + a band declared data in a TIFF).
  const int64_t first = counts.empty() ? 0 : counts.begin()->first;
  const bool data = counts.size() == 1 && (first > 4 || (first > 1 && channels_are_data(counts.begin()->second.second)));
  if (channels.empty() && data)
    std::printf("images: %ld channels each (a new net takes all of them; channels.json may name them)\n", static_cast<long>(first));
  // The colour a new net takes ahead of alpha (data_channels in cmd_train.cpp): a TIFF's as it declares it, else
  // gray + alpha or RGBA's. A band stored as alpha is dropped without a word, so the line says so.
  const int64_t colour = counts.size() == 1 && !data ? tiff_colour_channels(counts.begin()->second.second) : 0;
  const int64_t kept = colour > 0 && colour < first ? colour : first == 2 ? 1 : first == 4 ? 3 : 0;
  if (channels.empty() && !data && counts.size() == 1 && kept > 0) {
    const int64_t dropped = first - kept;
    const std::string extra = dropped == 1 ? "alpha" : std::to_string(dropped) + " extra samples (alpha among them)";
    std::printf("images: %s + %s, the %s dropped (a new net takes %s); %s, not alpha? name the %ld channels in channels.json "
                "({\"names\": [...]}) and a new net takes them all\n",
                kept == 1 ? "gray" : "RGB", extra.c_str(), dropped == 1 ? "alpha" : "extra samples", kept == 1 ? "the gray" : "RGB",
                dropped == 1 ? "a band" : "bands", static_cast<long>(first));
  }
  if (!report.slice_axes.empty()) std::printf("slices: cut as %s (slicing.json; a net trained here cuts volumes alike)\n", report.slice_axes.c_str());
  if (report.pixel_mm)
    std::printf("pixels: %s mm (slicing.json: slices resampled so; a net trained here resamples volumes alike)\n", pixel_text(*report.pixel_mm).c_str());
}

void add_check(CLI::App* cmd) {
  auto* check = cmd->add_subcommand("check", "Check a dataset folder: pairing, sizes, unreadable files, label values\n"
                                             "  example: fcn data check scenes --split train\n"
                                             "  example: fcn data check imagesTr   (a folder of NIfTI cases: sizes, voxel sizes, orientations)\n"
                                             "  example: fcn data check imagesTr --masks labelsTr   (and their label volumes, read: labels, sizes, places)\n"
                                             "  Exit code 1 when any problem is found.");
  static std::string dir, split, masks, orient;
  static bool json_output = false;
  check->add_option("DIR", dir, "dataset folder (VOC layout or images/ + masks/), or a folder of NIfTI cases")->required();
  check->add_option("--masks", masks, "a folder of NIfTI cases: the folder of their label volumes (labelsTr), each read and checked: "
                                    "there, of its case's size and place, labels 0..65535 that the task's dataset.json names");
  orientation_case(check->add_option("--orient", orient, "a folder of NIfTI cases: sizes, voxel sides, their median and the scale warning as "
                                                       "the slices cut in this orientation have them (fcn data unstack --orient CODE)"));
  check->add_option("--split", split, "only this split (default: all)");
  add_json_flag(check, json_output, "splits, sizes, errors, warnings, histogram (all and per split), image_channels, suggested weights, pixel_mm and axes (slicing.json)");
  add_max_pixels_flag(check);
  check->callback([] {
    check_orient_flag(orient);
    if (is_volume_folder(dir)) return check_volumes(dir, masks, orient, json_output);  // cases, not a dataset: no splits to choose
    if (!masks.empty()) fail("--masks", "checks the label volumes of a folder of NIfTI cases, and " + dir + " is none (a dataset's masks/ are checked as it is)");
    if (!orient.empty()) fail("--orient", "cuts a folder of NIfTI cases, and " + dir + " is none (a dataset's axes are in its slicing.json)");
    std::unique_ptr<Progress> progress;  // one bar per split
    const auto report = check_dataset(dir, split, [&](int64_t done, int64_t total) {
      if (done == 1) progress = std::make_unique<Progress>("check", total, json_output);
      progress->update(done);
    });
    if (progress) progress->finish();
    const auto histogram = values_of<int64_t>(report.histogram);
    const auto weights = values_of<double>(report.suggested_weights);
    if (json_output) {
      std::cout << nlohmann::json{{"dir", dir},           {"splits", report.splits},   {"sizes", report.split_sizes},
                                  {"errors", report.errors}, {"warnings", report.warnings}, {"classes", report.class_names},
                                  {"classes_source", report.classes_source}, {"channels", report.channel_names},
                                  {"image_channels", image_channel_counts(report)}, {"pixels", histogram},
                                  {"split_pixels", split_pixels(report)},
                                  {"pixel_mm", report.pixel_mm ? nlohmann::json(*report.pixel_mm) : nlohmann::json()},
                                  {"axes", report.slice_axes.empty() ? nlohmann::json() : nlohmann::json(report.slice_axes)},
                                  {"suggested_weights", weights}}
                       .dump(2)
                << "\n";
    } else {
      for (size_t s = 0; s < report.splits.size(); ++s)
        std::printf("split %-10s %ld pairs%s\n", report.splits[s].c_str(), static_cast<long>(report.split_sizes[s]),
                    report.splits[s] == "all" ? " (no train/val split: fcn data split DIR --val 0.2 holds some out)" : "");
      if (!report.classes_source.empty()) std::printf("classes: %s\n", printable(report.classes_source).c_str());
      print_inputs(report);
      const double total = std::max<double>(1.0, static_cast<double>(std::accumulate(histogram.begin(), histogram.end(), int64_t{0})));
      if (!histogram.empty()) std::printf("%-4s %-16s %12s %8s %10s\n", "id", "class", "pixels", "share", "weight");
      for (size_t c = 0; c < histogram.size(); ++c)
        std::printf("%-4zu %-16s %12ld %7.2f%% %10.3f\n", c, report.class_names[c].c_str(), static_cast<long>(histogram[c]),
                    100.0 * static_cast<double>(histogram[c]) / total, weights[c]);
      note_rare_classes(histogram, report.class_names);
      for (const auto& warning : report.warnings) std::printf("warning: %s\n", printable(warning).c_str());
      for (const auto& error : report.errors) std::printf("error: %s\n", printable(error).c_str());
      std::printf("%zu problem%s found\n", report.errors.size(), report.errors.size() == 1 ? "" : "s");
    }
    if (!report.errors.empty()) throw CLI::RuntimeError(1);
  });
}

void add_split(CLI::App* cmd) {
  auto* split = cmd->add_subcommand("split", "Split a folder of images/ + masks/ at random into train and val lists (DIR/splits/)\n"
                                             "  example: fcn data split photos --val 0.2 --seed 1\n"
                                             "  fcn train then validates on the val list, fcn eval --split val scores it; the files stay in place.");
  static std::string dir;
  static double val = 0.1;
  static uint64_t seed = 0;
  static bool overwrite = false;
  split->add_option("DIR", dir, "dataset folder with images/ + masks/")->required();
  split->add_option("--val", val, "share of the pairs for validation, in (0, 1)")->capture_default_str();
  split->add_option("--seed", seed, "random seed (the same folder and seed give the same split on any machine)")->capture_default_str();
  split->add_flag("--overwrite", overwrite, "replace the lists of an earlier split");
  static bool by_volume = false;
  split->add_flag("--by-volume", by_volume, "hold whole volumes out: pairs named NAME_NNN (the slices fcn data unstack writes from a folder "
                                            "of volumes) go to one split together, --val being the share of the volumes");
  split->callback([] {
    if (!(val > 0 && val < 1)) fail("--val", "must be between 0 and 1 (the share of the pairs held out), got " + number_text(val));
    const auto [train, held_out] = write_split_lists(dir, val, seed, overwrite, by_volume);
    std::printf("wrote %s: %zu train + %zu val pairs (seed %llu)\n", (std::filesystem::path(dir) / "splits").c_str(), train,
                held_out, static_cast<unsigned long long>(seed));
  });
}

// How unstack mapped each volume's voxels (or each channel's), for its line: the values given, its own
// percentiles, or its own minimum..maximum; and the --window that makes fcn predict map them so.
std::string mapping_text(const VolumeWindow& given, std::pair<double, double> used, bool several) {
  if (given.values)
    return " (voxels " + number_text(used.first) + ".." + number_text(used.second) + " as black..white: predict with --window " +
           number_text(used.first) + "," + number_text(used.second) + " maps them so)";
  const std::string whose = several ? "each volume's (each channel's)" : "the volume's";
  if (given.percentiles) {
    const auto flag = "p" + number_text(given.percentiles->first) + ",p" + number_text(given.percentiles->second);
    return " (" + whose + " own percentiles " + flag + " as black..white: predict with --window " + flag + " maps them so)";
  }
  return " (" + whose + " own minimum..maximum as black..white, as fcn predict maps a volume without --window)";
}

// --context's part of unstack's line.
std::string context_text(int64_t context) {
  return context > 0 ? " + channels.json (2.5-D: slices k-" + std::to_string(context) + "..k+" + std::to_string(context) +
                           " as each image's channels; fcn predict gives volumes to the net so)"
                     : "";
}

// How unstack mapped one volume's voxels (or a case's channels), for its line.
std::string volume_mapping(const NiftiUnstacked& result, const VolumeWindow& given) {
  const auto channels = result.windows.size();
  return mapping_text(given, result.window, channels > 1) +
         (channels > 1 ? " + channels.json (" + std::to_string(channels) + " channels: name them there)" : "");
}

// Label volumes that do not lie over their scans: written voxel for voxel all the same (as nnU-Net
// warns and goes on), each named on stderr.
void warn_misaligned(const std::vector<std::string>& warnings) {
  for (const auto& warning : warnings) std::cerr << "fcn: warning: " << printable(warning) << "\n";
}

// unstack's line for a folder of volumes: "wrote OUT: S slices of V volumes as images/ + masks/ (...)".
void report_folder(const NiftiFolderUnstacked& r, const std::string& out, const VolumeWindow& given, bool masks, int64_t context,
                   const std::string& resampled) {
  std::string mapped = mapping_text(given, r.windows[0][0], true) + context_text(context) + resampled;
  if (r.channels > 1) mapped += " + channels.json (" + std::to_string(r.channels) + " channels a slice: PNGs of that many samples)";
  if (r.named > 0) mapped += " + classes.json (" + std::to_string(r.named) + " classes: name them there)";
  std::printf("wrote %s: %lld slice(s) of %lld volume(s) as images/%s%s\n", out.c_str(), static_cast<long long>(r.slices),
              static_cast<long long>(r.volumes), masks ? " + masks/" : "", mapped.c_str());
  if (r.val_volumes.empty()) {
    if (masks) std::printf("next: fcn data split %s --val 0.2 --by-volume\n", out.c_str());
    return;
  }
  std::string names;
  for (size_t i = 0; i < r.val_volumes.size() && i < 8; ++i) names += (i ? ", " : "") + r.val_volumes[i];
  if (r.val_volumes.size() > 8) names += ", ...";
  std::printf("splits/: %zu train + %zu val slices, %lld volume(s) held out whole (%s); next: fcn train --data %s\n", r.train_slices,
              r.val_slices, static_cast<long long>(r.val_volumes.size()), names.c_str(), out.c_str());
}

struct UnstackFlags {
  std::string images, masks, out, window, spacing, orient;
  double val = 0;
  uint64_t seed = 0;
  int64_t context = 0;
};

// --spacing: MM or X,Y; for a folder of volumes also "median", the median in-plane voxel of its cases
// (nnU-Net's choice), from their headers.
std::array<double, 2> unstack_spacing(const std::string& text, const std::string& images, bool folder, const std::string& orient) {
  if (text != "median") return parse_spacing(text, "median (the cases' median voxel, for a folder of volumes)");
  if (!folder) fail("--spacing", "median is the median voxel of a folder's cases; " + images + " is one volume: give MM or X,Y");
  const auto median = check_volume_folder(images, "", {}, orient).median_mm;  // the sides of the slices as cut
  if (std::isnan(median[0]) || std::isnan(median[1])) fail("--spacing", "median: no case in " + images + " gives its voxel size (pixdim)");
  return {median[0], median[1]};
}

void run_unstack(const UnstackFlags& f) {
  const auto& [images, masks, out, window, spacing, orient, val, seed, context] = f;
  const bool folder = std::filesystem::is_directory(images);
  const bool volume = folder || is_nifti_path(images);
  if (!window.empty() && !volume) fail("--window", "maps a NIfTI volume's voxels, and " + images + " is not one (.nii, .nii.gz)");
  if (val != 0 && !folder)
    fail("--val", "holds whole volumes of a folder out; " + images + " is one stack: fcn data split " + out + " --val " + number_text(val));
  if (val != 0 && !(val > 0 && val < 1)) fail("--val", "must be between 0 and 1 (the share of the volumes held out), got " + number_text(val));
  if (val != 0 && masks.empty()) fail("--val", "holds labelled slices out for validation: give --masks");
  if (!folder && !masks.empty() && is_nifti_path(masks) != volume)
    fail(masks, volume ? "is not a NIfTI label volume (.nii, .nii.gz) for the NIfTI volume " + images : "is a NIfTI volume: the labels of a TIFF stack are a TIFF stack");
  if (folder && !masks.empty() && !std::filesystem::is_directory(masks))
    fail(masks, "is not a folder: the labels of a folder of volumes are a folder of label volumes, one for each by name");
  if (context != 0 && !volume) fail("--context", "stacks neighbouring slices of NIfTI volumes, and " + images + " is not one (.nii, .nii.gz)");
  if (!spacing.empty() && !volume) fail("--spacing", "resamples NIfTI volumes' slices by their voxel sizes, and " + images + " is not one (.nii, .nii.gz)");
  const auto mapping = window.empty() ? VolumeWindow{} : parse_window(window);
  if (!orient.empty() && !volume) fail("--orient", "cuts NIfTI volumes into slices by their orientation, and " + images + " is not one (.nii, .nii.gz)");
  check_orient_flag(orient);
  const NiftiSlicing slicing(mapping, context, spacing.empty() ? std::nullopt : std::optional(unstack_spacing(spacing, images, folder, orient)), orient);
  std::string resampled;  // slicing.json's part of the line
  if (!orient.empty()) resampled += "cut as " + orient + " slices";
  if (slicing.pixel_mm) resampled += (resampled.empty() ? "" : ", ") + ("resampled to " + pixel_text(*slicing.pixel_mm) + " mm pixels");
  if (!resampled.empty()) resampled = " + slicing.json (" + resampled + "; fcn predict gives the net volumes alike)";
  if (folder) {
    std::optional<Progress> progress;  // its total known once the volumes' headers are read
    const auto result = unstack_nifti_folder(images, masks, out, slicing, val, seed, [&](int64_t done, int64_t total) {
      if (!progress) progress.emplace("unstack", total);
      progress->update(done);
    });
    if (progress) progress->finish();
    warn_misaligned(result.warnings);
    return report_folder(result, out, mapping, !masks.empty(), context, resampled);
  }
  std::optional<Progress> progress;  // the total is the slices of the cut
  const auto update = [&](int64_t done, int64_t total) {
    if (!progress) progress.emplace("unstack", total);
    progress->update(done);
  };
  int64_t pages = 0;
  std::string mapped;
  std::vector<std::string> warnings;
  if (volume) {
    if (is_later_channel_file(images))  // a case is one file name everywhere, as fcn predict takes it
      std::fprintf(stderr, "fcn: note: %s is a later channel of case %s: its %zu channels are unstacked (one channel alone: copy it out of the folder)\n",
                   printable(images).c_str(), printable(nifti_case_name(nifti_case_file(images))).c_str(),
                   nifti_channel_files(nifti_case_file(images)).size());
    const auto result = unstack_nifti(images, masks, out, slicing, update);
    warnings = result.warnings;
    pages = result.slices;
    mapped = volume_mapping(result, mapping) + context_text(context) + resampled;
    if (result.classes > 0) mapped += " + classes.json (" + std::to_string(result.classes) + " classes: name them there)";
  } else {
    pages = unstack_tiff(images, masks, out, update);
  }
  if (progress) progress->finish();
  warn_misaligned(warnings);
  std::printf("wrote %s: %lld %s as images/%s%s; next: fcn data split %s --val 0.2\n", out.c_str(), static_cast<long long>(pages),
              volume ? "slice(s)" : "page(s)", masks.empty() ? "" : " + masks/", mapped.c_str(), out.c_str());
}

void add_unstack(CLI::App* cmd) {
  auto* unstack = cmd->add_subcommand("unstack", "Turn a multi-page TIFF stack or a NIfTI volume (and its labels) into images/ + masks/, one PNG per page\n"
                                                 "  example: fcn data unstack train-volume.tif --masks train-labels.tif --out em\n"
                                                 "  (the U-Net paper's ISBI 2012 data; then fcn data split em --val 0.2 and fcn train --data em --arch unet)\n"
                                                 "  example: fcn data unstack ct.nii.gz --masks ct-seg.nii.gz --window -1000,400 --out ct   (slice by slice)\n"
                                                 "  example: fcn data unstack imagesTr --masks labelsTr --window -1000,400 --val 0.2 --out ct\n"
                                                 "  (a folder of volumes, a Medical Segmentation Decathlon task's: whole volumes held out for validation)\n"
                                                 "  example: fcn data unstack imagesTr --masks labelsTr --window p0.5,p99.5 --val 0.2 --out brats\n"
                                                 "  (MRI of several channels, nnU-Net's NAME_0000..NAME_0003 or 4-D volumes: each channel by its own percentiles)\n"
                                                 "  example: fcn data unstack imagesTr --masks labelsTr --window -1000,400 --context 1 --out ct25d   (2.5-D)\n"
                                                 "  example: fcn data unstack imagesTr --masks labelsTr --window -1000,400 --spacing median --val 0.2 --out ct\n"
                                                 "  (every slice resampled to the cases' median voxel side: one anatomy at one scale)\n"
                                                 "  example: fcn data unstack imagesTr --masks labelsTr --orient RAS --spacing median --out ct   "
                                                 "(cases stored in other orientations cut alike)");
  static UnstackFlags f;
  unstack->add_option("STACK", f.images, "multi-page TIFF of images, a NIfTI volume (.nii, .nii.gz), or a folder of NIfTI volumes "
                                       "(slice k of NAME.nii.gz as images/NAME_NNN.png); a case of 2 to 4 channels (a 4-D volume, or "
                                       "nnU-Net's NAME_0000.nii.gz with NAME_0001... beside it) as PNGs of that many 16-bit samples "
                                       "+ channels.json")->required();
  unstack->add_option("--masks", f.masks, "its labels, page for page: a multi-page TIFF of label masks (class indices, 8- or 16-bit; 0/255 for "
                                        "background/foreground), for a NIfTI volume a NIfTI label volume of its size, for a folder of "
                                        "volumes a folder of their label volumes under the same file names");
  unstack->add_option("--window", f.window, "NIfTI: the voxel values LOW,HIGH mapped to black..white in the 16-bit PNGs, as fcn predict --window "
                                          "maps them (CT in Hounsfield units, e.g. -1000,400), or pLOW,pHIGH: percentiles of each volume's "
                                          "(each channel's) own voxels (MRI, whose scale varies from scan to scan, e.g. p0.5,p99.5: the few "
                                          "hottest voxels do not squeeze the rest into a few grey levels); default: each volume's own "
                                          "minimum and maximum");
  unstack->add_option("--val", f.val, "a folder of volumes: the share of the volumes held out whole for validation (splits/), in (0, 1); "
                                    "slices of one patient are never in both splits");
  unstack->add_option("--seed", f.seed, "--val: random seed of the volumes held out")->capture_default_str();
  add_out_flag(unstack, f.out, "dataset folder to write (images/, masks/)", /*folder=*/true)->required();
  unstack->add_option("--context", f.context, "NIfTI, 2.5-D: each image holds a slice with its N neighbours on either side as its channels "
                                            "(1: slices k-1, k, k+1 as an RGB PNG; the end slices repeated; of each channel of a case of "
                                            "several; past 4 planes a uint16 .npy array), and channels.json says so, so that "
                                            "fcn train makes a net fcn predict gives volumes to that way (3-D context for a 2-D net; an "
                                            "RGB-pretrained backbone takes the three slices of 1)")
      ->check(CLI::Range(int64_t{0}, kMostSliceContext))
      ->capture_default_str();
  unstack->add_option("--spacing", f.spacing, "NIfTI: resample each slice in-plane to pixels of MM (or X,Y: across, down) millimetres, "
                                            "whatever each volume's voxel sides (images bilinearly, labels by class), and write "
                                            "slicing.json so that the trained model resamples volumes at fcn predict alike; 'median': "
                                            "the median voxel of a folder's cases (nnU-Net's choice; fcn data check shows it); "
                                            "default: slices as stored");
  orientation_case(unstack->add_option("--orient", f.orient, "NIfTI: cut each volume (and its labels) into slices as a volume stored in this "
                                                           "orientation would be, from its header's map (RAS: axial slices from the feet up, "
                                                           "whatever plane or way round a case was stored), and write slicing.json so that the "
                                                           "trained model cuts volumes at fcn predict alike; default: slices as stored, along "
                                                           "the third axis"));
  unstack->callback([] { run_unstack(f); });
}

}  // namespace

void add_data(CLI::App& app) {
  auto* cmd = app.add_subcommand("data", "Make, check, split or unstack datasets\n"
                                         "  example: fcn data fashion-scenes --out scenes --train 2000 --val 300 --size 64\n"
                                         "  example: fcn data check scenes\n"
                                         "  example: fcn data split photos --val 0.2");
  cmd->require_subcommand(1);
  add_fashion_scenes(cmd);
  add_fashion_cells(cmd);
  add_check(cmd);
  add_split(cmd);
  add_unstack(cmd);
}

}  // namespace fcn::cli
