#include "fcn/bench/profile.h"

#include <algorithm>
#include <map>

#include <torch/csrc/autograd/profiler_legacy.h>

namespace fcn {
namespace {

namespace prof = torch::autograd::profiler;

// One thread's events: each push (operator entry) is closed by the pop with its handle; an
// operator's self time is its own span less the spans of the operators opened inside it.
void fold_thread(const std::vector<prof::LegacyEvent>& events, std::map<std::string, OpTime>& rows) {
  struct Open {
    const prof::LegacyEvent* push;
    double children_us;
  };
  std::vector<Open> stack;
  for (const auto& e : events) {
    if (e.kind() == prof::EventKind::PushRange) {
      stack.push_back({&e, 0.0});
    } else if (e.kind() == prof::EventKind::PopRange) {
      auto open = std::find_if(stack.rbegin(), stack.rend(), [&](const Open& o) { return o.push->handle() == e.handle(); });
      if (open == stack.rend()) continue;  // opened before the profiler started
      const double span = open->push->cpuElapsedUs(e);
      auto& row = rows[open->push->name()];
      row.name = open->push->name();
      row.calls += 1;
      row.total_ms += span / 1e3;
      row.self_ms += (span - open->children_us) / 1e3;
      stack.erase(std::next(open).base(), stack.end());  // it, and anything left open inside it
      if (!stack.empty()) stack.back().children_us += span;
    }
  }
}

}  // namespace

OpProfiler::OpProfiler() {
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
}

OpProfiler::~OpProfiler() {
  if (running_) prof::disableProfilerLegacy();
}

std::vector<OpTime> OpProfiler::finish() {
  running_ = false;
  std::map<std::string, OpTime> rows;
  for (const auto& thread : prof::disableProfilerLegacy()) fold_thread(thread, rows);
  std::vector<OpTime> out;
  for (auto& [name, row] : rows) out.push_back(std::move(row));
  std::sort(out.begin(), out.end(), [](const OpTime& a, const OpTime& b) { return a.self_ms > b.self_ms; });
  return out;
}

}  // namespace fcn
