#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "fcn/infer/benchmark.h"
#include "fcn/io/model_file.h"
#include "fcn/io/weights.h"
#include "fcn/models/backbone.h"
#include "fcn/util/allocator.h"
#include "fcn/util/error.h"
#if defined(FCN_WITH_OPENCV) && defined(FCN_WITH_ONNX)
#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>

#include "fcn/io/onnx_export.h"
#endif

namespace fcn::cli {
namespace {

struct Flags {
  std::string model, arch = "fcn8s", backbone = "vgg16", geometry = "reference", size = "500", device = "cpu";
  int64_t classes = 21;
  std::vector<int> threads;
  bool peers = false, json = false, nchw = false;
  BenchOptions options;
};

nlohmann::json default_config(const Flags& f) {
  if (f.arch == "unet")
    return {{"arch", "unet"}, {"depth", 4}, {"base_channels", 64}, {"in_channels", 3}, {"num_classes", f.classes},
            {"padding", "same"}, {"upsample", "transposed"}, {"batch_norm", false}};
  if (f.arch != "fcn32s" && f.arch != "fcn16s" && f.arch != "fcn8s") fail("--arch", "'" + f.arch + "' is not one of fcn32s, fcn16s, fcn8s, unet");
  const auto backbone = parse_backbone(f.backbone);
  return {{"arch", "fcn"}, {"stride", std::stoi(f.arch.substr(3))}, {"num_classes", f.classes}, {"geometry", f.geometry},
          {"backbone", {{"name", f.backbone}, {"in_channels", 3}}},
          {"fc_channels", std::max<int64_t>(1, std::llround(4096 * backbone.width()))}, {"fc_kernel", 7},
          {"dropout", 0.5}, {"learnable_upsampling", true}};
}

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
    std::ofstream(config) << net_config(*model.net).dump();
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

nlohmann::json run_torch_peer(const PeerFiles& files, const Flags& f, int threads, bool tuned_malloc) {
  std::ostringstream command;
  if (tuned_malloc) command << kTunedMalloc << " ";
  command << FCN_PYTHON << " " << FCN_BENCH_PEERS << "/torch_peer.py " << files.config << " " << files.weights << " --size "
          << f.options.height << "x" << f.options.width << " --batch " << f.options.batch << " --mode " << f.options.mode
          << " --runs " << f.options.runs << " --warmup " << f.options.warmup << " --threads " << threads;
  FILE* pipe = popen(command.str().c_str(), "r");
  if (pipe == nullptr) fail("--peers", "cannot start " + std::string(FCN_PYTHON));
  std::string output;
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int status = pclose(pipe);
  if (status != 0 || output.empty()) fail("--peers", "the PyTorch peer failed (" + command.str() + ")");
  return nlohmann::json::parse(output.substr(output.rfind('{')));
}

#if defined(FCN_WITH_OPENCV) && defined(FCN_WITH_ONNX)
Timing run_opencv_peer(cv::dnn::Net& net, const Flags& f, int64_t in_channels, int threads) {
  cv::setNumThreads(threads);
  torch::manual_seed(0);
  const auto input = torch::rand({f.options.batch, in_channels, f.options.height, f.options.width}).contiguous();
  const int sizes[] = {static_cast<int>(input.size(0)), static_cast<int>(input.size(1)), static_cast<int>(input.size(2)),
                       static_cast<int>(input.size(3))};
  const cv::Mat blob(4, sizes, CV_32F, input.data_ptr<float>());
  Timing timing;
  for (int64_t i = 0; i < f.options.warmup + f.options.runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    net.setInput(blob);
    net.forward();
    if (i >= f.options.warmup)
      timing.ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return timing;
}
#endif

std::string allocator_name() {
  if (!cpu_allocator_installed()) return "LibTorch default (FCN_CPU_ALLOCATOR=system)";
  const auto limit = cpu_allocator_stats().cache_limit_bytes >> 20;
  return "fcn: huge pages" + (limit ? ", block cache " + std::to_string(limit) + " MiB" : std::string(", no block cache"));
}

}  // namespace

void add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "bench", "Speed: ms/image, GFLOP/s and the share of this machine's measured peak, memory, peers in the same run\n"
               "  example: fcn bench --peers                       (FCN-8s VGG16 at 500x500: the paper's setting)\n"
               "  example: fcn bench --dtype bf16 --threads 1,2\n"
               "  example: fcn bench fcn8s.fcn --size 64 --batch 8 --mode train --peers --json\n"
               "  Peers: PyTorch-Python eager on the same architecture and weights (bench/peers/torch_peer.py),\n"
               "  and OpenCV DNN on fcn's own ONNX export. Ratios are fcn time / peer time (< 1: fcn faster).");
  static Flags f;
  f.options.runs = 3;
  cmd->add_option("MODEL", f.model, "model file (default: a randomly initialised --arch)");
  cmd->add_option("--arch", f.arch, "fcn32s | fcn16s | fcn8s | unet (without MODEL)")->capture_default_str();
  cmd->add_option("--backbone", f.backbone, "VGG backbone (without MODEL)")->capture_default_str();
  cmd->add_option("--geometry", f.geometry, "reference | same (without MODEL)")->capture_default_str();
  cmd->add_option("--classes", f.classes, "classes (without MODEL)")->capture_default_str();
  cmd->add_option("--size", f.size, "input HxW or S")->capture_default_str();
  cmd->add_option("--batch", f.options.batch, "images per run")->capture_default_str();
  cmd->add_option("--mode", f.options.mode, "infer | train")->capture_default_str()->check(CLI::IsMember({"infer", "train"}));
  cmd->add_option("--dtype", f.options.dtype, "fp32 | bf16")->capture_default_str()->check(CLI::IsMember({"fp32", "bf16"}));
  cmd->add_option("--threads", f.threads, "thread counts to measure, e.g. 1,2 (default: 1 and all cores)")->delimiter(',');
  cmd->add_option("--runs", f.options.runs, "timed runs (median reported)")->capture_default_str();
  cmd->add_option("--warmup", f.options.warmup, "untimed runs first")->capture_default_str();
  cmd->add_flag("--nchw", f.nchw, "keep activations NCHW (default: channels-last)");
  cmd->add_flag("--peers", f.peers, "also time PyTorch-Python and OpenCV DNN on the same model and input");
  cmd->add_option("--device", f.device, "cpu | cuda")->capture_default_str();
  cmd->add_flag("--json", f.json, "print the results as JSON (ms_per_image, gflops_per_s, ...)");
  cmd->callback([] {
    std::tie(f.options.height, f.options.width) = parse_size(f.size, "--size");
    f.options.device = parse_device(f.device);
    f.options.channels_last = !f.nchw;
    if (f.options.mode == "train") use_cpu_cache_for_training();  // as fcn train does
    if (f.threads.empty()) {  // scaling from 1 thread to every core (LibTorch's own default can be 1 here)
      const int cores = std::max<int>({1, static_cast<int>(std::thread::hardware_concurrency()), torch::get_num_threads()});
      f.threads = cores > 1 ? std::vector<int>{1, cores} : std::vector<int>{1};
    }
    for (const int t : f.threads)
      if (t < 1) fail("--threads", "thread counts must be >= 1, got " + std::to_string(t));
    Model model;
    if (!f.model.empty()) {
      model = load_model(f.model);
    } else {
      torch::manual_seed(0);
      model.net = build_net(default_config(f), "--arch");
      model.meta = default_meta(model.net->num_classes(), model.net->in_channels());
    }
    const std::string name = f.model.empty() ? (f.arch == "unet" ? std::string("unet") : f.arch + " " + f.backbone + " " + f.geometry) : f.model;
    const double gflop = forward_flops(*model.net, f.options.height, f.options.width) * 1e-9 * static_cast<double>(f.options.batch) *
                         (f.options.mode == "train" ? 3.0 : 1.0);  // backward ~ 2x forward
    const int max_threads = *std::max_element(f.threads.begin(), f.threads.end());
    torch::set_num_threads(max_threads);
    const double gemm = sgemm_gflops(), conv_peak = conv_gflops(parse_dtype(f.options.dtype));

    nlohmann::json runs = nlohmann::json::array();
    for (const int threads : f.threads) {
      torch::set_num_threads(threads);
      const auto timing = time_net(*model.net, f.options);
      const double ms = timing.median() / static_cast<double>(f.options.batch);
      runs.push_back({{"threads", threads}, {"ms_per_image", ms}, {"images_per_s", 1000.0 / ms},
                      {"min_ms", timing.min()}, {"max_ms", timing.max()}, {"gflops_per_s", gflop / (timing.median() * 1e-3)}});
    }
    const double rss = peak_rss_mib();
    // Peers after fcn, so fcn's peak memory is its own. They time shapes, not values: the weights
    // go back to fp32 (after a bf16 run they are the rounded values).
    model.net->to(torch::kCPU, torch::kFloat);
    nlohmann::json peers = nlohmann::json::object();
    if (f.peers) {
#if defined(FCN_WITH_OPENCV) && defined(FCN_WITH_ONNX)
      const bool opencv = f.options.mode == "infer" && f.options.device.is_cpu();
#else
      const bool opencv = false;
#endif
      const PeerFiles files(model, f.options, opencv);
      const std::string what = f.options.mode == "infer" ? "PyTorch-Python eager, NCHW fp32, inference_mode"
                                                         : "PyTorch-Python eager, NCHW fp32, SGD momentum";
      // Every peer at every thread count fcn ran, so each ratio compares like with like.
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
      for (const int threads : f.threads) {
        for (const bool tuned : {false, true}) {
          const auto torch_peer = run_torch_peer(files, f, threads, tuned);
          record(tuned ? "pytorch_tuned_malloc" : "pytorch", threads,
                 Timing{torch_peer["ms"].get<std::vector<double>>()}.median() / f.options.batch,
                 {{"peak_rss_mib", torch_peer["peak_rss_mib"]}, {"version", torch_peer["torch"]},
                  {"what", tuned ? what + ", with " + kTunedMalloc : what}});
        }
#if defined(FCN_WITH_OPENCV) && defined(FCN_WITH_ONNX)
        if (opencv)
          record("opencv_dnn", threads, run_opencv_peer(opencv_net, f, model.net->in_channels(), threads).median() / f.options.batch,
                 {{"version", CV_VERSION}, {"what", "cv::dnn::readNetFromONNX on fcn export --onnx, CPU"}});
#endif
      }
    }

    const auto& best = runs.back();
    nlohmann::json result = {{"model", name}, {"mode", f.options.mode}, {"dtype", f.options.dtype},
                             {"size", {f.options.height, f.options.width}}, {"batch", f.options.batch},
                             {"device", f.options.device.str()}, {"channels_last", f.options.channels_last},
                             {"gflop_per_run", gflop}, {"runs", runs}, {"ms_per_image", best["ms_per_image"]},
                             {"gflops_per_s", best["gflops_per_s"]}, {"sgemm_gflops_per_s", gemm}, {"conv_gflops_per_s", conv_peak},
                             {"fraction_of_conv_peak", best["gflops_per_s"].get<double>() / conv_peak},
                             {"peak_rss_mib", rss}, {"peers", peers},
                             {"cpu_allocator", allocator_name()}};
    for (auto& [peer, value] : peers.items())
      result["peers"][peer]["ratio"] = best["ms_per_image"].get<double>() / value["ms_per_image"].get<double>();
    for (auto& run : result["runs"])
      for (auto& [peer, value] : peers.items())
        run["ratio"][peer] = run["ms_per_image"].get<double>() / value["by_threads"][std::to_string(run["threads"].get<int>())].get<double>();
    if (f.json) {
      std::cout << result.dump(2) << "\n";
      return;
    }
    std::printf("%s, %s %s, %ldx%ld, batch %ld, %s%s: %.1f GFLOP per run\n", name.c_str(), f.options.mode.c_str(),
                f.options.dtype.c_str(), f.options.height, f.options.width, f.options.batch, f.options.device.str().c_str(),
                f.options.channels_last ? ", channels-last" : "", gflop);
    std::printf("machine (same run): SGEMM %.0f GFLOP/s, 3x3 conv %.0f GFLOP/s (%s)\n", gemm, conv_peak, f.options.dtype.c_str());
    for (const auto& r : runs)
      std::printf("  fcn, %d thread(s): %9.1f ms/image  %6.2f images/s  %6.1f GFLOP/s (%.0f%% of conv peak)  [%.1f .. %.1f ms]\n",
                  r["threads"].get<int>(), r["ms_per_image"].get<double>(), r["images_per_s"].get<double>(),
                  r["gflops_per_s"].get<double>(), 100 * r["gflops_per_s"].get<double>() / conv_peak,
                  r["min_ms"].get<double>(), r["max_ms"].get<double>());
    for (const auto& [peer, value] : result["peers"].items()) {
      std::printf("  %s: %s\n", peer.c_str(), value["what"].get<std::string>().c_str());
      for (const auto& r : result["runs"]) {
        const auto threads = std::to_string(r["threads"].get<int>());
        std::printf("    %s thread(s): %9.1f ms/image  fcn/peer = %.2f\n", threads.c_str(),
                    value["by_threads"][threads].get<double>(), r["ratio"][peer].get<double>());
      }
    }
    std::printf("CPU allocator: %s\n", result["cpu_allocator"].get<std::string>().c_str());
    std::printf("peak memory: fcn %.0f MiB", result["peak_rss_mib"].get<double>());
    if (peers.contains("pytorch")) std::printf(", PyTorch-Python %.0f MiB", peers["pytorch"]["peak_rss_mib"].get<double>());
    std::printf("\n");
  });
}

}  // namespace fcn::cli
