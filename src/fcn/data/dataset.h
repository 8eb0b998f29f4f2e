// Segmentation datasets on disk: the PASCAL VOC layout (JPEGImages/, SegmentationClass/,
// ImageSets/Segmentation/SPLIT.txt) and folder pairs (images/ + masks/ matched by file stem,
// optionally under DIR/SPLIT/). Masks: palette PNGs (pixel = class index), 8/16-bit index PNGs,
// RGB colour masks with the colour table of classes.json, and binary 0/255 masks (folder pairs
// without classes.json). 255 is the void/ignore label. Optional instance masks (object ids, for
// U-Net's weight map): VOC's SegmentationObject/ID.png, or instances/ beside images/ + masks/;
// 8-bit (palette or gray; 255 = VOC's object border, read as no object) or 16-bit PNGs.
// Every problem is an fcn::Error naming the file.
#pragma once

#include <array>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

namespace fcn {

constexpr int64_t kIgnoreLabel = 255;

struct Sample {
  torch::Tensor image;  // C x H x W float32 in [0, 1]
  torch::Tensor mask;   // H x W int64: class index or kIgnoreLabel
  std::string id;
  torch::Tensor instances;  // H x W int64 object ids, 0 = none (undefined: the dataset has no instance masks)
  torch::Tensor weights;    // H x W float per-pixel loss weights (undefined: none), e.g. U-Net's weight map
};

// What SegmentationDataset::keep_decoded holds so far.
struct KeptStats {
  size_t samples = 0, bytes = 0;  // kept, and their compact size
  size_t hits = 0;                // get()s answered from memory
};

struct KeptSamples;  // dataset.cpp

// What is wrong with `dir` as a dataset folder before its layout is looked at: "dataset folder not found", "is a
// file, not a dataset folder (...)", or "" for a folder.
std::string dataset_folder_problem(const std::string& dir);

class SegmentationDataset {
 public:
  // Lists the split and checks that every listed file exists; reads nothing else yet. With
  // `problems`, a pair with a missing file is recorded there ("FILE: what") and left out instead of
  // failing at the first one (`fcn data check` lists every problem in one pass); only the constructor
  // writes there, so the dataset may outlive the vector.
  SegmentationDataset(const std::string& dir, const std::string& split, std::vector<std::string>* problems = nullptr);

  size_t size() const { return images_.size(); }
  Sample get(size_t index) const;  // reads, decodes and validates one pair (or takes it from keep_decoded's store)
  // Pair `index`'s image alone, as get() gives it: through get() where the dataset keeps samples (so
  // the pair is held for later), else decoded without reading the mask (statistics over the images).
  torch::Tensor image(size_t index) const;

  // Keeps the samples get() decodes, up to `budget_bytes` in all, so that a later get() of one
  // reads no file: training's later epochs, validation after every epoch, one val set scored by
  // several models. Held compactly (8-bit images and masks as bytes, instance ids as int32: a
  // 64x64 RGB scene with its mask is 16 KiB; an image that bytes cannot give back bit for bit is
  // held as float), and get() returns exactly what decoding would. A file changed on disk after
  // its first read is not read again. Samples past the budget are decoded at every get(). 0 (the
  // default): nothing kept. Copies of the dataset share the store; get() stays thread-safe.
  void keep_decoded(size_t budget_bytes);
  KeptStats kept_stats() const;
  const std::string& id(size_t index) const { return ids_.at(index); }  // the file stem (VOC: the list's id)
  const std::string& image_path(size_t index) const { return images_.at(index); }
  const std::string& mask_path(size_t index) const { return masks_.at(index); }
  bool has_instances() const { return !instances_.empty(); }
  const std::string& instance_path(size_t index) const { return instances_.at(index); }

  int64_t num_classes() const { return static_cast<int64_t>(class_names_.size()); }
  const std::vector<std::string>& class_names() const { return class_names_; }
  // Where the classes came from, for messages: "from DIR/classes.json", or the default taken without one.
  const std::string& classes_source() const { return classes_source_; }
  const std::vector<std::array<uint8_t, 3>>& palette() const { return palette_; }
  // The images' channels where the folder's channels.json names them ({"names": ["FLAIR", "T1w"]}: fcn
  // data unstack writes it for volumes of several channels, whose slices are PNGs of 2 to 4 samples, or
  // .npy arrays of more);
  // every image is then checked to have that many. 0 and none without one: images are gray or RGB
  // (alpha dropped).
  int64_t channels() const { return static_cast<int64_t>(channel_names_.size()); }
  const std::vector<std::string>& channel_names() const { return channel_names_; }
  // 2.5-D slices (channels.json "context": N): the channels are a volume's slice and its N neighbours on
  // either side, so a net trained here takes volumes so (ModelMeta::slice_context). 0: not.
  int64_t slice_context() const { return slice_context_; }
  // How the slices were cut from volumes (slicing.json, which fcn data unstack --spacing / --orient writes), so
  // that a net trained here is given volumes alike: resampled to pixels of this side in mm {x, y}
  // ({"pixel_mm": [X, Y]}: ModelMeta::pixel_mm; none: as stored), cut in this orientation ({"axes": "RAS"}:
  // ModelMeta::axes; "": as stored).
  const std::optional<std::array<double, 2>>& pixel_mm() const { return pixel_mm_; }
  const std::string& slice_axes() const { return slice_axes_; }
  // Masks of 0 and 255 (folder pairs without classes.json): 255 reads as class 1, foreground.
  bool binary() const { return binary_; }
  const std::string& dir() const { return dir_; }
  // The split listed: the one asked for, or "all" for a folder of images/ + masks/ without split
  // lists (splits/NAME.txt), which gives every pair whatever split is asked for (a test folder, say).
  const std::string& split() const { return split_; }

