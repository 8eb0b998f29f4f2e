// fcn bench: ms per image, GFLOP/s against this machine's measured SGEMM and conv peaks, peak
// memory, the fast path that ran, and with --peers the same workload in PyTorch, OpenCV DNN and
// ONNX Runtime (bench_peers.h) in the same run; --nproc times data-parallel training's scaling.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "bench_peers.h"
#include "commands.h"
#include "fcn/bench/benchmark.h"
#include "fcn/infer/fast_path.h"
#include "fcn/models/cost.h"
#include "fcn/models/registry.h"
#include "fcn/serialize/model_file.h"
#include "fcn/util/allocator.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/cpu.h"
#include "fcn/util/dtype.h"
#include "fcn/util/error.h"
#include "fcn/util/threads.h"
#include "workload.h"

namespace fcn::cli {
namespace {

struct BenchFlags {
  NetRecipe recipe;  // the net without MODEL, as fcn init and fcn train build it
  std::string model, size = "500", device = "cpu", format = "text", conv = "auto";
  std::vector<int> threads;
  bool peers = false, json = false, nchw = false;
  int64_t profile = 0;  // --profile N: operator rows to print
  bool profile_shapes = false;  // --profile-shapes: rows by operator, input shapes and outermost caller
  int64_t nproc = 1;  // train mode: also as N ranks of a data-parallel job on this machine
  BenchOptions options;
};

// Set by the parent of a --nproc run in each rank's environment: where rank 0 writes its timing.
constexpr const char* kRankOutput = "FCN_BENCH_RANK_OUTPUT";

std::string allocator_name() {
  if (!cpu_allocator_installed()) return "LibTorch default (FCN_CPU_ALLOCATOR=system)";
  const auto limit = cpu_allocator_stats().cache_limit_bytes >> 20;
  return "fcn: huge pages" + (limit ? ", block cache " + std::to_string(limit) + " MiB" : std::string(", freed blocks recycled within the peak"));
}

// Training convs as fcn train's rule runs them (training_rule_path), unless --conv says.
void apply_training_convs(const BenchFlags& f) {
  set_training_conv_algorithm(f.conv == "auto" ? training_rule_path().conv : parse_conv(f.conv, true));
}

// What runs fcn at the current thread count, on the CPU: fcn tune's cached choice for this
// workload (inference, or with --mode train fcn tune --mode train's, as fcn train takes it), else
// the ISA rule (fcn/infer/fast_path.h), put into force. --nchw and --conv override.
FastPath bench_path(const Model& model, const BenchFlags& f) {
  FastPath path;
  const bool train = f.options.mode == "train";
  if (f.options.device.is_cpu()) {
    path = find_path(tune_key(*model.net, f.options.height, f.options.width, f.options.batch, parse_dtype(f.options.dtype), train));
    if (train) {  // the allocator is already fcn train's (use_cpu_allocator_for_training)
      set_training_conv_algorithm(f.conv == "auto" ? path.conv : parse_conv(f.conv, true));
      if (f.conv != "auto") path.conv = training_conv_algorithm(), path.source = "flag";
    } else {
      apply_path(path);
    }
  } else {
    path.allocator = cpu_allocator_policy();
    path.upsampling = upsampling_path();
    path.conv = train ? training_conv_algorithm() : conv_algorithm();
    if (train) path.channels_last = training_channels_last(TrainingLayout::kAuto, f.options.device);
    path.source = train ? "training defaults" : "default";
    path.cuda = f.options.device.is_cuda();
  }
  if (f.nchw) path.channels_last = false, path.source = "flag";
  if (!train && f.conv != "auto") {
    path.conv = parse_conv(f.conv, false);
    path.source = "flag";
    set_conv_algorithm(path.conv);
  }
  return path;
}

// The operator profile of one run: every operator, by self time.
nlohmann::json profile_json(const std::vector<OpTime>& ops) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& op : ops) {
    rows.push_back({{"op", op.name}, {"calls", op.calls}, {"self_ms", op.self_ms}, {"total_ms", op.total_ms}});
    if (!op.shapes.empty()) rows.back()["shapes"] = op.shapes;
    if (!op.within.empty()) rows.back()["within"] = op.within;
  }
  return rows;
}

