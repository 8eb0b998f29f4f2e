#include "fcn/util/allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fcn/util/error.h"

#include <cstdint>
#include <cstdlib>
#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fcn {
namespace {

// From 1 MiB up, blocks are ours. (Leaving 1-32 MiB to glibc, whose heap keeps such blocks once
// its mmap threshold has adapted, was as fast but held ~150 MiB more at FCN-8s 500^2 and ~300 MiB
// more for U-Net 512^2: resident memory above PyTorch-Python's.)
constexpr size_t kLargeBlock = size_t{1} << 20;
constexpr size_t kHugePage = size_t{2} << 20;

// glibc's heap, for the blocks left to it. glibc serves a block from 128 KiB up with a fresh mmap,
// and hands freed memory at the top of its heap back to the kernel from 128 KiB up; it raises
// both limits (up to 32 MiB and 64 MiB) only when a block it had mapped is freed. Under fcn's
// allocator glibc seldom sees such a block, so every tensor of 128 KiB to 1 MiB (a small net's
// activations, a 128x128x3x3 weight gradient) was mapped, faulted in and unmapped again at every
// step: the first epoch of the demo's FCN-32s took 14.9 s instead of 8.1 s on the Zen 5 (until
// validation happened to free a big enough block). So glibc starts where its own rule ends: its
// heap serves everything below the blocks it is not given (1 MiB under fcn's allocator, 32 MiB
// under the system one) and keeps up to 64 MiB of freed top. A user's own thresholds
// (MALLOC_MMAP_THRESHOLD_ and the like, or the same GLIBC_TUNABLES), or FCN_CPU_ALLOCATOR=system,
// leave glibc as it is.
constexpr size_t kGlibcTrimThreshold = size_t{64} << 20;
constexpr size_t kGlibcDynamicMax = size_t{32} << 20;  // glibc's own ceiling (64-bit)

// The user set one of the four settings that turn glibc's dynamic thresholds off (and that fcn
// would set): as an environment variable or a tunable. Others (arena_max, common in containers;
// tcache_*) leave glibc's rule, and fcn's settling, as they are.
bool user_tuned_malloc() {
  static constexpr std::array<std::array<const char*, 2>, 4> kSettings{{{"MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold="},
                                                                        {"MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold="},
                                                                        {"MALLOC_MMAP_MAX_", "glibc.malloc.mmap_max="},
                                                                        {"MALLOC_TOP_PAD_", "glibc.malloc.top_pad="}}};
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  for (const auto& [variable, tunable] : kSettings)
    if (std::getenv(variable) != nullptr || (tunables != nullptr && std::strstr(tunables, tunable) != nullptr)) return true;
  return false;
}

void settle_glibc_heap(size_t mmap_threshold) {
#if defined(__GLIBC__)
  if (user_tuned_malloc()) return;
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold));
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(kGlibcTrimThreshold));
#else
  (void)mmap_threshold;
#endif
}

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Size classes: multiples of 2 MiB up to 64 MiB, then steps of 1/16 of the next power of two, so
// slightly different image sizes still share blocks and a block wastes at most ~6%.
size_t size_class(size_t n) {
  n = round_up(n, kHugePage);
  if (n <= (size_t{64} << 20)) return n;
  size_t p = size_t{1} << (63 - __builtin_clzll(n - 1) + 1);  // next power of two >= n
  return round_up(n, p / 16);
}

