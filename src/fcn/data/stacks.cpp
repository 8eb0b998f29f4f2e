#include "fcn/data/stacks.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/data/dataset.h"
#include "fcn/formats/image.h"
#include "fcn/formats/nifti.h"
#include "fcn/formats/npy.h"
#include "fcn/formats/png.h"
#include "fcn/formats/tiff.h"
#include "fcn/models/model.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

namespace fs = std::filesystem;

// A page read_image_page gave (C x H x W in [0, 1]) back in the integers it was stored as: 8-bit where
// every value is a multiple of 1/255 (a 16-bit page whose values are multiples of 257 loses nothing).
torch::Tensor stored_values(const torch::Tensor& page, bool& sixteen_bit) {
  const auto as_8bit = page.mul(255);
  sixteen_bit = !torch::allclose(as_8bit, as_8bit.round(), 0, 1e-3);
  return sixteen_bit ? page.mul(65535).round().to(torch::kInt) : as_8bit.round().to(torch::kByte);
}

// A stack's page as `path` (a PNG) or beside it as NAME.npy: bands, floats, 16-bit colour, and pages whose
// channels are all `data` (TiffPage::samples_are_data: RGB + near-infrared), whose 4th a PNG would hold as alpha.
void write_page(const std::string& path, const torch::Tensor& page, bool data = false) {
  bool sixteen_bit = false;
  const bool unit = page.numel() > 0 && page.min().item<float>() >= 0 && page.max().item<float>() <= 1;
  const auto values = unit ? stored_values(page, sixteen_bit) : torch::Tensor();
  const bool exact = unit && torch::allclose(values.to(torch::kFloat).div(sixteen_bit ? 65535.0f : 255.0f), page, 0, 1e-6);
  const int64_t channels = page.size(0);
  if (channels > 4 || !exact || (sixteen_bit && channels != 1) || (data && channels > 1)) {  // the values as read, a .npy array
    const auto array = fs::path(path).replace_extension(".npy").string();
    if (!exact) return write_npy(array, page.contiguous());
    return sixteen_bit ? write_npy_uint16(array, values) : write_npy(array, values.contiguous());
  }
  if (sixteen_bit) return write_png16(path, values[0]);
  const int64_t kept = channels >= 3 ? 3 : 1;  // gray or RGB; alpha dropped, as the nets drop it
  write_png(path, values.slice(0, 0, kept).permute({1, 2, 0}).contiguous());
}

// Page k of a label stack as `path`: a gray page as the labels it stores (TiffStackReader::page_values: a float
// page's whole numbers too), in an 8-bit PNG, or 16-bit past label 255; a colour page (the colours of
// classes.json) as write_page writes images. Labels are never scaled: a float page of 0/1 was once written 0/255,
// and under a classes.json of more than 2 classes every 1 became void (255).
void write_label_page(const std::string& path, TiffStackReader& stack, int64_t k) {
  if (stack.pages()[static_cast<size_t>(k)].samples != 1) return write_page(path, stack.page(k));
  const auto labels = stack.page_values(k)[0];
  const int64_t most = labels.numel() > 0 ? labels.max().item<int64_t>() : 0;
  if (most > 65535)
    fail(stack.path() + " page " + std::to_string(k), "holds label " + std::to_string(most) + ": a mask holds class indices up to 65535 (a 16-bit PNG)");
  if (most > 255) return write_png16(path, labels.to(torch::kInt));
  write_png(path, labels.to(torch::kByte).unsqueeze(2).contiguous());
}

// NNN.png for page k of `total`: k zero-padded to 3 or more digits.
std::string page_name(int64_t k, int64_t total) {
  const size_t digits = std::max<size_t>(3, std::to_string(std::max<int64_t>(total - 1, 0)).size());
  const auto number = std::to_string(k);
  return std::string(digits - number.size(), '0') + number + ".png";
}

// Pages 0..total-1, each written by write(k, image file, mask file) into OUT/.images.partial (and
// .masks.partial where `with_masks`) under name(k) (else page_name), the folders renamed to images/ and
// masks/ once every page is in; after an error nothing is left behind.
int64_t write_folders(const std::string& out_dir, int64_t total, bool with_masks,
                      const std::function<void(int64_t, const std::string&, const std::string&)>& write,
                      const std::function<void(int64_t, int64_t)>& progress, const std::function<std::string(int64_t)>& name = {}) {
  const fs::path out(out_dir);
  for (const char* folder : {"images", "masks"})
    if (fs::exists(out / folder)) fail(out_dir, std::string("already holds ") + folder + "/: unstack into a new folder");
  const fs::path images = out / ".images.partial", masks = out / ".masks.partial";  // renamed once complete
  const auto clear = [&] { fs::remove_all(images), fs::remove_all(masks); };
  clear();
  fs::create_directories(images);
  if (with_masks) fs::create_directories(masks);
  try {
    for (int64_t page = 0; page < total; ++page) {
      const auto file = name ? name(page) : page_name(page, total);
      write(page, (images / file).string(), (masks / file).string());
      if (progress) progress(page + 1, total);
    }
  } catch (...) {  // a bad page: nothing left behind
    clear();
    throw;
  }
  fs::rename(images, out / "images");
  if (with_masks) fs::rename(masks, out / "masks");
  return total;
}

