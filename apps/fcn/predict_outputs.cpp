// What fcn predict writes for one image and how it names it (predict.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <tuple>

#include <zlib.h>

#include <torch/torch.h>

#include "fcn/data/instances.h"
#include "fcn/formats/nifti.h"
#include "fcn/formats/npy.h"
#include "fcn/formats/png.h"
#include "fcn/formats/tiff_writer.h"
#include "fcn/infer/picture.h"
#include "fcn/util/atomic_file.h"
#include "predict.h"

namespace fcn::cli {

std::string free_stem(const std::string& path, const std::set<std::string>& used) {
  const std::string stem = is_nifti_path(path) ? nifti_case_name(path) : nifti_stem(path);  // scan.nii.gz: scan; BRATS_001_0000 + _0001: BRATS_001
  std::string name = stem;
  for (int i = 2; used.count(name) != 0; ++i) name = stem + "_" + std::to_string(i);
  return name;
}

std::string unique_stem(const std::string& path, std::set<std::string>& used) { return *used.insert(free_stem(path, used)).first; }

std::string label_suffix(int64_t classes) { return classes <= 256 ? ".png" : "-labels.npy"; }

std::pair<torch::Tensor, std::vector<int64_t>> objects_of(const Prediction& prediction, int64_t min_pixels, int connectivity) {
  const auto& labels = prediction.labels;
  auto ids = instances_from_labels(labels, -1, plane_connectivity(connectivity));  // no class is void in a net's labels
  if (min_pixels > 1) {  // specks left out, the rest numbered again 1..N in their order
    const auto kept = torch::bincount(ids.flatten()).ge(min_pixels);
    kept[0] = false;
    const auto renumbered = torch::where(kept, kept.to(torch::kLong).cumsum(0), torch::zeros_like(kept, torch::kLong));
    ids = renumbered.index({ids});
  }
  // Each object's class (id 0's entry, background and specks, is dropped), counted.
  const auto per_class = torch::bincount(component_classes(ids, labels).slice(0, 1), {}, prediction.probs.size(0));
  return {ids, std::vector<int64_t>(per_class.data_ptr<int64_t>(), per_class.data_ptr<int64_t>() + per_class.numel())};
}

std::vector<std::vector<std::string>> outputs_of(const PredictFlags& f, const std::string& stem, int64_t classes, bool overlay,
                                                 bool labels, bool probs) {
  std::vector<std::vector<std::string>> files;
  if (labels) files.push_back({stem + label_suffix(classes)});
  if (f.instances && labels) files.push_back({stem + "-instances.png", stem + "-instances.npy"});
  if (overlay) files.push_back({stem + "-overlay.png"});
  if (!probs) return files;
  if (f.probs == "npy" || f.probs == "tif") files.push_back({stem + "-probs." + f.probs});
  if (f.probs == "png")
    for (int64_t c = 0; c < classes; ++c) files.push_back({stem + "-prob" + std::to_string(c) + ".png"});
  return files;
}

bool outputs_written(const PredictFlags& f, const std::vector<std::vector<std::string>>& files) {
  namespace fs = std::filesystem;
  std::error_code error;
  return std::all_of(files.begin(), files.end(), [&](const std::vector<std::string>& names) {
    return std::any_of(names.begin(), names.end(), [&](const std::string& name) { return fs::is_regular_file(fs::path(f.out) / name, error); });
  });
}

Written write_outputs(const PredictFlags& f, const std::string& stem, const torch::Tensor& image, const Prediction& prediction,
                      bool overlay, bool labels, bool probs) {
  namespace fs = std::filesystem;
  Written written;
  auto& files = written.files;
  const auto path = [&](const std::string& suffix) { return (fs::path(f.out) / (stem + suffix)).string(); };
  if (labels) {
    files.push_back(path(label_suffix(prediction.probs.size(0))));
    if (prediction.probs.size(0) <= 256)
      write_png_indexed(files.back(), prediction.labels.to(torch::kByte), prediction.palette);
    else
      write_npy(files.back(), prediction.labels.to(torch::kInt));
  }
  auto& ids = written.objects;  // --instances: outlined in the overlay too (a volume's slice needs them for nothing else)
  if (f.instances && (labels || overlay)) std::tie(ids, written.per_class) = objects_of(prediction, f.min_object, f.connectivity);
  if (f.instances && labels) {
    const bool fits = ids.numel() == 0 || ids.max().item<int64_t>() <= 65535;  // else int32 .npy, as labels past 256 classes
    files.push_back(path(fits ? "-instances.png" : "-instances.npy"));
    if (fits)
      write_png16(files.back(), ids);
    else
      write_npy(files.back(), ids.to(torch::kInt));
  }
  if (overlay) {
    const auto counts = prediction.class_pixels();
    std::vector<int64_t> present;
    for (size_t c = 0; c < counts.size(); ++c)
      if (counts[c] > 0) present.push_back(static_cast<int64_t>(c));
    std::sort(present.begin(), present.end(), [&](int64_t a, int64_t b) { return counts[a] > counts[b]; });
    auto picture = enlarge(prediction.overlay(image), 256);
    if (ids.defined()) picture = with_outlines(picture, enlarge(ids, 256));
    files.push_back(path("-overlay.png"));
    write_png(files.back(), with_legend(picture, present, prediction.class_names, prediction.palette));
  }
  if (!probs) return written;
  const int64_t classes = prediction.probs.size(0);
  if (f.probs == "npy") {
    files.push_back(path("-probs.npy"));
    write_npy(files.back(), prediction.probs);
  } else if (f.probs == "png") {
    for (int64_t c = 0; c < classes; ++c) {
      files.push_back(path("-prob" + std::to_string(c) + ".png"));
      write_png16(files.back(), (prediction.probs[c] * 65535).round());
    }
  } else if (f.probs == "tif") {
    files.push_back(path("-probs.tif"));
    TiffStackWriter writer(files.back(), {}, {classes, 0, 1}, prediction.probs.numel() * 4);
    for (int64_t c = 0; c < classes; ++c) writer.add(prediction.probs[c]);
    writer.finish();
  }
  return written;
}

nlohmann::json named_counts(const std::vector<int64_t>& pixels, const std::vector<std::string>& names) {
  nlohmann::json counts = nlohmann::json::object();
  for (size_t c = 0; c < pixels.size(); ++c)
    if (pixels[c] > 0) counts[c < names.size() ? names[c] : std::to_string(c)] = pixels[c];
  return counts;
}

std::string numbered(const std::string& stem, int64_t number) {
  char name[32];
  std::snprintf(name, sizeof name, "/%06lld", static_cast<long long>(number));
  return stem + name;
}

namespace {

constexpr const char* kShapingFlags[] = {"--dtype", "--tta", "--resize", "--tile", "--overlap", "--scales", "--threshold", "--upsample",
                                         "--largest", "--min-object", "--connectivity", "--window", "--spacing", "--orient"};

// The file's size and CRC-32, read a MiB at a time (a model is read whole at load anyway, so it is in the page cache).
nlohmann::json file_identity(const std::string& path) {
  auto in = open_regular_file(path);
  std::vector<char> chunk(size_t{1} << 20);
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t bytes = 0;
  while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
    crc = crc32(crc, reinterpret_cast<const Bytef*>(chunk.data()), static_cast<uInt>(in.gcount()));
    bytes += static_cast<uint64_t>(in.gcount());
  }
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08lx", static_cast<unsigned long>(crc & 0xffffffffUL));
  return {{"path", path}, {"bytes", bytes}, {"crc32", hex}};
}

// A flag's comma-separated values with each number written one way: "1.0,0.75" -> "1,0.75" (it was a change of
// flags for --skip-existing: "--scales: 1 before, 1.0 now"). `ascending`: in ascending order too ("1,0.5" ->
// "0.5,1"): --scales, whose average the predictor takes in that order whatever order they were given in.
std::string canonical_values(const std::string& values, bool ascending = false) {
  std::vector<std::string> tokens;
  for (size_t start = 0; start <= values.size();) {
    const size_t end = std::min(values.find(',', start), values.size());
    std::string token = values.substr(start, end - start);
    char* stop = nullptr;
    const double number = token.empty() ? 0.0 : std::strtod(token.c_str(), &stop);
    if (!token.empty() && stop == token.c_str() + token.size() && std::isfinite(number)) {
      char text[32];
      std::snprintf(text, sizeof text, "%.15g", number);
      token = text;
    }
    tokens.push_back(token);
    start = end + 1;
  }
  if (ascending)
    std::stable_sort(tokens.begin(), tokens.end(),
                     [](const std::string& a, const std::string& b) { return std::strtod(a.c_str(), nullptr) < std::strtod(b.c_str(), nullptr); });
  std::string out;
  for (size_t k = 0; k < tokens.size(); ++k) out += (k == 0 ? "" : ",") + tokens[k];
  return out;
}

// "--tta: none before, flip now; ..." for the flags whose values differ between two records.
std::string flag_changes(const nlohmann::json& before, const nlohmann::json& now) {
  std::set<std::string> flags;
  for (const auto* record : {&before, &now})
    for (const auto& item : record->items()) flags.insert(item.key());
  const auto value = [](const nlohmann::json& record, const std::string& flag) {
    if (!record.contains(flag) || !record[flag].is_string()) return std::string("none");
    return canonical_values(record[flag].get<std::string>(), flag == "--scales");  // records written before scales were put in order too
  };
  std::string text;
  for (const auto& flag : flags)
    if (value(before, flag) != value(now, flag))
      text += (text.empty() ? "" : "; ") + flag + ": " + value(before, flag) + " before, " + value(now, flag) + " now";
  return text;
}

}  // namespace

