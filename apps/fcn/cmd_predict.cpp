// fcn predict: images, TIFF stacks, NIfTI volumes and videos segmented in input order (the Segmenter),
// their files written as predict.h says; the verb's flags.
#include <algorithm>
#include <sstream>
#include <array>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "fcn/bench/benchmark.h"
#include "fcn/data/instances.h"
#include "fcn/formats/image.h"
#include "fcn/formats/nifti.h"
#include "fcn/formats/png.h"
#include "fcn/formats/tiff_writer.h"
#include "fcn/formats/video.h"
#include "fcn/infer/predictor.h"
#include "fcn/infer/volume.h"
#include "fcn/util/dtype.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"
#include "fcn/util/progress.h"
#include "predict.h"

namespace fcn::cli {
namespace {

// How the flags segment a NIfTI volume (segment_volume's options).
VolumeOptions volume_options(const PredictFlags& f) {
  VolumeOptions options;
  options.window = f.intensities.values, options.percentiles = f.intensities.percentiles;
  options.largest = f.largest_classes;
  options.probabilities = f.probs == "nii";
  options.objects = f.instances;
  options.min_object = f.min_object, options.connectivity = f.connectivity;
  options.pixel_mm = f.pixel_mm, options.resample = f.spacing != "none";
  if (!f.orient.empty()) options.axes = f.orient == "stored" ? "" : f.orient;
  return options;
}

// The images of a folder, segmented in order: consecutive readable images of one size go through
// the net together where the Predictor runs them so (whole images, no resize or TTA: up to 8 and
// kPassPixels a pass; small images share the per-pass overheads); each image's files are written
// and its line reported.
class Segmenter {
 public:
  Segmenter(const PredictFlags& f, const Predictor& predictor, bool line_per_image, Progress& progress)
      : f_(f), predictor_(predictor), line_per_image_(line_per_image), progress_(progress),
        per_pass_(predictor.passes_together() ? kImagesPerPass : 1) {}

  // An image, or the `pages` of a multi-page TIFF (a stack: each page segmented as an image, into
  // OUT/NAME/ as 000000.png, ..., as a video's frames are).
  void add(const std::string& path, int64_t pages) {
    if (f_.skip_existing && already_done(path, pages)) return;
    if (is_nifti_path(path)) return add_volume(path);
    if (pages > 1) return add_stack(path, pages);
    // Named in input order whether or not it reads, so that names do not depend on which files a run
    // could read (--skip-existing, after a mended file, finds each input under its own name).
    const auto stem = unique_stem(path, stems_);
    torch::Tensor image;
    if (const auto error = error_of(path, [&] { image = read_image(path); }); !error.empty()) {
      flush();  // the report keeps the images' order
      return skip(path, error);
    }
    if (const int orientation = exif_orientation(path); orientation != 1 && turned.size() < 1000)
      turned.push_back(printable(path) + ": shown " + orientation_words(orientation) + " by viewers");
    // A band past the net's inputs (a TIFF's RGB + near-infrared to an RGB net) is dropped as alpha would be: said
    // once. Where the colour is fewer channels than the net takes (gray + bands to an RGB net), adapt_channels refuses.
    const int64_t inputs = predictor_.model().net->in_channels();
    const bool more_channels = image.size(0) > std::max<int64_t>(inputs, 1) && !is_npy_path(path) && unused.size() < 1000;
    if (more_channels && channels_are_data(path) && tiff_colour_channels(path) >= inputs)
      unused.push_back(printable(path) + ": " + std::to_string(image.size(0)) + " channels");
    add_image({path, image, stem, nullptr, ""});
  }

  // A NIfTI volume (segment_volume, after the images before it), or a case of several channels
  // (read_nifti_case: a 4-D file, nnU-Net's NAME_0000 with NAME_0001... beside it, named NAME): each
  // slice's own files and line as an image's, as it is segmented; the volume's files over its (channel
  // 0's) header once every slice is in.
  void add_volume(const std::string& path) {
    flush();
    const auto stem = unique_stem(path, stems_);
    std::vector<NiftiVolume> channels;
    if (const auto error = error_of(path, [&] { channels = read_nifti_case(path), prepare_volume(path, channels.front(), stem); }); !error.empty())
      return skip(path, error);
    const auto& volume = channels.front();
    const auto options = volume_options(f_);
    const auto labels_file = output(stem + "-labels.nii.gz");
    const InterruptGuard guard;  // Ctrl-C: the slice reached is finished, then the run ends
    std::vector<HeldSlice> held;  // --largest: slices finished once the volume's labels are kept
    const auto on_slice = [&](const SliceResult& slice) {
      const Pending item{slice.source, slice.image, numbered(stem, slice.slice), nullptr, labels_file};
      if (slice.error)
        skip(slice.source, error_of(slice.source, [&] { std::rethrow_exception(slice.error); }));
      else if (const auto error = error_of(slice.source, [&] { options.largest ? hold(item, slice, held) : finish(item, slice.prediction); });
               !error.empty())
        skip(slice.source, error);
      else
        progress_.update(++done_);
      return !InterruptGuard::requested();
    };
    VolumeSegmentation result;
    if (const auto error = error_of(path, [&] { result = segment_volume(predictor_, channels, options, on_slice, path); }); !error.empty())
      return skip(path, error);
    stopped = stopped || !result.complete();
    finish_held(held, channels, result);
    write_volume(path, volume, result, labels_file, stem);
  }

  void add_stack(const std::string& path, int64_t pages) {
    const auto stem = unique_stem(path, stems_);
    std::optional<TiffStackReader> stack;
    std::shared_ptr<StackFiles> files;
    if (const auto error = error_of(path, [&] { open_stack(path, stem, stack, files); }); !error.empty()) {
      flush();
      return skip(path, error);
    }
    const InterruptGuard guard;  // Ctrl-C: the pages so far are written, the stack files too, then the run ends
    for (int64_t page = 0; page < std::min(pages, stack->size()) && !InterruptGuard::requested(); ++page) {
      const auto source = path + " page " + std::to_string(page);
      torch::Tensor image;
      if (const auto error = error_of(source, [&] { image = stack->page(page); }); !error.empty()) {
        flush();
        skip(source, error);
        if (files) add_stack_page(*files, Prediction());
      } else {
        add_image({source, image, numbered(stem, page), files, ""});
      }
    }
    if (!InterruptGuard::requested()) return;
    flush();
    stopped = true;
    if (files && files->done > 0 && files->done < static_cast<int64_t>(files->pages.size())) complete(*files);  // else completed
  }