// fcn itself at every thread count: one row each.
nlohmann::json time_fcn(Model& model, const BenchFlags& f, double gflop) {
  nlohmann::json runs = nlohmann::json::array();
  for (const int threads : f.threads) {
    torch::set_num_threads(threads);
    const auto path = bench_path(model, f);
    auto options = f.options;
    options.channels_last = path.channels_last;
    options.profile = f.profile > 0;
    options.profile_shapes = f.profile_shapes;
    const auto timing = time_net(*model.net, options);
    const double ms = timing.median() / static_cast<double>(f.options.batch);
    runs.push_back({{"threads", threads}, {"ms_per_image", ms}, {"images_per_s", 1000.0 / ms},
                    {"min_ms", timing.min()}, {"max_ms", timing.max()}, {"gflops_per_s", gflop / (timing.median() * 1e-3)},
                    {"path", path.to_json()}, {"path_text", path.describe()}, {"cpu_allocator", allocator_name()}});
    if (options.profile) runs.back()["profile"] = profile_json(timing.profile);
  }
  return runs;
}

// fcn time / peer time, overall (the last thread count) and per thread count.
void add_ratios(nlohmann::json& result) {
  const double headline = result["ms_per_image"].get<double>();
  for (auto& [peer, value] : result["peers"].items()) value["ratio"] = headline / value["ms_per_image"].get<double>();
  for (auto& run : result["runs"])
    for (auto& [peer, value] : result["peers"].items())
      run["ratio"][peer] = run["ms_per_image"].get<double>() / value["by_threads"][std::to_string(run["threads"].get<int>())].get<double>();
}

std::string ms_text(double ms) {
  char text[32];
  std::snprintf(text, sizeof text, ms >= 100 ? "%.0f" : "%.1f", ms);
  return text;
}

// The `rows` operators with the most self time in each run's profile (fcn bench --profile).
void print_profiles(const nlohmann::json& r, int64_t rows) {
  for (const auto& run : r["runs"]) {
    if (!run.contains("profile")) continue;
    double all = 0;
    for (const auto& op : run["profile"]) all += op["self_ms"].get<double>();
    std::printf("  operators at %d thread(s), one run under the profiler (%.1f ms of operator time), most self time first:\n",
                run["threads"].get<int>(), all);
    std::printf("    %-44s %7s %10s %6s %10s\n", "operator", "calls", "self ms", "share", "total ms");
    int64_t shown = 0;
    for (const auto& op : run["profile"]) {
      if (shown++ == rows) break;
      std::printf("    %-44.44s %7ld %10.1f %5.1f%% %10.1f\n", op["op"].get<std::string>().c_str(), op["calls"].get<long>(),
                  op["self_ms"].get<double>(), all > 0 ? 100 * op["self_ms"].get<double>() / all : 0.0, op["total_ms"].get<double>());
      if (op.contains("shapes") || op.contains("within"))  // --profile-shapes: what the row is, under it, in full
        std::printf("      %s%s%s\n", op.value("shapes", std::string()).c_str(), op.contains("within") ? "  in " : "",
                    op.value("within", std::string()).c_str());
    }
  }
}