// fcn::Error naming masks_path where the label volume `labels` is not of the size of `volume` (images_path's;
// headers will do).
void check_label_size(const NiftiVolume& volume, const NiftiVolume& labels, const std::string& images_path, const std::string& masks_path) {
  if (labels.width != volume.width || labels.height != volume.height || labels.slices != volume.slices)
    fail(masks_path, "is " + std::to_string(labels.width) + "x" + std::to_string(labels.height) + "x" + std::to_string(labels.slices) +
                         " voxels but " + images_path + " is " + std::to_string(volume.width) + "x" + std::to_string(volume.height) + "x" +
                         std::to_string(volume.slices));
}

// The largest label of a label volume for `volume` (images_path's), checked: the same size, every voxel an
// integer 0..65535; fcn::Error naming masks_path otherwise.
int64_t label_volume_max(const NiftiVolume& volume, const NiftiVolume& labels, const std::string& images_path, const std::string& masks_path) {
  check_label_size(volume, labels, images_path, masks_path);
  if (labels.voxels.numel() == 0) return 0;
  {  // the usual case checked over the voxels as they lie (a CT volume's int64 copy is 8 bytes a voxel)
    const auto& voxels = labels.voxels;
    const auto [low, high] = torch::aminmax(voxels);
    const bool whole = !voxels.is_floating_point() || torch::equal(voxels, voxels.round());
    if (whole && low.item<double>() >= 0 && high.item<double>() <= 65535) return static_cast<int64_t>(high.item<double>());
  }
  // Else the first voxel that is not a class index, named.
  const auto v = labels.voxels.to(labels.voxels.is_floating_point() ? torch::kDouble : torch::kLong);  // 65535 fits the comparisons
  const auto bad = v.is_floating_point() ? (v != v.round()) | (v < 0) | (v > 65535) : (v < 0) | (v > 65535);
  if (const auto where = bad.nonzero(); where.size(0) > 0)
    fail(masks_path, "voxel (" + std::to_string(where[0][2].item<int64_t>()) + "," + std::to_string(where[0][1].item<int64_t>()) + "," +
                         std::to_string(where[0][0].item<int64_t>()) + ") holds " + number_text(v[where[0][0]][where[0][1]][where[0][2]].item<double>()) +
                         ": a label volume holds class indices 0..65535");
  return static_cast<int64_t>(v.max().item<double>());
}

using Window = std::pair<double, double>;

// How a case is cut into slices (NiftiSlicing's axes and pixel_mm for its header): the axes, the slices' size
// where resampled, and how many slices there are.
struct CaseCut {
  SliceAxes axes;
  std::optional<std::pair<int64_t, int64_t>> size;
  int64_t slices = 0;
};

CaseCut case_cut(const NiftiVolume& volume, const NiftiSlicing& slicing, const std::string& path) {
  CaseCut cut;
  if (!slicing.axes.empty()) cut.axes = nifti_slice_axes(volume, slicing.axes, path);
  if (slicing.pixel_mm) cut.size = resampled_slice_size(volume, *slicing.pixel_mm, path, cut.axes);
  cut.slices = sliced_shape(volume, cut.axes)[0];
  return cut;
}

// Slice k of a case's channels, as `cut` cuts it, as one 16-bit PNG (channel c's `windows[c]` to 0..65535: gray,
// gray + alpha, RGB, RGBA samples for 1..4 planes; with `context`, each channel's slices k - context ..
// k + context, the end slices repeated past the ends), or past 4 planes one uint16 C x H x W .npy array of the
// same values under the name with .npy for .png; and, where `labels`, its labels' slice as an 8-bit PNG
// (16-bit where `wide`); with the cut's size, both resampled to it: the image bilinearly, the labels by
// resample_labels.
void write_nifti_slice(const std::vector<NiftiVolume>& channels, const NiftiVolume* labels, int64_t k, const std::vector<Window>& windows,
                       int64_t context, bool wide, const CaseCut& cut, const std::string& image, const std::string& mask) {
  const auto& size = cut.size;
  auto pixels = nifti_case_slice(channels, k, windows, context, cut.axes);
  if (size) pixels = torch::upsample_bilinear2d(pixels.unsqueeze(0), {size->first, size->second}, false)[0];
  const auto values = pixels.mul(65535).round().to(torch::kInt);
  if (values.size(0) > 4)
    write_npy_uint16(fs::path(image).replace_extension(".npy").string(), values);
  else
    write_png16(image, values.permute({1, 2, 0}).contiguous());
  if (!labels) return;
  auto slice = cut_slice(labels->voxels, cut.axes, k).to(torch::kLong);
  if (size) slice = resample_labels(slice, size->first, size->second);
  if (wide)
    write_png16(mask, slice);
  else
    write_png(mask, slice.to(torch::kByte).unsqueeze(2).contiguous());
}

