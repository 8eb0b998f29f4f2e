#include "fcn/train/distributed.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>

// The process groups this LibTorch's headers can build. Debian's libtorch-dev ships Gloo's headers
// (its group is behind the build's flag); a pip wheel's LibTorch ships neither gloo/ nor nccl.h, and
// then fcn is built for one-process training only (Communicator::connect says so).
#if __has_include(<gloo/algorithm.h>)
#define FCN_HAVE_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#if defined(USE_C10D_NCCL) && __has_include(<nccl.h>)
#define FCN_HAVE_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#include <torch/torch.h>

#include "fcn/util/error.h"

namespace fcn {
namespace {

using Milliseconds = std::chrono::milliseconds;

int64_t integer_variable(const char* name, const char* value) {
  char* end = nullptr;
  errno = 0;
  const long long parsed = std::strtoll(value, &end, 10);
  if (*value == '\0' || *end != '\0' || errno != 0) fail(name, "'" + std::string(value) + "' is not a whole number");
  return parsed;
}

// The first of `names` that is set, or nullptr; `which` gets its name.
const char* first_set(std::initializer_list<const char*> names, std::string& which) {
  for (const char* name : names)
    if (const char* value = std::getenv(name)) {
      which = name;
      return value;
    }
  return nullptr;
}

bool is_loopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1"; }

std::vector<uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }
std::string text_of(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

std::string host_and_pid() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + " pid " + std::to_string(::getpid());
}

}  // namespace

DistributedOptions distributed_from_environment() {
  DistributedOptions options;
  std::string rank_name, size_name, local_name;
  const char* rank = first_set({"RANK", "SLURM_PROCID"}, rank_name);
  const char* size = first_set({"WORLD_SIZE", "SLURM_NTASKS"}, size_name);
  const char* local = first_set({"LOCAL_RANK", "SLURM_LOCALID"}, local_name);
  if (rank == nullptr && size == nullptr) return options;
  if (rank == nullptr) fail(size_name, "is set but RANK is not: a launcher sets both (or neither, for one process)");
  if (size == nullptr) fail(rank_name, "is set but WORLD_SIZE is not: a launcher sets both (or neither, for one process)");
  options.rank(integer_variable(rank_name.c_str(), rank)).rank_source(rank_name);
  options.world_size(integer_variable(size_name.c_str(), size)).world_size_source(size_name);
  if (local != nullptr) options.local_rank(integer_variable(local_name.c_str(), local));
  validate(options);  // the ranks first: a RANK out of range is the mistake to report
  if (options.world_size() > 1) {
    const char* addr = std::getenv("MASTER_ADDR");
    const char* port = std::getenv("MASTER_PORT");
    if (addr == nullptr || *addr == '\0') fail("MASTER_ADDR", "is not set: the host of rank 0 (its rendezvous), e.g. MASTER_ADDR=node01");
    if (port == nullptr) fail("MASTER_PORT", "is not set: a free TCP port on MASTER_ADDR, e.g. MASTER_PORT=29500");
    options.master_addr(addr).master_port(integer_variable("MASTER_PORT", port));
  }
  return options;
}

void set_dist_url(DistributedOptions& options, const std::string& url) {
  const std::string scheme = "tcp://";
  const auto colon = url.rfind(':');
  if (url.rfind(scheme, 0) != 0 || colon == std::string::npos || colon < scheme.size() + 1)
    fail("--dist-url", "'" + url + "' is not tcp://HOST:PORT");
  options.master_addr(url.substr(scheme.size(), colon - scheme.size()));
  options.master_port(integer_variable("--dist-url", url.substr(colon + 1).c_str()));
  options.master_source("--dist-url");
}

