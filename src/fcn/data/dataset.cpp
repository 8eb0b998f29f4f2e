#include "fcn/data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/formats/image.h"
#include "fcn/formats/nifti.h"
#include "fcn/formats/npy.h"
#include "fcn/formats/palette.h"
#include "fcn/formats/png.h"
#include "fcn/formats/tiff.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"
#include "fcn/util/limits.h"

namespace fcn {
namespace {

namespace fs = std::filesystem;

// stem -> path for the image files of a folder (hidden ones left out: macOS's ._NAME.png beside NAME.png).
std::map<std::string, std::string> files_by_stem(const fs::path& folder) {
  std::map<std::string, std::string> out;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(folder, error)) {
    std::error_code entry_error;  // a symlink loop is listed, and reported when it is read
    if (entry.is_directory(entry_error) || !has_image_extension(entry.path().string()) || is_hidden(entry.path().string())) continue;
    const auto stem = entry.path().stem().string();
    if (out.count(stem)) fail(entry.path().string(), "two files share the stem '" + stem + "' in " + folder.string());
    out[stem] = entry.path().string();
  }
  if (error) fail(folder.string(), "cannot list the folder: " + error.message());
  return out;
}

std::string find_with_stem(const fs::path& folder, const std::string& stem) {
  for (const auto& ext : image_extensions()) {
    const auto candidate = folder / (stem + ext);
    std::error_code error;
    if (fs::exists(fs::symlink_status(candidate, error))) return candidate.string();
  }
  return "";
}

}  // namespace

std::vector<std::string> dataset_splits(const std::string& dir) {
  std::vector<std::string> splits;
  const fs::path sets = fs::path(dir) / "ImageSets" / "Segmentation";
  if (fs::is_directory(sets)) {
    for (const auto& entry : fs::directory_iterator(sets))
      if (entry.path().extension() == ".txt") splits.push_back(entry.path().stem().string());
  } else if (fs::is_directory(fs::path(dir) / "images")) {
    std::error_code error;  // the lists in splits/, else "all" (which every folder of pairs also answers)
    for (const auto& entry : fs::directory_iterator(fs::path(dir) / "splits", error))
      if (entry.path().extension() == ".txt") splits.push_back(entry.path().stem().string());
    if (splits.empty()) splits.push_back("all");
  } else if (fs::is_directory(dir)) {
    for (const auto& entry : fs::directory_iterator(dir))
      if (fs::is_directory(entry.path() / "images")) splits.push_back(entry.path().filename().string());
  }
  std::sort(splits.begin(), splits.end());
  return splits;
}

std::vector<std::string> split_ids(const std::string& text) {
  std::vector<std::string> ids;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    const auto first = line.find_first_not_of(" \t\r\f\v");
    if (first != std::string::npos) ids.push_back(line.substr(first, line.find_last_not_of(" \t\r\f\v") - first + 1));
    start = end + 1;
  }
  return ids;
}

ClassTable parse_classes_json(const std::string& text, const std::string& path) {
  ClassTable table;
  try {
    const auto json = nlohmann::json::parse(text);
    table.names = json.at("names").get<std::vector<std::string>>();
    if (json.contains("colors")) table.colors = colors_from_json(json.at("colors"), path);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("not a valid classes file ({\"names\": [...], \"colors\": [[r,g,b], ...]}): ") + first_line(e.what()));
  }
  if (table.names.empty() || table.names.size() > 255) fail(path, "needs 1..255 class names");
  if (!table.colors.empty() && table.colors.size() != table.names.size())
    fail(path, std::to_string(table.colors.size()) + " colors for " + std::to_string(table.names.size()) + " names");
  return table;
}

ClassTable read_classes_json(const std::string& path) {
  const auto bytes = read_file(path);
  return parse_classes_json(std::string(bytes.begin(), bytes.end()), path);
}

std::string volume_of(const std::string& id) {
  const auto cut = id.rfind('_');
  if (cut == std::string::npos || cut == 0 || cut + 1 == id.size()) return id;
  const bool digits = std::all_of(id.begin() + static_cast<std::ptrdiff_t>(cut) + 1, id.end(), [](char c) { return c >= '0' && c <= '9'; });
  return digits ? id.substr(0, cut) : id;
}