void print_text(const nlohmann::json& r, int64_t rows) {
  const double conv_peak = r["conv_gflops_per_s"].get<double>();
  std::printf("%s, %s %s, %ldx%ld, batch %ld, %s%s: %.1f GFLOP per run\n", r["model"].get<std::string>().c_str(),
              r["mode"].get<std::string>().c_str(), r["dtype"].get<std::string>().c_str(), r["size"][0].get<long>(),
              r["size"][1].get<long>(), r["batch"].get<long>(), r["device"].get<std::string>().c_str(),
              r["channels_last"].get<bool>() ? ", channels-last" : "", r["gflop_per_run"].get<double>());
  const bool gpu = r["device"].get<std::string>() != "cpu";  // the peaks below were measured where the net ran
  std::printf("machine (same run): %s, ISA class %s; %s%sSGEMM %.0f GFLOP/s, 3x3 conv %.0f GFLOP/s (%s)\n",
              r["cpu"].get<std::string>().c_str(), r["isa"].get<std::string>().c_str(), gpu ? "on " : "",
              gpu ? (r["device"].get<std::string>() + ": ").c_str() : "", r["sgemm_gflops_per_s"].get<double>(), conv_peak,
              r["dtype"].get<std::string>().c_str());
  const auto core = r["blas"]["openblas_core"].get<std::string>();
  if (!gpu && !core.empty() && !openblas_core_has_avx2_kernels(core) && cpu_info().has("avx2"))
    std::printf("note: OpenBLAS, LibTorch's BLAS, runs its %s kernels on this CPU, which it predates (SGEMM %.0f GFLOP/s). fcn's "
                "GEMMs are oneDNN's; for LibTorch's own (torch::mm, nn::Linear) set OPENBLAS_CORETYPE=%s\n",
                printable(core).c_str(), r["blas"]["sgemm_gflops_per_s"].get<double>(), cpu_info().has("avx512f") ? "SkylakeX" : "Haswell");
  for (const auto& run : r["runs"])
    std::printf("  fcn, %d thread(s): %9.1f ms/image  %6.2f images/s  %6.1f GFLOP/s (%.0f%% of conv peak)  [%.1f .. %.1f ms]\n",
                run["threads"].get<int>(), run["ms_per_image"].get<double>(), run["images_per_s"].get<double>(),
                run["gflops_per_s"].get<double>(), 100 * run["gflops_per_s"].get<double>() / conv_peak,
                run["min_ms"].get<double>(), run["max_ms"].get<double>());
  for (const auto& run : r["runs"])
    std::printf("  path at %d thread(s): %s (%s)\n", run["threads"].get<int>(), run["path_text"].get<std::string>().c_str(),
                run["path"]["source"].get<std::string>().c_str());
  print_profiles(r, rows);
  for (const auto& [peer, value] : r["peers"].items()) {
    std::printf("  %s: %s\n", peer.c_str(), value["what"].get<std::string>().c_str());
    for (const auto& run : r["runs"]) {
      const auto threads = std::to_string(run["threads"].get<int>());
      std::printf("    %s thread(s): %9.1f ms/image  fcn/peer = %.2f\n", threads.c_str(),
                  value["by_threads"][threads].get<double>(), run["ratio"][peer].get<double>());
    }
  }
  if (r.contains("peers_skipped"))
    for (const auto& [peer, why] : r["peers_skipped"].items()) std::printf("  %s: skipped: %s\n", peer.c_str(), why.get<std::string>().c_str());
  if (r.contains("data_parallel")) {
    const auto& d = r["data_parallel"];
    std::printf("  data parallel, %ld ranks x %ld thread(s): %.2f images/s vs one process %.2f images/s: scaling efficiency %.2f"
                " (gradient all-reduce %.1f of %.1f ms per batch)\n",
                d["nproc"].get<long>(), d["threads_per_rank"].get<long>(), d["images_per_s"].get<double>(),
                d["one_process_images_per_s"].get<double>(), d["scaling_efficiency"].get<double>(),
                d["all_reduce_ms_per_batch"].get<double>(), d["ms_per_batch"].get<double>());
  }
  std::printf("CPU allocator: %s\n", r["cpu_allocator"].get<std::string>().c_str());
  std::printf("peak memory: fcn %.0f MiB", r["peak_rss_mib"].get<double>());
  if (r["peers"].contains("pytorch")) std::printf(", PyTorch-Python %.0f MiB", r["peers"]["pytorch"]["peak_rss_mib"].get<double>());
  if (r["peers"].contains("onnxruntime"))
    std::printf(", ONNX Runtime %.0f MiB", r["peers"]["onnxruntime"]["peak_rss_mib"].get<double>());
  std::printf("\n");
}

