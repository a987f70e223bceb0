// shutdown(wait=true) as Python's Executor.shutdown(): callable several times
// and from several threads, each call returning once the accepted work is done
// and the pool's resources are freed; and what it does when called from one of
// the pool's own threads (a job, or the destructor when the last handle goes
// there). Each case runs in a child process with an alarm, so that a regression
// (std::terminate, a hang) fails the test rather than the whole binary or CI.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/concurrent.hpp>

#include "gate.hpp"
#include "support/greenlet_test.hpp"

namespace concurrent = greenlet::concurrent;

namespace {

using concurrent_test::gate;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "%s\n", why.c_str());
  std::_Exit(1);
}

// The child's work is each test's body; it exits 0 and says so, or prints
// why not and exits 1. The alarm turns a hang into a failure.
void expect_child_succeeds(void (*body)()) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(
      {
        ::alarm(60);
        body();
        std::fprintf(stderr, "CHILD OK\n");
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "CHILD OK");
}

// Both callers block until the job at the gate is done. Before the fix the
// second found the thread list already taken by the first and returned at once.
void thread_pool_second_shutdown_waits() {
  concurrent::ThreadPoolExecutor pool(1);
  gate g;
  std::atomic<bool> finished{false};
  auto job = pool.submit([&] {
    g.wait();
    finished = true;
  });
  while (!job.running()) std::this_thread::yield();
  std::atomic<int> calling{0}, returned{0}, returned_early{0};
  auto shut_down = [&] {
    ++calling;
    pool.shutdown(true);
    if (!finished.load()) ++returned_early;
    ++returned;
  };
  std::thread first(shut_down), second(shut_down);
  while (calling.load() < 2) std::this_thread::yield();
  // Give a caller that does not wait the time to return (it needs only the
  // pool's lock); one that waits stays until the gate opens.
  for (int i = 0; i < 200 && returned.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  g.release();
  first.join();
  second.join();
  if (returned_early.load() != 0) fail("a shutdown(wait=true) returned before the work was done");
}

// What the process pool now does from its own threads, ThreadPoolExecutor
// did already: shutdown(wait=true) from a job throws RuntimeError, and the
// work queued behind still runs; the executor destroyed in a job (the last
// handle was there) lets the workers finish the queue.
void thread_pool_shutdown_from_its_worker() {
  auto pool = std::make_shared<concurrent::ThreadPoolExecutor>(1);
  gate g;
  std::atomic<int> refused{0}, ran{0};
  auto first = pool->submit([&g, &refused, keep = pool] {
    g.wait();
    try {
      keep->shutdown(true);
    } catch (const concurrent::RuntimeError& e) {
      if (e.condition() == concurrent::concurrent_errc::shutdown) ++refused;
    }
  });
  std::vector<concurrent::Future<void>> queued;
  for (int i = 0; i < 10; ++i) queued.push_back(pool->submit([&ran] { ++ran; }));
  pool.reset();  // the first job's copy is the last: it goes on the worker
  g.release();
  try {
    first.result(30);
    for (auto& f : queued) f.result(30);
  } catch (const std::exception& e) {
    fail(std::string("a job failed: ") + e.what());
  }
  if (refused.load() != 1) fail("shutdown(wait=true) from the pool's worker did not throw RuntimeError");
  if (ran.load() != 10) fail("queued jobs were lost");
}

TEST(ShutdownDeathTest, ThreadPoolSecondConcurrentShutdownWaitsForTheWork) {
  expect_child_succeeds(&thread_pool_second_shutdown_waits);
}

TEST(ShutdownDeathTest, ThreadPoolShutdownFromItsWorkerThrowsAndLosesNoJob) {
  expect_child_succeeds(&thread_pool_shutdown_from_its_worker);
}

}  // namespace