  void flush() {
    std::vector<torch::Tensor> images;
    std::vector<std::string> sources;
    for (const auto& item : pending_) sources.push_back(item.source), images.push_back(item.image);
    const auto predictions = predictor_.pass_or_nothing(images, sources);  // empty: one at a time below
    for (size_t k = 0; k < pending_.size(); ++k) {
      const Pending& item = pending_[k];
      Prediction prediction;  // no labels: the image failed
      const auto error = error_of(item.source, [&] {
        prediction = predictions.empty() ? predictor_(item.image, item.source) : predictions[k];
        finish(item, prediction);
      });
      if (error.empty())
        progress_.update(++done_);
      else
        skip(item.source, error), prediction = Prediction();
      if (item.stack) add_stack_page(*item.stack, prediction);  // in page order; a page that failed is void
    }
    pending_.clear();
  }

  // A video, after the images before it: its frames segmented into OUT/NAME/, its line reported.
  void add_video(const std::string& path) {
    flush();
    nlohmann::json summary;
    const auto error = error_of(path, [&] { summary = segment_video(f_, predictor_, path, unique_stem(path, stems_), f_.quiet || f_.json); });
    if (!error.empty()) return skip(path, error);
    stopped = summary["stopped"].get<bool>();
    kept += summary["frames_kept"].get<int64_t>();
    videos.push_back(summary);
    progress_.update(++done_);
    if (f_.json) return;
    const auto files = summary["files"].get<std::vector<std::string>>();
    const auto every = f_.every > 1 ? ", 1 in " + std::to_string(f_.every) : std::string();
    std::cout << printable(path) << " (" << summary["width"] << "x" << summary["height"] << ", " << summary["frames"]
              << " frames" << every << (stopped ? ", stopped by Ctrl-C" : "")
              << (summary["frames_kept"] > 0 ? ", " + summary["frames_kept"].dump() + " kept from an earlier run" : std::string()) << ") -> " << files[0] << (files.size() > 1 ? " + " + files[1] : "")
              << "  median " << summary["median_ms"].get<double>() << " ms/frame\n";
  }

  Timing times;  // network ms per segmented image
  nlohmann::json report = nlohmann::json::array(), videos = nlohmann::json::array(), stacks = nlohmann::json::array();
  int failed = 0;
  int64_t kept = 0;      // --skip-existing: images whose mask an earlier run wrote
  bool stopped = false;  // Ctrl-C: no more inputs
  std::vector<std::string> turned;  // images with an EXIF orientation: "FILE: shown ... by viewers"
  std::vector<std::string> unused;  // images of more channels of data than the net takes: "FILE: N channels"

 private:
  // A bad image is reported and skipped, so one broken file does not stop a folder.
  void skip(const std::string& path, const std::string& error) {
    std::cerr << "fcn: error: " << printable(error) << " (skipped)\n";
    if (f_.json) report.push_back({{"image", path}, {"error", error}});
    ++failed;
    progress_.update(++done_);
  }

  // --skip-existing: an earlier run (stopped midway) wrote every file this run would write for this
  // input — an image's label file and the others its flags ask for (overlay, instances, probabilities);
  // for a stack each page's, and its --label-stack / --probs tif files of every page (one that a Ctrl-C
  // cut short holds fewer, and the stack is segmented again). Its name is taken as that run took it, and
  // nothing is read but the stack files' page tables.
  bool already_done(const std::string& path, int64_t pages) {
    namespace fs = std::filesystem;
    const auto stem = free_stem(path, stems_);
    const auto out = fs::path(f_.out);
    const int64_t classes = predictor_.model().net->label_classes();
    std::error_code error;
    const auto written = [&](const std::vector<std::vector<std::string>>& files) { return outputs_written(f_, files); };
    const auto holds = [&](const std::string& suffix, int64_t count) {  // a TIFF stack file of `count` pages
      const auto file = (out / (stem + suffix)).string();
      bool full = false;  // a file that is not a TIFF stack of every page (stopped, damaged) is written again
      if (fs::is_regular_file(file, error)) error_of(file, [&] { full = image_pages(file) == count; });
      return full;
    };
    bool done = true;
    if (is_nifti_path(path)) {  // its volume files, and each slice's own (overlays, probabilities)
      done = fs::is_regular_file(out / (stem + "-labels.nii.gz"), error) &&
             (!f_.instances || fs::is_regular_file(out / (stem + "-instances.nii.gz"), error)) &&
             (f_.probs != "nii" || fs::is_regular_file(out / (stem + "-probs.nii.gz"), error)) &&
             (!f_.overlay || fs::is_regular_file(out / (stem + "-overlay.png"), error));
      for (int64_t page = 0; page < pages && done; ++page)
        done = written(outputs_of(f_, numbered(stem, page), classes, f_.overlay, false, f_.probs != "nii"));
    } else if (pages == 1) {
      done = written(outputs_of(f_, stem, classes, f_.overlay));
    } else {
      done = (!f_.label_stack || holds("-labels.tif", pages)) && (f_.probs != "tif" || holds("-probs.tif", pages * classes)) &&
             (!(f_.label_stack && f_.instances) || holds("-instances.tif", pages));
      for (int64_t page = 0; page < pages && done; ++page)
        done = written(outputs_of(f_, numbered(stem, page), classes, f_.overlay, !f_.label_stack, f_.probs != "tif"));
    }
    if (!done) return false;
    stems_.insert(stem);
    kept += pages;
    done_ += pages;
    progress_.update(done_);
    return true;
  }