// A run of pages of a freed large block, kept mapped (and faulted in) for reuse.
struct Piece {
  char* addr;
  size_t bytes;
};

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(size_t limit) : limit_(limit) { stats_.cache_limit_bytes = limit; }

  // c10::Allocator's interface as LibTorch 1.13 (allocate const) and LibTorch >= 2.3 (allocate
  // non-const, copy_data pure virtual) declare it: whichever the base has, one of these overrides it,
  // so no `override` on them.
  c10::DataPtr allocate(size_t n) const {
    void* p = n >= kLargeBlock ? allocate_large(n) : c10::alloc_cpu(n);
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DataPtr allocate(size_t n) { return std::as_const(*this).allocate(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  static void release(void* p) {
    if (p == nullptr) return;
    if (!instance().release_large(p)) c10::free_cpu(p);
  }

  static CachingCpuAllocator& instance();

  CpuAllocatorStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void set_limit(size_t limit) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      limit_ = limit;
      stats_.cache_limit_bytes = limit;
    }
    trim();
  }

  void trim() const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, p] : free_) munmap(p, size);
    free_.clear();
    free_at_.clear();
    stats_.cached_bytes = 0;
    stats_.peak_live_bytes = stats_.live_bytes;
  }

 private:
  // Under the block-cache budget (limit_ > 0) a request takes a freed block of its size class or
  // a fresh mapping. Without a budget, freed blocks are recycled within the peak: a request takes
  // the smallest freed block that holds it (its tail stays freed) or gathers freed blocks into
  // one new mapping by moving their pages (mremap, no copy, no fault), so only the bytes beyond
  // what is freed are faulted in. Freeing moves bytes from live to freed, taking never maps more
  // than live needs, so live + freed never exceeds the peak of live bytes: resident memory peaks
  // where unmapping at every free would (FCN-8s 500^2: 1,110 MiB either way), and a repeated
  // forward pass faults in almost nothing (docs/benchmarks.md).
  void* allocate_large(size_t n) const {
    std::vector<Piece> gathered;
    size_t size = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const bool recycle = limit_ == 0;
      size = recycle ? round_up(n, kHugePage) : size_class(n);
      if (void* p = recycle ? take_recycled(size, gathered) : take_same_class(size); p != nullptr) return p;
    }
    void* p = map_aligned(size);
    if (p == nullptr) {
      for (const auto& piece : gathered) munmap(piece.addr, piece.bytes);
      gathered.clear();
      trim();  // give the cache back and try once more before reporting out-of-memory
      p = map_aligned(size);
    }
    if (p == nullptr)
      throw c10::Error({__func__, __FILE__, static_cast<uint32_t>(__LINE__)},
                       "fcn CPU allocator: out of memory allocating " + std::to_string(n >> 20) + " MiB");
    const size_t moved = move_into(static_cast<char*>(p), gathered);
    std::lock_guard<std::mutex> lock(mutex_);
    if (moved > 0) ++stats_.reused;
    if (moved < size) ++stats_.mapped;
    stats_.fresh_bytes += size - moved;
    make_live(p, size);
    keep_within_peak();
    return p;
  }

  // Under mutex_, recycling: unmaps freed blocks while live + freed exceeds the peak of live bytes.
  // Only a fresh mapping made while other threads freed blocks gets there: the pieces it gathered
  // are counted nowhere while their pages move, so blocks freed meanwhile stay cached beside them
  // (4 threads allocating and freeing 1-24 MiB at once went 8 MiB over the peak). The smallest block
  // that covers the excess goes first, else the largest, until it is covered.
  void keep_within_peak() const {
    while (limit_ == 0 && !free_.empty() && stats_.live_bytes + stats_.cached_bytes > stats_.peak_live_bytes) {
      const size_t excess = stats_.live_bytes + stats_.cached_bytes - stats_.peak_live_bytes;
      auto it = free_.lower_bound(excess);
      if (it == free_.end()) it = std::prev(free_.end());
      munmap(it->second, it->first);
      stats_.cached_bytes -= it->first;
      forget(it);
    }
  }

  // Under mutex_: the first `size` bytes of the freed block at `it` (of at least `size` bytes), in
  // use now; the rest of the block stays freed.
  void* take_head(std::multimap<size_t, void*>::iterator it, size_t size) const {
    auto* p = static_cast<char*>(it->second);
    const size_t bytes = it->first;
    forget(it);
    if (bytes > size) add_free(p + size, bytes - size);
    stats_.cached_bytes -= size;
    ++stats_.reused;
    make_live(p, size);
    return p;
  }

  // Under mutex_: a freed block of exactly `size`'s class, else nullptr.
  void* take_same_class(size_t size) const {
    auto it = free_.find(size);
    return it == free_.end() ? nullptr : take_head(it, size);
  }

  // Under mutex_: the head of the smallest freed block of at least `size` bytes, else nullptr
  // with `gathered` holding the largest freed pieces that together cover as much of `size` as
  // there is (taken out of the cache; the caller moves them into a new mapping).
  void* take_recycled(size_t size, std::vector<Piece>& gathered) const {
    if (auto it = free_.lower_bound(size); it != free_.end()) return take_head(it, size);
    size_t covered = 0;
    while (covered < size && !free_.empty()) {
      auto largest = std::prev(free_.end());
      auto* p = static_cast<char*>(largest->second);
      const size_t whole = largest->first, bytes = std::min(whole, size - covered);
      forget(largest);
      if (bytes < whole) add_free(p + bytes, whole - bytes);
      gathered.push_back({p, bytes});
      covered += bytes;
      stats_.cached_bytes -= bytes;
    }
    return nullptr;
  }

  // Moves the pages of `pieces` to the start of `dest`, one after another (they replace the
  // fresh, untouched pages there). A part that cannot move is unmapped and its place in `dest`
  // stays fresh. Returns the bytes moved.
  static size_t move_into(char* dest, const std::vector<Piece>& pieces) {
    size_t offset = 0, moved = 0;
    for (const auto& piece : pieces) {
      moved += move_range(piece.addr, piece.bytes, dest + offset);
      offset += piece.bytes;
    }
    return moved;
  }

  // mremap moves a range within one mapping only, and a block gathered before spans several (one
  // per piece it was made of, each 2 MiB-aligned): such a range is moved by halves. Returns the
  // bytes moved; the rest is unmapped.
  static size_t move_range(char* from, size_t bytes, char* to) {
    if (mremap(from, bytes, bytes, MREMAP_MAYMOVE | MREMAP_FIXED, to) != MAP_FAILED) return bytes;
    if (bytes <= kHugePage) {
      munmap(from, bytes);
      return 0;
    }
    const size_t half = round_up(bytes / 2, kHugePage);
    return move_range(from, half, to) + move_range(from + half, bytes - half, to + half);
  }

  // Under mutex_: a freed block into the books. Recycling merges it with a freed neighbour on either side (the rest of
  // a block take_head split, or a mapping the kernel placed beside another), so that a pass freeing what the last one
  // took finds the same blocks whole again: without merging, FCN-8s ResNet-18-w0.25 at 128^2 gathered pieces (two
  // mremaps) and mapped fresh pages once a forward pass, 10-25% of its time (docs/benchmarks.md). Under a block-cache
  // budget blocks keep their size classes.
  void add_free(char* p, size_t bytes) const {
    if (limit_ == 0) {
      if (auto next = free_at_.find(p + bytes); next != free_at_.end()) {
        const size_t more = next->second;
        forget(find_free(next->first, more));
        bytes += more;
      }
      if (auto after = free_at_.lower_bound(p); after != free_at_.begin()) {
        const auto [start, length] = *std::prev(after);
        if (start + length == p) {
          forget(find_free(start, length));
          p = start;
          bytes += length;
        }
      }
      free_at_.emplace(p, bytes);
    }
    free_.emplace(bytes, p);
  }

  // Under mutex_: the freed block of `bytes` at `p` in free_ (it is there).
  std::multimap<size_t, void*>::iterator find_free(char* p, size_t bytes) const {
    auto [it, end] = free_.equal_range(bytes);
    while (it != end && it->second != p) ++it;
    return it;
  }

  // Under mutex_: the freed block at `it` out of the books (both indexes).
  void forget(std::multimap<size_t, void*>::iterator it) const {
    free_at_.erase(static_cast<char*>(it->second));
    free_.erase(it);
  }

  void make_live(void* p, size_t size) const {
    live_[p] = size;
    stats_.live_bytes += size;
    stats_.peak_live_bytes = std::max(stats_.peak_live_bytes, stats_.live_bytes);
  }

  // mmap with 2 MiB alignment, advised for transparent huge pages (one fault per 2 MiB).
  static void* map_aligned(size_t size) {
    void* raw = mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    auto begin = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = round_up(begin, kHugePage);
    if (aligned > begin) munmap(raw, aligned - begin);
    const uintptr_t tail = aligned + size;
    const uintptr_t end = begin + size + kHugePage;
    if (end > tail) munmap(reinterpret_cast<void*>(tail), end - tail);
#ifdef MADV_HUGEPAGE
    madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
#endif
    return reinterpret_cast<void*>(aligned);
  }

  bool release_large(void* p) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(p);
    if (it == live_.end()) return false;
    const size_t size = it->second;
    live_.erase(it);
    stats_.live_bytes -= size;
    if (limit_ == 0 || stats_.cached_bytes + size <= limit_) {
      add_free(static_cast<char*>(p), size);
      stats_.cached_bytes += size;
    } else {
      munmap(p, size);
    }
    return true;
  }

  size_t limit_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<void*, size_t> live_;
  mutable std::multimap<size_t, void*> free_;
  mutable std::map<char*, size_t> free_at_;  // recycling: the same freed blocks by address, to merge neighbours
  mutable CpuAllocatorStats stats_;
};