std::string dataset_folder_problem(const std::string& dir) {
  std::error_code error;
  if (fs::is_directory(dir, error)) return "";
  return fs::exists(dir, error) ? "is a file, not a dataset folder (a VOC layout, or images/ + masks/)" : "dataset folder not found";
}

std::pair<size_t, size_t> write_split_lists(const std::string& dir, double val_fraction, uint64_t seed, bool overwrite, bool by_volume) {
  const fs::path root(dir);
  if (const auto problem = dataset_folder_problem(dir); !problem.empty()) fail(dir, problem);
  if (fs::is_directory(root / "ImageSets" / "Segmentation")) fail(dir, "is a VOC layout: its splits are ImageSets/Segmentation/*.txt");
  if (!fs::is_directory(root / "images") || !fs::is_directory(root / "masks"))
    fail(dir, "is not a folder of images/ + masks/ (split folders such as train/images are splits already)");
  if (!(val_fraction > 0 && val_fraction < 1)) fail(dir, "the validation fraction must be in (0, 1), got " + number_text(val_fraction));
  if (fs::exists(root / "splits") && !overwrite) fail((root / "splits").string(), "exists; --overwrite replaces its lists");
  const SegmentationDataset all(dir, "all");
  const size_t n = all.size();
  if (n < 2) fail(dir, "has " + std::to_string(n) + " pair(s): at least two are needed for a train and a val split");
  for (size_t i = 0; i < n; ++i)
    if (split_ids(all.id(i)) != std::vector<std::string>{all.id(i)})
      fail(all.image_path(i), "cannot be listed in a split file (its name starts or ends with a space or holds a line break)");
  std::vector<std::vector<std::string>> groups;  // a pair each, or with by_volume a volume's pairs each
  std::map<std::string, size_t> group_of;
  for (size_t i = 0; i < n; ++i) {
    const auto key = by_volume ? volume_of(all.id(i)) : all.id(i);
    const auto [at, added] = group_of.emplace(key, groups.size());
    if (added) groups.emplace_back();
    groups[at->second].push_back(all.id(i));
  }
  if (by_volume && std::all_of(group_of.begin(), group_of.end(), [&](const auto& group) { return groups[group.second].size() == 1 &&
                                                                                                  groups[group.second][0] == group.first; }))
    fail(dir, "has no pair named as a volume's slice (NAME_NNN, as fcn data unstack names a folder of volumes' slices): "
              "a split by volume would be a split by pair");
  const size_t count = groups.size();
  if (count < 2) fail(dir, "holds the slices of " + std::to_string(count) + " volume: at least two are needed to hold whole volumes out");
  const auto rounded = static_cast<size_t>(std::llround(val_fraction * static_cast<double>(count)));
  const size_t val = std::clamp<size_t>(rounded, 1, count - 1);
  auto generator = at::detail::createCPUGenerator(seed);
  const auto order = torch::randperm(static_cast<int64_t>(count), generator);  // int64, contiguous
  const auto* index = order.data_ptr<int64_t>();
  std::vector<std::string> lists[2];  // train, val: the first `val` of the permutation are held out
  for (size_t k = 0; k < count; ++k)
    for (const auto& id : groups[static_cast<size_t>(index[k])]) lists[k < val ? 1 : 0].push_back(id);
  fs::create_directories(root / "splits");
  for (int s = 0; s < 2; ++s) {
    std::sort(lists[s].begin(), lists[s].end());
    std::string text;
    for (const auto& id : lists[s]) text += id + "\n";
    write_file_atomic((root / "splits" / (s == 0 ? "train.txt" : "val.txt")).string(), text.data(), text.size());
  }
  return {lists[0].size(), lists[1].size()};
}

SegmentationDataset::SegmentationDataset(const std::string& dir, const std::string& split, std::vector<std::string>* problems)
    : dir_(dir), split_(split), problems_(problems) {
  const fs::path root(dir);
  if (const auto problem = dataset_folder_problem(dir); !problem.empty()) fail(dir, problem);
  const fs::path sets = root / "ImageSets" / "Segmentation";
  if (fs::is_directory(sets)) {
    list_voc(root, sets / (split + ".txt"));
  } else {
    list_pairs(root);
  }
  read_classes(root, fs::is_directory(sets));
  problems_ = nullptr;  // listing is over: a copy that outlives the vector never writes there
}

