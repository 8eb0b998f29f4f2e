// fcn's CPU allocator: large blocks are 2 MiB-aligned mappings, reused from the cache when asked
// to keep them, and tensors made with it compute what the default allocator's do.
#include "fcn/util/allocator.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace fcn {
namespace {

TEST(CpuAllocator, LargeBlocksAreHugePageAlignedCachedAndReused) {
  ASSERT_TRUE(install_cpu_allocator(size_t{64} << 20));
  ASSERT_TRUE(cpu_allocator_installed());
  release_cached_cpu_memory();
  const auto before = cpu_allocator_stats();
  EXPECT_EQ(before.cache_limit_bytes, size_t{64} << 20);
  void* first = nullptr;
  {
    auto t = torch::empty({12, 1000, 1000});  // 48 MB: a large block
    first = t.data_ptr();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % (size_t{2} << 20), 0u);
    t.fill_(2.5);
    EXPECT_EQ(t.sum().item<double>(), 2.5 * 12e6);
  }
  auto after_free = cpu_allocator_stats();
  EXPECT_EQ(after_free.mapped, before.mapped + 1);
  const size_t huge = size_t{2} << 20, block = (48000000 + huge - 1) / huge * huge;  // 23 huge pages
  EXPECT_EQ(after_free.cached_bytes, block);
  {
    auto t = torch::empty({12, 990, 1000});  // same size class: served from the cache
    EXPECT_EQ(t.data_ptr(), first);
  }
  EXPECT_EQ(cpu_allocator_stats().reused, before.reused + 1);
  {
    auto big = torch::ones({100, 1 << 20});  // 400 MiB: over the budget, so unmapped when freed
    EXPECT_EQ(big.sum().item<double>(), 100.0 * (1 << 20));
  }
  EXPECT_EQ(cpu_allocator_stats().cached_bytes, block);
  release_cached_cpu_memory();
  EXPECT_EQ(cpu_allocator_stats().cached_bytes, 0u);
}

TEST(CpuAllocator, ConvolutionMatchesAHandComputedSum) {
  install_cpu_allocator();
  // A 3x3 all-ones kernel over an all-ones 600x600 map with zero padding: 9 inside, 4 at corners.
  auto x = torch::ones({1, 4, 600, 600}).contiguous(torch::MemoryFormat::ChannelsLast);
  auto w = torch::ones({2, 4, 3, 3});
  auto y = torch::conv2d(x, w, {}, 1, 1);
  EXPECT_EQ(y[0][1][300][300].item<float>(), 36.0f);
  EXPECT_EQ(y[0][0][0][0].item<float>(), 16.0f);
  EXPECT_EQ(y[0][0][0][300].item<float>(), 24.0f);
  auto small = torch::arange(10);  // small blocks: c10's allocation
  EXPECT_EQ(small.sum().item<int64_t>(), 45);
}

