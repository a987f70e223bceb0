// shutdown_default_executor(loop, timeout): asyncio 3.12's
// loop.shutdown_default_executor(timeout). Once the timeout passes with a job
// still running, the loop's exception handler gets asyncio's RuntimeWarning
// text and the call returns; the job finishes on its own later. Before, the
// call had no timeout and waited for ever (asyncio::run's end too).
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
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

class ShutdownDefaultExecutorTimeout : public greenlet_test::GreenletTest {};

using concurrent_test::gate;

using concurrent_test::record_reports;

// wait_released(pool, threads) waits, bounded, until the helper thread (it
// finishes alone after a timeout) has dropped its reference to the pool and
// exited: the process is back to the `threads` it had when the test began.
// Not the pool alone: the thread frees its own state after, and the fixture
// would count that as a leak.
void wait_released(std::weak_ptr<concurrent::ThreadPoolExecutor> pool, int threads) {
  for (int i = 0; i < 1000 && (!pool.expired() || greenlet_test::thread_count() > threads); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(pool.expired()) << "the shutdown helper never let go of the executor";
  EXPECT_LE(greenlet_test::thread_count(), threads) << "the shutdown helper or the pool's worker never exited";
}

// Outside the loop: it runs the loop until the timeout, then returns.
TEST_F(ShutdownDefaultExecutorTimeout, OutsideTheLoopReturnsAfterTheTimeoutWithAWarning) {
  const int threads = greenlet_test::thread_count();
  gate g;
  std::atomic<bool> finished{false};
  std::weak_ptr<concurrent::ThreadPoolExecutor> watch;
  {
    asyncio::event_loop loop;
    auto pool = std::make_shared<concurrent::ThreadPoolExecutor>(1);
    watch = pool;
    asyncio::set_default_executor(loop, std::move(pool));
    std::vector<std::string> reports;
    record_reports(loop, reports);
    auto job = loop.run_in_executor(nullptr, [&] {
      g.wait();
      finished = true;
    });
    const auto start = std::chrono::steady_clock::now();
    asyncio::shutdown_default_executor(loop, 0.2);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_GE(took, 0.19);
    EXPECT_LT(took, 5.0);
    EXPECT_FALSE(finished.load());
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_EQ(reports[0], "The executor did not finishing joining its threads within 0.2 seconds.");
    // Shut down all the same: asyncio refuses the default executor from now on.
    EXPECT_THROW(loop.run_in_executor(nullptr, [] {}), concurrent::RuntimeError);
    job.cancel();
    loop.close();
  }
  g.release();
  wait_released(watch, threads);
  EXPECT_TRUE(finished.load());
}

// In a task: the task waits until the timeout, then goes on.
TEST_F(ShutdownDefaultExecutorTimeout, InATaskReturnsAfterTheTimeoutWithAWarning) {
  const int threads = greenlet_test::thread_count();
  gate g;
  std::weak_ptr<concurrent::ThreadPoolExecutor> watch;
  std::vector<std::string> reports;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    record_reports(loop, reports);
    auto pool = std::make_shared<concurrent::ThreadPoolExecutor>(1);
    watch = pool;
    asyncio::set_default_executor(loop, std::move(pool));
    auto job = loop.run_in_executor(nullptr, [&] { g.wait(); });
    const double start = loop.time();
    asyncio::shutdown_default_executor(loop, 0.25);
    EXPECT_GE(loop.time() - start, 0.24);
    EXPECT_FALSE(job.done());
    job.cancel();
  });
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0], "The executor did not finishing joining its threads within 0.25 seconds.");
  g.release();
  wait_released(watch, threads);
}

// Finished in time: no warning, nothing left behind, the timer does not keep
// the loop (the call returns when the jobs are done, not at the timeout).
TEST_F(ShutdownDefaultExecutorTimeout, FinishedInTimeNoWarning) {
  asyncio::event_loop loop;
  std::vector<std::string> reports;
  record_reports(loop, reports);
  auto job = loop.run_in_executor(nullptr, [] { return 5; });
  const auto start = std::chrono::steady_clock::now();
  asyncio::shutdown_default_executor(loop, 60);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 30.0);
  EXPECT_EQ(loop.run_until_complete(job), 5);
  EXPECT_TRUE(reports.empty());
  loop.close();
}

TEST_F(ShutdownDefaultExecutorTimeout, NanTimeoutIsRefusedBeforeAnythingChanges) {
  asyncio::event_loop loop;
  EXPECT_THROW(asyncio::shutdown_default_executor(loop, std::nan("")), asyncio::ValueError);
  EXPECT_EQ(loop.run_until_complete(loop.run_in_executor(nullptr, [] { return 1; })), 1);
  asyncio::shutdown_default_executor(loop);
  loop.close();
}

TEST_F(ShutdownDefaultExecutorTimeout, RunWaitsAsAsyncioRunDoes) { EXPECT_EQ(asyncio::thread_join_timeout, 300.0); }

}  // namespace