std::vector<std::string> SegmentationDataset::read_list(const fs::path& list) const {
  std::error_code error;
  if (!fs::exists(fs::symlink_status(list, error)))
    fail(list.string(), "split file not found (splits here: " + [&] {
      std::string names;
      for (const auto& s : dataset_splits(dir_)) names += (names.empty() ? "" : ", ") + s;
      return names.empty() ? std::string("none") : names;
    }() + ")");
  const auto bytes = read_file(list.string());  // a folder or a device is one line naming it
  const auto zero = std::find(bytes.begin(), bytes.end(), '\0');
  if (zero != bytes.end())
    fail(list.string(), "holds binary data (a zero byte at byte " + std::to_string(zero - bytes.begin()) +
                            "): a split file lists one image name a line");
  const std::string text(bytes.begin(), bytes.end());
  std::vector<std::string> ids;
  std::map<std::string, size_t> line_of;  // an image listed twice would be trained on or scored twice
  size_t line = 0;
  for (size_t start = 0; start < text.size(); ++line) {
    const size_t end = std::min(text.find('\n', start), text.size());
    for (auto& id : split_ids(text.substr(start, end - start))) {  // none for a blank line
      if (id.size() > 1024)
        fail(list.string(), "holds a line of " + std::to_string(id.size()) + " characters: a split file lists one image name a line");
      const auto [seen, fresh] = line_of.emplace(id, line + 1);
      if (!fresh)
        fail(list.string(), "lists '" + id + "' twice (lines " + std::to_string(seen->second) + " and " +
                                std::to_string(line + 1) + "): a split file names each image once");
      ids.push_back(std::move(id));
    }
    start = end + 1;
  }
  return ids;
}

void SegmentationDataset::list_voc(const fs::path& root, const fs::path& list) {
  for (const auto& id : read_list(list)) {
    const auto image = find_with_stem(root / "JPEGImages", id);
    if (image.empty()) {
      problem(list.string(), "lists '" + id + "' but JPEGImages/ has no image with that name");
      continue;
    }
    // VOC's masks are PNG; one saved otherwise (.jpg, .tif) is read as the images/ + masks/ layout's are, so a
    // JPEG mask is named as one rather than as missing.
    auto mask = (root / "SegmentationClass" / (id + ".png")).string();
    std::error_code error;
    if (!fs::exists(fs::symlink_status(mask, error))) mask = find_with_stem(root / "SegmentationClass", id);
    if (mask.empty()) {
      problem((root / "SegmentationClass" / (id + ".png")).string(), "missing mask for '" + id + "' (listed in " + list.filename().string() + ")");
      continue;
    }
    ids_.push_back(id);
    images_.push_back(image);
    masks_.push_back(mask);
  }
  if (ids_.empty() && (problems_ == nullptr || problems_->empty())) fail(list.string(), "split file lists no images");
  find_instances(root / "SegmentationObject", ".png");
}

void SegmentationDataset::list_pairs(const fs::path& root) {
  fs::path base = root;
  if (!fs::is_directory(root / "images") && fs::is_directory(root / split_ / "images")) base = root / split_;
  if (!fs::is_directory(base / "images") || !fs::is_directory(base / "masks"))
    fail(dir_, "neither a VOC layout (ImageSets/Segmentation/) nor folder pairs (images/ + masks/)");
  // One folder of pairs: split lists in splits/ (fcn data split writes them) pick the split's pairs;
  // without them, or for "all", every split is every pair.
  const bool listed = base == root && split_ != "all" && fs::is_directory(root / "splits");
  if (base == root && !listed) split_ = "all";
  std::error_code error;  // "all" names every pair (data check and data split read them so): a list may not take it
  if (base == root && fs::exists(fs::symlink_status(root / "splits" / "all.txt", error)))
    fail((root / "splits" / "all.txt").string(), "'all' is fcn's name for every pair of the folder: rename this list");
  const auto masks = files_by_stem(base / "masks"), images = files_by_stem(base / "images");
  const auto list = root / "splits" / (split_ + ".txt");
  std::vector<std::string> stems;
  if (listed) {
    stems = read_list(list);
  } else {
    for (const auto& [stem, image] : images) stems.push_back(stem);
  }
  for (const auto& stem : stems) {
    const auto image = images.find(stem), mask = masks.find(stem);
    if (image == images.end()) {
      problem(list.string(), "lists '" + stem + "' but " + (base / "images").string() + " has no image with that name");
      continue;
    }
    if (mask == masks.end()) {
      problem(image->second, "has no mask with the same name in " + (base / "masks").string());
      continue;
    }
    ids_.push_back(stem);
    images_.push_back(image->second);
    masks_.push_back(mask->second);
  }
  if (listed && ids_.empty() && (problems_ == nullptr || problems_->empty())) fail(list.string(), "split file lists no images");
  if (ids_.empty() && (problems_ == nullptr || problems_->empty())) fail((base / "images").string(), "no images");
  find_instances(base / "instances", "");
}

