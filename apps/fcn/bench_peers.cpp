#include "bench_peers.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/registry.h"
#include "fcn/serialize/model_file.h"
#include "fcn/serialize/weights.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"
#if defined(FCN_WITH_OPENCV) && defined(FCN_WITH_ONNX)
#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>

#include "fcn/serialize/onnx_export.h"
#endif

namespace fcn::cli {
namespace {

// glibc settings a Python user can set without code to get the effect of fcn's CPU allocator:
// no per-block mmap, no trimming, so freed activations are reused instead of page-faulted back.
constexpr const char* kTunedMalloc = "MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736";

// What the peers read, written once per invocation: the net's config and a torch.load()-able
// state_dict for PyTorch, fcn's ONNX export for OpenCV DNN. The folder goes when this does.
struct PeerFiles {
  std::filesystem::path dir;
  std::string config, weights, onnx;
  PeerFiles(const Model& model, const BenchOptions& options, bool with_onnx)
      : dir(std::filesystem::temp_directory_path() / ("fcn-bench-" + std::to_string(getpid()))) {
    std::filesystem::create_directories(dir);
    config = (dir / "config.json").string();
    weights = (dir / "weights.pth").string();
    const auto text = net_config(*model.net).dump();
    write_file_atomic(config, text.data(), text.size());  // checked: a full /tmp is an error, not an empty file
    write_torch_state_dict(weights, state_dict(*model.net));
#if defined(FCN_WITH_OPENCV) && defined(FCN_WITH_ONNX)
    if (with_onnx) {
      onnx = (dir / "model.onnx").string();
      OnnxExportOptions export_options;
      export_options.height = options.height;
      export_options.width = options.width;
      export_onnx(model, onnx, export_options);
    }
#else
    (void)options, (void)with_onnx;
#endif
  }
  ~PeerFiles() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  PeerFiles(const PeerFiles&) = delete;
  PeerFiles& operator=(const PeerFiles&) = delete;
};

// A peer's last line of output: its JSON result. fcn::Error naming --peers when it fails.
nlohmann::json peer_output(const std::string& command, const std::string& peer) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) fail("--peers", "cannot start the " + peer + " peer (" + command + ")");
  std::string output;
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  if (pclose(pipe) != 0 || output.find('{') == std::string::npos) fail("--peers", "the " + peer + " peer failed (" + command + ")");
  return nlohmann::json::parse(output.substr(output.rfind('{')));
}

nlohmann::json run_torch_peer(const PeerFiles& files, const BenchOptions& o, int threads, bool tuned_malloc) {
  std::ostringstream command;
  if (tuned_malloc) command << kTunedMalloc << " ";
  command << FCN_PYTHON << " " << FCN_BENCH_PEERS << "/torch_peer.py " << files.config << " " << files.weights << " --size "
          << o.height << "x" << o.width << " --batch " << o.batch << " --mode " << o.mode
          << " --runs " << o.runs << " --warmup " << o.warmup << " --threads " << threads << " --device "
          << o.device.str();
  return peer_output(command.str(), "PyTorch");
}

// Why ONNX Runtime cannot be timed here, or "" when it can: node and the npm package that
// scripts/install-deps.sh installs into bench/peers.
std::string onnxruntime_missing() {
  if (std::system("command -v node >/dev/null 2>&1") != 0) return "node is not on PATH";
  const auto package = std::filesystem::path(FCN_BENCH_PEERS) / "node_modules" / "onnxruntime-node" / "package.json";
  if (!std::filesystem::exists(package)) return "onnxruntime-node is not installed in " FCN_BENCH_PEERS " (scripts/install-deps.sh)";
  return "";
}

nlohmann::json run_onnxruntime_peer(const PeerFiles& files, const BenchOptions& o, int64_t in_channels, int threads) {
  std::ostringstream command;
  command << "node " << FCN_BENCH_PEERS << "/ort_peer.js " << files.onnx << " --time --shape 1," << in_channels << ","
          << o.height << "," << o.width << " --batch " << o.batch << " --runs " << o.runs
          << " --warmup " << o.warmup << " --threads " << threads;
  return peer_output(command.str(), "ONNX Runtime");
}

#if defined(FCN_WITH_OPENCV) && defined(FCN_WITH_ONNX)
Timing run_opencv_peer(cv::dnn::Net& net, const BenchOptions& o, int64_t in_channels, int threads) {
  cv::setNumThreads(threads);
  torch::manual_seed(0);
  const auto input = torch::rand({o.batch, in_channels, o.height, o.width}).contiguous();
  const int sizes[] = {static_cast<int>(input.size(0)), static_cast<int>(input.size(1)), static_cast<int>(input.size(2)),
                       static_cast<int>(input.size(3))};
  const cv::Mat blob(4, sizes, CV_32F, input.data_ptr<float>());
  Timing timing;
  for (int64_t i = 0; i < o.warmup + o.runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    net.setInput(blob);
    net.forward();
    if (i >= o.warmup)
      timing.ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return timing;
}
#endif

}  // namespace