void validate(const DistributedOptions& options) {
  if (options.world_size() < 1) fail(options.world_size_source(), "must be at least 1, got " + std::to_string(options.world_size()));
  if (options.rank() < 0 || options.rank() >= options.world_size())
    fail(options.rank_source(), std::to_string(options.rank()) + " is not a rank of a job of " + options.world_size_source() + "=" +
                                    std::to_string(options.world_size()) + " (0.." + std::to_string(options.world_size() - 1) + ")");
  if (options.master_port() < 1 || options.master_port() > 65535)
    fail(options.master_source(), "port " + std::to_string(options.master_port()) + " is not in 1..65535");
  if (!(options.timeout_seconds() > 0)) fail("DistributedOptions.timeout_seconds", "must be positive");
}

torch::Device rank_device(const torch::Device& requested, const DistributedOptions& options) {
  if (!requested.is_cuda() || requested.has_index()) return requested;
  return {torch::kCUDA, static_cast<torch::DeviceIndex>(options.local_rank())};
}

struct Communicator::State {
  DistributedOptions options;
  c10::intrusive_ptr<c10d::Store> store;
  // The concrete groups (in LibTorch 1.13 they derive from ProcessGroup, from 2.0 on from Backend:
  // both have these collectives).
#ifdef FCN_HAVE_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#ifdef FCN_HAVE_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;  // made at the first CUDA tensor
#endif
  mutable double waited = 0;                           // seconds in wait()

  std::string where() const {
    return "distributed training (rank " + std::to_string(options.rank()) + " of " + std::to_string(options.world_size()) + ")";
  }
  Milliseconds timeout() const { return Milliseconds(static_cast<int64_t>(options.timeout_seconds() * 1000)); }

  // Waits for every work; a failed or timed-out collective becomes one fcn::Error.
  void wait(std::vector<c10::intrusive_ptr<c10d::Work>>& works) const {
    const auto start = std::chrono::steady_clock::now();
    try {
      for (auto& work : works) work->wait(timeout());
      waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } catch (const std::exception& e) {
      fail(where(), "a collective failed: another rank exited, was killed or stopped answering (" + first_line(e.what()) +
                        "); the run folder keeps the last checkpoint: continue with --resume");
    }
  }

  // `collective` on the group for the tensor's device: NCCL for CUDA tensors where LibTorch has
  // it, else Gloo (which reduces CUDA tensors through host memory).
  template <class Collective>
  c10::intrusive_ptr<c10d::Work> on_group_for(const torch::Tensor& tensor, Collective&& collective) {
#ifdef FCN_HAVE_NCCL
    if (tensor.is_cuda()) {
      if (!nccl)
        nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", store), static_cast<int>(options.rank()),
                                                           static_cast<int>(options.world_size()));
      return collective(*nccl);
    }
#endif
    (void)tensor;
#ifdef FCN_HAVE_GLOO
    return collective(*gloo);
#else
    (void)collective;
    fail(where(), "this fcn was built without a process group (no Gloo headers in its LibTorch)");
#endif
  }

  // `collective(group, {t})` on every tensor, all in flight at once, each tensor changed in place
  // (through a contiguous copy where it is not contiguous, as the groups need).
  template <class Collective>
  void in_place(std::vector<torch::Tensor>& tensors, Collective&& collective) {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    std::vector<torch::Tensor> buffers;
    for (auto& tensor : tensors) {
      std::vector<torch::Tensor> one = {tensor.is_contiguous() ? tensor : tensor.contiguous()};
      buffers.push_back(one[0]);
      works.push_back(on_group_for(tensor, [&](auto& group) { return collective(group, one); }));
    }
    wait(works);
    for (size_t i = 0; i < tensors.size(); ++i)
      if (!buffers[i].is_same(tensors[i])) tensors[i].copy_(buffers[i]);
  }
};

namespace {

// c10d logs a bind or connect failure through glog on stderr before it throws; the exception
// says the same, and fcn reports it as one line.
class QuietStderr {
 public:
  QuietStderr() : saved_(::dup(2)) {
    const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved_ >= 0 && null >= 0) ::dup2(null, 2);
    if (null >= 0) ::close(null);
  }
  ~QuietStderr() {
    if (saved_ < 0) return;
    ::dup2(saved_, 2);
    ::close(saved_);
  }
  QuietStderr(const QuietStderr&) = delete;
  QuietStderr& operator=(const QuietStderr&) = delete;