void SegmentationDataset::read_classes(const fs::path& root, bool voc) {
  const fs::path classes = root / "classes.json";
  if (fs::exists(classes)) {
    const auto table = read_classes_json(classes.string());
    class_names_ = table.names;
    palette_ = table.colors;
    classes_source_ = "from " + classes.string();
  } else if (voc) {
    class_names_ = voc_class_names();
    classes_source_ = "PASCAL VOC's, as " + root.string() + " has no classes.json to name its own";
  } else {
    class_names_ = {"background", "foreground"};
    binary_ = true;
    classes_source_ = "background and foreground, as " + root.string() + " has no classes.json to name its own";
  }
  if (palette_.empty()) palette_ = voc_palette(num_classes());
  read_channels(root);
  read_slicing(root);
}

void SegmentationDataset::read_channels(const fs::path& root) {
  const auto file = root / "channels.json";
  if (!fs::exists(file)) return;
  std::ifstream in(file);
  const auto json = nlohmann::json::parse(in, nullptr, false);
  const bool valid = json.is_object() && json.contains("names") && json["names"].is_array() && !json["names"].empty() &&
                     json["names"].size() <= static_cast<size_t>(kMostImageChannels) &&
                     std::all_of(json["names"].begin(), json["names"].end(), [](const nlohmann::json& n) { return n.is_string(); });
  if (!valid)
    fail(file.string(), "must be {\"names\": [\"FLAIR\", \"T1w\", ...]}: the name of each of the images' 1.." + std::to_string(kMostImageChannels) +
                            " channels, in order");
  channel_names_ = json["names"].get<std::vector<std::string>>();
  if (json.contains("context")) {  // 2.5-D: slice k and its neighbours as the channels (fcn data unstack --context)
    const auto& context = json["context"];
    if (!context.is_number_integer() || context.get<int64_t>() < 1 || channels() % (2 * context.get<int64_t>() + 1) != 0)
      fail(file.string(), "context must be a whole number N >= 1 whose 2N + 1 slices (of each of the volumes' channels) are the " +
                              std::to_string(channels()) + " channels named");
    slice_context_ = context.get<int64_t>();
  }
}

void SegmentationDataset::read_slicing(const fs::path& root) {
  const auto file = root / "slicing.json";
  if (!fs::exists(file)) return;
  std::ifstream in(file);
  const auto json = nlohmann::json::parse(in, nullptr, false);
  const auto usage = "must be {\"pixel_mm\": [X, Y], \"axes\": \"RAS\"} (either or both): the side in mm of the slices' pixels across and "
                     "down, and the orientation the volumes were cut in";
  if (!json.is_object() || (!json.contains("pixel_mm") && !json.contains("axes"))) fail(file.string(), usage);
  if (json.contains("pixel_mm")) {
    const auto& mm = json["pixel_mm"];
    if (!(mm.is_array() && mm.size() == 2 && mm[0].is_number() && mm[1].is_number())) fail(file.string(), usage);
    const std::array<double, 2> pixel_mm{mm[0].get<double>(), mm[1].get<double>()};
    if (const auto wrong = pixel_mm_problem(pixel_mm); !wrong.empty()) fail(file.string(), wrong);
    pixel_mm_ = pixel_mm;
  }
  if (json.contains("axes")) {
    if (!json["axes"].is_string() || !valid_axis_codes(json["axes"].get<std::string>()))
      fail(file.string(), "axes must be an orientation: three letters, one of R/L, A/P and S/I each (e.g. \"RAS\")");
    slice_axes_ = json["axes"].get<std::string>();
  }
}

void SegmentationDataset::problem(const std::string& subject, const std::string& message) {
  if (problems_ == nullptr) fail(subject, message);
  problems_->push_back(subject + ": " + message);
}

