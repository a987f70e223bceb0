// timer_edges_test.cpp: deadlines no clock reaches. asyncio takes them
// without complaint: sleep(math.inf) sleeps until cancelled (its idiom for
// "forever"), and a NaN deadline runs at once. The loop used to hand an
// infinite timeout to epoll (EINVAL: the loop died) and to keep a NaN timer
// forever at the front of its heap (spinning, the timers under it starved).
#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using TimerEdges = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

constexpr double infinity = std::numeric_limits<double>::infinity();

// A task sleeping forever while the only other work comes from a thread:
// the loop waits (at most a day at a time) and the sleeper ends when
// cancelled. Also wait_for() and timeout() with an infinite delay.
TEST_F(TimerEdges, InfiniteDelaysWaitUntilCancelledOrDone) {
  Strings log;
  asyncio::run([&] {
    auto forever = asyncio::create_task([] { asyncio::sleep(infinity); });
    asyncio::await(asyncio::to_thread([] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }));
    log.push_back(asyncio::wait_for(asyncio::to_thread([] { return std::string("thread done"); }), infinity));
    asyncio::timeout(infinity, [&] {
      asyncio::await(asyncio::to_thread([] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); }));
      log.push_back("timeout(inf) body done");
    });
    EXPECT_FALSE(forever.done());
    forever.cancel();
    try {
      asyncio::await(forever);
    } catch (const asyncio::CancelledError&) {
      log.push_back("sleeper cancelled");
    }
    // Centuries away is no timeout the kernel takes either.
    auto far = asyncio::get_running_loop().call_later(1e300, [&] { log.push_back("far timer ran"); });
    asyncio::await(asyncio::to_thread([] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); }));
    far.cancel();
  });
  EXPECT_EQ(log, (Strings{"thread done", "timeout(inf) body done", "sleeper cancelled"}));
}

// A NaN deadline (a delay computed as 0.0 / 0.0) runs at once, as in
// asyncio: the callback runs, sleep(NaN) returns, wait_for(x, NaN) times
// out, and the timers behind it still come due in order.
TEST_F(TimerEdges, NanDeadlinesRunAtOnce) {
  const double nan = std::nan("");
  Strings log;
  asyncio::event_loop loop(asyncio_test::virtual_time());
  loop.run_until_complete(loop.create_task([&] {
    auto& l = asyncio::get_running_loop();
    l.call_later(0.02, [&] { log.push_back("0.02 timer"); });
    l.call_later(nan, [&] { log.push_back("nan timer"); });
    l.call_later(0.01, [&] { log.push_back("0.01 timer"); });
    asyncio::sleep(nan);
    log.push_back("sleep(nan) returned");
    auto never = l.create_future<int>();
    try {
      asyncio::wait_for(never, nan);
      log.push_back("wait_for(never, nan) returned");
    } catch (const asyncio::TimeoutError&) {
      log.push_back("wait_for(never, nan) timed out");
    }
    asyncio::sleep(0.05);
  }));
  loop.close();
  EXPECT_EQ(
      log, (Strings{"nan timer", "sleep(nan) returned", "wait_for(never, nan) timed out", "0.01 timer", "0.02 timer"}));
}

// A timer given a NaN deadline runs at once, and its handle's when() is that NaN, as asyncio's
// TimerHandle.when() (it said -infinity, the deadline's place in the heap). A call_soon() handle
// is no timer: when() is 0, however its node was used before (a recycled timer's deadline showed
// through).
TEST_F(TimerEdges, NanDeadlineHandleReportsNan) {
  const double nan = std::nan("");
  Strings log;
  asyncio::event_loop loop(asyncio_test::virtual_time());
  auto later = loop.call_later(nan, [&] { log.push_back("nan later"); });
  auto at = loop.call_at(nan, [&] { log.push_back("nan at"); });
  auto timer = loop.call_at(7.5, [&] { log.push_back("7.5"); });
  EXPECT_TRUE(std::isnan(later.when())) << later.when();
  EXPECT_TRUE(std::isnan(at.when())) << at.when();
  EXPECT_EQ(timer.when(), 7.5);
  loop.run_until_complete([] { asyncio::sleep(10); });
  EXPECT_EQ(log, (Strings{"nan later", "nan at", "7.5"}));
  EXPECT_TRUE(std::isnan(later.when()));  // still, once it ran
  later = {};
  at = {};
  timer = {};  // their nodes go back to the loop's free list, to be reused below
  std::vector<asyncio::Handle> soon;
  for (int i = 0; i < 8; ++i) soon.push_back(loop.call_soon([] {}));
  for (const asyncio::Handle& h : soon) EXPECT_EQ(h.when(), 0) << h.when();
  loop.close();
}

// With a virtual clock, a timer at infinity is no timer to jump to: the clock stayed at infinity
// once the loop jumped there, so the timer ran (sleep(INFINITY) returned) and every later
// deadline was due at once. The loop waits instead for what else can wake it (here a thread).
TEST_F(TimerEdges, VirtualClockNeverJumpsToInfinity) {
  Strings log;
  asyncio::event_loop loop(asyncio_test::virtual_time());
  auto forever = loop.call_later(infinity, [&] { log.push_back("infinite timer ran"); });
  loop.run_until_complete([&] {
    auto sleeper = asyncio::create_task([&] {
      asyncio::sleep(infinity);
      log.push_back("sleep(inf) returned");
    });
    asyncio::await(asyncio::to_thread([] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); }));
    auto& l = asyncio::get_running_loop();
    log.push_back("time " + std::to_string(l.time()));
    const double before = l.time();
    asyncio::sleep(2);
    log.push_back(l.time() == before + 2 ? "slept 2" : "clock off: " + std::to_string(l.time()));
    sleeper.cancel();
  });
  EXPECT_EQ(forever.when(), infinity);
  loop.close();
  EXPECT_EQ(log, (Strings{"time 0.000000", "slept 2"}));
  // With nothing else to wake it, the loop is deadlocked: it says so rather than running the timer.
  asyncio::event_loop idle(asyncio_test::virtual_time());
  try {
    idle.run_until_complete([] { asyncio::sleep(infinity); });
    ADD_FAILURE() << "sleep(inf) returned";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::deadlock);
    EXPECT_NE(std::string(e.what()).find("only timers at infinity, which the virtual clock never reaches"),
              std::string::npos)
        << e.what();
  }
  testing::internal::CaptureStderr();
  idle.close();  // the sleeper is still pending
  EXPECT_NE(testing::internal::GetCapturedStderr().find("Task was destroyed but it is pending!"), std::string::npos);
}

// The report of a NaN timer's callback that threw shows its deadline as the user gave it, as
// asyncio's "<TimerHandle when=nan ...>" (it said when=-inf, the deadline's place in the heap).
TEST_F(TimerEdges, NanTimerReportShowsNan) {
  asyncio_test::error_log errors;
  asyncio::event_loop loop(asyncio_test::virtual_time());
  errors.attach(loop);
  loop.call_later(std::nan(""), [] { throw asyncio_test::TestError("nan timer"); });
  loop.call_at(-infinity, [] { throw asyncio_test::TestError("-inf timer"); });
  loop.run_until_complete([] { asyncio::sleep(1); });
  ASSERT_EQ(errors.sources.size(), 2u);
  EXPECT_EQ(errors.whats, (Strings{"nan timer", "-inf timer"}));
  EXPECT_TRUE(errors.sources[0].starts_with("<TimerHandle when=nan ")) << errors.sources[0];
  EXPECT_TRUE(errors.sources[1].starts_with("<TimerHandle when=-inf ")) << errors.sources[1];
}

}  // namespace
