#include "fcn/util/progress.h"

#include <atomic>
#include <csignal>
#include <cstdio>

#include <unistd.h>

namespace fcn {
namespace {
std::atomic<bool> interrupt_flag{false};
// The first signal asks the work to stop at its next safe point; a second one (the user insisting)
// ends the process as the signal would have without fcn. Both calls are async-signal-safe.
void on_signal(int signal) {
  if (interrupt_flag.exchange(true)) {
    std::signal(signal, SIG_DFL);
    std::raise(signal);
  }
}
struct sigaction old_int, old_term;
}  // namespace

Progress::Progress(std::string label, int64_t total, bool quiet)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 1)), quiet_(quiet), tty_(isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()) {}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, const std::string& status) {
  if (quiet_) return;
  const double elapsed = seconds();
  const double fraction = static_cast<double>(done) / static_cast<double>(total_);
  const double eta = done > 0 ? elapsed * (1.0 - fraction) / fraction : 0.0;
  if (tty_) {
    const int width = 24, filled = static_cast<int>(fraction * width);
    std::fprintf(stderr, "\r%s [%.*s%*s] %ld/%ld %s  %.0fs, ETA %.0fs \x1b[K", label_.c_str(), filled,
                 "########################", width - filled, "", static_cast<long>(done), static_cast<long>(total_),
                 status.c_str(), elapsed, eta);
    std::fflush(stderr);
  } else {
    const int64_t decile = done * 10 / total_;
    if (decile == last_decile_) return;
    last_decile_ = decile;
    std::fprintf(stderr, "%s %ld/%ld %s (%.0fs, ETA %.0fs)\n", label_.c_str(), static_cast<long>(done),
                 static_cast<long>(total_), status.c_str(), elapsed, eta);
  }
}

void Progress::finish(const std::string& status) {
  if (quiet_) return;
  if (tty_) std::fprintf(stderr, "\r\x1b[K");
  std::fprintf(stderr, "%s done in %.1fs %s\n", label_.c_str(), seconds(), status.c_str());
}

namespace {

// The handler runs on a stack of its own (SA_ONSTACK), one per thread that made a guard, kept for the
// thread's life. On the interrupted code's stack, the kernel's signal frame was followed by heap
// corruption inside oneDNN's sgemm ("corrupted size vs. prev_size", or a crash) in 4 of ~110 Ctrl-Cs
// of fcn predict (Zen 5, two runs at a time); with its own stack, 0 of 150.
void use_signal_stack() {
  thread_local char* memory = nullptr;  // never freed: a signal may come until the thread ends
  if (memory != nullptr) return;
  constexpr size_t kBytes = size_t{1} << 16;  // the handler's frame, AVX-512 state included, with room
  memory = new char[kBytes];
  stack_t stack = {};
  stack.ss_sp = memory;
  stack.ss_size = kBytes;
  sigaltstack(&stack, nullptr);
}

}  // namespace

InterruptGuard::InterruptGuard() {
  use_signal_stack();
  struct sigaction action = {};
  action.sa_handler = on_signal;
  action.sa_flags = SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);
}
InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
}
bool InterruptGuard::requested() { return interrupt_flag; }
void InterruptGuard::request() { interrupt_flag = true; }
void InterruptGuard::clear() { interrupt_flag = false; }

}  // namespace fcn
