// run_in_executor()'s direct path: one job object per call, completed on the
// loop through its thread-safe queue. Outcomes in order, exception types,
// cancellation before and while the job runs, shutdown(cancel_futures), a
// broken pool, and the thread-safe queue itself. In the spirit of CPython's
// Lib/test/test_asyncio/test_events.py (run_in_executor) and
// test_futures.py (wrap_future cancellation).
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>

#include "gate.hpp"
#include "report_recorder.hpp"
#include "support/greenlet_test.hpp"
#include "support/process_stats.hpp"

namespace asyncio = greenlet::asyncio;
namespace concurrent = greenlet::concurrent;

namespace {

class RunInExecutor : public greenlet_test::GreenletTest {};

using concurrent_test::gate;

struct custom_error : std::runtime_error {
  explicit custom_error(int c) : std::runtime_error("custom"), code(c) {}
  int code;
};

using concurrent_test::record_reports;

TEST_F(RunInExecutor, ManyInFlightEachFutureGetsItsOwnResult) {
  concurrent::ThreadPoolExecutor pool(4);
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    std::vector<asyncio::Future<std::string>> fs;
    for (int i = 0; i < 10000; ++i) fs.push_back(loop.run_in_executor(&pool, [i] { return std::to_string(i); }));
    for (int i = 0; i < 10000; ++i) EXPECT_EQ(asyncio::await(fs[i]), std::to_string(i));
  });
}

TEST_F(RunInExecutor, ExceptionKeepsItsType) {
  concurrent::ThreadPoolExecutor pool(2);
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    auto custom = loop.run_in_executor(&pool, []() -> int { throw custom_error(7); });
    auto plain = loop.run_in_executor(&pool, [] { throw 42; });
    try {
      asyncio::await(custom);
      ADD_FAILURE() << "no exception";
    } catch (const custom_error& e) {
      EXPECT_EQ(e.code, 7);
    }
    try {
      asyncio::await(plain);
      ADD_FAILURE() << "no exception";
    } catch (int value) {
      EXPECT_EQ(value, 42);
    }
  });
}

// Future.cancel() on a job still queued: it never runs, and the loop stops
// counting it at once (deadlock detection sees nothing external pending).
TEST_F(RunInExecutor, CancelWhileQueuedNeverRuns) {
  concurrent::ThreadPoolExecutor pool(1);
  gate g;
  std::atomic<bool> ran{false};
  concurrent::Future<void> blocker = pool.submit([&] { g.wait(); });
  try {
    asyncio::run([&] {
      auto& loop = asyncio::get_running_loop();
      auto fut = loop.run_in_executor(&pool, [&] { ran = true; });
      EXPECT_TRUE(fut.cancel());
      EXPECT_TRUE(fut.cancelled());
      EXPECT_THROW(asyncio::await(fut), asyncio::CancelledError);
      asyncio::await(loop.create_future<int>());
    });
    ADD_FAILURE() << "no deadlock reported";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::deadlock);
  }
  g.release();
  pool.shutdown();
  blocker.result();
  EXPECT_FALSE(ran.load());
}

// Cancelled while it runs: the call finishes, its outcome (here an
// exception) is dropped without an "exception was never retrieved" report.
TEST_F(RunInExecutor, CancelWhileRunningDropsTheOutcome) {
  concurrent::ThreadPoolExecutor pool(1);
  gate g;
  std::atomic<bool> started{false}, finished{false};
  std::vector<std::string> reports;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    record_reports(loop, reports);
    auto fut = loop.run_in_executor(&pool, [&]() -> int {
      started = true;
      g.wait();
      finished = true;
      throw custom_error(1);
    });
    auto waiter = asyncio::create_task([&] { return asyncio::await(fut); });
    asyncio::sleep(0);  // the waiter starts awaiting fut
    while (!started.load()) asyncio::sleep(0.001);
    waiter.cancel();
    EXPECT_THROW(asyncio::await(waiter), asyncio::CancelledError);
    EXPECT_TRUE(fut.cancelled());
    g.release();
    // One worker, FIFO: this job's outcome reaches the loop after the first.
    EXPECT_EQ(asyncio::await(loop.run_in_executor(&pool, [] { return 3; })), 3);
    EXPECT_TRUE(finished.load());
    EXPECT_TRUE(fut.cancelled());
  });
  EXPECT_TRUE(reports.empty());
}

