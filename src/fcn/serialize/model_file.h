// Model files: one self-describing file per model (format name and version, architecture config,
// class names, palette, input normalisation, weights), so `load_model(path)` needs no flags.
// On disk it is a PyTorch archive holding a plain dict, so Python can read it too:
//   d = torch.load("model.fcn"); json.loads(d["config"]); d["state_dict"]["score_fr.weight"]
#pragma once

#include <string>

#include "fcn/formats/torch_archive.h"
#include "fcn/models/model.h"

namespace fcn {

constexpr int64_t kModelFormatVersion = 1;

void save_model(const std::string& path, const Model& model);  // atomic
Model load_model(const std::string& path);  // throws fcn::Error naming the file and what is wrong
// The model in an already-read archive (the fuzzer's entry: parse_torch_archive_dict on bytes).
Model model_from_archive(const ArchiveDict& dict, const std::string& path);

}  // namespace fcn