  // --label-stack and --probs tif: a stack's labels (OUT/NAME-labels.tif) and class probabilities
  // (OUT/NAME-probs.tif: K float32 pages a page, K channels to Fiji), gathered page by page in page
  // order, with the input's calibration. A page that could not be segmented is void in the labels (255;
  // 65535 past 255 classes) and NaN in the probabilities, so that page k of each is page k of the stack.
  struct StackFiles {
    std::string input;
    std::vector<TiffPage> pages;
    int64_t classes = 0, void_label = 255;
    int64_t done = 0;  // pages given so far
    std::unique_ptr<TiffStackWriter> labels, probs;  // null: not asked for, or could not be written (reported once)
    std::string first_file;  // for the line per page: the labels' file, else the probabilities'
    std::vector<int64_t> void_pages;
    // --instances with --label-stack: the objects through the stack, written to `instances_file` from the
    // finished label stack (so that no page is held), with the input's calibration.
    std::optional<VolumeObjects> objects;
    std::string instances_file;
    TiffCalibration calibration;
    int64_t pixels = 0;  // of every page
    std::vector<std::string> class_names;
  };

  struct Pending {
    std::string source;  // the file, or "FILE page N"
    torch::Tensor image;
    std::string stem;    // the outputs' name under OUT (the file's stem made unique, or NAME/000123 for a page)
    std::shared_ptr<StackFiles> stack;  // --label-stack, --probs tif: the files this page goes to
    std::string volume_file;  // a NIfTI volume's slice: the volume's labels file, where its labels go
  };

  // A slice of a volume whose labels --largest keeps through the volume: its probabilities written now
  // (as the net gave them), its overlay and its line once the volume's labels are kept (finish_held).
  // Neither its image nor its probabilities are held: the volume's memory stays that of its labels.
  struct HeldSlice {
    int64_t slice = 0;
    Pending item;           // no image: made again from the volume (volume_slice_image)
    Prediction prediction;  // no labels (the volume's are), probabilities K x 0 x 0: their class count alone
    std::vector<std::string> files;
  };
  void hold(const Pending& item, const SliceResult& slice, std::vector<HeldSlice>& held) {
    const auto files = write_outputs(f_, item.stem, item.image, slice.prediction, false, false, f_.probs != "nii").files;
    HeldSlice kept{slice.slice, item, slice.prediction, files};
    kept.item.image = torch::Tensor();
    kept.prediction.labels = torch::Tensor();
    kept.prediction.probs = torch::empty({slice.prediction.probs.size(0), 0, 0});
    held.push_back(std::move(kept));
  }
  void finish_held(std::vector<HeldSlice>& held, const std::vector<NiftiVolume>& channels, const VolumeSegmentation& result) {
    for (auto& slice : held) {
      const auto error = error_of(slice.item.source, [&] {  // the image and labels made for this slice alone, then let go
        Pending item = slice.item;
        Prediction prediction = slice.prediction;
        prediction.labels = volume_slice_labels(result, slice.slice).to(torch::kLong);
        item.image = volume_slice_image(channels, result, slice.slice);
        auto written = write_outputs(f_, item.stem, item.image, prediction, f_.overlay, false, false);
        written.files.insert(written.files.begin(), slice.files.begin(), slice.files.end());
        report_image(item, prediction, written);
      });
      if (!error.empty()) skip(slice.item.source, error);
    }
    held.clear();
  }

  // The stack reader, the stack files, and OUT/NAME/ where pages write files of their own.
  void open_stack(const std::string& path, const std::string& stem, std::optional<TiffStackReader>& stack,
                  std::shared_ptr<StackFiles>& files) {
    namespace fs = std::filesystem;
    stack.emplace(path);
    if (!f_.label_stack || f_.overlay || f_.probs == "npy" || f_.probs == "png") fs::create_directories(fs::path(f_.out) / stem);
    if (!f_.label_stack && f_.probs != "tif") return;
    files = std::make_shared<StackFiles>();
    files->input = path;
    files->pages = stack->pages();
    files->classes = predictor_.model().net->label_classes();
    files->void_label = files->classes <= 255 ? 255 : 65535;
    const auto calibration = files->calibration = tiff_calibration(path);
    const auto file = [&](const std::string& suffix) { return (fs::path(f_.out) / (stem + suffix)).string(); };
    int64_t& pixels = files->pixels;  // of every page: what the files will hold, uncompressed (BigTIFF past 2 GB)
    for (const auto& page : files->pages) pixels += page.height * page.width;
    if (f_.label_stack) {
      if (files->classes > 65535) fail(path, "--label-stack: " + std::to_string(files->classes) + " classes do not fit a 16-bit TIFF page");
      files->labels = std::make_unique<TiffStackWriter>(file("-labels.tif"), calibration, StackLayout{}, pixels * (files->void_label == 255 ? 1 : 2));
      if (f_.instances) files->objects.emplace(files->void_label, f_.min_object, f_.connectivity), files->instances_file = file("-instances.tif");
    }
    if (f_.probs == "tif")
      files->probs = std::make_unique<TiffStackWriter>(file("-probs.tif"), calibration, StackLayout{files->classes, 0, 1}, pixels * files->classes * 4);
    files->first_file = file(f_.label_stack ? "-labels.tif" : "-probs.tif");
  }

  // OUT/NAME under OUT.
  std::string output(const std::string& name) const { return (std::filesystem::path(f_.out) / name).string(); }

  // Before a volume is segmented: --probs nii within the memory limit, and OUT/NAME/ where its slices
  // write files of their own (overlays, --probs npy or png).
  void prepare_volume(const std::string& path, const NiftiVolume& volume, const std::string& stem) const {
    const int64_t classes = predictor_.model().net->label_classes();
    if (const int64_t bytes = classes * volume.slices * volume.height * volume.width * 4; f_.probs == "nii" && bytes > limits().max_tensor_bytes)
      fail(path, "--probs nii: " + std::to_string(classes) + " classes' probabilities over this volume would hold " +
                     std::to_string(bytes >> 20) + " MiB; --probs npy writes them a slice at a time");
    if (f_.overlay || f_.probs == "npy" || f_.probs == "png") std::filesystem::create_directories(output(stem));
  }