// Without a block-cache budget, freed blocks serve later requests (the smallest that holds one,
// else several moved together) and only the rest is faulted in fresh; in use plus freed never
// exceeds the most ever in use at once.
TEST(CpuAllocator, FreedBlocksAreRecycledWithinThePeak) {
  if (std::getenv("FCN_CPU_ALLOCATOR") != nullptr || std::getenv("FCN_CPU_CACHE_MIB") != nullptr)
    GTEST_SKIP() << "the environment sets the allocator";
  ASSERT_EQ(set_cpu_allocator_policy(CpuAllocatorPolicy::kHugePages), CpuAllocatorPolicy::kHugePages);
  release_cached_cpu_memory();
  constexpr size_t kMiB = size_t{1} << 20;
  const auto floats = [](size_t mib) { return static_cast<int64_t>(mib * kMiB / sizeof(float)); };
  const auto within_peak = [] {
    const auto s = cpu_allocator_stats();
    return s.live_bytes + s.cached_bytes <= s.peak_live_bytes;
  };
  // How many of t's floats equal v, read in place (a comparison would allocate a large block of its own).
  const auto count = [](const torch::Tensor& t, float v) {
    const float* p = t.data_ptr<float>();
    int64_t n = 0;
    for (int64_t i = 0; i < t.numel(); ++i) n += p[i] == v ? 1 : 0;
    return n;
  };
  const auto start = cpu_allocator_stats();
  void* b_at = nullptr;
  {
    auto a = torch::full({floats(64)}, 1.0f), b = torch::full({floats(32)}, 2.0f);
    b_at = b.data_ptr();
  }
  auto s = cpu_allocator_stats();
  EXPECT_EQ(s.cached_bytes, 96 * kMiB);
  EXPECT_EQ(s.fresh_bytes, start.fresh_bytes + 96 * kMiB);
  EXPECT_TRUE(within_peak());
  auto c = torch::empty({floats(16)});  // the head of b's block (the smallest that holds it, or a and b merged)
  EXPECT_EQ(c.data_ptr(), b_at);
  // 80 MiB: a's 64 and b's tail 16, moved together (or, where the kernel mapped b below a, the merged block's rest):
  // their pages either way (fresh ones would read 0).
  auto d = torch::empty({floats(80)});
  EXPECT_EQ(count(d, 1.0f), floats(64));
  EXPECT_EQ(count(d, 2.0f), floats(16));
  d.fill_(3.0f);
  EXPECT_EQ(d.sum().item<double>(), 3.0 * static_cast<double>(floats(80)));
  s = cpu_allocator_stats();
  EXPECT_EQ(s.fresh_bytes, start.fresh_bytes + 96 * kMiB);  // nothing new faulted in
  EXPECT_EQ(s.cached_bytes, 0u);
  EXPECT_TRUE(within_peak());
  auto e = torch::empty({floats(10)});  // nothing freed: fresh pages, a new peak
  s = cpu_allocator_stats();
  EXPECT_EQ(s.fresh_bytes, start.fresh_bytes + 106 * kMiB);
  EXPECT_EQ(s.peak_live_bytes, s.live_bytes);
  c.reset(), d.reset(), e.reset();
  EXPECT_EQ(cpu_allocator_stats().cached_bytes, 106 * kMiB);
  EXPECT_TRUE(within_peak());
  // d's block may be two mappings (a's pages and b's tail), and freed neighbours merge: what moves goes whole where
  // the kernel moves a range over several mappings (Linux 6.17 on), else by halves (allocator.cpp's move_range).
  auto f = torch::empty({floats(110)});
  EXPECT_EQ(count(f, 3.0f), floats(80));  // d's pages
  EXPECT_EQ(count(f, 2.0f), floats(16));  // c's (b's head)
  s = cpu_allocator_stats();
  EXPECT_EQ(s.fresh_bytes, start.fresh_bytes + 110 * kMiB);  // only the 4 MiB nothing freed covered
  EXPECT_TRUE(within_peak());
  f.reset();
  release_cached_cpu_memory();
  EXPECT_EQ(cpu_allocator_stats().cached_bytes, 0u);
}

// Freed neighbours merge: a block split by a smaller request is whole again once both parts are freed, so a repeated
// pattern of requests (a net's forward pass: a 6 MiB result kept, 8 MiB of scratch, then 4 and 2 MiB of it) takes the
// same blocks every time, with no pieces gathered (mremap) and nothing mapped fresh after the first pass.
TEST(CpuAllocator, FreedNeighboursMergeSoARepeatedPassMapsNothingNew) {
  if (std::getenv("FCN_CPU_ALLOCATOR") != nullptr || std::getenv("FCN_CPU_CACHE_MIB") != nullptr)
    GTEST_SKIP() << "the environment sets the allocator";
  ASSERT_EQ(set_cpu_allocator_policy(CpuAllocatorPolicy::kHugePages), CpuAllocatorPolicy::kHugePages);
  release_cached_cpu_memory();
  constexpr int64_t kMiBFloats = (int64_t{1} << 20) / static_cast<int64_t>(sizeof(float));
  void* whole_at = nullptr;
  { whole_at = torch::empty({8 * kMiBFloats}).data_ptr(); }
  {
    auto head = torch::empty({4 * kMiBFloats}), tail = torch::empty({4 * kMiBFloats});  // the 8 MiB block, split
    EXPECT_EQ(head.data_ptr(), whole_at);
    EXPECT_EQ(tail.data_ptr(), static_cast<char*>(whole_at) + (size_t{4} << 20));
  }
  EXPECT_EQ(torch::empty({8 * kMiBFloats}).data_ptr(), whole_at) << "the two halves merged back into one block";
  const auto pass = [&] {
    auto result = torch::empty({6 * kMiBFloats});
    { auto scratch = torch::empty({8 * kMiBFloats}); }
    { auto a = torch::empty({4 * kMiBFloats}), b = torch::empty({2 * kMiBFloats}); }
    return result.sum();
  };
  pass();
  const auto after_first = cpu_allocator_stats();
  for (int i = 0; i < 10; ++i) pass();
  const auto s = cpu_allocator_stats();
  EXPECT_EQ(s.fresh_bytes, after_first.fresh_bytes);
  EXPECT_EQ(s.mapped, after_first.mapped);
  EXPECT_LE(s.live_bytes + s.cached_bytes, s.peak_live_bytes);
  release_cached_cpu_memory();
}