 private:
  int saved_;
};

c10::intrusive_ptr<c10d::Store> rendezvous_store(const DistributedOptions& o) {
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(o.master_port());
  store_options.isServer = o.rank() == 0;
  store_options.waitWorkers = false;  // the join below waits, and says who is missing
  store_options.timeout = Milliseconds(static_cast<int64_t>(o.timeout_seconds() * 1000));
  const std::string at = o.master_addr() + ":" + std::to_string(o.master_port());
  const bool from_url = o.master_source() == "--dist-url";
  std::string what;
  try {
    const QuietStderr quiet;
    return c10::make_intrusive<c10d::TCPStore>(o.master_addr(), store_options);
  } catch (const std::exception& e) {
    what = first_line(e.what());
  }
  if (o.rank() == 0 && what.find("in use") != std::string::npos)
    fail(from_url ? "--dist-url" : "MASTER_PORT", std::to_string(o.master_port()) +
                                                      " is in use on rank 0's machine (another job?): pick another port");
  if (o.rank() == 0) fail(from_url ? "--dist-url" : "MASTER_PORT", "rank 0 cannot serve the rendezvous on " + at + ": " + what);
  fail(from_url ? "--dist-url" : "MASTER_ADDR", "cannot reach rank 0's rendezvous at " + at + " within " +
                                                    std::to_string(static_cast<int64_t>(o.timeout_seconds())) +
                                                    " s: is rank 0 running, with the same MASTER_ADDR and MASTER_PORT? (" + what + ")");
}

// Every rank claims its rank and checks WORLD_SIZE against rank 0's; rank 0 waits until all joined
// or one reported a mismatch, so a bad launch fails in seconds on every rank that started.
void join(c10d::Store& store, const DistributedOptions& o) {
  const std::string me = host_and_pid(), world = std::to_string(o.world_size());
  const std::string rank_key = "fcn/rank/" + std::to_string(o.rank());
  const auto holder = text_of(store.compareSet(rank_key, {}, bytes_of(me)));
  if (holder != me) {
    store.set("fcn/mismatch", bytes_of(o.rank_source() + "=" + std::to_string(o.rank()) + " was given to two processes"));
    fail(o.rank_source(), std::to_string(o.rank()) + " is taken by another process (" + holder + "): each rank needs its own RANK");
  }
  if (o.rank() == 0) store.set("fcn/world_size", bytes_of(world));
  const auto rank0_world = text_of(store.get("fcn/world_size"));
  if (rank0_world != world) {
    store.set("fcn/mismatch", bytes_of(o.world_size_source() + "=" + world + " on rank " + std::to_string(o.rank())));
    fail(o.world_size_source(), world + " here but " + rank0_world + " on rank 0: every rank needs the same WORLD_SIZE");
  }
  const auto deadline = std::chrono::steady_clock::now() + Milliseconds(static_cast<int64_t>(o.timeout_seconds() * 1000));
  int64_t joined = store.add("fcn/joined", 1);
  while (joined < o.world_size()) {
    if (store.check({"fcn/mismatch"}))
      fail(o.world_size_source(), "another rank disagrees: " + text_of(store.get("fcn/mismatch")));
    if (std::chrono::steady_clock::now() > deadline)
      fail(o.world_size_source(), std::to_string(joined) + " of " + world + " ranks joined within " + number_text(o.timeout_seconds()) +
                                      " s: start all WORLD_SIZE ranks, with the same MASTER_ADDR/MASTER_PORT");
    std::this_thread::sleep_for(Milliseconds(20));
    joined = store.add("fcn/joined", 0);
  }
}

