// refusals_and_dedup_test.cpp: a refused run_until_complete() must not run
// what it was given, and as_completed() must drop repeated futures in time
// linear in their number. The run_until_complete cases port CPython's
// Lib/test/test_asyncio/test_events.py (test_run_until_complete_nesting) and
// base_events.py's order of checks (_check_closed(), _check_running(), then
// ensure_future()); the as_completed cases extend test_tasks.py
// BaseTaskTests.test_as_completed_duplicate_coroutines.
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::error_log;
using asyncio_test::run_briefly;
using asyncio_test::virtual_time;
using RefusalTests = greenlet_test::GreenletTest;
using DedupTests = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;
using StringTasks = std::vector<asyncio::Task<std::string>>;

// refusal(fn) runs fn, which must throw RuntimeError, and returns its condition's name and what().
template <class F>
std::string refusal(F&& fn) {
  try {
    fn();
  } catch (const asyncio::RuntimeError& e) {
    const auto c = e.condition();
    const std::string name = c == asyncio::asyncio_errc::loop_running  ? "loop_running"
                             : c == asyncio::asyncio_errc::loop_closed ? "loop_closed"
                                                                       : "other condition";
    return name + ": " + e.what();
  }
  return "no RuntimeError";
}

const std::string already_running =
    "loop_running: This event loop is already running: a task cannot run its own loop; await instead";

// test_events.py EventLoopTestsMixin.test_run_until_complete_nesting: a task calling
// run_until_complete() on its own loop gets RuntimeError, and the coroutine it passed is "never
// awaited": it does not run.
// Regression test, this once failed: the function was made a task before the running check, so it
// ran on a later iteration though the call had been refused.
TEST_F(RefusalTests, test_run_until_complete_nesting_never_runs) {
  Strings log;
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  auto outer = loop.create_task([&] {
    log.push_back(refusal([&] { loop.run_until_complete([&] { log.push_back("inner ran"); }); }));
    asyncio::sleep(0);  // iterations in which a task made by the refused call would run
    asyncio::sleep(0);
  });
  loop.run_until_complete(outer);
  run_briefly(loop);
  loop.close();
  EXPECT_EQ(log, (Strings{already_running}));
  EXPECT_EQ(errors.messages, Strings{});
}

// base_events._check_running(): "Cannot run the event loop while another loop is running". The
// function given to the other loop never becomes its task.
// Regression test, this once failed: the function became a task of the other loop, which then
// never ran, so closing that loop reported "Task was destroyed but it is pending!".
TEST_F(RefusalTests, test_run_until_complete_while_other_loop_runs) {
  Strings log;
  error_log errors;
  error_log other_errors;
  asyncio::event_loop loop(virtual_time());
  asyncio::event_loop other(virtual_time());
  errors.attach(loop);
  other_errors.attach(other);
  auto outer = loop.create_task(
      [&] { log.push_back(refusal([&] { other.run_until_complete([&] { log.push_back("inner ran"); }); })); });
  loop.run_until_complete(outer);
  other.close();
  loop.close();
  EXPECT_EQ(log, (Strings{"loop_running: Cannot run the event loop while another loop is running on this thread"}));
  EXPECT_EQ(other_errors.messages, Strings{});
  EXPECT_EQ(errors.messages, Strings{});
}

// base_events.run_until_complete: _check_closed() first. A closed loop refuses the function
// before it becomes a task.
TEST_F(RefusalTests, test_run_until_complete_on_closed_loop) {
  Strings log;
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  loop.close();
  log.push_back(refusal([&] { loop.run_until_complete([&] { log.push_back("inner ran"); }); }));
  EXPECT_EQ(log, (Strings{"loop_closed: Event loop is closed"}));
  EXPECT_EQ(errors.messages, Strings{});
}

// base_events.run_until_complete checks before looking at its argument, so a future already done
// is refused too: on a closed loop, and while another loop runs on this thread.
// Regression test, this once failed: a done future's result was returned from a closed loop and
// from inside another running loop, because only run_forever() checked, and a done future never
// got that far.
TEST_F(RefusalTests, test_run_until_complete_done_future_refused) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  asyncio::event_loop other(virtual_time());
  auto on_other = other.create_future<int>();
  on_other.set_result(1);
  auto outer = loop.create_task([&] { log.push_back(refusal([&] { other.run_until_complete(on_other); })); });
  loop.run_until_complete(outer);
  auto on_loop = loop.create_future<int>();
  on_loop.set_result(2);
  loop.close();
  log.push_back(refusal([&] { loop.run_until_complete(on_loop); }));
  EXPECT_EQ(log, (Strings{"loop_running: Cannot run the event loop while another loop is running on this thread",
                          "loop_closed: Event loop is closed"}));
}

