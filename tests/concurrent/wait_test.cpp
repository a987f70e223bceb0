// concurrent::wait() and as_completed(). Ported from CPython's
// Lib/test/test_concurrent_futures/test_wait.py and test_as_completed.py.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
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

}  // namespace
