// The registry of architectures: every net <-> a JSON config ({"arch": "fcn", "stride": 8, ...}),
// and `Model`, a net with what a user needs to apply it (class names, palette, normalisation).
// Model files (io/model_file.h) store exactly this, so loading needs no flags.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "fcn/models/net.h"

namespace fcn {

// Per-channel input normalisation on [0, 1] pixel values: (x - mean) / std.
struct Normalization {
  std::vector<double> mean, std;
};

struct ModelMeta {
  std::vector<std::string> class_names;
  std::vector<std::array<uint8_t, 3>> palette;  // RGB per class
  Normalization normalization;
  std::string training = "{}";  // JSON provenance: data, epochs, seed, train seconds, ...
};

struct Model {
  std::shared_ptr<NetImpl> net;
  ModelMeta meta;
};

nlohmann::json net_config(const NetImpl& net);
// Builds a freshly initialised net; throws fcn::Error naming the bad key. `context` names the source.
std::shared_ptr<NetImpl> build_net(const nlohmann::json& config, const std::string& context = "config");

nlohmann::json meta_to_json(const ModelMeta& meta);
ModelMeta meta_from_json(const nlohmann::json& json, const std::string& context);
// class_0.. names, the PASCAL VOC palette, ImageNet statistics for 3 channels, 0.5/0.5 otherwise.
ModelMeta default_meta(int64_t num_classes, int64_t in_channels);
// PASCAL VOC's colour map (class 0 black, 1 maroon, ...), 256 entries.
std::array<uint8_t, 3> voc_color(int index);

// Parameter count and FLOPs (2 per multiply-add) of one forward pass at height x width.
int64_t parameter_count(const NetImpl& net);
double forward_flops(NetImpl& net, int64_t height, int64_t width);

}  // namespace fcn
