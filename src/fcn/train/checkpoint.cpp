#include "fcn/train/checkpoint.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fcn/models/registry.h"
#include "fcn/util/atomic_file.h"
#include "fcn/util/error.h"

namespace fcn {

void save_checkpoint(const std::string& path, const Model& model, torch::optim::Optimizer& optimizer, const RunPosition& at) {
  torch::serialize::OutputArchive archive, weights, optimizer_state;
  archive.write("format", c10::IValue(std::string("fcn-checkpoint")));
  archive.write("model_config", c10::IValue(net_config(*model.net).dump()));
  archive.write("model_meta", c10::IValue(meta_to_json(model.meta).dump()));
  model.net->save(weights);
  archive.write("model", weights);
  optimizer.save(optimizer_state);
  archive.write("optimizer", optimizer_state);
  archive.write("epoch", c10::IValue(at.epoch));
  archive.write("step", c10::IValue(at.step));
  archive.write("best_mean_iu", c10::IValue(at.best_mean_iu));
  archive.write("best_epoch", c10::IValue(at.best_epoch));
  archive.write("seconds", c10::IValue(at.seconds));
  archive.write("history", c10::IValue(at.history));
  archive.write("conv", c10::IValue(at.conv));
  archive.write("layout", c10::IValue(at.layout));
  if (at.rng_state.defined()) archive.write("rng_state", at.rng_state);
  if (at.rng_state.defined()) archive.write("rng_device", c10::IValue(at.rng_device));
  if (!at.settings.empty()) archive.write("settings", c10::IValue(at.settings));
  // Streamed into the file: a VGG16's weights and momentum (1.1 GB) never sit in memory a second time.
  write_file_atomic(
      path,
      [&](const ByteSink& sink) {
        archive.save_to([&](const void* data, size_t size) {
          sink(static_cast<const char*>(data), size);
          return size;
        });
      },
      Durability::kDurable);
}

RunPosition load_checkpoint(const std::string& path, Model& model, torch::serialize::InputArchive& archive) {
  RunPosition at;
  try {
    archive.load_from(path);
    c10::IValue value;
    archive.read("format", value);
    if (!value.isString() || value.toStringRef() != "fcn-checkpoint") fail(path, "not an fcn checkpoint");
    archive.read("model_config", value);
    model.net = build_net(nlohmann::json::parse(value.toStringRef()), path);
    archive.read("model_meta", value);
    model.meta = meta_from_json(nlohmann::json::parse(value.toStringRef()), path);
    torch::serialize::InputArchive weights;
    archive.read("model", weights);
    model.net->load(weights);
    archive.read("epoch", value);
    at.epoch = value.toInt();
    archive.read("step", value);
    at.step = value.toInt();
    archive.read("best_mean_iu", value);
    at.best_mean_iu = value.toDouble();
    archive.read("best_epoch", value);
    at.best_epoch = value.toInt();
    archive.read("seconds", value);
    at.seconds = value.toDouble();
    if (archive.try_read("history", value) && value.isString()) at.history = value.toStringRef();
    if (archive.try_read("conv", value) && value.isString()) at.conv = value.toStringRef();
    if (archive.try_read("layout", value) && value.isString()) at.layout = value.toStringRef();
    if (torch::Tensor state; archive.try_read("rng_state", state)) at.rng_state = state;
    if (archive.try_read("rng_device", value) && value.isString()) at.rng_device = value.toStringRef();
    if (archive.try_read("settings", value) && value.isString()) at.settings = value.toStringRef();
  } catch (const c10::Error& e) {
    fail(path, "unreadable checkpoint (truncated or corrupt?): " + first_line(e.what_without_backtrace()));
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("checkpoint holds a bad model config: ") + e.what());
  }
  return at;
}

void load_optimizer_state(const std::string& path, torch::serialize::InputArchive& archive, torch::optim::Optimizer& optimizer) {
  try {
    torch::serialize::InputArchive state;
    archive.read("optimizer", state);
    optimizer.load(state);
  } catch (const c10::Error& e) {
    fail(path, "optimizer state does not match the optimizer of this run (TrainOptions.optimizer): " +
                   first_line(e.what_without_backtrace()));
  }
}

RunLock::RunLock(const std::string& run_dir, const std::string& verb) {
  std::error_code error;
  std::filesystem::create_directories(run_dir, error);
  if (error || !std::filesystem::is_directory(run_dir)) fail(run_dir, "cannot create the run folder: " + error.message());
  const std::string path = run_dir + "/.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(run_dir, std::string("cannot create the run lock .lock: ") + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    const auto n = ::pread(fd_, pid, sizeof pid - 1, 0);
    ::close(fd_);
    fail(run_dir, "is in use by another " + verb + " (pid " + std::string(pid, n > 0 ? static_cast<size_t>(n) : 0) +
                      "); wait for it to finish, or run into another folder");
  }
  const std::string self = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, self.data(), self.size(), 0) != static_cast<ssize_t>(self.size()))
    std::fprintf(stderr, "%s/.lock: cannot record the pid of this %s (disk full?)\n", run_dir.c_str(), verb.c_str());
}

RunLock::~RunLock() { ::close(fd_); }  // closing lets the lock go

OutOfSpace run_out_of_space(const OutOfSpace& error, const std::string& run_dir) {
  std::error_code missing;
  const auto checkpoint = run_dir + "/checkpoint.pt";
  return OutOfSpace(error.subject(), error.message() + (std::filesystem::exists(checkpoint, missing)
                                                            ? "; " + checkpoint + ", the run's last checkpoint, is as it was: free some space, then --resume " +
                                                                  run_dir + " goes on from it"
                                                            : std::string("; no checkpoint of this run was written yet")));
}

namespace {
std::string bytes_text(uint64_t bytes) {
  if (bytes < (uint64_t{1} << 20)) return std::to_string((bytes + 1023) >> 10) + " KiB";
  return number_text(std::round(static_cast<double>(bytes) / (1 << 20) * 10) / 10) + " MiB";
}
}  // namespace

void check_room_for_run(const std::string& run_dir, const torch::nn::Module& net, const std::string& optimizer, int model_files) {
  uint64_t weights = 0;
  for (const auto& tensor : net.parameters()) weights += static_cast<uint64_t>(tensor.numel() * tensor.element_size());
  for (const auto& tensor : net.buffers()) weights += static_cast<uint64_t>(tensor.numel() * tensor.element_size());
  const uint64_t needed = weights * (optimizer == "sgd" ? 2 : 3) + weights * static_cast<uint64_t>(model_files);
  std::error_code error;
  const auto space = std::filesystem::space(run_dir, error);
  if (error || space.available >= needed) return;
  throw run_out_of_space(OutOfSpace(run_dir, "needs about " + bytes_text(needed) + " free for the run's checkpoint" +
                                                 (model_files > 0 ? " and model files" : "") + ", and its file system has " +
                                                 bytes_text(space.available)),
                         run_dir);
}

std::string checkpoint_path(const std::string& run_or_checkpoint) {
  namespace fs = std::filesystem;
  const std::string path = fs::is_directory(run_or_checkpoint) ? run_or_checkpoint + "/checkpoint.pt" : run_or_checkpoint;
  if (!fs::exists(path)) fail(path, "no checkpoint here (a run folder holds checkpoint.pt after its first epoch)");
  return path;
}

}  // namespace fcn
