// as_completed_test.cpp: asyncio::as_completed. Ported from CPython's
// Lib/test/test_asyncio/test_tasks.py (BaseTaskTests.test_as_completed*);
// each case names its source. Here as_completed is iterated (or next() is
// called) from a task; each step awaits and yields a done future.
#include <optional>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::run_briefly;
using asyncio_test::TestError;
using asyncio_test::virtual_time;
using AsCompletedTests = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;
using StringTasks = std::vector<asyncio::Task<std::string>>;

asyncio::Task<std::string> sleep_then(asyncio::event_loop& loop, double delay, std::string value) {
  return loop.create_task([delay, value] { return asyncio::sleep(delay, value); });
}

// test_tasks.py BaseTaskTests.test_as_completed
TEST_F(AsCompletedTests, test_as_completed) {
  asyncio::event_loop loop(virtual_time());
  auto a = sleep_then(loop, 0.1, "a");
  auto b = sleep_then(loop, 0.1, "b");
  auto c = sleep_then(loop, 0.15, "c");
  auto foo = loop.create_task([&] {
    Strings values;
    for (auto f : asyncio::as_completed(StringTasks{b, c, a})) values.push_back(asyncio::await(f));
    return values;
  });
  Strings res = loop.run_until_complete(foo);
  EXPECT_DOUBLE_EQ(loop.time(), 0.15);
  ASSERT_EQ(res.size(), 3u);
  EXPECT_TRUE((res[0] == "a" && res[1] == "b") || (res[0] == "b" && res[1] == "a")) << res[0] << res[1];
  EXPECT_EQ(res[2], "c");
}

// asyncio docs: as_completed yields "in the order they complete" (tasks.py
// _on_completion queues them as their done callbacks run). a and b finish in
// the same iteration, a first (its timer was scheduled first).
// Regression test, this once failed: next() returns the first done future in *input*
// order, so when several finish before the iterating task resumes, they come
// back in input order ("b" before "a"), not completion order.
TEST_F(AsCompletedTests, test_as_completed_completion_order) {
  asyncio::event_loop loop(virtual_time());
  auto a = sleep_then(loop, 0.1, "a");
  auto b = sleep_then(loop, 0.1, "b");
  auto foo = loop.create_task([&] {
    Strings values;
    for (auto f : asyncio::as_completed(StringTasks{b, a})) values.push_back(asyncio::await(f));
    return values;
  });
  EXPECT_EQ(loop.run_until_complete(foo), (Strings{"a", "b"}));
}

// test_tasks.py BaseTaskTests.test_as_completed_with_timeout: the timeout
// covers the whole iteration; the step after it raises TimeoutError.
TEST_F(AsCompletedTests, test_as_completed_with_timeout) {
  asyncio::event_loop loop(virtual_time());
  auto a = sleep_then(loop, 0.1, "a");
  auto b = sleep_then(loop, 0.15, "b");
  auto foo = loop.create_task([&] {
    Strings values;
    asyncio::as_completed<asyncio::Task<std::string>> it(StringTasks{a, b}, 0.12);
    while (!it.empty()) {
      try {
        auto f = it.next();
        values.push_back("1 " + asyncio::await(f));
      } catch (const asyncio::TimeoutError&) {
        values.push_back("2 TimeoutError");
        break;
      }
    }
    return values;
  });
  EXPECT_EQ(loop.run_until_complete(foo), (Strings{"1 a", "2 TimeoutError"}));
  EXPECT_DOUBLE_EQ(loop.time(), 0.12);
  EXPECT_FALSE(b.done());  // as_completed cancels nothing
  loop.run_until_complete(b);
}

// test_tasks.py BaseTaskTests.test_as_completed_with_unused_timeout: the
// timeout's timer goes away once all are done.
TEST_F(AsCompletedTests, test_as_completed_with_unused_timeout) {
  asyncio::event_loop loop(virtual_time());
  auto a = sleep_then(loop, 0.01, "a");
  auto foo = loop.create_task([&] {
    Strings values;
    for (auto f : asyncio::as_completed(StringTasks{a}, 1.0)) values.push_back(asyncio::await(f));
    return values;
  });
  EXPECT_EQ(loop.run_until_complete(foo), (Strings{"a"}));
  EXPECT_DOUBLE_EQ(loop.time(), 0.01);
  auto marker = loop.create_future<>();
  loop.call_later(2.0, [marker]() mutable { marker.set_result(); });
  loop.run_until_complete(marker);
  EXPECT_DOUBLE_EQ(loop.time(), 2.01);
}

// test_tasks.py BaseTaskTests.test_as_completed_... with failures: the
// yielded future holds the exception; awaiting it raises.
TEST_F(AsCompletedTests, test_as_completed_exception) {
  asyncio::event_loop loop(virtual_time());
  auto ok = sleep_then(loop, 0.2, "ok");
  auto bad = loop.create_task([]() -> std::string {
    asyncio::sleep(0.1);
    throw TestError("bad");
  });
  auto foo = loop.create_task([&] {
    Strings values;
    for (auto f : asyncio::as_completed(StringTasks{ok, bad})) {
      try {
        values.push_back(asyncio::await(f));
      } catch (const TestError& e) {
        values.push_back(std::string("error ") + e.what());
      }
    }
    return values;
  });
  EXPECT_EQ(loop.run_until_complete(foo), (Strings{"error bad", "ok"}));
}

