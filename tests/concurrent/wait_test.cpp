// concurrent::wait() and as_completed(). Ported from CPython's
// Lib/test/test_concurrent_futures/test_wait.py and test_as_completed.py.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"

namespace concurrent = greenlet::concurrent;

namespace {

class ConcurrentWait : public greenlet_test::GreenletTest {};

TEST_F(ConcurrentWait, FirstCompleted) {
  concurrent::Future<int> a, b, c;
  std::thread t([&] { b.set_result(2); });
  auto r = concurrent::wait(std::vector{a, b, c}, 30, concurrent::FIRST_COMPLETED);
  t.join();
  ASSERT_EQ(r.done.size(), 1u);
  EXPECT_TRUE(r.done[0] == b);
  EXPECT_EQ(r.not_done.size(), 2u);
}

TEST_F(ConcurrentWait, FirstException) {
  concurrent::Future<int> a, b, c;
  a.set_result(1);
  std::thread t([&] { c.set_exception(std::make_exception_ptr(std::runtime_error("x"))); });
  auto r = concurrent::wait(std::vector{a, b, c}, 30, concurrent::FIRST_EXCEPTION);
  t.join();
  EXPECT_EQ(r.done.size(), 2u);
  ASSERT_EQ(r.not_done.size(), 1u);
  EXPECT_TRUE(r.not_done[0] == b);
}

TEST_F(ConcurrentWait, AllCompletedAndTimeout) {
  concurrent::Future<int> a, b;
  a.set_result(1);
  auto r = concurrent::wait(std::vector{a, b}, 0.02);
  EXPECT_EQ(r.done.size(), 1u);
  EXPECT_EQ(r.not_done.size(), 1u);
  b.cancel();
  r = concurrent::wait(std::vector{a, b});
  EXPECT_EQ(r.done.size(), 2u);
}

TEST_F(ConcurrentWait, AsCompletedYieldsInCompletionOrder) {
  concurrent::ThreadPoolExecutor pool(3);
  std::vector<concurrent::Future<int>> fs;
  concurrent::Future<int> late;
  fs.push_back(late);
  for (int i = 1; i <= 3; ++i) fs.push_back(pool.submit([i] { return i; }));
  std::vector<int> seen;
  int count = 0;
  for (const auto& f : concurrent::as_completed(fs, 30)) {
    if (++count == 3) late.set_result(99);
    seen.push_back(f.result());
  }
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen.back(), 99);
  std::sort(seen.begin(), seen.end() - 1);
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 99}));
}

// counted counts its live objects (one thread only).
struct counted {
  counted() { ++alive; }
  counted(const counted&) { ++alive; }
  counted& operator=(const counted&) = delete;
  ~counted() { --alive; }
  static inline int alive = 0;
};

// as_completed() lets go of each future once it yielded it, as Python's
// generator does (bpo-14406): it kept every future, and so every result,
// until the whole range was destroyed (50 results of 1 MiB all alive at the
// end of the loop).
TEST_F(ConcurrentWait, AsCompletedLetsGoOfWhatItYielded) {
  std::vector<concurrent::Future<counted>> fs(10);
  for (auto& f : fs) f.set_result();
  ASSERT_EQ(counted::alive, 10);
  int yielded = 0;
  {
    auto range = concurrent::as_completed(std::move(fs), 30);
    for (const auto& f : range) {
      ++yielded;
      EXPECT_TRUE(f.done());
      EXPECT_EQ(counted::alive, 10 - yielded + 1) << "after " << yielded;  // not yet yielded, and f
    }
    EXPECT_EQ(counted::alive, 0);
  }
  EXPECT_EQ(yielded, 10);
}

// Timeouts no clock reaches, read as Python reads them: infinity (or
// centuries) waits until done, a negative timeout polls. An infinite one
// used to overflow the condition variable's clock: result() and
// as_completed() timed out at once, and wait() spun holding its lock, so
// the thread finishing the futures could not (a hang).
TEST_F(ConcurrentWait, InfiniteTimeoutsWaitAndNegativeOnesPoll) {
  const double infinity = std::numeric_limits<double>::infinity();
  concurrent::Future<int> a, b, c, never;
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    a.set_result(1);
    b.set_result(2);
    c.set_result(3);
  });
  auto r = concurrent::wait(std::vector{a, b}, infinity);
  EXPECT_EQ(r.done.size(), 2u);
  EXPECT_EQ(c.result(1e300), 3);
  t.join();
  int yielded = 0;
  for (auto& f : concurrent::as_completed(std::vector{a, b, c}, infinity)) yielded += f.result();
  EXPECT_EQ(yielded, 6);

  EXPECT_THROW(never.result(-1), concurrent::TimeoutError);
  EXPECT_THROW(never.result(std::nan("")), concurrent::TimeoutError);
  auto polled = concurrent::wait(std::vector{a, never}, -1);
  EXPECT_EQ(polled.done.size(), 1u);
  EXPECT_EQ(polled.not_done.size(), 1u);
}