size_t requested_limit = 0;
std::atomic<bool> installed{false};
std::mutex install_mutex;

CachingCpuAllocator& CachingCpuAllocator::instance() {
  // Never destroyed: tensors freed during static destruction still find it.
  static auto* allocator = new CachingCpuAllocator(requested_limit);
  return *allocator;
}

}  // namespace

bool install_cpu_allocator(size_t cache_limit_bytes) {
  std::lock_guard<std::mutex> lock(install_mutex);
  if (installed) {
    if (cache_limit_bytes != 0) CachingCpuAllocator::instance().set_limit(cache_limit_bytes);
    return true;
  }
  const char* env = std::getenv("FCN_CPU_ALLOCATOR");
  if (env != nullptr && std::strcmp(env, "system") == 0) return false;
  requested_limit = cache_limit_bytes;
  if (const char* mib = std::getenv("FCN_CPU_CACHE_MIB"); mib != nullptr && cache_limit_bytes == 0)
    requested_limit = static_cast<size_t>(std::strtoull(mib, nullptr, 10)) << 20;
  c10::SetAllocator(c10::DeviceType::CPU, &CachingCpuAllocator::instance(), /*priority=*/1);
  installed = c10::GetAllocator(c10::DeviceType::CPU) == &CachingCpuAllocator::instance();
  if (installed) settle_glibc_heap(kLargeBlock);
  return installed;
}

