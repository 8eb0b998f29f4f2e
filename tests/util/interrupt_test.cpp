// InterruptGuard: the first Ctrl-C (SIGINT) or SIGTERM asks the work to stop at its next safe point;
// a second one ends the process as the signal would (run in child processes: gtest death tests).
#include <csignal>
#include <cstdlib>

#include <gtest/gtest.h>

#include "fcn/util/progress.h"

namespace fcn {
namespace {

TEST(InterruptGuardDeathTest, FirstSignalAsksSecondOneKills) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto once = [](int signal) {
    InterruptGuard::clear();
    const InterruptGuard guard;
    std::raise(signal);
    std::exit(InterruptGuard::requested() ? 7 : 1);  // still running, the stop asked for
  };
  EXPECT_EXIT(once(SIGINT), testing::ExitedWithCode(7), "");
  EXPECT_EXIT(once(SIGTERM), testing::ExitedWithCode(7), "");
  const auto twice = [](int signal) {
    InterruptGuard::clear();
    const InterruptGuard guard;
    std::raise(signal);
    std::raise(signal);
    std::exit(1);  // not reached: the second signal ends the process
  };
  EXPECT_EXIT(twice(SIGINT), testing::KilledBySignal(SIGINT), "");
  EXPECT_EXIT(twice(SIGTERM), testing::KilledBySignal(SIGTERM), "");
}

}  // namespace
}  // namespace fcn