TEST_F(ConcurrentWait, AsCompletedTimeout) {
  concurrent::Future<int> done, never;
  done.set_result(1);
  std::vector<int> seen;
  try {
    for (const auto& f : concurrent::as_completed(std::vector{done, never}, 0.02)) seen.push_back(f.result());
    FAIL() << "no TimeoutError";
  } catch (const concurrent::TimeoutError&) {
  }
  EXPECT_EQ(seen, std::vector<int>{1});
}

// Python's FIRST_EXCEPTION: a cancelled future counts as completed, never as
// raised (_AllCompletedWaiter.add_cancelled only decrements the count). So
// wait() goes on after cancellations, before and during the call, until the
// rest finish or one raises.
TEST_F(ConcurrentWait, FirstExceptionCountsCancelledAsCompletedNotRaised) {
  concurrent::Future<int> before, a, b, c;
  before.cancel();
  std::thread t([&] {
    a.cancel();
    b.cancel();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    c.set_result(3);
  });
  auto r = concurrent::wait(std::vector{before, a, b, c}, 30, concurrent::FIRST_EXCEPTION);
  t.join();
  EXPECT_EQ(r.done.size(), 4u);  // it waited for c: no cancellation ended it
  EXPECT_TRUE(r.not_done.empty());

  auto all_cancelled = concurrent::wait(std::vector{before, a, b}, 0, concurrent::FIRST_EXCEPTION);
  EXPECT_EQ(all_cancelled.done.size(), 3u);

  concurrent::Future<int> raises, never;
  std::thread t2([&] { raises.set_exception(std::make_exception_ptr(std::runtime_error("x"))); });
  r = concurrent::wait(std::vector{before, raises, never}, 30, concurrent::FIRST_EXCEPTION);
  t2.join();
  EXPECT_EQ(r.done.size(), 2u);
  ASSERT_EQ(r.not_done.size(), 1u);
  EXPECT_TRUE(r.not_done[0] == never);
}

// raised() says whether a future ended with an exception, without throwing:
// not while pending, not when it returned, not when cancelled.
TEST_F(ConcurrentWait, RaisedIsANonThrowingQuery) {
  concurrent::Future<int> pending, returned, cancelled, raised;
  returned.set_result(1);
  cancelled.cancel();
  raised.set_exception(std::make_exception_ptr(std::runtime_error("x")));
  EXPECT_FALSE(pending.state()->raised());
  EXPECT_FALSE(returned.state()->raised());
  EXPECT_FALSE(cancelled.state()->raised());
  EXPECT_TRUE(raised.state()->raised());
}

// A future listed several times (handles sharing one state) is one future:
// wait() counts it once and reports it once, where first listed, as Python's
// wait() makes a set of its futures (it was one entry per listing: done=3
// for [a, b, a]).
TEST_F(ConcurrentWait, SameFutureListedTwice) {
  concurrent::Future<int> a, b;
  std::thread t([&] {
    a.set_result(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    b.set_result(2);
  });
  auto r = concurrent::wait(std::vector{a, b, a}, 30, concurrent::ALL_COMPLETED);
  t.join();
  ASSERT_EQ(r.done.size(), 2u);
  EXPECT_TRUE(r.done[0] == a && r.done[1] == b);
  EXPECT_TRUE(r.not_done.empty());

  concurrent::Future<int> c, d;
  std::thread t2([&] { c.set_result(3); });
  r = concurrent::wait(std::vector{d, c, d, c}, 30, concurrent::FIRST_COMPLETED);
  t2.join();
  ASSERT_EQ(r.done.size(), 1u);
  EXPECT_TRUE(r.done[0] == c);
  ASSERT_EQ(r.not_done.size(), 1u);
  EXPECT_TRUE(r.not_done[0] == d);

  concurrent::Future<int> e, f;
  std::thread t3([&] { e.set_exception(std::make_exception_ptr(std::runtime_error("x"))); });
  r = concurrent::wait(std::vector{e, f, e}, 30, concurrent::FIRST_EXCEPTION);
  t3.join();
  EXPECT_EQ(r.done.size(), 1u);
  ASSERT_EQ(r.not_done.size(), 1u);
  EXPECT_TRUE(r.not_done[0] == f);

  // Past 16 futures the repeats are found with a hash set.
  std::vector<concurrent::Future<int>> many(20);
  for (auto& g : many) g.set_result(0);
  std::vector<concurrent::Future<int>> twice = many;
  twice.insert(twice.end(), many.rbegin(), many.rend());
  r = concurrent::wait(twice, 0.0);
  ASSERT_EQ(r.done.size(), many.size());
  EXPECT_TRUE(std::equal(r.done.begin(), r.done.end(), many.begin()));
}

// as_completed() yields a future listed several times once (CPython issue
// 20367); it yielded it once per listing.
TEST_F(ConcurrentWait, AsCompletedYieldsARepeatedFutureOnce) {
  concurrent::Future<int> done_early;
  done_early.set_result(1);
  int n = 0;
  for (const auto& f : concurrent::as_completed(std::vector{done_early, done_early, done_early}, 30)) {
    EXPECT_TRUE(f == done_early);
    ++n;
  }
  EXPECT_EQ(n, 1);

  concurrent::Future<int> late;
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    late.set_result(2);
  });
  std::vector<int> seen;
  for (const auto& f : concurrent::as_completed(std::vector{late, done_early, late}, 30)) seen.push_back(f.result());
  t.join();
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
}