// One row per thread count: the table of docs/benchmarks.md (md) or the same cells as CSV.
void print_rows(const nlohmann::json& r, bool markdown) {
  const std::vector<std::string> header = {"workload", "threads", "fcn ms/image", "GFLOP/s (of conv peak)", "PyTorch", "fcn/PyTorch",
                                           "PyTorch, tuned malloc", "fcn/tuned", "OpenCV DNN", "fcn/OpenCV", "ONNX Runtime", "fcn/ORT",
                                           "peak RSS fcn / PyTorch (MiB)"};
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out = markdown ? "| " : "";
    for (size_t i = 0; i < cells.size(); ++i) {
      const bool quote = !markdown && cells[i].find(',') != std::string::npos;
      out += (i == 0 ? "" : markdown ? " | " : ",") + (quote ? "\"" + cells[i] + "\"" : cells[i]);
    }
    std::printf("%s%s\n", out.c_str(), markdown ? " |" : "");
  };
  line(header);
  if (markdown) line(std::vector<std::string>(header.size(), "---"));
  const std::string name = r["model"].get<std::string>() + " " + r["mode"].get<std::string>() + " " + r["dtype"].get<std::string>() +
                           " " + std::to_string(r["size"][0].get<long>()) + "x" + std::to_string(r["size"][1].get<long>()) +
                           " batch " + std::to_string(r["batch"].get<long>());
  const auto& peers = r["peers"];
  for (const auto& run : r["runs"]) {
    const auto threads = std::to_string(run["threads"].get<int>());
    char gflops[64];
    std::snprintf(gflops, sizeof gflops, "%.0f (%.0f%%)", run["gflops_per_s"].get<double>(),
                  100 * run["gflops_per_s"].get<double>() / r["conv_gflops_per_s"].get<double>());
    std::vector<std::string> cells = {name, threads, ms_text(run["ms_per_image"].get<double>()), gflops};
    for (const char* peer : {"pytorch", "pytorch_tuned_malloc", "opencv_dnn", "onnxruntime"}) {
      if (!peers.contains(peer)) {
        cells.insert(cells.end(), {"-", "-"});
        continue;
      }
      char ratio[32];
      std::snprintf(ratio, sizeof ratio, "%.2f", run["ratio"][peer].get<double>());
      cells.insert(cells.end(), {ms_text(peers[peer]["by_threads"][threads].get<double>()), ratio});
    }
    std::string rss = std::to_string(std::lround(r["peak_rss_mib"].get<double>()));
    if (peers.contains("pytorch")) rss += " / " + std::to_string(std::lround(peers["pytorch"]["peak_rss_mib"].get<double>()));
    cells.push_back(rss);
    line(cells);
  }
  if (markdown)
    std::printf("\nMachine peaks measured in this run: SGEMM %.0f GFLOP/s, 3x3 conv %.0f GFLOP/s (%s); CPU allocator: %s.\n",
                r["sgemm_gflops_per_s"].get<double>(), r["conv_gflops_per_s"].get<double>(), r["dtype"].get<std::string>().c_str(),
                r["cpu_allocator"].get<std::string>().c_str());
}

// One rank of `fcn bench --mode train --nproc N`: its share of the batch, gradients summed over
// the ranks each step (as fcn train does); rank 0 writes the median ms per global batch.
void run_bench_rank(BenchFlags& f, const char* output) {
  const auto job = distributed_from_environment();
  if (f.options.batch % job.world_size() != 0)
    fail("--batch", std::to_string(f.options.batch) + " does not split evenly over " + std::to_string(job.world_size()) + " ranks");
  f.options.batch /= job.world_size();
  f.options.device = rank_device(parse_device(f.device), job);  // as fcn train's ranks run
  f.options.communicator = Communicator::connect(job);
  auto model = workload_model(f.model, f.recipe);
  const auto timing = time_net(*model.net, f.options);
  if (job.rank() != 0) return;
  const double runs = static_cast<double>(f.options.warmup + f.options.runs);  // the collectives of every run, warm-up too
  const auto text = nlohmann::json{{"device", f.options.device.str()},
                                   {"ms_per_batch", timing.median()},
                                   {"min_ms", timing.min()},
                                   {"max_ms", timing.max()},
                                   {"all_reduce_ms_per_batch", 1000.0 * f.options.communicator->collective_seconds() / runs}}
                        .dump();
  write_file_atomic(output, text.data(), text.size());
}