// Labels up to `most` of 2..254 (1..254 where the task names them): OUT/classes.json names them (the task's
// dataset.json "labels" beside `volumes_dir`, else "background", "label 1", ...) unless one is there, so the
// folder reads them all. The classes named (0: none).
int64_t name_classes(const std::string& out_dir, int64_t most, const std::string& volumes_dir) {
  const auto task = task_names(volumes_dir, "labels");
  if (most < (task.empty() ? 2 : 1) || most > 254 || fs::exists(fs::path(out_dir) / "classes.json")) return 0;
  nlohmann::json names = nlohmann::json::array();
  for (int64_t c = 0; c <= most; ++c) names.push_back(task.count(c) ? task.at(c) : c == 0 ? "background" : "label " + std::to_string(c));
  const auto text = nlohmann::json{{"names", names}}.dump(2) + "\n";
  write_file_atomic((fs::path(out_dir) / "classes.json").string(), text.data(), text.size());
  return most + 1;
}

// A case's channels read (read_nifti_case), checked: a slice's planes (each channel's 2 context + 1 slices)
// at most the kMostImageChannels an image holds.
std::vector<NiftiVolume> read_case(const std::string& path, int64_t context) {
  auto channels = read_nifti_case(path);
  const auto planes = static_cast<int64_t>(channels.size()) * slices_a_sample(context);
  if (planes > kMostImageChannels)
    fail(path, "is a case of " + std::to_string(channels.size()) + " channel(s)" +
                   (context > 0 ? ", " + std::to_string(planes) + " planes a slice with --context " + std::to_string(context) : std::string()) +
                   ": fcn data unstack writes slices of up to " + std::to_string(kMostImageChannels) + " planes");
  return channels;
}

// Each channel's window: the values given for all, else each its own percentiles or minimum..maximum (as
// fcn predict maps them).
std::vector<Window> channel_windows(const std::vector<NiftiVolume>& channels, const VolumeWindow& window) {
  std::vector<Window> windows;
  for (const auto& channel : channels) windows.push_back(window.of(channel));
  return windows;
}

// Cases of several channels: OUT/channels.json names them, so that fcn train gives a new net that many
// inputs (a PNG of 2 or 4 samples would otherwise read as gray or RGB with alpha, which nets drop). The
// names come from the task's dataset.json beside images_dir (the Decathlon's "modality", nnU-Net v2's
// "channel_names"), else "channel c".
// With `context`, each channel's slices (2.5-D): "slice -1", "slice 0", "slice +1" (of one channel; of several
// "FLAIR slice -1", ...) and "context": N.
void name_channels(const std::string& out_dir, size_t channels, const std::string& images_dir, int64_t context) {
  if (channels < 2 && context == 0) return;
  auto task = task_names(images_dir, "modality");
  if (task.empty()) task = task_names(images_dir, "channel_names");
  std::vector<std::string> names;
  for (size_t c = 0; c < channels; ++c) {
    const auto channel = task.count(static_cast<int64_t>(c)) ? task.at(static_cast<int64_t>(c)) : "channel " + std::to_string(c);
    if (context == 0) names.push_back(channel);
    for (int64_t d = -context; d <= context && context > 0; ++d)
      names.push_back((channels > 1 ? channel + " " : std::string()) + "slice " + (d > 0 ? "+" : "") + std::to_string(d));
  }
  auto json = nlohmann::json{{"names", names}};
  if (context > 0) json["context"] = context;
  const auto text = json.dump(2) + "\n";
  write_file_atomic((fs::path(out_dir) / "channels.json").string(), text.data(), text.size());
}

// OUT/slicing.json {"pixel_mm": [X, Y], "axes": "RAS"} where the slices were resampled or cut in an orientation,
// so that fcn train gives the net's model what it was trained on (ModelMeta::pixel_mm, axes) and fcn predict
// gives it volumes alike.
void write_slicing(const std::string& out_dir, const NiftiSlicing& slicing) {
  if (!slicing.pixel_mm && slicing.axes.empty()) return;
  auto json = nlohmann::json::object();
  if (slicing.pixel_mm) json["pixel_mm"] = *slicing.pixel_mm;
  if (!slicing.axes.empty()) json["axes"] = slicing.axes;
  const auto text = json.dump(2) + "\n";
  write_file_atomic((fs::path(out_dir) / "slicing.json").string(), text.data(), text.size());
}

