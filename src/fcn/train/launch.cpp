// launch_local (distributed.h): N ranks of one job on this machine, as torchrun --nproc-per-node
// starts them, without Python. Each rank is this program again with a launcher's environment.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fcn/train/distributed.h"
#include "fcn/util/error.h"

namespace fcn {
namespace {

std::vector<pid_t> ranks_running;  // read by the signal handler

extern "C" void forward_signal(int signal) {
  for (const pid_t pid : ranks_running)
    if (pid > 0) ::kill(pid, signal);
}

// A port the kernel just handed out on 127.0.0.1 (free now; rank 0 binds it moments later).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
    fail("--nproc", std::string("cannot find a free port on 127.0.0.1: ") + std::strerror(errno));
  ::close(fd);
  return ntohs(address.sin_port);
}

[[noreturn]] void exec_rank(int64_t rank, int64_t nproc, int port, const std::vector<std::string>& argv, int64_t threads) {
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  ::setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 0);  // a user's own setting wins
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv("/proc/self/exe", args.data());
  std::fprintf(stderr, "fcn: rank %ld: cannot start /proc/self/exe: %s\n", static_cast<long>(rank), std::strerror(errno));
  ::_exit(127);
}

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

}  // namespace

int launch_local(int64_t nproc, const std::vector<std::string>& argv, int64_t threads_per_rank) {
  if (nproc < 1) fail("--nproc", "must be at least 1, got " + std::to_string(nproc));
  const int port = free_port();
  std::fflush(nullptr);
  ranks_running.assign(static_cast<size_t>(nproc), 0);
  struct sigaction forward = {}, old_int = {}, old_term = {};
  forward.sa_handler = forward_signal;
  sigemptyset(&forward.sa_mask);
  ::sigaction(SIGINT, &forward, &old_int);
  ::sigaction(SIGTERM, &forward, &old_term);
  for (int64_t rank = 0; rank < nproc; ++rank) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::sigaction(SIGINT, &old_int, nullptr);
      ::sigaction(SIGTERM, &old_term, nullptr);
      exec_rank(rank, nproc, port, argv, threads_per_rank);
    }
    if (pid < 0) fail("--nproc", std::string("cannot start rank ") + std::to_string(rank) + ": " + std::strerror(errno));
    ranks_running[static_cast<size_t>(rank)] = pid;
  }
  // The first rank to fail decides the job's exit code; the others are asked to stop (their next
  // collective would fail anyway) and killed if they have not within a minute.
  int result = 0;
  int64_t left = nproc;
  auto deadline = std::chrono::steady_clock::time_point::max();
  while (left > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      if (std::chrono::steady_clock::now() > deadline) forward_signal(SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(pid < 0 && errno != EINTR ? 0 : 50));
      if (pid < 0 && errno == ECHILD) break;
      continue;
    }
    for (size_t rank = 0; rank < ranks_running.size(); ++rank) {
      if (ranks_running[rank] != pid) continue;
      ranks_running[rank] = 0;
      --left;
      const int code = exit_code(status);
      if (code != 0 && result == 0) {
        result = code;
        if (WIFSIGNALED(status))
          std::fprintf(stderr, "fcn: rank %zu of %ld was killed by signal %d (%s); stopping the others\n", rank, static_cast<long>(nproc),
                       WTERMSIG(status), strsignal(WTERMSIG(status)));
        else if (code != 1 && code != 130)  // 1: the rank printed its own error; 130: Ctrl-C
          std::fprintf(stderr, "fcn: rank %zu of %ld failed (exit code %d); stopping the others\n", rank, static_cast<long>(nproc), code);
        forward_signal(SIGTERM);
        deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      }
    }
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  return result;
}

}  // namespace fcn