// On a timeout wait() reports every future done by then, those that finished
// while it slept included, though they did not meet its condition.
TEST_F(ConcurrentWait, TimeoutReportsWhatFinishedMeanwhile) {
  concurrent::Future<int> a, b, never;
  std::thread t([&] {
    a.set_result(1);
    b.cancel();
  });
  auto r = concurrent::wait(std::vector{a, never, b}, 0.3, concurrent::FIRST_EXCEPTION);
  t.join();
  ASSERT_EQ(r.done.size(), 2u);
  EXPECT_TRUE(r.done[0] == a && r.done[1] == b);
  ASSERT_EQ(r.not_done.size(), 1u);
  EXPECT_TRUE(r.not_done[0] == never);

  r = concurrent::wait(std::vector{never}, 0.02, concurrent::FIRST_COMPLETED);
  EXPECT_TRUE(r.done.empty());
  EXPECT_EQ(r.not_done.size(), 1u);
}

// Futures finishing while wait() scans them and hangs its waiter on them:
// one done after the scan but before add_waiter() is reported by
// add_waiter() at once, so the count of completions still reaches the
// number pending; else wait() sleeps forever (this test hangs: without that
// notification, a few rounds in a hundred did). And when the scan alone
// finds the condition met (the last future raised), the futures that
// finished before it, after the scan passed them, are reported done too.
// The finishing thread spins until wait() is about to start, so that the two
// overlap.
TEST_F(ConcurrentWait, FuturesFinishingWhileTheWaiterInstalls) {
  constexpr std::size_t kFutures = 1000;
  for (int round = 0; round < 300; ++round) {
    std::vector<concurrent::Future<int>> fs(kFutures);
    const bool raise_last = round % 2 == 1;
    std::atomic<bool> go{false};
    std::thread t([&] {
      while (!go.load()) {
      }
      for (std::size_t i = 0; i < kFutures; ++i) {
        if (raise_last && i + 1 == kFutures) {
          fs[i].set_exception(std::make_exception_ptr(std::runtime_error("last")));
        } else if (i % 3 == 0) {
          fs[i].cancel();
        } else {
          fs[i].set_result(static_cast<int>(i));
        }
      }
    });
    go.store(true);
    auto r = concurrent::wait(fs, std::nullopt, raise_last ? concurrent::FIRST_EXCEPTION : concurrent::ALL_COMPLETED);
    t.join();
    ASSERT_EQ(r.done.size(), kFutures) << "round " << round;
  }
}

// The same, one step at a time: add_waiter() on a future already done
// notifies at once with its index, a cancelled one not as raised.
TEST_F(ConcurrentWait, AddWaiterOnADoneFutureNotifiesAtOnce) {
  concurrent::Future<int> returned, cancelled, raised, pending;
  returned.set_result(1);
  cancelled.cancel();
  raised.set_exception(std::make_exception_ptr(std::runtime_error("x")));
  auto w = std::make_shared<concurrent::detail::waiter>();
  w->wake_after = 4;
  w->wake_on_raise = true;
  returned.state()->add_waiter(w, 0);
  cancelled.state()->add_waiter(w, 1);
  pending.state()->add_waiter(w, 3);
  {
    std::lock_guard<std::mutex> lock(w->mutex);
    EXPECT_EQ(w->finished, (std::vector<std::size_t>{0, 1}));
    EXPECT_FALSE(w->ready());
  }
  raised.state()->add_waiter(w, 2);
  {
    std::lock_guard<std::mutex> lock(w->mutex);
    EXPECT_EQ(w->finished, (std::vector<std::size_t>{0, 1, 2}));
    EXPECT_TRUE(w->ready());
  }
  pending.state()->remove_waiter(w.get());
  pending.set_result(4);
  std::lock_guard<std::mutex> lock(w->mutex);
  EXPECT_EQ(w->finished.size(), 3u);  // removed: not told
}

}  // namespace