// Several threads taking, splitting, gathering and freeing blocks at once: each sees only its own
// values, and the books balance afterwards.
TEST(CpuAllocator, ThreadsRecyclingAtOnceKeepTheirOwnMemory) {
  if (std::getenv("FCN_CPU_ALLOCATOR") != nullptr || std::getenv("FCN_CPU_CACHE_MIB") != nullptr)
    GTEST_SKIP() << "the environment sets the allocator";
  ASSERT_EQ(set_cpu_allocator_policy(CpuAllocatorPolicy::kHugePages), CpuAllocatorPolicy::kHugePages);
  release_cached_cpu_memory();
  const auto start = cpu_allocator_stats();
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int id = 1; id <= 4; ++id) {
    threads.emplace_back([id, &wrong] {
      c10::InferenceMode guard;
      std::mt19937 random(static_cast<unsigned>(id));
      std::vector<torch::Tensor> held;
      for (int i = 0; i < 100; ++i) {
        const int64_t mib = 1 + static_cast<int64_t>(random() % 24);
        held.push_back(torch::full({mib << 18}, static_cast<float>(id * 1000 + i)));  // mib MiB of floats
        if (held.size() > 3) {  // check and free the oldest: its values are still its own
          const auto& t = held.front();
          const float expected = t[0].item<float>();
          if (!(t == expected).all().item<bool>()) ++wrong;
          held.erase(held.begin());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  const auto s = cpu_allocator_stats();
  EXPECT_EQ(s.live_bytes, start.live_bytes);
  EXPECT_LE(s.live_bytes + s.cached_bytes, s.peak_live_bytes);
  EXPECT_GT(s.reused, start.reused);
  release_cached_cpu_memory();
}

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
// Runs in a fresh process: glibc's heap as fcn's allocator leaves it, exit code 0 when it serves
// what it should, else the number of the check that failed.
[[noreturn]] void check_glibc_heap_in_a_fresh_process() {
  const auto mapped = [] { return mallinfo2().hblks; };  // blocks glibc holds as their own mappings
  void* volatile first = nullptr;  // volatile: the compiler may not drop a malloc/free pair
  void* volatile block = nullptr;
  void* volatile big = nullptr;
  mallopt(M_MMAP_THRESHOLD, 128 << 10);  // glibc's defaults, before any block it mapped was freed
  mallopt(M_TRIM_THRESHOLD, 128 << 10);
  const size_t before = mapped();
  first = std::malloc(size_t{256} << 10);
  if (mapped() != before + 1) std::_Exit(10);  // the premise: glibc maps a 256 KiB block then
  std::free(first);
  install_cpu_allocator();
  block = std::malloc(size_t{900} << 10);  // below fcn's 1 MiB: glibc's, from its heap
  if (mapped() != before) std::_Exit(11);
  const size_t heap = mallinfo2().arena;
  std::free(block);
  if (mallinfo2().arena < heap) std::_Exit(12);  // the freed top is kept, not handed back
  set_cpu_allocator_policy(CpuAllocatorPolicy::kSystem);
  big = std::malloc(size_t{16} << 20);  // the system allocator: glibc's heap up to 32 MiB
  if (mapped() != before) std::_Exit(13);
  std::free(big);
  std::_Exit(0);
}

// Without settling glibc, every 128 KiB - 1 MiB tensor was mapped, page-faulted in and unmapped
// again at each training step (the demo's first epochs ran 1.8x slower; allocator.cpp).
TEST(CpuAllocator, GlibcHeapServesTheBlocksLeftToIt) {
  if (std::getenv("FCN_CPU_ALLOCATOR") != nullptr || std::getenv("GLIBC_TUNABLES") != nullptr)
    GTEST_SKIP() << "the environment sets the allocator";
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // the test binary again: a fresh glibc heap
  EXPECT_EXIT(check_glibc_heap_in_a_fresh_process(), testing::ExitedWithCode(0), "");
}

// Only a user's own thresholds leave glibc alone: GLIBC_TUNABLES=glibc.malloc.arena_max (common
// in containers) does not turn fcn's settling off; glibc.malloc.top_pad does (the 900 KiB block is
// mapped again: check 11). fcn reads the variable when it installs its allocator.
TEST(CpuAllocator, OnlyAUsersOwnThresholdsLeaveGlibcAlone) {
  if (std::getenv("FCN_CPU_ALLOCATOR") != nullptr || std::getenv("GLIBC_TUNABLES") != nullptr)
    GTEST_SKIP() << "the environment sets the allocator";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0", 1);
        check_glibc_heap_in_a_fresh_process();
      },
      testing::ExitedWithCode(0), "");
  EXPECT_EXIT(
      {
        setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2:glibc.malloc.top_pad=0", 1);
        check_glibc_heap_in_a_fresh_process();
      },
      testing::ExitedWithCode(11), "");
}
#endif

}  // namespace
}  // namespace fcn