  // The next page of a stack's files (no labels: the page failed, void); after its last page the files
  // are completed and reported.
  void add_stack_page(StackFiles& stack, const Prediction& prediction) {
    const int64_t k = stack.done++;
    const auto& size = stack.pages[static_cast<size_t>(k)];
    const bool failed = !prediction.labels.defined();
    if (failed) stack.void_pages.push_back(k);
    const auto labels = failed ? torch::full({size.height, size.width}, stack.void_label, torch::kLong) : prediction.labels;
    add_pages(stack.labels, [&](TiffStackWriter& writer) { writer.add(stack.void_label == 255 ? labels.to(torch::kByte) : labels); });
    if (stack.objects && stack.labels) stack.objects->add(labels);
    if (!failed && stack.class_names.empty()) stack.class_names = prediction.class_names;
    add_pages(stack.probs, [&](TiffStackWriter& writer) {
      for (int64_t c = 0; c < stack.classes; ++c)
        writer.add(failed ? torch::full({size.height, size.width}, std::nan(""), torch::kFloat) : prediction.probs[c]);
    });
    if (stack.done == static_cast<int64_t>(stack.pages.size())) complete(stack);
  }

  // add(writer) where the writer is there; one that fails is reported and dropped (its temporary file removed).
  template <class Add>
  void add_pages(std::unique_ptr<TiffStackWriter>& writer, Add&& add) {
    if (!writer) return;
    const auto file = writer->path();
    if (const auto error = error_of(file, [&] { add(*writer); }); !error.empty()) {
      writer.reset();
      skip(file, error);
    }
  }

  // The stack's files completed and reported: every page, or those before a Ctrl-C.
  void complete(StackFiles& stack) {
    const auto pages = static_cast<int64_t>(stack.pages.size());
    nlohmann::json entry = {{"stack", stack.input}, {"pages", pages}, {"pages_written", stack.done}, {"void_pages", stack.void_pages}};
    std::string written;  // "A + B"
    for (auto* writer : {&stack.labels, &stack.probs}) {
      if (!*writer) continue;
      const auto file = (*writer)->path();
      if (const auto error = error_of(file, [&] { (*writer)->finish(); }); !error.empty()) {
        skip(file, error);
        continue;
      }
      entry[writer == &stack.labels ? "labels" : "probs"] = file;
      written += (written.empty() ? "" : " + ") + printable(file);
      if (writer == &stack.labels && stack.objects) write_objects(stack, file, entry, written);
      warn_void(stack.void_pages, pages, "page", file, writer == &stack.labels ? "void (" + std::to_string(stack.void_label) + ")" : "NaN");
      if (stack.done < pages)
        std::cerr << "fcn: warning: " << printable(file) << ": stopped by Ctrl-C, it holds pages 0.." << stack.done - 1 << " of the " << pages << "\n";
    }
    stack.labels.reset(), stack.probs.reset(), stack.objects.reset();
    report_stack(entry, stack.input, pages, "pages", written);
  }

  // A stack's (or volume's) entry in --json's stacks, and its line: "INPUT (N pages) -> A + B".
  void report_stack(const nlohmann::json& entry, const std::string& input, int64_t pages, const std::string& unit, const std::string& written) {
    stacks.push_back(entry);
    if (!f_.json && !written.empty()) std::cout << printable(input) << " (" << pages << " " << unit << ") -> " << written << "\n";
  }

  // The warning that a stack's (or volume's) `file` holds `shown` (void (255), NaN) for the `void_pages` of
  // its `pages` pages (unit: "page", "slice") that could not be segmented, where there are any.
  void warn_void(const std::vector<int64_t>& void_pages, int64_t pages, const std::string& unit, const std::string& file,
                 const std::string& shown) const {
    if (void_pages.empty()) return;
    std::cerr << "fcn: warning: " << printable(file) << ": " << void_pages.size() << " of " << pages << " " << unit
              << "(s) could not be segmented and are " << shown << " there, the first " << unit << " " << void_pages.front() << "\n";
  }

  // A NIfTI volume's files over its header: OUT/NAME-labels.nii.gz (a slice that failed void there), with
  // --probs nii OUT/NAME-probs.nii.gz, with --instances OUT/NAME-instances.nii.gz (the objects through the
  // volume), with --overlay OUT/NAME-overlay.png (volume_overlay); reported as a stack. A volume Ctrl-C
  // stopped is not written: a part of one would pass for the whole (the same command with --skip-existing
  // does it again).
  void write_volume(const std::string& path, const NiftiVolume& volume, const VolumeSegmentation& result, const std::string& labels_file,
                    const std::string& stem) {
    const int64_t slices = result.slices;  // the volume's own, unless cut in another orientation
    nlohmann::json entry = {{"stack", path}, {"pages", slices}, {"pages_written", result.slices_done}, {"void_pages", result.failed_slices},
                            {"window", {result.window.first, result.window.second}}};
    entry["pixel_mm"] = result.pixel_mm ? nlohmann::json(*result.pixel_mm) : nlohmann::json();  // null: slices as stored
    entry["net_size"] = {result.net_width, result.net_height};
    entry["axes"] = result.axes.empty() ? nlohmann::json() : nlohmann::json(result.axes);  // null: slices as stored
    if (result.windows.size() > 1) {  // a case of several channels: each channel's
      entry["windows"] = nlohmann::json::array();
      for (const auto& [low, high] : result.windows) entry["windows"].push_back({low, high});
    }
    if (!result.complete()) {
      std::cerr << "fcn: warning: " << printable(path) << ": stopped by Ctrl-C at slice " << result.slices_done << " of " << slices
                << ", so its labels are not written\n";
      return report_stack(entry, path, slices, "slices", "");
    }
    std::string written;  // "A + B"
    const auto write = [&](const std::string& key, const std::string& file, const std::function<void()>& body) {
      if (const auto error = error_of(file, body); !error.empty()) return skip(file, error), false;
      entry[key] = file;
      written += (written.empty() ? "" : " + ") + printable(file);
      return true;
    };
    if (!write("labels", labels_file, [&] { write_nifti_labels(labels_file, volume, result.labels); }))
      return report_stack(entry, path, slices, "slices", written);
    warn_void(result.failed_slices, slices, "slice", labels_file, "void (" + std::to_string(result.void_label) + ")");
    const auto probs_file = output(stem + "-probs.nii.gz"), instances_file = output(stem + "-instances.nii.gz");
    if (result.probabilities.defined()) write("probs", probs_file, [&] { write_nifti_probabilities(probs_file, volume, result.probabilities); });
    if (result.objects.defined() && write("instances", instances_file, [&] { write_nifti_labels(instances_file, volume, result.objects); })) {
      entry["objects"] = named_counts(result.objects_per_class, result.class_names);
      written += ", " + std::to_string(result.object_count) + " object(s)";
    }
    const auto overlay_file = output(stem + "-overlay.png");
    if (f_.overlay) write("overlay", overlay_file, [&] { write_png(overlay_file, volume_overlay(volume, result)); });
    if (!result.axes.empty()) written += " (cut as " + result.axes + " slices)";
    if (result.pixel_mm)
      written += " (slices resampled to " + pixel_text(*result.pixel_mm) + " mm pixels for the net: " + std::to_string(result.net_width) + "x" +
                 std::to_string(result.net_height) + ")";
    report_stack(entry, path, slices, "slices", written);
  }

