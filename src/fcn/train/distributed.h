// Data-parallel training on LibTorch's c10d: one process per rank (a CPU socket or a GPU), a
// TCPStore rendezvous at MASTER_ADDR:MASTER_PORT, and a process group (Gloo on the CPU; NCCL for
// CUDA tensors when LibTorch has it) that sums gradients and batch statistics across ranks.
// Launchers start the ranks and set RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT
// (torchrun, Kubernetes' PyTorchJob; Slurm's SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID), or
// launch_local() starts N ranks on this machine (fcn train --nproc N). c10d headers stay in the .cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/arg.h>
#include <torch/types.h>

namespace fcn {

struct DistributedOptions {
  TORCH_ARG(int64_t, rank) = 0;
  TORCH_ARG(int64_t, world_size) = 1;
  TORCH_ARG(int64_t, local_rank) = 0;  // rank on this machine: picks the GPU (cuda:LOCAL_RANK)
  TORCH_ARG(std::string, master_addr) = "127.0.0.1";
  TORCH_ARG(int64_t, master_port) = 29500;
  // How long a rank waits for the others (rendezvous and every collective) before failing.
  TORCH_ARG(double, timeout_seconds) = 300;
  // Where each setting came from ("RANK", "--rank", ...): errors name it.
  TORCH_ARG(std::string, rank_source) = "RANK";
  TORCH_ARG(std::string, world_size_source) = "WORLD_SIZE";
  TORCH_ARG(std::string, master_source) = "MASTER_ADDR/MASTER_PORT";
};

// The launcher's environment: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, else Slurm's
// SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID (with MASTER_ADDR/PORT still needed from the job
// script). No RANK/WORLD_SIZE at all: a single process (world_size 1). fcn::Error names the
// variable that is missing or malformed.
DistributedOptions distributed_from_environment();
// "tcp://HOST:PORT" (torch.distributed's init_method) into master_addr / master_port.
void set_dist_url(DistributedOptions& options, const std::string& url);
// Ranges and consistency of the settings; errors name the variable or flag they came from.
void validate(const DistributedOptions& options);
// The device a rank runs on: one GPU per rank, so a CUDA device without an index becomes
// cuda:LOCAL_RANK; an indexed GPU or the CPU stays as given.
torch::Device rank_device(const torch::Device& requested, const DistributedOptions& options);

// One rank's connection to the others. All ranks must call the collectives in the same order
// with tensors of the same shapes; a rank that dies or stalls makes the others' next collective
// fail (fcn::Error) within the timeout instead of hanging.
class Communicator {
 public:
  // Rendezvous: rank 0 serves the TCPStore, every rank connects and checks that all agree on
  // WORLD_SIZE; then the process group. Fails fast, naming the variable, on a port in use, an
  // unreachable master or a WORLD_SIZE that differs from rank 0's.
  static std::shared_ptr<Communicator> connect(const DistributedOptions& options);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int64_t rank() const;
  int64_t world_size() const;
  bool is_main() const { return rank() == 0; }

  // In place: each tensor becomes its sum over the ranks.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors);
  // In place: each tensor becomes rank `root`'s.
  void broadcast(std::vector<torch::Tensor>& tensors, int64_t root = 0);
  // Sums the parameters' gradients over the ranks in flat buckets of about `bucket_bytes`, all
  // buckets in flight at once. An undefined gradient counts as zeros (and is then defined).
  void all_reduce_gradients(const std::vector<torch::Tensor>& parameters, int64_t bucket_bytes = 25 << 20);
  // A statistic summed over a batch that is split across ranks: local + (sum over ranks - local),
  // the second term detached. Its value is the whole batch's on every rank; its gradient is this
  // rank's share, so gradients summed over ranks are the gradient of the whole batch's loss.
  torch::Tensor batch_sum(const torch::Tensor& local);
  // Logical OR of `flag` over the ranks (one collective): Ctrl-C on any rank stops all of them.
  bool any(bool flag);
  // Wall time this rank has spent waiting for collectives so far (communication, and waiting for
  // slower ranks): what overlapping them with the backward pass could at most save.
  double collective_seconds() const;

 private:
  struct State;
  explicit Communicator(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// fcn train --nproc N: runs `argv` (this program's arguments, without --nproc) as N ranks of one
// job on this machine (127.0.0.1, a free port), each with the environment a launcher sets and
// FCN_NUM_THREADS = threads_per_rank. Forwards Ctrl-C / SIGTERM to the ranks; when one rank fails
// the others are stopped. Returns the job's exit code: 0, else the first failing rank's (128 +
// signal for a killed one), after printing which rank failed.
int launch_local(int64_t nproc, const std::vector<std::string>& argv, int64_t threads_per_rank);

}  // namespace fcn
