#include "fcn/data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/formats/image.h"
#include "fcn/formats/palette.h"
#include "fcn/formats/png.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string>& voc_class_names() {
  static const std::vector<std::string> names = {
      "background", "aeroplane", "bicycle", "bird",  "boat",        "bottle", "bus",   "car",  "cat",   "chair", "cow",
      "diningtable", "dog",      "horse",   "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"};
  return names;
}

// stem -> path for the image files of a folder.
std::map<std::string, std::string> files_by_stem(const fs::path& folder) {
  std::map<std::string, std::string> out;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (!entry.is_regular_file() || !has_image_extension(entry.path().string())) continue;
    const auto stem = entry.path().stem().string();
    if (out.count(stem)) fail(entry.path().string(), "two files share the stem '" + stem + "' in " + folder.string());
    out[stem] = entry.path().string();
  }
  return out;
}

std::string find_with_stem(const fs::path& folder, const std::string& stem) {
  for (const auto& ext : image_extensions()) {
    const auto candidate = folder / (stem + ext);
    if (fs::exists(candidate)) return candidate.string();
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
    splits.push_back("all");
  } else if (fs::is_directory(dir)) {
    for (const auto& entry : fs::directory_iterator(dir))
      if (fs::is_directory(entry.path() / "images")) splits.push_back(entry.path().filename().string());
  }
  std::sort(splits.begin(), splits.end());
  return splits;
}

SegmentationDataset::SegmentationDataset(const std::string& dir, const std::string& split) : dir_(dir), split_(split) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) fail(dir, "dataset folder not found");
  const fs::path sets = root / "ImageSets" / "Segmentation";
  if (fs::is_directory(sets)) {
    const fs::path list = sets / (split + ".txt");
    std::ifstream in(list);
    if (!in) fail(list.string(), "split file not found (splits here: " + [&] {
      std::string names;
      for (const auto& s : dataset_splits(dir)) names += (names.empty() ? "" : ", ") + s;
      return names.empty() ? std::string("none") : names;
    }() + ")");
    std::string id;
    while (std::getline(in, id)) {
      id.erase(std::remove_if(id.begin(), id.end(), ::isspace), id.end());
      if (id.empty()) continue;
      const auto image = find_with_stem(root / "JPEGImages", id);
      if (image.empty()) fail(list.string(), "lists '" + id + "' but JPEGImages/ has no image with that name");
      const auto mask = (root / "SegmentationClass" / (id + ".png")).string();
      if (!fs::exists(mask)) fail(mask, "missing mask for '" + id + "' (listed in " + list.filename().string() + ")");
      ids_.push_back(id);
      images_.push_back(image);
      masks_.push_back(mask);
    }
    if (ids_.empty()) fail(list.string(), "split file lists no images");
    find_instances(root / "SegmentationObject", ".png");
  } else {
    fs::path base = root;
    if (!fs::is_directory(root / "images") && fs::is_directory(root / split / "images")) base = root / split;
    if (!fs::is_directory(base / "images") || !fs::is_directory(base / "masks"))
      fail(dir, "neither a VOC layout (ImageSets/Segmentation/) nor folder pairs (images/ + masks/)");
    const auto masks = files_by_stem(base / "masks");
    for (const auto& [stem, image] : files_by_stem(base / "images")) {
      const auto mask = masks.find(stem);
      if (mask == masks.end()) fail(image, "has no mask with the same name in " + (base / "masks").string());
      ids_.push_back(stem);
      images_.push_back(image);
      masks_.push_back(mask->second);
    }
    if (ids_.empty()) fail((base / "images").string(), "no images");
    find_instances(base / "instances", "");
  }
  const fs::path classes = root / "classes.json";
  if (fs::exists(classes)) {
    try {
      std::ifstream in(classes);
      const auto json = nlohmann::json::parse(in);
      class_names_ = json.at("names").get<std::vector<std::string>>();
      if (json.contains("colors")) palette_ = json.at("colors").get<std::vector<std::array<uint8_t, 3>>>();
    } catch (const nlohmann::json::exception& e) {
      fail(classes.string(), std::string("not a valid classes file ({\"names\": [...], \"colors\": [[r,g,b], ...]}): ") + e.what());
    }
    if (class_names_.empty() || class_names_.size() > 255) fail(classes.string(), "needs 1..255 class names");
    if (!palette_.empty() && palette_.size() != class_names_.size())
      fail(classes.string(), std::to_string(palette_.size()) + " colors for " + std::to_string(class_names_.size()) + " names");
  } else if (fs::is_directory(sets)) {
    class_names_ = voc_class_names();
  } else {
    class_names_ = {"background", "foreground"};
    binary_ = true;
  }
  if (palette_.empty()) palette_ = voc_palette(num_classes());
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
  const auto png = read_png(path);
  auto ids = png.pixels.select(2, 0).to(torch::kLong);
  if (png.pixels.scalar_type() == torch::kByte) ids.masked_fill_(ids == 255, 0);  // VOC: 255 marks object borders
  return ids;
}

torch::Tensor SegmentationDataset::read_mask(const std::string& path) const {
  const auto png = read_png(path);
  torch::Tensor labels;
  const int64_t channels = png.pixels.size(2);
  if (png.indexed || channels == 1 || channels == 2) {
    labels = png.pixels.select(2, 0).to(torch::kLong);
  } else {
    // Colour mask: map each colour through the class colour table (and VOC's void colour).
    const auto rgb = png.pixels.slice(2, 0, 3).to(torch::kLong);
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
  if (binary_) labels = torch::where(labels == 255, torch::ones_like(labels), labels);
  const auto bad = ((labels >= num_classes()) & (labels != kIgnoreLabel)).nonzero();
  if (bad.size(0) > 0) {
    const int64_t y = bad[0][0].item<int64_t>(), x = bad[0][1].item<int64_t>();
    fail(path, "label " + std::to_string(labels[y][x].item<int64_t>()) + " at (" + std::to_string(y) + "," + std::to_string(x) +
                   ") is not a class (0.." + std::to_string(num_classes() - 1) + ") nor ignore (255)");
  }
  return labels;
}

Sample SegmentationDataset::get(size_t index) const {
  Sample sample;
  sample.id = ids_.at(index);
  sample.image = read_image(images_[index]);
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
