// A model file's JSON: the net config's bounds (checked before any net is built) and the metadata
// (class names, palette, normalisation). JSON syntax errors are the caller's to wrap (load_model
// does), so they end the input here.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/model.h"
#include "fuzz_common.h"

FCN_FUZZ_TARGET({
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  try {
    fcn::validate_net_config(json, "fuzz.fcn");
  } catch (const fcn::Error&) {
  }
  fcn::meta_from_json(json, "fuzz.fcn");
})