bool cpu_allocator_installed() { return installed; }

CpuAllocatorStats cpu_allocator_stats() {
  return installed ? CachingCpuAllocator::instance().stats() : CpuAllocatorStats{};
}

void set_cpu_cache_limit(size_t bytes) {
  if (installed) CachingCpuAllocator::instance().set_limit(bytes);
}

namespace {
size_t training_cache_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  const size_t physical = pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : (size_t{8} << 30);
  return std::min(physical / 4, size_t{4} << 30);
}
}  // namespace

void use_cpu_allocator_for_training() {
  if (installed) set_cpu_allocator_policy(CpuAllocatorPolicy::kHugePages);
}

CpuAllocatorPolicy set_cpu_allocator_policy(CpuAllocatorPolicy policy) {
  if (policy == CpuAllocatorPolicy::kSystem) {
    std::lock_guard<std::mutex> lock(install_mutex);
    if (installed) {
      c10::SetAllocator(c10::DeviceType::CPU, c10::GetDefaultCPUAllocator(), /*priority=*/1);
      installed = false;
      CachingCpuAllocator::instance().trim();
      settle_glibc_heap(kGlibcDynamicMax);
    }
    return CpuAllocatorPolicy::kSystem;
  }
  if (!install_cpu_allocator()) return CpuAllocatorPolicy::kSystem;
  if (std::getenv("FCN_CPU_CACHE_MIB") == nullptr)
    set_cpu_cache_limit(policy == CpuAllocatorPolicy::kBlockCache ? training_cache_bytes() : 0);
  return cpu_allocator_policy();
}

CpuAllocatorPolicy cpu_allocator_policy() {
  if (!installed) return CpuAllocatorPolicy::kSystem;
  return cpu_allocator_stats().cache_limit_bytes > 0 ? CpuAllocatorPolicy::kBlockCache : CpuAllocatorPolicy::kHugePages;
}

const char* policy_name(CpuAllocatorPolicy policy) {
  switch (policy) {
    case CpuAllocatorPolicy::kSystem: return "system";
    case CpuAllocatorPolicy::kHugePages: return "huge_pages";
    case CpuAllocatorPolicy::kBlockCache: return "block_cache";
  }
  return "system";
}

CpuAllocatorPolicy parse_allocator_policy(const std::string& name, const std::string& subject) {
  for (const auto policy : {CpuAllocatorPolicy::kSystem, CpuAllocatorPolicy::kHugePages, CpuAllocatorPolicy::kBlockCache})
    if (name == policy_name(policy)) return policy;
  fail(subject, "'" + name + "' is not one of system, huge_pages, block_cache");
}

void release_cached_cpu_memory() {
  if (installed) CachingCpuAllocator::instance().trim();
}

}  // namespace fcn