// The same train step as `nproc` ranks of this machine, each with its share of the batch and of
// the cores; images/s and the scaling efficiency against one process with every core.
nlohmann::json time_data_parallel(const BenchFlags& f, const nlohmann::json& one_process) {
  const int64_t threads = std::max<int64_t>(1, available_cpus() / f.nproc);
  const auto dir = std::filesystem::temp_directory_path() / ("fcn-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string output = (dir / "rank0.json").string();
  ::setenv(kRankOutput, output.c_str(), 1);
  auto args = command_line_without({"--nproc", "--threads"});
  args.insert(args.end(), {"--threads", std::to_string(threads)});
  const int code = launch_local(f.nproc, args, threads);
  ::unsetenv(kRankOutput);
  if (code != 0) fail("--nproc", "the ranks failed (exit code " + std::to_string(code) + ")");
  std::ifstream in(output);
  const auto rank0 = nlohmann::json::parse(in);
  std::filesystem::remove_all(dir);
  const double images_per_s = 1000.0 * static_cast<double>(f.options.batch) / rank0["ms_per_batch"].get<double>();
  double one = 0;
  for (const auto& run : one_process) one = std::max(one, run["images_per_s"].get<double>());
  return {{"nproc", f.nproc}, {"threads_per_rank", threads}, {"device", rank0["device"]}, {"ms_per_batch", rank0["ms_per_batch"]},
          {"all_reduce_ms_per_batch", rank0["all_reduce_ms_per_batch"]},
          {"images_per_s", images_per_s}, {"one_process_images_per_s", one}, {"scaling_efficiency", images_per_s / one}};
}

// --nproc N, checked before anything is timed: train mode, and a global batch that splits evenly.
void check_nproc(const BenchFlags& f) {
  if (f.nproc < 1) fail("--nproc", "must be at least 1, got " + std::to_string(f.nproc));
  if (f.nproc == 1) return;
  if (f.options.mode != "train") fail("--nproc", "times data-parallel training: use it with --mode train");
  if (f.options.batch % f.nproc != 0)
    fail("--batch", std::to_string(f.options.batch) + " does not split evenly over --nproc " + std::to_string(f.nproc) + " ranks");
}

// The machine a run measured: its CPU and ISA class, and LibTorch's BLAS on its own with OpenBLAS's kernels for this
// CPU ("" where the BLAS is another one).
nlohmann::json machine_json(const SgemmPeak& gemm) {
  return {{"cpu", cpu_info().name()},
          {"isa", cpu_info().isa_class()},
          {"isa_flags", cpu_info().flags},
          {"openblas_threads", openblas_threads()},  // 0: LibTorch's BLAS is not OpenBLAS's own pthreads pool
          {"blas", {{"sgemm_gflops_per_s", gemm.libtorch_blas}, {"openblas_core", openblas_core()}}}};
}

void run_bench(BenchFlags& f) {
  if (const char* output = std::getenv(kRankOutput); output != nullptr && std::getenv("RANK") != nullptr) {
    std::tie(f.options.height, f.options.width) = parse_size(f.size, "--size");
    f.options.channels_last = !f.nchw && training_channels_last(TrainingLayout::kAuto, f.options.device);
    if (!f.threads.empty()) torch::set_num_threads(f.threads.back());
    use_cpu_allocator_for_training();  // as fcn train's ranks do
    apply_training_convs(f);
    return run_bench_rank(f, output);
  }
  std::tie(f.options.height, f.options.width) = parse_size(f.size, "--size");
  check_batch(f.options.batch, f.size, f.options.height, f.options.width);
  check_nproc(f);
  f.options.device = parse_device(f.device);
  f.options.channels_last = !f.nchw;
  check_dtype_runs_natively(parse_dtype(f.options.dtype), f.options.device, "BenchOptions.dtype");  // before the peak probes
  if (f.options.mode == "train") {  // as fcn train does
    use_cpu_allocator_for_training();
    apply_training_convs(f);
  }
  if (f.threads.empty()) {  // scaling from 1 thread to every core this process may use
    const int cores = available_cpus();
    f.threads = cores > 1 ? std::vector<int>{1, cores} : std::vector<int>{1};
  }
  apply_threads(f.threads);  // validates the counts
  auto model = workload_model(f.model, f.recipe);
  const double gflop = forward_flops(*model.net, f.options.height, f.options.width) * 1e-9 * static_cast<double>(f.options.batch) *
                       (f.options.mode == "train" ? 3.0 : 1.0);  // backward ~ 2x forward
  torch::set_num_threads(*std::max_element(f.threads.begin(), f.threads.end()));
  const auto gemm = sgemm_peak(f.options.device);
  const double conv_peak = conv_gflops(parse_dtype(f.options.dtype), f.options.device);
  const auto runs = time_fcn(model, f, gflop);
  const double rss = peak_rss_mib();
  // Peers after fcn, so fcn's peak memory is its own. They time shapes, not values: the weights
  // go back to fp32 (after a bf16 run they are the rounded values).
  model.net->to(torch::kCPU, torch::kFloat);
  const auto& best = runs.back();
  nlohmann::json result = {{"model", workload_name(f.model, f.recipe)}, {"config", net_config(*model.net)}, {"mode", f.options.mode}, {"dtype", f.options.dtype},
                           {"size", {f.options.height, f.options.width}}, {"batch", f.options.batch},
                           {"device", f.options.device.str()}, {"channels_last", runs.back()["path"]["layout"] == "channels_last"},
                           {"path", runs.back()["path"]},
                           {"gflop_per_run", gflop}, {"runs", runs}, {"ms_per_image", best["ms_per_image"]},
                           {"gflops_per_s", best["gflops_per_s"]}, {"sgemm_gflops_per_s", gemm.best}, {"conv_gflops_per_s", conv_peak},
                           {"fraction_of_conv_peak", best["gflops_per_s"].get<double>() / conv_peak},
                           {"peak_rss_mib", rss}, {"peers", f.peers ? time_peers(model, f.options, f.threads) : nlohmann::json::object()},
                           {"cpu_allocator", runs.back()["cpu_allocator"]}};
  result.update(machine_json(gemm));
  if (result["peers"].contains("skipped")) {  // not timed, and why: kept apart from the peers' ratios
    result["peers_skipped"] = result["peers"]["skipped"];
    result["peers"].erase("skipped");
  }
  if (f.nproc > 1) result["data_parallel"] = time_data_parallel(f, runs);
  add_ratios(result);
  const std::string format = f.json ? "json" : f.format;
  if (format == "json") {
    std::cout << result.dump(2) << "\n";
  } else if (format == "text") {
    print_text(result, f.profile);
  } else {
    print_rows(result, format == "md");
  }
  std::fflush(stdout);  // the result is out even if teardown after it fails (a --device cuda --peers run died at rc 139 once)
}

}  // namespace

