#include "fcn/bench/profile.h"

#include <algorithm>
#include <map>

#include <torch/csrc/autograd/profiler_legacy.h>

namespace fcn {
namespace {

namespace prof = torch::autograd::profiler;

// "[8,128,4,4] [128,128,3,3]": the sizes of an operator's tensor inputs (scalars and lists left out).
std::string shapes_of(const prof::LegacyEvent& e) {
  std::string text;
  for (const auto& sizes : e.shapes()) {
    if (sizes.empty()) continue;
    text += text.empty() ? "[" : " [";
    for (size_t i = 0; i < sizes.size(); ++i) text += (i > 0 ? "," : "") + std::to_string(sizes[i]);
    text += "]";
  }
  return text;
}

// One thread's events: each push (operator entry) is closed by the pop with its handle; an
// operator's self time is its own span less the spans of the operators opened inside it. by_shape:
// rows keyed by name, input shapes and the outermost open operator.
void fold_thread(const std::vector<prof::LegacyEvent>& events, bool by_shape, std::map<std::string, OpTime>& rows) {
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
      const auto* outer = std::next(open) == stack.rend() ? nullptr : stack.front().push;
      const std::string shapes = by_shape ? shapes_of(*open->push) : "", within = by_shape && outer ? outer->name() : "";
      auto& row = rows[std::string(open->push->name()) + '\n' + shapes + '\n' + within];
      row.name = open->push->name();
      row.shapes = shapes;
      row.within = within;
      row.calls += 1;
      row.total_ms += span / 1e3;
      row.self_ms += (span - open->children_us) / 1e3;
      stack.erase(std::next(open).base(), stack.end());  // it, and anything left open inside it
      if (!stack.empty()) stack.back().children_us += span;
    }
  }
}

}  // namespace

OpProfiler::OpProfiler(bool by_shape) : by_shape_(by_shape) {
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU, by_shape));
}

OpProfiler::~OpProfiler() {
  if (running_) prof::disableProfilerLegacy();
}

std::vector<OpTime> OpProfiler::finish() {
  running_ = false;
  std::map<std::string, OpTime> rows;
  for (const auto& thread : prof::disableProfilerLegacy()) fold_thread(thread, by_shape_, rows);
  std::vector<OpTime> out;
  for (auto& [name, row] : rows) out.push_back(std::move(row));
  std::sort(out.begin(), out.end(), [](const OpTime& a, const OpTime& b) { return a.self_ms > b.self_ms; });
  return out;
}

}  // namespace fcn
