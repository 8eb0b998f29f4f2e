// fcn bench --peers: the same net, weights and input timed by the tools a user would otherwise
// pick — PyTorch-Python eager (bench/peers/torch_peer.py; also with glibc's malloc tuned), OpenCV
// DNN and ONNX Runtime (bench/peers/ort_peer.js) on fcn's own ONNX export — each in its own run at
// every thread count fcn ran, so each ratio compares like with like.
#pragma once

#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "fcn/bench/benchmark.h"
#include "fcn/models/model.h"

namespace fcn::cli {

// {peer: {what, version, by_threads: {"1": ms/image, ...}, ms_per_image (the last count), peak_rss_mib}},
// and "skipped": {peer: why} for a peer that cannot run here (ONNX Runtime without node or its package).
// Throws fcn::Error naming --peers when a peer fails.
nlohmann::json time_peers(const Model& model, const BenchOptions& options, const std::vector<int>& thread_counts);

}  // namespace fcn::cli