// test_tasks.py BaseTaskTests.test_as_completed (already done futures are
// yielded without waiting) and an empty input yields nothing.
TEST_F(AsCompletedTests, test_as_completed_done_and_empty) {
  asyncio::event_loop loop;
  auto done = loop.create_future<int>();
  done.set_result(7);
  auto foo = loop.create_task([&] {
    std::vector<int> values;
    for (auto f : asyncio::as_completed(std::vector{done})) values.push_back(asyncio::await(f));
    for (auto f : asyncio::as_completed(std::vector<asyncio::Future<int>>{})) values.push_back(asyncio::await(f));
    return values;
  });
  EXPECT_EQ(loop.run_until_complete(foo), (std::vector<int>{7}));
}

// test_tasks.py BaseTaskTests.test_as_completed_duplicate_coroutines: the
// input is a set: a future given twice is yielded once.
// Regression test, this once failed: as_completed keeps duplicates and yields the same
// future once per occurrence (3 results instead of 2).
TEST_F(AsCompletedTests, test_as_completed_duplicate_coroutines) {
  asyncio::event_loop loop;
  auto runner = loop.create_task([] {
    Strings result;
    auto c = asyncio::create_task([] { return std::string("ham"); });
    auto d = asyncio::create_task([] { return std::string("spam"); });
    for (auto f : asyncio::as_completed(StringTasks{c, c, d})) result.push_back(asyncio::await(f));
    return result;
  });
  Strings result = loop.run_until_complete(runner);
  EXPECT_EQ(result.size(), 2u);
}

// tasks.py as_completed: cancelling the task iterating it raises
// CancelledError at the step it waits in.
// Regression test, this once failed: same root cause as wait()'s: the cancel() is absorbed by the
// private future of wait_until(), which returns normally; next() finds
// nothing done and raises TimeoutError("as_completed() timed out") although
// no timeout was given.
TEST_F(AsCompletedTests, test_as_completed_cancelled) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  auto a = sleep_then(loop, 10, "a");
  auto foo = loop.create_task([&] {
    try {
      for (auto f : asyncio::as_completed(StringTasks{a})) log.push_back(asyncio::await(f));
    } catch (const asyncio::CancelledError&) {
      log.push_back("CancelledError");
      throw;
    } catch (const asyncio::TimeoutError&) {
      log.push_back("TimeoutError");
      throw;
    }
  });
  run_briefly(loop);
  run_briefly(loop);
  foo.cancel();
  EXPECT_THROW(loop.run_until_complete(foo), asyncio::CancelledError);
  EXPECT_EQ(log, (Strings{"CancelledError"}));
  a.cancel();
  run_briefly(loop);
}

// Several tasks waiting in next() at once (test_tasks.py test_as_completed_concurrent, ported in
// cpython_tasks_port_a_test.cpp): one woken for a finished future but cancelled before it ran
// hands that future to the next waiter, which otherwise waited for ever (a deadlock report).
TEST_F(AsCompletedTests, cancelled_waiter_hands_its_future_on) {
  asyncio::event_loop loop(virtual_time());
  auto a = sleep_then(loop, 0.05, "a");
  std::optional<asyncio::as_completed<asyncio::Task<std::string>>> fs;
  loop.run_until_complete([&] { fs.emplace(StringTasks{a}); });
  auto next = [&] { return fs->next().result(); };
  auto w1 = loop.create_task(next);
  auto w2 = loop.create_task(next);
  // Runs right after as_completed's own callback on a, which woke w1.
  a.add_done_callback([&](asyncio::Future<std::string>&) { w1.cancel(); });
  EXPECT_EQ(loop.run_until_complete(w2), "a");
  EXPECT_TRUE(w1.cancelled());
}

// Several tasks waiting in next() at once all raise TimeoutError at the deadline (asyncio's
// _on_timeout puts a timeout marker for every wrapper still waiting).
TEST_F(AsCompletedTests, every_waiter_times_out_at_the_deadline) {
  asyncio::event_loop loop(virtual_time());
  auto a = sleep_then(loop, 1.0, "a");
  auto b = sleep_then(loop, 1.0, "b");
  std::optional<asyncio::as_completed<asyncio::Task<std::string>>> fs;
  loop.run_until_complete([&] { fs.emplace(StringTasks{a, b}, 0.1); });
  auto next = [&] {
    try {
      return fs->next().result();
    } catch (const asyncio::TimeoutError&) {
      return std::string("TimeoutError");
    }
  };
  auto w1 = loop.create_task(next);
  auto w2 = loop.create_task(next);
  EXPECT_EQ(loop.run_until_complete([&] { return asyncio::gather(w1, w2); }),
            std::make_tuple(std::string("TimeoutError"), std::string("TimeoutError")));
  EXPECT_DOUBLE_EQ(loop.time(), 0.1);
  loop.run_until_complete([&] { asyncio::wait(StringTasks{a, b}); });
}

}  // namespace