  // --instances with --label-stack: the objects through the stack, page for page in NAME-instances.tif
  // (16-bit; float32 past 65535 objects, exact to 2^24), their ids taken from the label stack just
  // written; the file and each class's count in the stack's report.
  void write_objects(StackFiles& stack, const std::string& labels_file, nlohmann::json& entry, std::string& written) {
    auto& objects = *stack.objects;
    const auto& file = stack.instances_file;
    const auto error = error_of(file, [&] {
      const bool wide = objects.count() > 65535;
      if (objects.count() > (int64_t{1} << 24)) fail(file, std::to_string(objects.count()) + " objects: past 2^24 a float32 page cannot number them");
      TiffStackWriter writer(file, stack.calibration, StackLayout{}, stack.pixels * (wide ? 4 : 2));
      TiffStackReader labels(labels_file);
      for (int64_t k = 0; k < objects.pages(); ++k) {
        const auto ids = objects.page(k, labels.page_values(k)[0]);
        writer.add(wide ? ids.to(torch::kFloat) : ids);
      }
      writer.finish();
    });
    if (!error.empty()) return skip(file, error);
    const auto counts = objects.per_class(stack.classes);
    entry["instances"] = file;
    entry["objects"] = named_counts(counts, stack.class_names);
    written += " + " + printable(file) + ", " + std::to_string(objects.count()) + " object(s)";
  }

  void add_image(Pending item) {
    if (!pending_.empty() && !joins_pass(pending_[0].image.sizes(), pending_.size(), item.image.sizes(), per_pass_)) flush();
    pending_.push_back(std::move(item));
  }

  // Writes an image's outputs (those of a stack page that do not go to its stack files) and reports it.
  void finish(const Pending& item, const Prediction& predicted) {
    const bool volume = !item.volume_file.empty();
    Prediction prediction = predicted;
    if (f_.largest_classes && !volume && !item.stack)  // an image's (a volume's are kept through the volume: segment_volume)
      prediction.labels = keep_largest_objects(predicted.labels, instances_from_labels(predicted.labels, -1, plane_connectivity(f_.connectivity)),
                                               *f_.largest_classes);
    const bool probs = !(item.stack && f_.probs == "tif") && !(volume && f_.probs == "nii");  // else in the stack's or volume's file
    report_image(item, prediction, write_outputs(f_, item.stem, item.image, prediction, f_.overlay, own_labels(item), probs));
  }

  // Whether an image's labels go to a file of its own: not a volume's slice (the volume's file) nor a
  // --label-stack page (the stack's).
  bool own_labels(const Pending& item) const { return !(item.stack && f_.label_stack) && item.volume_file.empty(); }

  // An image's time, its --json entry or its line, once its files are written.
  void report_image(const Pending& item, const Prediction& prediction, const Written& written) {
    const std::string& path = item.source;
    const torch::Tensor& image = item.image;
    const bool volume = !item.volume_file.empty();
    const bool labels = own_labels(item);
    const auto& files = written.files;
    const auto& objects = written.per_class;  // --instances
    times.ms.push_back(prediction.milliseconds);
    if (f_.json) {
      report.push_back({{"image", path}, {"height", image.size(1)}, {"width", image.size(2)}, {"ms", prediction.milliseconds},
                        {"class_pixels", named_counts(prediction.class_pixels(), prediction.class_names)}, {"files", files}});
      if (f_.instances && labels) report.back()["objects"] = named_counts(objects, prediction.class_names);
    } else if (line_per_image_) {
      const auto to = labels ? files.front() : volume ? item.volume_file : item.stack->first_file;  // the label file, or the stack's
      const auto count = std::accumulate(objects.begin(), objects.end(), int64_t{0});
      std::cout << printable(path) << " (" << image.size(2) << "x" << image.size(1) << ") -> " << to << "  " << prediction.milliseconds << " ms"
                << (f_.instances && labels ? ", " + std::to_string(count) + " object(s)" : std::string()) << "\n";
    }
  }