// Instance masks are all or nothing: a folder that lacks one sample's mask is an error naming it.
void SegmentationDataset::find_instances(const std::filesystem::path& folder, const std::string& extension) {
  if (!fs::is_directory(folder)) return;
  std::map<std::string, std::string> by_stem;
  if (extension.empty()) by_stem = files_by_stem(folder);
  for (const auto& id : ids_) {
    const auto path = extension.empty() ? (by_stem.count(id) ? by_stem[id] : "") : (folder / (id + extension)).string();
    if (path.empty() || !fs::exists(path)) fail(folder.string(), "has instance masks but none for '" + id + "'");
    instances_.push_back(path);
  }
}

torch::Tensor SegmentationDataset::read_instances(const std::string& path) {
  const auto bytes = read_file(path);
  if (is_tiff(bytes)) return decode_tiff_labels(bytes, path)[0];  // Fiji's, Cellpose's 16-bit label images: ids as stored
  const auto png = parse_png(bytes, path);
  auto ids = png.pixels.select(2, 0).to(torch::kLong);
  if (png.pixels.scalar_type() == torch::kByte) ids.masked_fill_(ids == 255, 0);  // VOC: 255 marks object borders
  return ids;
}

torch::Tensor SegmentationDataset::read_mask(const std::string& path) const {
  const auto bytes = read_file(path);
  if (is_npy(bytes)) {  // H x W class indices from numpy
    std::string stored;
    const auto values = parse_npy(bytes, path, &stored);
    if (values.dim() != 2 || !(values.scalar_type() == torch::kByte || values.scalar_type() == torch::kShort ||
                               values.scalar_type() == torch::kInt || values.scalar_type() == torch::kLong || values.scalar_type() == torch::kBool))
      fail(path, "a mask in .npy is an H x W array of integers (class indices, 255 void); this one is " + stored + " of " +
                     std::to_string(values.dim()) + " dimension(s)");
    check_image_size(path, values.size(0), values.size(1));
    return mask_from_values(values, path);
  }
  torch::Tensor pixels;  // H x W x C, the values stored
  bool indexed = false;
  if (is_tiff(bytes)) {
    pixels = decode_tiff_labels(bytes, path).permute({1, 2, 0});
  } else if (is_png(bytes) || is_jpeg(bytes)) {  // a JPEG is named as one by parse_png
    auto png = parse_png(bytes, path);
    pixels = std::move(png.pixels), indexed = png.indexed;
  } else {
    fail(path, "is neither a PNG, a TIFF nor a .npy: a mask is a PNG or TIFF (class indices, or the colours of classes.json) or an H x W "
               ".npy of class indices");
  }
  torch::Tensor labels;
  const int64_t channels = pixels.size(2);
  if (indexed || channels == 1 || channels == 2) {
    labels = pixels.select(2, 0).to(torch::kLong);
  } else {
    // Colour mask: map each colour through the class colour table (and VOC's void colour).
    const auto rgb = pixels.slice(2, 0, 3).to(torch::kLong);
    const auto codes = rgb.select(2, 0) * 65536 + rgb.select(2, 1) * 256 + rgb.select(2, 2);
    labels = torch::full_like(codes, -1);
    for (size_t c = 0; c < palette_.size(); ++c) {
      const int64_t code = (int64_t{palette_[c][0]} << 16) | (int64_t{palette_[c][1]} << 8) | palette_[c][2];
      labels.masked_fill_(codes == code, static_cast<int64_t>(c));
    }
    labels.masked_fill_(codes == ((224 << 16) | (224 << 8) | 192), kIgnoreLabel);
    const auto unknown = (labels < 0).nonzero();
    if (unknown.size(0) > 0) {
      const int64_t y = unknown[0][0].item<int64_t>(), x = unknown[0][1].item<int64_t>();
      fail(path, "colour (" + std::to_string(rgb[y][x][0].item<int64_t>()) + "," + std::to_string(rgb[y][x][1].item<int64_t>()) +
                     "," + std::to_string(rgb[y][x][2].item<int64_t>()) + ") at (" + std::to_string(y) + "," + std::to_string(x) +
                     ") is not a class colour in classes.json");
    }
  }
  return mask_from_values(labels, path);
}