// --context N: 0..kMostSliceContext (a model file's bound).
void check_context(int64_t context) {
  if (context < 0 || context > kMostSliceContext)
    fail("--context", std::to_string(context) + ": a slice and its N neighbours on either side, N of 0.." + std::to_string(kMostSliceContext));
}

// A case of images_dir (its channel 0's file), its label volume (or "") and the case name its slices are named by.
struct VolumePair {
  std::string image, mask, name;
};

// The label volume of `image` (stem `stem`) in masks_dir: NAME.nii.gz or NAME.nii (either ending), or for
// nnU-Net's channel 0 (NAME_0000.nii.gz) NAME's; "" where there is none. `name` gets the case name.
std::string label_volume_of(const std::string& masks_dir, const std::string& stem, std::string& name) {
  std::vector<std::string> cases{stem};
  if (const auto [case_name, channel] = nnunet_channel(stem); channel == 0) cases.push_back(case_name);
  for (const auto& case_name : cases)
    for (const char* ending : {".nii.gz", ".nii"})
      if (const auto mask = fs::path(masks_dir) / (case_name + ending); fs::is_regular_file(mask)) return name = case_name, mask.string();
  return "";
}

// The NIfTI cases of images_dir in name order (nnU-Net's later channels NAME_0001, ... with their
// NAME_0000), each with its label volume of the same case name in masks_dir (where given). Hidden files
// (macOS's "._NAME.nii.gz" beside each volume in some archives) are left out. fcn::Error naming the
// volume: no label volume, two volumes of one name.
std::vector<VolumePair> volume_pairs(const std::string& images_dir, const std::string& masks_dir) {
  if (!fs::is_directory(images_dir)) fail(images_dir, "is not a folder");
  if (!masks_dir.empty() && !fs::is_directory(masks_dir)) fail(masks_dir, "is not a folder (the label volumes of the volumes in " + images_dir + ")");
  std::vector<VolumePair> pairs;
  for (const auto& entry : fs::directory_iterator(images_dir)) {
    const auto name = entry.path().filename().string();
    if (is_hidden(name) || !is_nifti_path(name) || !fs::is_regular_file(entry.path()) || is_later_channel_file(entry.path().string())) continue;
    pairs.push_back({entry.path().string(), "", nifti_case_name(entry.path().string())});
  }
  if (pairs.empty()) fail(images_dir, "holds no NIfTI volume (.nii, .nii.gz)");
  std::sort(pairs.begin(), pairs.end(), [](const VolumePair& a, const VolumePair& b) { return a.image < b.image; });
  std::map<std::string, std::string> names;
  for (auto& pair : pairs) {
    if (!masks_dir.empty() && (pair.mask = label_volume_of(masks_dir, nifti_stem(pair.image), pair.name)).empty())
      fail(pair.image, "has no label volume of its name in " + masks_dir + " (" + nifti_stem(pair.image) + ".nii.gz not found)");
    if (const auto [at, added] = names.emplace(pair.name, pair.image); !added)
      fail(pair.image, "and " + at->second + " are both case " + at->first + " (slices " + at->first + "_NNN.png): rename one");
  }
  return pairs;
}

// "a, b, c" of the first `most` names, then "...".
std::string some_names(const std::vector<std::string>& names, size_t most = 5) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < most; ++i) out += (i ? ", " : "") + names[i];
  return names.size() > most ? out + ", ..." : out;
}

// The voxel sides of a case's slices, columns' and rows' ({NaN, NaN} where the header gives none or the cut
// cannot be told).
using InPlane = std::array<double, 2>;

// The smallest and largest in-plane voxel side of the cases that give them (inf, 0 where none does).
std::pair<double, double> in_plane_sides(const std::vector<InPlane>& sides) {
  double least = std::numeric_limits<double>::infinity(), most = 0;
  for (const auto& side : sides)
    for (const double mm : side)
      if (!std::isnan(mm)) least = std::min(least, mm), most = std::max(most, mm);
  return {least, most};
}

// Case c's size and voxel sides as the slices cut in orientation `orient` have them (columns, rows, slices),
// from its header. fcn::Error naming the case where its map cannot tell the cut (nifti_slice_axes).
void cut_case(VolumeCase& c, const NiftiVolume& header, const std::string& orient) {
  const auto axes = nifti_slice_axes(header, orient, c.file);
  const auto shape = sliced_shape(header, axes);
  c.voxel_mm = sliced_voxel_mm(header, axes);
  c.slices = shape[0], c.height = shape[1], c.width = shape[2];
}