nlohmann::json shaping_flags(const CLI::App& cmd) {
  auto flags = nlohmann::json::object();
  for (const char* name : kShapingFlags) {
    const auto* option = cmd.get_option_no_throw(name);
    if (option == nullptr) continue;
    std::string values;  // as given, else the default (so that --dtype fp32 given reads as the default)
    auto given = option->results();
    if (std::string(name) == "--tta") std::sort(given.begin(), given.end());  // a set: flip,rot90 is rot90,flip
    for (const auto& value : given) values += (values.empty() ? "" : ",") + value;
    if (option->count() == 0) values = option->get_default_str();
    if (!values.empty()) flags[name] = canonical_values(values, std::string(name) == "--scales");
  }
  return flags;
}

std::string record_path(const std::string& folder) { return (std::filesystem::path(folder) / ".fcn-predict.json").string(); }

void record_outputs(const PredictFlags& f, const std::vector<std::string>& class_names) {
  namespace fs = std::filesystem;
  const auto record = record_path(f.out);
  nlohmann::json now = {{"model", file_identity(f.model)}, {"flags", f.shaping}};
  now["model"]["classes"] = class_names;
  std::error_code error;
  if (f.skip_existing && fs::is_regular_file(record, error)) {
    const std::string keep = ": --skip-existing would keep them beside masks of another kind; remake them all without --skip-existing, or write into a new --out";
    nlohmann::json model;
    std::string changes;
    try {
      const auto before = nlohmann::json::parse(read_file(record));
      model = before.at("model");
      changes = flag_changes(before.at("flags"), now["flags"]);
      if (model.at("crc32") != now["model"]["crc32"] || model.at("bytes") != now["model"]["bytes"])
        fail(f.out, "holds the outputs of another model (" + model.at("path").get<std::string>() + ", " + model.at("crc32").get<std::string>() +
                        "), and this run's is " + f.model + " (" + now["model"]["crc32"].get<std::string>() + ")" + keep);
    } catch (const nlohmann::json::exception& e) {
      fail(record, std::string("is not a record fcn predict wrote (") + e.what() + "): remove it, or write into a new --out");
    }
    if (!changes.empty()) fail(f.out, "holds outputs made with other flags (" + changes + ")" + keep);
  }
  const auto text = now.dump(2) + "\n";
  write_file_atomic(record, text.data(), text.size());
}

}  // namespace fcn::cli