torch::Tensor SegmentationDataset::mask_from_values(const torch::Tensor& values, const std::string& source) const {
  auto labels = values.to(torch::kLong);
  if (binary_) labels = torch::where(labels == 255, torch::ones_like(labels), labels);
  const auto bad = ((labels < 0) | ((labels >= num_classes()) & (labels != kIgnoreLabel))).nonzero();  // negative: a .npy mask's -1
  if (bad.size(0) > 0) {
    const int64_t y = bad[0][0].item<int64_t>(), x = bad[0][1].item<int64_t>();
    const int64_t label = labels[y][x].item<int64_t>();
    // Folder pairs without classes.json are read as binary masks: an index mask of more classes needs the file.
    const std::string hint = binary_ && label > 1 ? "; " + dir_ + " has no classes.json, so its masks are read as background (0) and foreground (1 or 255): "
                                                     "name each label in " + (fs::path(dir_) / "classes.json").string() + " ({\"names\": [\"background\", ...]})"
                                                  : "";
    fail(source, "label " + std::to_string(label) + " at (" + std::to_string(y) + "," + std::to_string(x) + ") is not a class (0.." +
                     std::to_string(num_classes() - 1) + ")" + (binary_ ? "" : " nor ignore (255)") + hint);
  }
  return labels;
}

// A tensor's elements in glibc's heap rather than LibTorch's CPU allocator: fcn's (util/allocator.h)
// gives every block of 1 MiB or more whole 2 MiB pages, which a store of ~1 MiB images would pay for
// at every sample.
struct HeldTensor {
  std::vector<char> data;
  std::vector<int64_t> sizes;
  torch::ScalarType dtype = torch::kByte;

  static HeldTensor of(const torch::Tensor& t) {
    HeldTensor out;
    const auto c = t.contiguous();
    out.data.assign(static_cast<const char*>(c.data_ptr()), static_cast<const char*>(c.data_ptr()) + c.nbytes());
    out.sizes = c.sizes().vec();
    out.dtype = c.scalar_type();
    return out;
  }
  // A view of the held elements: valid while this is held; copy before handing it out.
  torch::Tensor view() const {
    return torch::from_blob(const_cast<char*>(data.data()), sizes, torch::TensorOptions().dtype(dtype));
  }
};

// One sample as keep_decoded holds it: the fewest bytes that give the decoded tensors back exactly.
struct CompactSample {
  HeldTensor image, mask, instances;  // image: uint8 (x / 255 is the decoded value), int16 (its 16 bits / 65535) or the float
  bool has_instances = false;
  size_t bytes() const { return image.data.size() + mask.data.size() + instances.data.size(); }
};

struct KeptSamples {
  std::mutex mutex;
  size_t budget = 0;
  KeptStats stats;
  std::vector<std::shared_ptr<const CompactSample>> slots;  // by index; null: not kept
};

namespace {

torch::Tensor image_from_bytes(const torch::Tensor& bytes) { return bytes.to(torch::kFloat).div_(255.0f); }
// int16 holding uint16's bits (LibTorch 1.13 has no uint16) -> the 16-bit decoders' value, word / 65535.
torch::Tensor image_from_words(const torch::Tensor& words) { return words.to(torch::kInt).bitwise_and_(0xffff).to(torch::kFloat).div_(65535.0f); }

// The image in the fewest bytes that give it back exactly: 8-bit sources decode to exactly byte / 255, 16-bit
// ones (CT and MRI slices as 16-bit PNGs, uint16 .npy arrays) to word / 65535; floats of other values as they are.
torch::Tensor compact_image(const torch::Tensor& image) {
  const auto bytes = image.mul(255.0f).round_().clamp_(0, 255).to(torch::kByte);
  if (torch::equal(image_from_bytes(bytes), image)) return bytes;
  const auto words = image.mul(65535.0f).round_().clamp_(0, 65535).to(torch::kInt).to(torch::kShort);
  return torch::equal(image_from_words(words), image) ? words : image;
}

CompactSample compact(const Sample& sample) {
  CompactSample out;
  out.image = HeldTensor::of(compact_image(sample.image));
  out.mask = HeldTensor::of(sample.mask.to(torch::kByte));  // validated: 0..classes-1 (at most 254) or 255
  out.has_instances = sample.instances.defined();
  if (out.has_instances) out.instances = HeldTensor::of(sample.instances.to(torch::kInt));  // PNG ids: at most 65535
  return out;
}

// Fresh tensors every time: callers may change a sample in place (a training batch voids a mask).
Sample expand(const CompactSample& kept) {
  Sample out;
  const auto image = kept.image.view();
  const auto held = image.scalar_type();
  out.image = held == torch::kByte ? image_from_bytes(image) : held == torch::kShort ? image_from_words(image) : image.clone();
  out.mask = kept.mask.view().to(torch::kLong);
  if (kept.has_instances) out.instances = kept.instances.view().to(torch::kLong);
  return out;
}

}  // namespace