// The in-plane voxel sides of case c's RAS cut (what `--orient RAS` would give the net), from its header;
// NaN where it has no map or one too oblique.
InPlane ras_in_plane(const VolumeCase& c, const NiftiVolume& header) {
  if (c.axes.empty()) return {std::nan(""), std::nan("")};
  try {
    const auto mm = sliced_voxel_mm(header, nifti_slice_axes(header, "RAS", c.file));
    return {mm[0], mm[1]};
  } catch (const Error&) {
    return {std::nan(""), std::nan("")};
  }
}

// check_volume_folder's look at case c's label volume in masks_dir (its voxels read): there, of the case's size,
// integers 0..65535 within the task's labels where its dataset.json names them (errors); the labels present and
// their voxels counted; voxel sizes or a place other than the case's (warnings, as unstack warns).
void check_case_labels(VolumeCase& c, const NiftiVolume& header, const std::string& masks_dir, const std::map<int64_t, std::string>& task,
                       VolumeFolderReport& report) {
  std::string name;
  c.mask = label_volume_of(masks_dir, nifti_stem(c.file), name);
  if (c.mask.empty()) {
    report.errors.push_back(c.file + ": has no label volume of its name in " + masks_dir + " (" + c.name + ".nii.gz not found)");
    return;
  }
  try {
    const auto labels = read_nifti(c.mask);
    label_volume_max(header, labels, c.file, c.mask);
    const auto counts = torch::bincount((labels.voxels.is_floating_point() ? labels.voxels.to(torch::kInt) : labels.voxels).flatten()).to(torch::kLong);
    if (static_cast<int64_t>(report.label_voxels.size()) < counts.size(0)) report.label_voxels.resize(static_cast<size_t>(counts.size(0)), 0);
    for (int64_t v = 0; v < counts.size(0); ++v) {
      const int64_t n = counts[v].item<int64_t>();
      if (n == 0) continue;
      c.labels.push_back(v), report.label_voxels[static_cast<size_t>(v)] += n;
      if (!task.empty() && !task.count(v))
        report.errors.push_back(c.mask + ": holds label " + std::to_string(v) + " in " + std::to_string(n) +
                                " voxel(s), which the task's dataset.json does not name");
    }
    const auto mm = nifti_voxel_mm(labels);
    const auto sides = [](const std::array<double, 3>& v) {
      std::string text;
      for (size_t axis = 0; axis < 3; ++axis) text += (axis ? " x " : "") + number_text(std::round(v[axis] * 10000) / 10000);
      return text + " mm";
    };
    for (size_t axis = 0; axis < 3; ++axis)
      if (std::abs(mm[axis] - c.voxel_mm[axis]) > 1e-3 * std::max(mm[axis], c.voxel_mm[axis])) {
        report.warnings.push_back(c.mask + ": its voxels are " + sides(mm) + " but those of " + c.file + " are " + sides(c.voxel_mm));
        break;
      }
    if (const auto off = nifti_misalignment(labels, header, c.file); !off.empty()) report.warnings.push_back(c.mask + ": " + off);
  } catch (const Error& e) {
    report.errors.push_back(e.what());
  }
}