  // H x W int64 labels of a mask file, decoded as this dataset's masks are (and validated).
  torch::Tensor read_mask(const std::string& path) const;
  // Sample `index`'s labels: from keep_decoded's store where it holds the sample (no file read: after the
  // check pass of fcn train), else read_mask of its file.
  torch::Tensor mask(size_t index) const;
  // The same for a gray mask's stored values (H x W integers: a page of a label stack), `source`
  // naming it in errors.
  torch::Tensor mask_from_values(const torch::Tensor& values, const std::string& source) const;
  // H x W int64 object ids of an instance mask file (0: no object).
  static torch::Tensor read_instances(const std::string& path);

 private:
  void find_instances(const std::filesystem::path& folder, const std::string& extension);
  void problem(const std::string& subject, const std::string& message);
  void list_voc(const std::filesystem::path& root, const std::filesystem::path& list);
  void list_pairs(const std::filesystem::path& root);
  std::vector<std::string> read_list(const std::filesystem::path& list) const;  // a split file's ids
  void read_classes(const std::filesystem::path& root, bool voc);
  void read_channels(const std::filesystem::path& root);
  void read_slicing(const std::filesystem::path& root);
  torch::Tensor checked_image(size_t index) const;
  std::string dir_, split_;
  std::vector<std::string> images_, masks_, instances_, ids_;
  std::vector<std::string> class_names_, channel_names_;
  std::string classes_source_;
  std::vector<std::array<uint8_t, 3>> palette_;
  bool binary_ = false;  // folder pairs without classes.json: 0 background, 255 (or 1) foreground
  int64_t slice_context_ = 0;
  std::optional<std::array<double, 2>> pixel_mm_;
  std::string slice_axes_;
  std::vector<std::string>* problems_ = nullptr;  // where problem() records while listing; null: it throws
  Sample decode(size_t index) const;
  std::shared_ptr<KeptSamples> kept_;  // keep_decoded's store; null: none
};

// The ids a split file lists: one per line, without the whitespace around it ("my scene\r" ->
// "my scene"); blank lines skipped.
std::vector<std::string> split_ids(const std::string& text);

// classes.json: {"names": [...], "colors": [[r, g, b], ...]} (colors optional, one per name).
struct ClassTable {
  std::vector<std::string> names;
  std::vector<std::array<uint8_t, 3>> colors;
};
ClassTable parse_classes_json(const std::string& text, const std::string& path);  // fcn::Error naming `path`
ClassTable read_classes_json(const std::string& path);  // the file read and parsed; fcn::Error naming it

// The splits a dataset folder offers (VOC: ImageSets/Segmentation/*.txt; pairs: SPLIT/ folders, or "all"
// and the lists in splits/*.txt).
std::vector<std::string> dataset_splits(const std::string& dir);

// Splits a folder of images/ + masks/ at random into splits/train.txt and splits/val.txt (one stem a
// line, sorted), val taking round(val_fraction x pairs) of them (at least one, and one left for
// train), shuffled by LibTorch's generator from `seed`, so the same folder and seed give the same
// split on any machine. Refuses (fcn::Error naming `dir`) a VOC layout or split folders, which have
// splits already, fewer than two pairs, and existing lists unless `overwrite`. With `by_volume`, the
// pairs of one volume (volume_of their names: the slices fcn data unstack wrote from a folder of
// volumes, one patient's) go to one side together, val taking round(val_fraction x volumes) volumes (at
// least one, and one left for train), so that no volume has slices in both. Returns the pairs {train, val}.
std::pair<size_t, size_t> write_split_lists(const std::string& dir, double val_fraction, uint64_t seed, bool overwrite = false,
                                            bool by_volume = false);
// The volume a slice's name came from: "la_003_012" -> "la_003", the name less its last "_" and the
// digits after it; a name without them is a volume of its own.
std::string volume_of(const std::string& id);

}  // namespace fcn