#ifdef FCN_HAVE_GLOO
std::shared_ptr<::gloo::transport::Device> gloo_device(const DistributedOptions& o) {
  if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME")) return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
  if (is_loopback(o.master_addr())) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}
#endif

}  // namespace

std::shared_ptr<Communicator> Communicator::connect(const DistributedOptions& options) {
  validate(options);
#ifndef FCN_HAVE_GLOO
  fail("distributed training", "this fcn was built against a LibTorch without Gloo's headers (a pip wheel ships none), so it "
                               "trains in one process only: build it against Debian's libtorch-dev for several ranks");
#endif
  auto state = std::make_unique<State>();
  state->options = options;
  state->store = rendezvous_store(options);
  join(*state->store, options);
#ifdef FCN_HAVE_GLOO
  auto gloo = c10d::ProcessGroupGloo::Options::create(state->timeout());
  try {
    gloo->devices.push_back(gloo_device(options));
    state->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", state->store),
                                                               static_cast<int>(options.rank()), static_cast<int>(options.world_size()), gloo);
  } catch (const std::exception& e) {
    fail(state->where(), "cannot connect the ranks' process group (" + first_line(e.what()) + ")");
  }
#endif
  return std::shared_ptr<Communicator>(new Communicator(std::move(state)));
}

Communicator::Communicator(std::unique_ptr<State> state) : state_(std::move(state)) {}
Communicator::~Communicator() = default;

int64_t Communicator::rank() const { return state_->options.rank(); }
int64_t Communicator::world_size() const { return state_->options.world_size(); }

void Communicator::all_reduce_sum(std::vector<torch::Tensor>& tensors) {
  state_->in_place(tensors, [](auto& group, std::vector<torch::Tensor>& one) { return group.allreduce(one, c10d::AllreduceOptions()); });
}

void Communicator::broadcast(std::vector<torch::Tensor>& tensors, int64_t root) {
  c10d::BroadcastOptions options;
  options.rootRank = root;
  state_->in_place(tensors, [&](auto& group, std::vector<torch::Tensor>& one) { return group.broadcast(one, options); });
}

void Communicator::all_reduce_gradients(const std::vector<torch::Tensor>& parameters, int64_t bucket_bytes) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : parameters) {
    if (!p.requires_grad()) continue;
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  // Consecutive gradients of one dtype and device share a flat bucket: one collective each.
  std::vector<std::vector<torch::Tensor>> buckets;
  int64_t bytes = bucket_bytes;
  for (const auto& g : grads) {
    const bool fits = !buckets.empty() && bytes + g.nbytes() <= static_cast<size_t>(bucket_bytes) &&
                      buckets.back()[0].scalar_type() == g.scalar_type() && buckets.back()[0].device() == g.device();
    if (!fits) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(g);
    bytes += static_cast<int64_t>(g.nbytes());
  }
  std::vector<torch::Tensor> flats;
  for (const auto& bucket : buckets) {
    std::vector<torch::Tensor> pieces;
    for (const auto& g : bucket) pieces.push_back(g.reshape(-1));
    flats.push_back(torch::cat(pieces));
  }
  all_reduce_sum(flats);
  for (size_t b = 0; b < buckets.size(); ++b) {
    int64_t offset = 0;
    for (auto& g : buckets[b]) {
      g.copy_(flats[b].slice(0, offset, offset + g.numel()).view_as(g));
      offset += g.numel();
    }
  }
}

torch::Tensor Communicator::batch_sum(const torch::Tensor& local) {
  std::vector<torch::Tensor> total = {local.detach().clone()};
  all_reduce_sum(total);
  return local + (total[0] - local.detach());
}

double Communicator::collective_seconds() const { return state_->waited; }

bool Communicator::any(bool flag) {
  std::vector<torch::Tensor> votes = {torch::full({1}, flag ? 1.0f : 0.0f)};
  all_reduce_sum(votes);
  return votes[0].item<float>() > 0;
}

}  // namespace fcn