// The warnings of check_volume_folder over its cases, and the report's mixed_orientations and mixed_scales
// they come from. The scales are judged in the slices the net would see: the cases' as given (as stored, or as
// cut in an orientation asked for), but where they are stored in several orientations and none was asked for,
// in the RAS cut (`ras`, each case's) that the orientation warning suggests: as stored, one case's rows are
// another's slices.
std::vector<std::string> volume_folder_warnings(const std::vector<VolumeCase>& cases, const std::vector<InPlane>& ras, bool cut,
                                                VolumeFolderReport& report) {
  std::vector<std::string> warnings;
  std::map<std::string, std::vector<std::string>> by_axes, by_channels;
  std::vector<std::string> unsized, unplaced;
  for (const auto& c : cases) {
    by_axes[c.axes].push_back(c.name), by_channels[std::to_string(c.channels)].push_back(c.name);
    if (c.axes.empty()) unplaced.push_back(c.name);
    if (std::isnan(c.voxel_mm[0]) || std::isnan(c.voxel_mm[1]) || std::isnan(c.voxel_mm[2])) unsized.push_back(c.name);
  }
  by_axes.erase("");
  report.mixed_orientations = by_axes.size() > 1 && !cut;
  std::vector<InPlane> sides;
  for (const auto& c : cases) sides.push_back({c.voxel_mm[0], c.voxel_mm[1]});
  const auto [least, most] = in_plane_sides(report.mixed_orientations ? ras : sides);
  report.mixed_scales = most > 1.5 * least;
  if (report.mixed_orientations) {
    std::string groups;
    for (const auto& [axes, names] : by_axes)
      groups += (groups.empty() ? "" : "; ") + std::to_string(names.size()) + " " + axes + " (" + slice_plane(axes) + " slices: " + some_names(names) + ")";
    warnings.push_back("the cases are stored in " + std::to_string(by_axes.size()) + " orientations: " + groups +
                       ". As stored, their slices are other planes or mirrored: fcn data unstack --orient RAS cuts every case "
                       "into axial slices the same way round");
  }
  if (report.mixed_scales)
    warnings.push_back(std::string(report.mixed_orientations ? "cut as RAS, their " : "") + "in-plane voxel sides range " + number_text(std::round(least * 1000) / 1000) + " to " +
                       number_text(std::round(most * 1000) / 1000) + " mm: a 2-D net sees the same anatomy at scales up to " +
                       number_text(std::round(most / least * 10) / 10) +
                       "x apart: fcn data unstack --spacing median resamples every slice to the median voxel, as nnU-Net does");
  if (!unsized.empty()) warnings.push_back(std::to_string(unsized.size()) + " case(s) give no voxel size: " + some_names(unsized));
  if (!unplaced.empty())
    warnings.push_back(std::to_string(unplaced.size()) + " case(s) give no orientation (neither sform nor qform): " + some_names(unplaced));
  if (by_channels.size() > 1) warnings.push_back("the cases have " + std::to_string(by_channels.size()) + " channel counts: unstack takes one");
  return warnings;
}

}  // namespace

std::map<int64_t, std::string> task_names(const std::string& volumes_dir, const std::string& key) {
  std::map<int64_t, std::string> names;
  auto folder = fs::absolute(volumes_dir.empty() ? fs::path(".") : fs::path(volumes_dir)).lexically_normal();  // "": the working folder
  if (!folder.has_filename()) folder = folder.parent_path();  // imagesTr/ (and "." made /cwd/)
  std::ifstream in(folder.parent_path() / "dataset.json");
  const auto task = in ? nlohmann::json::parse(in, nullptr, false) : nlohmann::json();
  if (!task.is_object() || !task.contains(key) || !task[key].is_object()) return names;  // not ours to judge: plain names
  for (const auto& [k, value] : task[key].items()) {
    const bool by_number = value.is_string() && !k.empty() && k.size() < 6 && k.find_first_not_of("0123456789") == std::string::npos;
    const int64_t index = by_number ? std::stoll(k) : value.is_number_integer() ? value.get<int64_t>() : -1;
    if (index >= 0 && index < 65536) names[index] = by_number ? value.get<std::string>() : k;
  }
  return names;
}

int64_t unstack_tiff(const std::string& images_tiff, const std::string& masks_tiff, const std::string& out_dir,
                     const std::function<void(int64_t, int64_t)>& progress) {
  TiffStackReader image_stack(images_tiff);
  std::optional<TiffStackReader> mask_stack;
  const auto& pages = image_stack.pages();
  if (!masks_tiff.empty()) {
    const auto& masks = mask_stack.emplace(masks_tiff).pages();
    if (masks.size() != pages.size())
      fail(masks_tiff, "holds " + std::to_string(masks.size()) + " pages but " + images_tiff + " holds " + std::to_string(pages.size()));
    for (size_t k = 0; k < pages.size(); ++k)
      if (masks[k].height != pages[k].height || masks[k].width != pages[k].width)
        fail(masks_tiff, "page " + std::to_string(k) + " is " + std::to_string(masks[k].width) + "x" + std::to_string(masks[k].height) +
                             " but that of " + images_tiff + " is " + std::to_string(pages[k].width) + "x" + std::to_string(pages[k].height));
  }
  const auto write = [&](int64_t page, const std::string& image, const std::string& mask) {
    write_page(image, image_stack.page(page), pages[static_cast<size_t>(page)].samples_are_data());
    if (mask_stack) write_label_page(mask, *mask_stack, page);
  };
  return write_folders(out_dir, static_cast<int64_t>(pages.size()), !masks_tiff.empty(), write, progress);
}

