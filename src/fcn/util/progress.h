// Progress on long work: a redrawn bar with rate and ETA on a terminal, plain lines (every ~10%)
// otherwise, so logs stay readable. Also the Ctrl-C flag long loops poll to stop cleanly.
#pragma once

#include <chrono>
#include <string>

namespace fcn {

class Progress {
 public:
  Progress(std::string label, int64_t total, bool quiet = false);
  // `done` of `total` finished; `status` is shown after the bar (e.g. "loss 0.31").
  void update(int64_t done, const std::string& status = "");
  void finish(const std::string& status = "");
  double seconds() const;

 private:
  std::string label_;
  int64_t total_;
  bool quiet_, tty_;
  int64_t last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
};

// While alive, SIGINT/SIGTERM set a flag instead of killing the process (restored on destruction); a
// second one while the flag is set kills it as usual (a user pressing Ctrl-C again to force the quit).
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
  static bool requested();
  static void request();  // as if Ctrl-C was pressed (tests)
  static void clear();
};

}  // namespace fcn
