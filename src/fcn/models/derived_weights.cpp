#include "fcn/models/derived_weights.h"

#include <ATen/ATen.h>
#include <c10/util/intrusive_ptr.h>

#include <algorithm>
#include <list>
#include <mutex>
#include <string>
#include <vector>

namespace fcn {
namespace {

using WeakImpl = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;

// One source as it was when the entry was made.
struct Source {
  WeakImpl impl;
  const c10::TensorImpl* address = nullptr;
  const void* data = nullptr;
  uint32_t version = 0;

  explicit Source(const torch::Tensor& t)
      : impl(t.getIntrusivePtr()), address(t.unsafeGetTensorImpl()), data(t.data_ptr()), version(t._version()) {}
  bool dead() const { return impl.expired(); }
  // Still the same live tensor, unchanged. Comparing the address only after checking that the weak reference is
  // alive: a dead tensor's address may hold a new one.
  bool same(const torch::Tensor& t) const {
    return !dead() && address == t.unsafeGetTensorImpl() && data == t.data_ptr() && version == t._version();
  }
};

struct Entry {
  std::string kind;
  std::vector<Source> sources;
  torch::Tensor value;
  size_t bytes = 0;
};

struct Cache {
  std::mutex mutex;
  std::list<Entry> entries;  // most recently made last
  DerivedWeightStats stats;
};
Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may die during static destruction
  return *c;
}

bool cacheable(std::initializer_list<torch::Tensor> sources) {
  if (at::GradMode::is_enabled() || sources.size() == 0) return false;
  return std::all_of(sources.begin(), sources.end(),
                     [](const torch::Tensor& t) { return t.defined() && !t.is_inference(); });
}

bool matches(const Entry& e, const std::string& kind, std::initializer_list<torch::Tensor> sources) {
  if (e.kind != kind || e.sources.size() != sources.size()) return false;
  size_t i = 0;
  for (const auto& t : sources)
    if (!e.sources[i++].same(t)) return false;
  return true;
}

// Drops entries of dead sources, then the oldest until `incoming` more bytes fit the budget.
void make_room(Cache& c, size_t incoming) {
  c.entries.remove_if([](const Entry& e) {
    return std::any_of(e.sources.begin(), e.sources.end(), [](const Source& s) { return s.dead(); });
  });
  size_t bytes = 0;
  for (const auto& e : c.entries) bytes += e.bytes;
  while (!c.entries.empty() && bytes + incoming > kDerivedWeightBudgetBytes) {
    bytes -= c.entries.front().bytes;
    c.entries.pop_front();
  }
  c.stats.bytes = bytes;
}

}  // namespace

torch::Tensor derived_weight(const std::string& kind, std::initializer_list<torch::Tensor> sources,
                             const std::function<torch::Tensor()>& make) {
  if (!cacheable(sources)) return make();
  auto& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    for (const auto& e : c.entries)
      if (matches(e, kind, sources)) {
        ++c.stats.hits;
        return e.value;
      }
    ++c.stats.misses;
  }
  torch::Tensor value = make();  // outside the lock: another thread may make the same entry meanwhile
  const size_t bytes = value.defined() ? value.numel() * value.element_size() : 0;
  if (bytes > kDerivedWeightMaxBytes) return value;
  Entry entry{kind, {}, value, bytes};
  for (const auto& t : sources) entry.sources.emplace_back(t);
  std::lock_guard<std::mutex> lock(c.mutex);
  // An entry for a source that has since changed is stale: drop every entry of the same kind whose sources are these
  // tensors (live, but another version).
  c.entries.remove_if([&](const Entry& e) {
    if (e.kind != kind || e.sources.size() != entry.sources.size()) return false;
    for (size_t i = 0; i < e.sources.size(); ++i)
      if (e.sources[i].dead() || e.sources[i].address != entry.sources[i].address) return false;
    return true;
  });
  make_room(c, bytes);
  c.entries.push_back(std::move(entry));
  c.stats.bytes += bytes;
  return value;
}

DerivedWeightStats derived_weight_stats() {
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  DerivedWeightStats s = c.stats;
  s.entries = c.entries.size();
  return s;
}

void clear_derived_weights() {
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.entries.clear();
  c.stats = DerivedWeightStats{};
}

}  // namespace fcn