nlohmann::json time_peers(const Model& model, const BenchOptions& o, const std::vector<int>& thread_counts) {
  // The ONNX peers (OpenCV DNN, ONNX Runtime) run fcn's own export, in inference on the CPU.
#if defined(FCN_WITH_OPENCV) && defined(FCN_WITH_ONNX)
  const std::string not_exported = onnx_refusal(model);
#else
  const std::string not_exported = "fcn was built without ONNX export or OpenCV";
#endif
  const bool onnx_peers_apply = o.mode == "infer" && o.device.is_cpu();
  const bool opencv = onnx_peers_apply && not_exported.empty();
  const std::string onnxruntime_why = !onnx_peers_apply     ? "needs --mode infer on the CPU"
                                      : !not_exported.empty() ? not_exported
                                                              : onnxruntime_missing();
  const bool onnxruntime = opencv && onnxruntime_why.empty();  // on the same ONNX file
  const PeerFiles files(model, o, opencv);
  const std::string what = o.mode == "infer" ? "PyTorch-Python eager, NCHW fp32, inference_mode"
                                                     : "PyTorch-Python eager, NCHW fp32, SGD momentum";
  nlohmann::json peers = nlohmann::json::object();
  auto record = [&](const std::string& peer, int threads, double ms, nlohmann::json info) {
    auto& entry = peers[peer];
    if (entry.is_null()) entry = std::move(info);
    entry["by_threads"][std::to_string(threads)] = ms;
    entry["ms_per_image"] = ms;  // ends at the last thread count, as fcn's headline does
  };
#if defined(FCN_WITH_OPENCV) && defined(FCN_WITH_ONNX)
  cv::dnn::Net opencv_net;
  if (opencv) opencv_net = cv::dnn::readNetFromONNX(files.onnx);
#endif
  bool torch_defined = true;  // bench/peers has a PyTorch definition of this net (FCNs, U-Nets, torchvision's FCN)
  for (const int threads : thread_counts) {
    for (const bool tuned : {false, true}) {
      if ((tuned && !o.device.is_cpu()) || !torch_defined) continue;  // host malloc settings do not reach a GPU's memory
      const auto torch_peer = run_torch_peer(files, o, threads, tuned);
      if (torch_peer.contains("unsupported")) {  // the other peers run on fcn's own ONNX export
        torch_defined = false;
        peers["skipped"]["pytorch"] = torch_peer["unsupported"];
        continue;
      }
      nlohmann::json info = {{"peak_rss_mib", torch_peer["peak_rss_mib"]}, {"version", torch_peer["torch"]},
                             {"what", tuned ? what + ", with " + kTunedMalloc : what}};
      for (const char* key : {"device_name", "peak_gpu_mib"})
        if (torch_peer.contains(key)) info[key] = torch_peer[key];
      record(tuned ? "pytorch_tuned_malloc" : "pytorch", threads, Timing{torch_peer["ms"].get<std::vector<double>>(), {}}.median() / o.batch,
             std::move(info));
    }
#if defined(FCN_WITH_OPENCV) && defined(FCN_WITH_ONNX)
    if (opencv)
      record("opencv_dnn", threads, run_opencv_peer(opencv_net, o, model.net->in_channels(), threads).median() / o.batch,
             {{"version", CV_VERSION}, {"what", "cv::dnn::readNetFromONNX on fcn export --onnx, CPU"}});
#endif
    if (onnxruntime) {
      const auto ort = run_onnxruntime_peer(files, o, model.net->in_channels(), threads);
      record("onnxruntime", threads, Timing{ort["ms"].get<std::vector<double>>(), {}}.median() / o.batch,
             {{"peak_rss_mib", ort["peak_rss_mib"]}, {"version", ort["onnxruntime"]},
              {"what", "ONNX Runtime (onnxruntime-node, CPU, graph optimisation all) on fcn export --onnx"}});
    }
  }
  if (onnx_peers_apply && !onnxruntime) peers["skipped"]["onnxruntime"] = onnxruntime_why;
  if (onnx_peers_apply && !opencv) peers["skipped"]["opencv_dnn"] = not_exported;
  return peers;
}

}  // namespace fcn::cli