NiftiUnstacked unstack_nifti(const std::string& images_nifti, const std::string& masks_nifti, const std::string& out_dir,
                             const NiftiSlicing& slicing, const std::function<void(int64_t, int64_t)>& progress) {
  check_context(slicing.context);
  const auto channels = read_case(nifti_case_file(images_nifti), slicing.context);  // NAME_0001 named alone: its case, as fcn predict takes it
  const auto& volume = channels.front();
  std::optional<NiftiVolume> labels;
  int64_t most = 0;
  std::vector<std::string> warnings;
  if (!masks_nifti.empty()) {
    labels = read_nifti(masks_nifti), most = label_volume_max(volume, *labels, images_nifti, masks_nifti);
    if (const auto off = nifti_misalignment(*labels, volume, images_nifti); !off.empty()) warnings.push_back(masks_nifti + ": " + off);
  }
  const auto windows = channel_windows(channels, slicing.window);
  const auto cut = case_cut(volume, slicing, images_nifti);
  const auto write = [&](int64_t k, const std::string& image, const std::string& mask) {
    write_nifti_slice(channels, labels ? &*labels : nullptr, k, windows, slicing.context, most > 255, cut, image, mask);
  };
  NiftiUnstacked result;
  result.slices = write_folders(out_dir, cut.slices, labels.has_value(), write, progress);
  name_channels(out_dir, channels.size(), fs::path(images_nifti).parent_path().string(), slicing.context);
  write_slicing(out_dir, slicing);
  result.window = windows.front(), result.windows = windows, result.warnings = warnings;
  result.classes = name_classes(out_dir, most, fs::path(images_nifti).parent_path().string());
  const auto shape = sliced_shape(volume, cut.axes);
  result.height = cut.size ? cut.size->first : shape[1], result.width = cut.size ? cut.size->second : shape[2];
  return result;
}

NiftiFolderUnstacked unstack_nifti_folder(const std::string& images_dir, const std::string& masks_dir, const std::string& out_dir,
                                          const NiftiSlicing& slicing, double val_fraction, uint64_t seed,
                                          const std::function<void(int64_t, int64_t)>& progress) {
  check_context(slicing.context);
  const auto pairs = volume_pairs(images_dir, masks_dir);
  if (val_fraction != 0 && !(val_fraction > 0 && val_fraction < 1))
    fail(out_dir, "the validation fraction must be in (0, 1), got " + number_text(val_fraction));
  if (val_fraction > 0 && masks_dir.empty()) fail(images_dir, "has no label volumes given: a validation split holds out labelled slices");
  if (val_fraction > 0 && pairs.size() < 2)
    fail(images_dir, "holds 1 volume: at least two are needed to hold whole volumes out for validation");
  std::vector<int64_t> first{0};  // the first slice of each volume in the folders' order, and past the last
  std::vector<std::string> stems;
  for (const auto& [image, mask, name] : pairs) {  // headers only: a label volume of another size is found before any slice is written
    const auto header = read_nifti_header(image);  // one read: its sizes (a 4-D file of channels allowed) and its cut
    const std::vector<int64_t> shape{header.slices, header.height, header.width};
    if (const auto other = mask.empty() ? shape : nifti_shape(mask); other != shape)
      fail(mask, "is " + std::to_string(other[2]) + "x" + std::to_string(other[1]) + "x" + std::to_string(other[0]) + " voxels but " + image +
                     " is " + std::to_string(shape[2]) + "x" + std::to_string(shape[1]) + "x" + std::to_string(shape[0]));
    first.push_back(first.back() + case_cut(header, slicing, image).slices);  // a case without sizes or map named before any slice
    stems.push_back(name);
  }
  NiftiFolderUnstacked result;
  size_t at = pairs.size();  // the volume in memory (none yet)
  std::vector<NiftiVolume> channels;
  NiftiVolume labels;
  int64_t most = 0;
  CaseCut cut;
  const auto index = [&](int64_t k) { return static_cast<size_t>(std::upper_bound(first.begin(), first.end(), k) - first.begin() - 1); };
  const auto name = [&](int64_t k) { const auto v = index(k); return stems[v] + "_" + page_name(k - first[v], first[v + 1] - first[v]); };
  const auto write = [&](int64_t k, const std::string& image, const std::string& mask) {
    if (const auto v = index(k); v != at) {  // the next volume: read, its labels checked, its window taken
      at = v;
      channels = read_case(pairs[v].image, slicing.context);
      const auto& volume = channels.front();
      cut = case_cut(volume, slicing, pairs[v].image);
      if (cut.slices != first[v + 1] - first[v]) fail(pairs[v].image, "changed while it was being unstacked");
      if (v > 0 && static_cast<int64_t>(channels.size()) != result.channels)
        fail(pairs[v].image, "is a case of " + std::to_string(channels.size()) + " channel(s) but " + pairs[0].image + " one of " +
                                 std::to_string(result.channels) + ": a dataset's images have one channel count");
      result.channels = static_cast<int64_t>(channels.size());
      result.windows.push_back(channel_windows(channels, slicing.window));
      if (!masks_dir.empty()) {
        labels = read_nifti(pairs[v].mask), most = label_volume_max(volume, labels, pairs[v].image, pairs[v].mask);
        result.classes = std::max(result.classes, most + 1);
        if (const auto off = nifti_misalignment(labels, volume, pairs[v].image); !off.empty()) result.warnings.push_back(pairs[v].mask + ": " + off);
      }
    }
    write_nifti_slice(channels, masks_dir.empty() ? nullptr : &labels, k - first[at], result.windows.back(), slicing.context, most > 255, cut,
                      image, mask);
  };
  result.slices = write_folders(out_dir, first.back(), !masks_dir.empty(), write, progress, name);
  result.volumes = static_cast<int64_t>(pairs.size());
  result.named = name_classes(out_dir, result.classes - 1, images_dir);
  name_channels(out_dir, static_cast<size_t>(result.channels), images_dir, slicing.context);
  write_slicing(out_dir, slicing);
  if (!masks_dir.empty() && val_fraction > 0) {
    std::tie(result.train_slices, result.val_slices) = write_split_lists(out_dir, val_fraction, seed, false, true);
    std::ifstream list(fs::path(out_dir) / "splits" / "val.txt");
    std::set<std::string> held_out;
    for (std::string id; std::getline(list, id);) held_out.insert(volume_of(id));
    result.val_volumes.assign(held_out.begin(), held_out.end());
  }
  return result;
}

