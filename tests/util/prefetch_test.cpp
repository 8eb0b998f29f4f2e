// The loader's queue: items come back in order whatever the number of threads, a failing item's
// exception reaches the consumer at that item, and no more than `depth` items are made ahead.
#include <atomic>
#include <stdexcept>

#include <gtest/gtest.h>

#include "fcn/util/prefetch.h"

namespace fcn {
namespace {

TEST(Prefetcher, ItemsComeInOrderWhateverTheThreads) {
  for (const int64_t workers : {0, 1, 3, 8}) {
    Prefetcher<int64_t> loader(5, 40, workers, 2 * workers, [](int64_t i) { return i * i; });
    for (int64_t i = 5; i < 40; ++i) EXPECT_EQ(loader.next(), i * i) << workers << " workers";
  }
}

TEST(Prefetcher, AnItemsErrorIsRethrownAtThatItem) {
  Prefetcher<int64_t> loader(0, 10, 3, 6, [](int64_t i) -> int64_t {
    if (i == 4) throw std::runtime_error("bad sample 4");
    return i;
  });
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(loader.next(), i);
  EXPECT_THROW(loader.next(), std::runtime_error);
  EXPECT_EQ(loader.next(), 5);
}

TEST(Prefetcher, MakesAtMostDepthItemsAhead) {
  std::atomic<int64_t> made{0};
  Prefetcher<int64_t> loader(0, 100, 4, 3, [&](int64_t i) {
    ++made;
    return i;
  });
  EXPECT_EQ(loader.next(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_LE(made.load(), 1 + 3);  // the one taken and at most 3 ahead of the consumer
}

TEST(Prefetcher, StopsEarlyWithoutHanging) {
  Prefetcher<int64_t> loader(0, 1000, 4, 8, [](int64_t i) { return i; });
  EXPECT_EQ(loader.next(), 0);
}  // destroyed with items pending: the workers are joined

}  // namespace
}  // namespace fcn