  const PredictFlags& f_;
  const Predictor& predictor_;
  const bool line_per_image_;
  Progress& progress_;
  const size_t per_pass_;  // images per forward pass
  std::set<std::string> stems_;
  std::vector<Pending> pending_;
  int64_t done_ = 0;
};

// Each input's pages, read once for the progress total and the segmenting: a stack's, else 1 (a video,
// an image, a file whose page table is bad: reading it as an image gives the error then).
std::vector<int64_t> pages_of(const std::vector<std::string>& inputs) {
  std::vector<int64_t> pages(inputs.size(), 1);
  for (size_t i = 0; i < inputs.size(); ++i)
    if (is_nifti_path(inputs[i]))
      error_of(inputs[i], [&] { pages[i] = nifti_shape(inputs[i], true)[0]; });  // its slices
    else if (!has_video_extension(inputs[i]))
      error_of(inputs[i], [&] { pages[i] = image_pages(inputs[i]); });
  return pages;
}

// The inputs to segment: files, folders' images, videos and volumes (list_images), nnU-Net's later channels
// (NAME_0001.nii.gz beside NAME_0000) standing for their case, each volume or case once: a folder's or a
// glob's channel files give it once, and a later channel named alone still segments its case.
std::vector<std::string> inputs_of(const std::vector<std::string>& inputs) {
  std::vector<std::string> images;
  std::set<std::string> cases;
  for (const auto& input : list_images(inputs, true)) {
    const auto file = is_nifti_path(input) ? nifti_case_file(input) : input;
    if (!is_nifti_path(input) || cases.insert(file).second) images.push_back(file);
  }
  return images;
}

// No input is among the files the run writes: an image in the --out folder named as an output (a.png's mask is
// OUT/a.png; OUT/a-overlay.png, OUT/a-probs.npy, OUT/a/...) was replaced by it without a word.
void check_outputs_spare_inputs(const PredictFlags& f, const std::vector<std::string>& images) {
  namespace fs = std::filesystem;
  std::error_code error;
  const auto out = fs::weakly_canonical(f.out, error);
  if (error) return;
  std::set<std::string> stems;
  for (const auto& image : images) unique_stem(image, stems);
  const auto output_named = [&](const std::string& name) {  // STEM.png, STEM-anything
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".png") == 0 && stems.count(name.substr(0, name.size() - 4)) != 0) return true;
    for (auto dash = name.find('-'); dash != std::string::npos; dash = name.find('-', dash + 1))
      if (stems.count(name.substr(0, dash)) != 0) return true;
    return false;
  };
  for (const auto& image : images) {
    const auto file = fs::weakly_canonical(image, error);
    if (error) continue;
    const auto folder = file.parent_path();
    const bool overwritten = (folder == out && output_named(file.filename().string())) ||
                             (folder.parent_path() == out && stems.count(folder.filename().string()) != 0);  // OUT/STEM/: a video's frames
    if (overwritten)
      fail(image, "is in --out " + f.out + " under a name this run writes there, so it would be overwritten by an output: give --out a folder of its own");
  }
}

// The flags that fit some inputs only, against the inputs given: one line naming the flag and an input.
// `context`: the model's slice_context (a 2.5-D net takes volumes, or the RGB slices unstack --context wrote;
// a TIFF stack's pages or a video's frames would pass for slices without a word).
void check_inputs(const PredictFlags& f, const std::vector<std::string>& images, const std::vector<int64_t>& pages, int64_t context) {
  for (size_t i = 0; i < images.size() && context > 0; ++i)
    if (has_video_extension(images[i]) || (pages[i] > 1 && !is_nifti_path(images[i])))
      fail(f.model, "is a 2.5-D net (a volume's slices k-" + std::to_string(context) + "..k+" + std::to_string(context) +
                        " as its channels), and " + images[i] + " is a " + (pages[i] > 1 ? "TIFF stack" : "video") +
                        ": give it NIfTI volumes, or the slices fcn data unstack --context wrote");
  const auto volume = std::find_if(images.begin(), images.end(), [](const std::string& input) { return is_nifti_path(input); });
  if (f.probs == "tif" && volume != images.end())
    fail("--probs", "tif writes TIFF stacks, and " + *volume + " is a NIfTI volume: its probabilities as --probs nii (a 4-D volume)");
  if (const auto other = std::find_if(images.begin(), images.end(), [](const std::string& input) { return !is_nifti_path(input); });
      f.probs == "nii" && other != images.end())
    fail("--probs", "nii writes the probabilities of NIfTI volumes, and " + *other + " is not one (.nii, .nii.gz): --probs npy, png or tif");
  if (f.intensities.given() && volume == images.end()) fail("--window", "maps the voxels of NIfTI volumes (.nii, .nii.gz), and no input is one");
  if (!f.orient.empty() && volume == images.end())
    fail("--orient", "cuts NIfTI volumes (.nii, .nii.gz) into slices by their orientation, and no input is one");
  if (!f.orient.empty() && f.orient != "stored" && !valid_axis_codes(f.orient))
    fail("--orient", "'" + f.orient + "' is neither stored nor an orientation: three letters, one of R/L, A/P and S/I each (e.g. RAS)");
  if (!f.spacing.empty() && volume == images.end())
    fail("--spacing", "resamples the slices of NIfTI volumes (.nii, .nii.gz) by their voxel sizes, and no input is one");
  if (f.label_stack && std::none_of(pages.begin(), pages.end(), [](int64_t n) { return n > 1; }))
    fail("--label-stack", "writes the labels of multi-page TIFF stacks, and no input is one");
  for (size_t i = 0; i < images.size() && !f.largest.empty(); ++i)
    if (has_video_extension(images[i]) || (pages[i] > 1 && !is_nifti_path(images[i])))
      fail("--largest", "keeps the largest objects of images and NIfTI volumes, and " + images[i] + " is a " +
                            (pages[i] > 1 ? "TIFF stack" : "video") + " (its pages or frames are segmented one by one)");
}

// Volumes resampled to pixels (the model's, or --spacing's) cannot also be resized or scaled: one line before any
// input is read, where an input is a volume, instead of each volume skipped.
void check_resampling(const PredictFlags& f, const std::vector<std::string>& images, const ModelMeta& model) {
  const auto pixels = volume_pixels(volume_options(f), model);
  const bool sized = f.options.resize_height > 0 || f.options.scales != std::vector<double>{1.0};
  const auto volume = std::find_if(images.begin(), images.end(), [](const std::string& input) { return is_nifti_path(input); });
  if (!pixels || !sized || volume == images.end()) return;
  fail(f.options.resize_height > 0 ? "--resize" : "--scales",
       "resizes images, and " + *volume + " is a NIfTI volume whose slices are resampled to " + pixel_text(*pixels) + " mm pixels (" +
           (f.pixel_mm ? "--spacing" : f.model + "'s") + "): give --spacing none to resize its slices as stored, or leave --resize and --scales out");
}

// Each input in turn until Ctrl-C. A full disk stops the run, saying how to go on (each input after it failed to
// be written too, a line apiece, its mask computed for nothing).
void segment_inputs(Segmenter& segmenter, const std::vector<std::string>& images, const std::vector<int64_t>& pages) {
  try {
    for (size_t i = 0; i < images.size() && !segmenter.stopped; ++i) {
      const auto& input = images[i];
      if (has_video_extension(input))
        segmenter.add_video(input);
      else
        segmenter.add(input, pages[i]);
      segmenter.stopped = segmenter.stopped || InterruptGuard::requested();
    }
    segmenter.flush();
  } catch (const OutOfSpace& e) {  // not one bad input but every write after it: stop, saying how to go on
    throw OutOfSpace(e.subject(), e.message() + "; stopped: free some space, then the same command with --skip-existing goes on where this one stopped");
  } catch (const Unwritable& e) {
    throw Unwritable(e.subject(), e.message() + "; stopped: every later write there would fail too (after a disk error, see dmesg); once it "
                                                "takes writes again, the same command with --skip-existing goes on where this one stopped");
  }
}

