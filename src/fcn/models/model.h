// `Model`: a net with what a user needs to apply it (class names, palette, input normalisation,
// training provenance). Model files (serialize/model_file.h) store exactly this, so loading needs
// no flags from the run that made it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "fcn/models/net.h"
#include "fcn/models/preprocess.h"

namespace fcn {

// The slices a 2.5-D sample holds with `context` neighbours on either side, k-N..k+N (1 for a 2-D net): a net
// of ModelMeta::slice_context N takes that many planes of each of a case's channels.
constexpr int64_t slices_a_sample(int64_t context) { return 2 * context + 1; }

struct ModelMeta {
  std::vector<std::string> class_names;
  std::vector<std::array<uint8_t, 3>> palette;  // RGB per class
  Normalization normalization;
  std::string training = "{}";  // JSON provenance: data, epochs, seed, train seconds, ...
  // 2.5-D: the net sees a volume's slice k with its `slice_context` neighbours on either side as its
  // channels (k-1, k, k+1 for 1; the first and last slices repeated past the ends; of each of a case's
  // channels in turn: its inputs are (2 slice_context + 1) x the case's channels), as fcn data unstack
  // --context wrote its training slices; segment_volume gives it volumes so. 0: one slice.
  int64_t slice_context = 0;
  // The side in mm {x, y} of the pixels of the slices the net was trained on, where fcn data unstack
  // --spacing resampled a volume's slices to them: segment_volume resamples a volume's slices so, and the
  // net's labels back to the scan's voxels. None: slices as stored.
  std::optional<std::array<double, 2>> pixel_mm;
  // The orientation ("RAS") whose slices the net was trained on, where fcn data unstack --orient cut each volume
  // so (nifti_slice_axes): segment_volume cuts volumes alike, and puts the labels back where the voxels lie.
  // "": slices as stored.
  std::string axes;
};

struct Model {
  std::shared_ptr<NetImpl> net;
  ModelMeta meta;
};

constexpr int64_t kMostSliceContext = 8;

nlohmann::json meta_to_json(const ModelMeta& meta);
ModelMeta meta_from_json(const nlohmann::json& json, const std::string& context);
// The numbers of a net config within sane bounds (num_classes <= 65536, width <= 8, ...; see
// docs/reliability.md) before any net is built from it: a model file is user input.
void validate_net_config(const nlohmann::json& config, const std::string& context);
// class_0.. names, the PASCAL VOC palette, ImageNet statistics for 3 channels, 0.5/0.5 otherwise.
// num_classes is the net's; a binary net (1) gets the two label classes.
ModelMeta default_meta(int64_t num_classes, int64_t in_channels);

// An image (C x H x W in [0, 1], any channel count) as this model's net input: 1 x C x H x W. A 2.5-D
// model (slice_context N) takes exactly its inputs, 2N + 1 slices of each channel: fcn::Error naming
// `source` for a gray image, which would otherwise pass as 2N + 1 equal slices.
torch::Tensor model_input(const Model& model, const torch::Tensor& image, const std::string& source);

}  // namespace fcn