// test_tasks.py BaseTaskTests.test_as_completed_duplicate_coroutines, with the order checked: each
// future given several times is yielded once, in the order the futures finish (b, c, a), not the
// order or the number of times they were given.
TEST_F(DedupTests, test_as_completed_duplicates_in_completion_order) {
  asyncio::event_loop loop(virtual_time());
  auto sleep_then = [&loop](double delay, std::string value) {
    return loop.create_task([delay, value] { return asyncio::sleep(delay, value); });
  };
  auto a = sleep_then(0.3, "a");
  auto b = sleep_then(0.1, "b");
  auto c = sleep_then(0.2, "c");
  auto runner = loop.create_task([&] {
    Strings result;
    for (auto f : asyncio::as_completed(StringTasks{a, b, a, c, b, a})) result.push_back(asyncio::await(f));
    return result;
  });
  EXPECT_EQ(loop.run_until_complete(runner), (Strings{"b", "c", "a"}));
}

// Many done futures, each given several times, come out once each: the distinct ones, in the order
// of their first appearance (all are done already, so that is the order they are queued in).
TEST_F(DedupTests, test_as_completed_many_done_futures_with_repeats) {
  constexpr int distinct = 20000;
  asyncio::event_loop loop;
  auto runner = loop.create_task([&] {
    std::vector<asyncio::Future<int>> fs;
    for (int i = 0; i < distinct; ++i) {
      fs.push_back(loop.create_future<int>());
      fs.back().set_result(i);
    }
    // 50,000 handles: all of them, then every other one backwards, then all again.
    std::vector<asyncio::Future<int>> given = fs;
    for (int i = distinct - 1; i >= 0; i -= 2) given.push_back(fs[i]);
    given.insert(given.end(), fs.begin(), fs.end());
    EXPECT_EQ(given.size(), 50000u);
    std::vector<int> out;
    for (auto f : asyncio::as_completed(given)) out.push_back(asyncio::await(f));
    return out;
  });
  std::vector<int> out = loop.run_until_complete(runner);
  ASSERT_EQ(out.size(), static_cast<std::size_t>(distinct));
  for (int i = 0; i < distinct; ++i) ASSERT_EQ(out[i], i) << "at " << i;
}

// CountingFuture is a Future<int> handle that counts the comparisons made between handles (none,
// as long as as_completed() finds repeats by hashing states: hence maybe_unused).
struct CountingFuture : asyncio::Future<int> {
  static inline long comparisons = 0;
  CountingFuture() = default;
  explicit CountingFuture(asyncio::Future<int> f) : asyncio::Future<int>(std::move(f)) {}
  [[maybe_unused]] friend bool operator==(const CountingFuture& x, const CountingFuture& y) noexcept {
    ++comparisons;
    return x.state() == y.state();
  }
};

// docs/asyncio.md lists as_completed among the costs that must not grow with the number of
// children; finding the repeats must not compare every pair of handles. The work is counted, not
// timed: no more comparisons than handles given.
// Regression test, this once failed: the duplicate check compared each handle with every one kept
// before it, about 4 million comparisons for these 4,000 handles (O(N^2): 18 s at 300,000).
TEST_F(DedupTests, test_as_completed_dedup_is_linear) {
  constexpr int distinct = 2000;
  asyncio::event_loop loop;
  auto runner = loop.create_task([&] {
    std::vector<CountingFuture> given;
    for (int i = 0; i < distinct; ++i) {
      given.emplace_back(loop.create_future<int>());
      given.back().set_result(i);
    }
    for (int i = 0; i < distinct; ++i) given.push_back(given[i]);
    CountingFuture::comparisons = 0;
    asyncio::as_completed<CountingFuture> queue(given);
    const long comparisons = CountingFuture::comparisons;
    int yielded = 0;
    for (auto f : queue) yielded += f.result() >= 0 ? 1 : 0;
    EXPECT_EQ(yielded, distinct);
    return comparisons;
  });
  EXPECT_LE(loop.run_until_complete(runner), 2 * distinct);
}

}  // namespace