void run_predict(PredictFlags& f) {
  if (std::error_code error; std::filesystem::exists(f.out, error) && !std::filesystem::is_directory(f.out, error))
    fail(f.out, "is a file, not a folder (--out names the folder the masks go to)");
  if (!f.window.empty()) f.intensities = parse_window(f.window);
  if (!f.spacing.empty() && f.spacing != "none") f.pixel_mm = parse_spacing(f.spacing, "none (slices as stored)");
  apply_inference_flags(f.inference, f.options);
  f.options.dtype = parse_dtype(f.dtype);
  apply_threads(f.threads);
  const auto device = parse_device(f.device);
  f.options.fast_path = true;  // the layout, allocator and upsampling fcn tune chose for this CPU, else the ISA rule
  const Predictor predictor(f.model, device, f.options);
  warn_unread_threshold(f.inference, *predictor.model().net, f.model);
  const auto images = inputs_of(f.inputs);
  if (f.every > 1 && std::none_of(images.begin(), images.end(), [](const std::string& input) { return has_video_extension(input); }))
    fail("--every", std::to_string(f.every) + " picks frames of videos, and no input is a video");
  check_outputs_spare_inputs(f, images);
  std::filesystem::create_directories(f.out);
  check_writable_folder(f.out, "the masks");
  const auto pages = pages_of(images);
  check_inputs(f, images, pages, predictor.model().meta.slice_context);
  check_resampling(f, images, predictor.model().meta);
  if (!f.largest.empty()) f.largest_classes = parse_largest(f.largest, predictor.model().meta.class_names);
  const int64_t total = std::accumulate(pages.begin(), pages.end(), int64_t{0});  // a stack counts its pages
  Progress progress("predict", total, f.quiet || f.json || total < 2);
  Segmenter segmenter(f, predictor, f.quiet || total < 2, progress);
  record_outputs(f, predictor.model().meta.class_names);
  InterruptGuard::clear();
  const InterruptGuard guard;  // Ctrl-C: the images so far are finished, then the run ends (--skip-existing goes on)
  segment_inputs(segmenter, images, pages);
  if (const auto& turned = segmenter.turned; !turned.empty())
    std::cerr << "fcn: warning: " << turned.size() << (turned.size() < 1000 ? "" : "+") << " image(s) carry an EXIF orientation ("
              << turned.front() << (turned.size() > 1 ? ", ..." : "") << "): segmented as stored, as PyTorch and PIL "
              << "read them, so their masks look turned against the photos in a viewer\n";
  if (const auto& unused = segmenter.unused; !unused.empty())
    std::cerr << "fcn: warning: " << unused.size() << (unused.size() < 1000 ? "" : "+") << " image(s) hold more channels of data than the "
              << predictor.model().net->in_channels() << " the model takes (" << unused.front() << (unused.size() > 1 ? ", ..." : "")
              << ", the TIFF's extra samples declared data): the net saw their gray or RGB alone, the bands past it dropped\n";
  const auto& times = segmenter.times;
  const int failed = segmenter.failed;
  const double median = times.median();
  if (f.json) {
    std::cout << nlohmann::json{{"model", f.model}, {"device", device.str()}, {"images", segmenter.report}, {"videos", segmenter.videos},
                                {"stacks", segmenter.stacks},
                                {"succeeded", times.ms.size()}, {"failed", failed}, {"kept", segmenter.kept}, {"median_ms", median},
                                {"path", predictor.path().to_json()}, {"inference", describe_inference(predictor.options())}}
                     .dump(2)
              << "\n";
  } else {
    const std::string images_done = std::to_string(times.ms.size()) + " image(s)";
    const std::string videos_done = std::to_string(segmenter.videos.size()) + " video(s)";
    std::cout << (segmenter.videos.empty() ? images_done : times.ms.empty() ? videos_done : images_done + " and " + videos_done)
              << " segmented on " << device.str() << " into " << f.out;
    if (!times.ms.empty()) std::cout << ", median " << median << " ms/image";
    std::cout << (segmenter.kept > 0 ? ", " + std::to_string(segmenter.kept) + " kept from an earlier run" : std::string())
              << (failed > 0 ? ", " + std::to_string(failed) + " failed" : std::string()) << "\n";
  }
  if (segmenter.stopped && !f.json) std::cerr << "fcn: stopped by Ctrl-C; the same command with --skip-existing goes on where this one stopped\n";
  if (segmenter.stopped) throw CLI::RuntimeError(130);
  if (failed > 0) throw CLI::RuntimeError(1);
}

}  // namespace

// fcn predict's --help: what it does, with an example of each kind of input.
constexpr const char* kPredictHelp =
    "Segment images and videos: a palette PNG of class indices per image (opens as a colour picture)\n"
    "  example: fcn predict fcn8s.fcn photos/ --out masks --overlay\n"
    "  example: fcn predict fcn8s.fcn clip.mp4 --out masks --overlay   (masks/clip/000000.png, ...; masks/clip-overlay.mp4)\n"
    "  example: fcn predict fcn8s.fcn big.png --out masks --tile 512 --overlap 64 --probs npy\n"
    "  example: fcn predict unet.fcn 'scans/*.png' --out masks --tta flip --json\n"
    "  example: fcn predict unet.fcn volume.tif --out masks --label-stack   (masks/volume-labels.tif, page for page)\n"
    "  example: fcn predict unet.fcn ct.nii.gz --out masks --window -1000,400   (masks/ct-labels.nii.gz, slice for slice)\n"
    "  example: fcn predict brats.fcn imagesTs/ --out masks --window p0.5,p99.5 --largest all   (a case of 4 MRI channels each)\n"
    "  example: fcn predict ct.fcn imagesTs/ --out masks --json   (a net trained on slices of fcn data unstack --orient RAS --spacing median: "
    "each volume cut and resampled alike, labels put back over the scan; --orient stored, --spacing none: as stored)\n"
    "  Any image size: padded (mirrored) to a size the net accepts and cropped back.\n"
    "  A bad image is reported and skipped; the exit code is 1 if any image failed.";