void add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "bench", "Speed: ms/image, GFLOP/s and the share of this machine's measured peak, memory, peers in the same run\n"
               "  example: fcn bench --geometry reference --peers   (FCN-8s VGG16 at 500x500: the paper's net and setting)\n"
               "  example: fcn bench --dtype bf16 --threads 1,2\n"
               "  example: fcn bench fcn8s.fcn --size 64 --batch 8 --mode train --peers --format md\n"
               "  example: fcn bench --arch unet --size 128 --batch 8 --mode train --nproc 2   (data-parallel scaling)\n"
               "  Without MODEL the net is the one --arch/--backbone/... name in fcn init and fcn train.\n"
               "  Peers: PyTorch-Python eager on the same architecture and weights (bench/peers/torch_peer.py),\n"
               "  and OpenCV DNN and ONNX Runtime on fcn's own ONNX export. Ratios are fcn time / peer time (< 1: fcn faster).\n"
               "  Which layout, allocator, upsampling and conv algorithm fcn runs is fcn tune's cached choice, else the CPU's ISA rule.");
  static BenchFlags f;
  f.options.runs = 3;
  cmd->add_option("MODEL", f.model, "model file (default: a fresh net of the --arch recipe)");
  add_recipe_flags(cmd, f.recipe);
  add_size_flag(cmd, f.size, "input size");
  cmd->add_option("--batch", f.options.batch, "images per run")->capture_default_str();
  cmd->add_option("--mode", f.options.mode, "infer | train")->capture_default_str()->check(CLI::IsMember({"infer", "train"}));
  add_dtype_flag(cmd, f.options.dtype);
  add_threads_flag(cmd, f.threads, "1 and all cores");
  cmd->add_option("--nproc", f.nproc, "with --mode train: also time N data-parallel ranks on this machine (scaling efficiency;\n"
                                 "  the cores split between them, or with --device cuda one GPU each)")
      ->capture_default_str();
  cmd->add_option("--runs", f.options.runs, "timed runs (median reported)")->capture_default_str();
  cmd->add_option("--warmup", f.options.warmup, "untimed runs first")->capture_default_str();
  add_conv_flag(cmd, f.conv, "the fast path's choice (fcn tune, else the rule: Winograd where built with oneDNN); training: as fcn train");
  cmd->add_flag("--nchw", f.nchw, "activations NCHW (default: the layout fcn tune chose, else the CPU's ISA rule)");
  auto* profile = cmd->add_option("--profile", f.profile,
                  "also run once more under LibTorch's operator profiler and print the N operators\n  with the most self time at each thread count (JSON: runs[].profile, every operator)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_flag("--profile-shapes", f.profile_shapes,
                "with --profile: a row per operator, input shapes and the outermost operator it ran in\n"
                "  (e.g. an aten::copy_ [128,128,3,3] in ConvolutionBackward0's backward; JSON: shapes, within)")
      ->needs(profile);
  cmd->add_flag("--peers", f.peers, "also time PyTorch-Python, OpenCV DNN and ONNX Runtime on the same model and input");
  add_device_flag(cmd, f.device);
  cmd->add_option("--format", f.format, "text | json | md (docs/benchmarks.md's table rows) | csv")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json", "md", "csv"}));
  add_json_flag(cmd, f.json, "the same as --format json: ms_per_image, gflops_per_s, runs, peers, ...");
  add_max_pixels_flag(cmd);
  cmd->callback([] { run_bench(f); });
}

}  // namespace fcn::cli