// Python's shutdown(cancel_futures=True) cancels the concurrent futures of
// queued calls, and so the asyncio futures wrapping them.
TEST_F(RunInExecutor, ShutdownCancelFuturesCancelsQueuedCalls) {
  concurrent::ThreadPoolExecutor pool(1);
  gate g;
  std::atomic<bool> started{false}, ran{false};
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    auto first = loop.run_in_executor(&pool, [&] {
      started = true;
      g.wait();
      return 1;
    });
    auto queued = loop.run_in_executor(&pool, [&] { ran = true; });
    while (!started.load()) asyncio::sleep(0.001);
    pool.shutdown(false, true);
    EXPECT_THROW(asyncio::await(queued), asyncio::CancelledError);
    g.release();
    EXPECT_EQ(asyncio::await(first), 1);
  });
  pool.shutdown();
  EXPECT_FALSE(ran.load());
}

// The initializer fails only once the call is queued: the pool fails it.
TEST_F(RunInExecutor, BrokenPoolFailsAQueuedCall) {
  gate g;
  concurrent::ThreadPoolExecutor pool(1, "", [&] {
    g.wait();
    throw std::runtime_error("initializer");
  });
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    auto fut = loop.run_in_executor(&pool, [] { return 1; });
    g.release();
    EXPECT_THROW(asyncio::await(fut), concurrent::BrokenThreadPool);
    EXPECT_THROW(loop.run_in_executor(&pool, [] { return 1; }), concurrent::BrokenThreadPool);
  });
}

// A dropped future does not cancel the call (as in Python); its outcome
// arrives with nobody to take it.
TEST_F(RunInExecutor, DroppedFutureStillRuns) {
  concurrent::ThreadPoolExecutor pool(1);
  std::atomic<bool> ran{false};
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    loop.run_in_executor(&pool, [&] {
      ran = true;
      return std::string(100, 'x');
    });
    EXPECT_EQ(asyncio::await(loop.run_in_executor(&pool, [] { return 2; })), 2);
  });
  EXPECT_TRUE(ran.load());
}

TEST_F(RunInExecutor, ThreadsafeCallbacksRunInPostingOrder) {
  std::vector<int> order;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    auto done = loop.create_future<void>();
    asyncio::event_loop::external_work_guard keep(loop);
    std::thread poster([&] {
      for (int i = 0; i < 1000; ++i) loop.call_soon_threadsafe([&order, i] { order.push_back(i); });
      loop.call_soon_threadsafe([&done] { done.set_result(); });
    });
    asyncio::await(done);
    poster.join();
  });
  ASSERT_EQ(order.size(), 1000U);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(order[i], i);
}

TEST_F(RunInExecutor, CallSoonThreadsafeAfterCloseThrows) {
  auto loop = asyncio::new_event_loop();
  loop->close();
  std::thread other([&] { EXPECT_THROW(loop->call_soon_threadsafe([] {}), asyncio::RuntimeError); });
  other.join();
  EXPECT_THROW(loop->call_soon_threadsafe([] {}), asyncio::RuntimeError);
}

using greenlet_test::open_fd_count;

// A loop closed while a call it handed to an executor still runs: the call
// finishes (asyncio does not cancel executor work at close), its outcome is
// dropped, and the loop is freed with its descriptors (an epoll and an
// eventfd) once the call is over; the job's reference used to keep it
// forever. Likewise for a wrap_future() whose concurrent future completes
// after the close.
TEST_F(RunInExecutor, LoopClosedWhileItsCallsRunIsFreed) {
  concurrent::ThreadPoolExecutor pool(2);
  const int fds_before = open_fd_count();
  std::atomic<int> calls_finished{0};
  gate g;
  std::vector<concurrent::Future<int>> pending;
  for (int i = 0; i < 20; ++i) {
    auto loop = asyncio::new_event_loop();
    loop->run_until_complete([&] {
      (void)loop->run_in_executor(&pool, [&] {
        g.wait();
        ++calls_finished;
        return 1;
      });
      pending.push_back(pool.submit([&] {
        g.wait();
        return 2;
      }));
      (void)asyncio::wrap_future(pending.back());
    });
    loop->close();
  }
  g.release();
  pool.shutdown(true);
  EXPECT_EQ(calls_finished.load(), 20);
  for (auto& f : pending) EXPECT_EQ(f.result(), 2);
  EXPECT_EQ(open_fd_count(), fds_before) << "closed loops kept alive by their finished executor calls";
}

// Callbacks still queued when the loop closes are dropped, not run.
TEST_F(RunInExecutor, ThreadsafeCallbacksQueuedAtCloseAreDropped) {
  auto loop = asyncio::new_event_loop();
  auto flag = std::make_shared<int>(0);
  std::thread other([&] { loop->call_soon_threadsafe([flag] { *flag = 1; }); });
  other.join();
  EXPECT_EQ(flag.use_count(), 2);
  loop->close();
  EXPECT_EQ(flag.use_count(), 1);
  EXPECT_EQ(*flag, 0);
}

}  // namespace
