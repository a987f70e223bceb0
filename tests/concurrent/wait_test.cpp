// concurrent::wait() and as_completed(). Ported from CPython's
// Lib/test/test_concurrent_futures/test_wait.py and test_as_completed.py.
#include <algorithm>
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
