// fcn's CPU allocator: large blocks are 2 MiB-aligned mappings, reused from the cache when asked
// to keep them, and tensors made with it compute what the default allocator's do.
#include "fcn/util/allocator.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>

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

}  // namespace
}  // namespace fcn
