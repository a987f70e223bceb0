// A shutdown_default_executor() whose waiting task is cancelled (asyncio::run
// cancels what main left running) does not end the wait for the default
// executor's jobs: asyncio::run's end (and Runner::close()) waits for them,
// as asyncio's second shutdown_default_executor() starts another joining
// thread (the loop keeps its _default_executor). It used to find the
// executor taken out by the cancelled call and return at once: run()
// returned, and the loop closed, while a job still ran, using what main had
// put on its stack. Found by tests/concurrent/bridge_chaos_test.cpp.
#include <atomic>
#include <chrono>
#include <thread>

#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"
#include "support/process_stats.hpp"

namespace cancelled_shutdown_a {

namespace asyncio = greenlet::asyncio;

using CancelledShutdown = greenlet_test::GreenletTest;

// settle_threads(threads) waits, bounded, until the process is back to
// `threads`: the cancelled call's helper finishes alone, and the fixture
// would count its thread's state as a leak.
void settle_threads(int threads) {
  for (int i = 0; i < 1000 && greenlet_test::thread_count() > threads; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_LE(greenlet_test::thread_count(), threads) << "a shutdown helper or a worker never exited";
}

TEST_F(CancelledShutdown, RunEndStillWaitsForTheJobs) {
  const int threads = greenlet_test::thread_count();
  std::atomic<bool> release{false}, finished{false};
  std::thread releaser;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    auto job = loop.run_in_executor(nullptr, [&] {
      while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      finished = true;
    });
    auto shutdown = asyncio::create_task([&] { asyncio::shutdown_default_executor(loop); });
    asyncio::sleep(0);  // it waits for the job
    shutdown.cancel();
    EXPECT_THROW(asyncio::await(shutdown), asyncio::CancelledError);
    EXPECT_FALSE(job.done());
    // Released a while after main returns: run()'s end must wait for it.
    releaser = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      release = true;
    });
  });
  EXPECT_TRUE(finished.load()) << "asyncio::run returned while a job of its default executor still ran";
  release = true;
  releaser.join();
  settle_threads(threads);
}

// The same through a Runner, whose close() ends the loop as asyncio::run does.
TEST_F(CancelledShutdown, RunnerCloseStillWaitsForTheJobs) {
  const int threads = greenlet_test::thread_count();
  std::atomic<bool> release{false}, finished{false};
  std::thread releaser;
  {
    asyncio::Runner runner;
    runner.run([&] {
      auto& loop = asyncio::get_running_loop();
      loop.run_in_executor(nullptr, [&] {
        while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        finished = true;
      });
      auto shutdown = asyncio::create_task([&] { asyncio::shutdown_default_executor(loop); });
      asyncio::sleep(0);
      shutdown.cancel();
      EXPECT_THROW(asyncio::await(shutdown), asyncio::CancelledError);
    });
    releaser = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      release = true;
    });
    runner.close();
    EXPECT_TRUE(finished.load()) << "Runner::close() returned while a job of the default executor still ran";
  }
  release = true;
  releaser.join();
  settle_threads(threads);
}

}  // namespace cancelled_shutdown_a