namespace {

// --instances, --largest and the flags that say what an object is.
void add_object_flags(CLI::App* cmd, PredictFlags& f) {
  auto* instances = cmd->add_flag("--instances", f.instances,
                "also write NAME-instances.png: the objects, each class's 8-connected components (4-connected with --connectivity 6) numbered 1..N (16-bit; "
                "0 background; past 65535 objects an int32 NAME-instances.npy), with their count per class (--json: objects); "
                "with --overlay, their outlines drawn in white (in a video's overlay too); with --label-stack, a stack's objects "
                "through its pages (joined across pages too: a cell through 40 slices is one object) in OUT/NAME-instances.tif");
  cmd->add_option("--largest", f.largest, kLargestHelp);
  cmd->add_option("--min-object", f.min_object, "--instances: components of fewer pixels are left out (id 0, not counted): specks; through a volume (a NIfTI volume, --label-stack) objects of fewer voxels in all")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->needs(instances);
  cmd->add_option("--connectivity", f.connectivity,
                  "--instances and --largest: a class's voxels that touch by a face, edge or corner are one object through a volume "
                  "(26), by a face or edge (18), by a face alone (6: a challenge's rule where it names one); within an image or "
                  "slice 8-connected, 4-connected for 6")
      ->check(CLI::IsMember({6, 18, 26}))
      ->capture_default_str();
}

}  // namespace

void add_predict(CLI::App& app) {
  auto* cmd = app.add_subcommand("predict", kPredictHelp);
  static PredictFlags f;
  cmd->add_option("MODEL", f.model, "model file")->required();
  cmd->add_option("INPUT", f.inputs, "image files (.npy arrays: C x H x W, any channel count), multi-page TIFF stacks (every page), "
                                    "NIfTI volumes (.nii, .nii.gz: every slice, labels in OUT/NAME-labels.nii.gz over the scan's header), "
                                    "videos (.mp4, .mkv, .avi, ...), folders of them or glob patterns")->required();
  add_out_flag(cmd, f.out, "output folder (created)", true)->required();  // a folder
  cmd->add_flag("--overlay", f.overlay, "also write NAME-overlay.png: labels blended over the image, with a legend "
                                      "(a video: NAME-overlay.mp4, H.264 at the video's frame rate; a NIfTI volume: up to 16 "
                                      "slices through it in one NAME-overlay.png, each slice's own in OUT/NAME/)");
  cmd->add_option("--probs", f.probs, "also write class probabilities: nii for NIfTI volumes (NAME-probs.nii.gz: x, y, z, class, "
                                      "float32, over the scan's header), npy (NAME-probs.npy, K x H x W float32), png "
                                      "(NAME-probC.png per class, 16-bit, p * 65535) or tif (NAME-probs.tif, K float32 pages, "
                                      "channels in Fiji; a TIFF stack's: K pages a page in one file, a page that fails NaN)")
      ->check(CLI::IsMember({"npy", "png", "tif", "nii"}));
  add_inference_flags(cmd, f.options, f.inference);
  cmd->add_option("--batch", f.options.batch, "tiles per forward pass")->capture_default_str();
  add_device_flag(cmd, f.device);
  add_dtype_flag(cmd, f.dtype);
  add_threads_flag(cmd, f.threads, "LibTorch's");
  cmd->add_flag("--skip-existing", f.skip_existing,
                "images whose outputs exist already (the label file OUT/NAME.png and each file the other flags ask for) are "
                "skipped: a run stopped midway (Ctrl-C) goes on where it stopped, and a run with a flag added writes what is "
                "missing (a TIFF stack is skipped when all its pages' outputs are there; a video's frames whose outputs are there "
                "are passed over, but with --overlay, whose video needs every frame, a video is kept only when finished)");
  add_object_flags(cmd, f);
  cmd->add_flag("--label-stack", f.label_stack,
                "multi-page TIFF inputs: their labels as one multi-page TIFF, OUT/NAME-labels.tif (8-bit; 16-bit past 255 classes; "
                "a page that fails is void, 255), in place of a PNG per page; opens in Fiji or napari as a volume");
  cmd->add_option("--window", f.window,
                  "NIfTI volumes (.nii, .nii.gz): the voxel values LOW,HIGH mapped to black..white for the net, as it was trained "
                  "(CT in Hounsfield units, e.g. -1000,400), or pLOW,pHIGH: percentiles of each volume's (each channel's) own voxels "
                  "(MRI, e.g. p0.5,p99.5); default: each volume's own minimum and maximum");
  cmd->add_option("--spacing", f.spacing,
                  "NIfTI volumes: resample each slice in-plane to pixels of MM (or X,Y: across, down) millimetres for the net, its "
                  "labels back to the scan's voxels; 'none': slices as stored; default: the pixels the model was trained on where "
                  "fcn data unstack --spacing made its data (fcn info shows them), else as stored");
  orientation_case(cmd->add_option("--orient", f.orient,
                                   "NIfTI volumes: cut each into slices as a volume stored in this orientation would be (RAS: axial slices "
                                   "whatever plane it was stored in), the labels put back where its voxels lie; 'stored': slices as stored; "
                                   "default: the orientation the model was trained on where fcn data unstack --orient made its data (fcn info "
                                   "shows it), else as stored"));
  cmd->add_option("--every", f.every, "videos: segment every Nth frame (0, N, 2N, ...; masks named by frame number, the overlay at the frame rate / N)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  add_json_flag(cmd, f.json, "one object per run: per image size, time, class pixel counts, files; per video frames, fps, class pixels, files; inference");
  cmd->add_flag("--quiet", f.quiet, "no progress bar: a line per image instead (for logs)");
  add_max_pixels_flag(cmd);
  cmd->callback([cmd] {
    if (cmd->get_option("--connectivity")->count() > 0 && !f.instances && f.largest.empty())
      fail("--connectivity", "says how --instances and --largest join pixels into objects, and neither is given");
    f.shaping = shaping_flags(*cmd);
    run_predict(f);
  });
}

}  // namespace fcn::cli