void SegmentationDataset::keep_decoded(size_t budget_bytes) {
  if (budget_bytes == 0) {
    kept_.reset();
    return;
  }
  if (kept_ == nullptr) {
    kept_ = std::make_shared<KeptSamples>();
    kept_->slots.resize(images_.size());
  }
  const std::lock_guard<std::mutex> lock(kept_->mutex);
  kept_->budget = budget_bytes;  // what is held already stays, even past a smaller budget
}

KeptStats SegmentationDataset::kept_stats() const {
  if (kept_ == nullptr) return {};
  const std::lock_guard<std::mutex> lock(kept_->mutex);
  return kept_->stats;
}

Sample SegmentationDataset::get(size_t index) const {
  if (kept_ == nullptr) return decode(index);
  std::shared_ptr<const CompactSample> found;
  {
    const std::lock_guard<std::mutex> lock(kept_->mutex);
    found = kept_->slots.at(index);
    if (found != nullptr) ++kept_->stats.hits;
  }
  if (found != nullptr) {  // expanded outside the lock, as decoding is below
    auto sample = expand(*found);
    sample.id = ids_[index];
    return sample;
  }
  auto sample = decode(index);
  const size_t least = static_cast<size_t>(sample.image.numel() + sample.mask.numel() +
                                           (sample.instances.defined() ? 4 * sample.instances.numel() : 0));
  {
    const std::lock_guard<std::mutex> lock(kept_->mutex);
    if (kept_->stats.bytes + least > kept_->budget) return sample;  // past the budget: not even compacted
  }
  auto held = std::make_shared<const CompactSample>(compact(sample));
  const std::lock_guard<std::mutex> lock(kept_->mutex);
  auto& slot = kept_->slots[index];
  if (slot == nullptr && kept_->stats.bytes + held->bytes() <= kept_->budget) {
    kept_->stats.bytes += held->bytes();
    ++kept_->stats.samples;
    slot = std::move(held);
  }
  return sample;
}

torch::Tensor SegmentationDataset::mask(size_t index) const {
  if (kept_ != nullptr) {
    std::shared_ptr<const CompactSample> found;
    {
      const std::lock_guard<std::mutex> lock(kept_->mutex);
      found = kept_->slots.at(index);
    }
    if (found != nullptr) return found->mask.view().to(torch::kLong);
  }
  return read_mask(masks_.at(index));
}

torch::Tensor SegmentationDataset::image(size_t index) const {
  return kept_ != nullptr ? get(index).image : checked_image(index);
}

torch::Tensor SegmentationDataset::checked_image(size_t index) const {
  auto image = read_image(images_.at(index));
  if (!channel_names_.empty() && image.size(0) != channels())
    fail(images_[index], "has " + std::to_string(image.size(0)) + " channel(s) but " + (fs::path(dir_) / "channels.json").string() + " names " +
                             std::to_string(channels()) + ": every image of this dataset has that many");
  return image;
}

Sample SegmentationDataset::decode(size_t index) const {
  Sample sample;
  sample.id = ids_.at(index);
  sample.image = checked_image(index);
  sample.mask = read_mask(masks_[index]);
  if (sample.image.size(1) != sample.mask.size(0) || sample.image.size(2) != sample.mask.size(1))
    fail(masks_[index], "mask is " + std::to_string(sample.mask.size(0)) + "x" + std::to_string(sample.mask.size(1)) + " but image " +
                            images_[index] + " is " + std::to_string(sample.image.size(1)) + "x" + std::to_string(sample.image.size(2)));
  if (has_instances()) {
    sample.instances = read_instances(instances_[index]);
    if (sample.instances.sizes() != sample.mask.sizes())
      fail(instances_[index], "instance mask is " + c10::str(sample.instances.sizes()) + " but the mask is " + c10::str(sample.mask.sizes()));
  }
  return sample;
}

}  // namespace fcn
