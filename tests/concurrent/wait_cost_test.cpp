// concurrent::wait() and as_completed() do work linear in their futures:
// counted through detail::wait_counters_now(), never timed. wait() used to
// re-check every future at each completion (and, for FIRST_EXCEPTION, throw
// and catch a CancelledError per cancelled future per check): quadratic.
// Python's wait() counts completions in a waiter instead; so does ours.
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <thread>
#include <vector>

#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"

namespace concurrent = greenlet::concurrent;

namespace {

class ConcurrentWaitCost : public greenlet_test::GreenletTest {};

constexpr std::size_t kFutures = 300;

enum class finish_with { result, cancel, last_raises };

// finish_one_by_one() finishes fs in order from another thread, pausing
// between them so that a waiter that wakes at every completion does so. The
// pauses only make the quadratic version show; the counts the tests assert
// do not depend on them.
std::thread finish_one_by_one(std::vector<concurrent::Future<int>>& fs, finish_with how) {
  return std::thread([&fs, how] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // let wait() block first
    for (std::size_t i = 0; i < fs.size(); ++i) {
      if (how == finish_with::cancel) {
        fs[i].cancel();
      } else if (how == finish_with::last_raises && i + 1 == fs.size()) {
        fs[i].set_exception(std::make_exception_ptr(std::runtime_error("last")));
      } else {
        fs[i].set_result(static_cast<int>(i));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
}

struct cost {
  std::size_t examined;
  std::size_t wakeups;
};

cost wait_cost(finish_with how, concurrent::return_when when) {
  std::vector<concurrent::Future<int>> fs(kFutures);
  const auto before = concurrent::detail::wait_counters_now();
  std::thread t = finish_one_by_one(fs, how);
  auto r = concurrent::wait(fs, 60, when);
  t.join();
  EXPECT_EQ(r.done.size(), kFutures);
  EXPECT_TRUE(r.not_done.empty());
  const auto after = concurrent::detail::wait_counters_now();
  return {after.examined - before.examined, after.wakeups - before.wakeups};
}

// A scan (kFutures), one step per completion (kFutures), a final look at
// those not reported (at most kFutures): 3 per future. Waking at each
// completion to re-check all is kFutures² / 2 = 45,000.
constexpr std::size_t kLinearBound = 4 * kFutures;
// The waiter sleeps until its condition holds: one wake-up, more only if
// spurious.
constexpr std::size_t kWakeupBound = kFutures / 10;

TEST_F(ConcurrentWaitCost, FirstExceptionOverCancelledFuturesIsLinear) {
  cost c = wait_cost(finish_with::cancel, concurrent::FIRST_EXCEPTION);
  EXPECT_LE(c.examined, kLinearBound);
  EXPECT_LE(c.wakeups, kWakeupBound);
}

TEST_F(ConcurrentWaitCost, FirstExceptionOverResultsIsLinear) {
  cost c = wait_cost(finish_with::last_raises, concurrent::FIRST_EXCEPTION);
  EXPECT_LE(c.examined, kLinearBound);
  EXPECT_LE(c.wakeups, kWakeupBound);
}

TEST_F(ConcurrentWaitCost, AllCompletedIsLinear) {
  cost c = wait_cost(finish_with::result, concurrent::ALL_COMPLETED);
  EXPECT_LE(c.examined, kLinearBound);
  EXPECT_LE(c.wakeups, kWakeupBound);
}

// as_completed() hands out one index per wake-up: at most one wake-up per
// future (it wakes only when one is there to hand out).
TEST_F(ConcurrentWaitCost, AsCompletedWakesAtMostOncePerFuture) {
  std::vector<concurrent::Future<int>> fs(kFutures);
  const auto before = concurrent::detail::wait_counters_now();
  std::thread t = finish_one_by_one(fs, finish_with::result);
  std::size_t seen = 0;
  for (const auto& f : concurrent::as_completed(fs, 60)) seen += f.done() ? 1 : 0;
  t.join();
  EXPECT_EQ(seen, kFutures);
  const auto after = concurrent::detail::wait_counters_now();
  EXPECT_LE(after.wakeups - before.wakeups, kFutures + kWakeupBound);
}

}  // namespace