bool is_volume_folder(const std::string& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error) || !dataset_splits(dir).empty()) return false;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error))
    if (is_nifti_path(it->path().string()) && !is_hidden(it->path().filename().string())) return true;
  return false;
}

VolumeFolderReport check_volume_folder(const std::string& images_dir, const std::string& masks_dir,
                                       const std::function<void(int64_t, int64_t)>& progress, const std::string& orient) {
  if (!masks_dir.empty() && !fs::is_directory(masks_dir)) fail(masks_dir, "is not a folder (the label volumes of the volumes in " + images_dir + ")");
  if (!orient.empty()) check_axis_codes(orient, "orient");
  VolumeFolderReport report;
  const auto task = task_names(images_dir, "labels");
  const auto pairs = volume_pairs(images_dir, "");
  std::vector<InPlane> ras;  // each case's in-plane sides cut as RAS
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto& pair = pairs[i];
    VolumeCase c;
    c.name = pair.name, c.file = pair.image;
    try {
      const auto files = nifti_channel_files(pair.image);
      const auto header = read_nifti_header(pair.image, &c.channels);
      if (files.size() > 1) c.channels = static_cast<int64_t>(files.size());
      c.width = header.width, c.height = header.height, c.slices = header.slices;
      c.voxel_mm = nifti_voxel_mm(header), c.axes = nifti_axis_codes(header);
      auto as_cut = c;
      if (!orient.empty()) cut_case(as_cut, header, orient);
      if (!masks_dir.empty()) check_case_labels(c, header, masks_dir, task, report);  // against the stored voxel sides
      as_cut.mask = c.mask, as_cut.labels = c.labels;
      ras.push_back(ras_in_plane(c, header));
      report.cases.push_back(std::move(as_cut));
    } catch (const Error& e) {
      report.errors.push_back(e.what());
    }
    if (progress) progress(static_cast<int64_t>(i + 1), static_cast<int64_t>(pairs.size()));
  }
  for (size_t axis = 0; axis < 3; ++axis) {
    std::vector<double> sides;
    for (const auto& c : report.cases)
      if (!std::isnan(c.voxel_mm[axis])) sides.push_back(c.voxel_mm[axis]);
    std::sort(sides.begin(), sides.end());
    report.median_mm[axis] = sides.empty() ? std::nan("")
                             : sides.size() % 2 ? sides[sides.size() / 2]
                                                : (sides[sides.size() / 2 - 1] + sides[sides.size() / 2]) / 2;
  }
  const auto warnings = volume_folder_warnings(report.cases, ras, !orient.empty(), report);
  report.warnings.insert(report.warnings.begin(), warnings.begin(), warnings.end());
  if (!masks_dir.empty()) {  // label volumes no case pairs with
    std::set<std::string> paired;
    for (const auto& c : report.cases) paired.insert(fs::path(c.mask).filename().string());
    std::vector<std::string> lone;
    for (const auto& entry : fs::directory_iterator(masks_dir))
      if (const auto name = entry.path().filename().string(); is_nifti_path(name) && !is_hidden(name) && !paired.count(name)) lone.push_back(name);
    std::sort(lone.begin(), lone.end());
    if (!lone.empty())
      report.warnings.push_back(std::to_string(lone.size()) + " label volume(s) in " + masks_dir + " have no volume of their name in " + images_dir +
                                ": " + some_names(lone));
  }
  return report;
}

}  // namespace fcn
