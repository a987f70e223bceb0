// ThreadPoolExecutor: submit, map, shutdown, initializer, thread names.
// Ported in spirit from CPython's Lib/test/test_concurrent_futures
// (test_thread_pool.py, executor.py, test_shutdown.py).
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/concurrent.hpp>

#include "gate.hpp"
#include "support/greenlet_test.hpp"

namespace concurrent = greenlet::concurrent;

namespace {

class ThreadPool : public greenlet_test::GreenletTest {};

using concurrent_test::gate;

TEST_F(ThreadPool, SubmitReturnsResult) {
  concurrent::ThreadPoolExecutor pool(2);
  auto f = pool.submit([](int a, int b) { return a * b; }, 6, 7);
  EXPECT_EQ(f.result(), 42);
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancelled());
}

TEST_F(ThreadPool, SubmitVoidAndException) {
  concurrent::ThreadPoolExecutor pool(2);
  auto ok = pool.submit([] {});
  ok.result();
  auto bad = pool.submit([]() -> int { throw std::invalid_argument("boom"); });
  EXPECT_THROW(bad.result(), std::invalid_argument);
  ASSERT_NE(bad.exception(), nullptr);
  EXPECT_NE(bad.repr().find("state=finished raised invalid_argument"), std::string::npos) << bad.repr();
}

TEST_F(ThreadPool, RunsInParallelUpToMaxWorkers) {
  concurrent::ThreadPoolExecutor pool(4);
  std::atomic<int> inside{0};
  gate g;
  std::vector<concurrent::Future<void>> fs;
  for (int i = 0; i < 4; ++i) {
    fs.push_back(pool.submit([&] {
      ++inside;
      g.wait();
    }));
  }
  // All four block at the gate at once: they run on four threads.
  while (inside.load() < 4) std::this_thread::yield();
  g.release();
  for (auto& f : fs) f.result();
  EXPECT_EQ(pool.max_workers(), 4u);
}

TEST_F(ThreadPool, DefaultMaxWorkers) {
  concurrent::ThreadPoolExecutor pool;
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  EXPECT_EQ(pool.max_workers(), std::min<std::size_t>(32, cores + 4));
}

TEST_F(ThreadPool, MapKeepsOrder) {
  concurrent::ThreadPoolExecutor pool(3);
  std::vector<int> in{5, 1, 4, 2, 3};
  auto out = pool.map([](int x) { return x * 10; }, in);
  EXPECT_EQ(out, (std::vector<int>{50, 10, 40, 20, 30}));
}

TEST_F(ThreadPool, MapRethrowsFirstException) {
  concurrent::ThreadPoolExecutor pool(2);
  std::vector<int> in{1, 2, 3};
  EXPECT_THROW(pool.map([](int x) { return x == 2 ? throw std::runtime_error("two") : x; }, in), std::runtime_error);
}

TEST_F(ThreadPool, SubmitAfterShutdownThrows) {
  concurrent::ThreadPoolExecutor pool(1);
  pool.shutdown();
  try {
    pool.submit([] {});
    FAIL() << "submit after shutdown";
  } catch (const concurrent::RuntimeError& e) {
    EXPECT_EQ(e.condition(), concurrent::concurrent_errc::shutdown);
    EXPECT_NE(std::string(e.what()).find("after shutdown"), std::string::npos);
  }
}

// test_shutdown.py: jobs accepted before shutdown(wait=false) still run.
TEST_F(ThreadPool, ShutdownLosesNoAcceptedJob) {
  std::atomic<int> ran{0};
  std::vector<concurrent::Future<void>> fs;
  {
    concurrent::ThreadPoolExecutor pool(3);
    for (int i = 0; i < 200; ++i) fs.push_back(pool.submit([&] { ++ran; }));
    pool.shutdown(false);
  }  // the destructor waits
  EXPECT_EQ(ran.load(), 200);
  for (auto& f : fs) EXPECT_TRUE(f.done());
}

TEST_F(ThreadPool, ShutdownCancelFutures) {
  concurrent::ThreadPoolExecutor pool(1);
  gate g;
  auto first = pool.submit([&] { g.wait(); });
  while (!first.running()) std::this_thread::yield();
  std::vector<concurrent::Future<void>> rest;
  for (int i = 0; i < 5; ++i) rest.push_back(pool.submit([] {}));
  pool.shutdown(false, true);
  for (auto& f : rest) EXPECT_TRUE(f.cancelled());
  g.release();
  pool.shutdown(true);
  first.result();
}

TEST_F(ThreadPool, InitializerRunsInEachWorker) {
  std::atomic<int> inits{0};
  {
    concurrent::ThreadPoolExecutor pool(2, "", [&] { ++inits; });
    gate g;
    auto a = pool.submit([&] { g.wait(); });
    auto b = pool.submit([&] { g.wait(); });
    while (!(a.running() && b.running())) std::this_thread::yield();
    g.release();
  }
  EXPECT_EQ(inits.load(), 2);
}

TEST_F(ThreadPool, FailingInitializerBreaksPool) {
  concurrent::ThreadPoolExecutor pool(1, "", [] { throw std::runtime_error("init failed"); });
  auto f = pool.submit([] { return 1; });
  EXPECT_THROW(f.result(), concurrent::BrokenThreadPool);
  EXPECT_THROW(pool.submit([] { return 1; }), concurrent::BrokenThreadPool);
}

TEST_F(ThreadPool, ThreadNamePrefix) {
  concurrent::ThreadPoolExecutor pool(1, "worker");
  auto name = pool.submit([] {
    char buffer[16] = {};
    pthread_getname_np(pthread_self(), buffer, sizeof buffer);
    return std::string(buffer);
  });
  EXPECT_EQ(name.result(), "worker_0");
}

TEST_F(ThreadPool, CancelBeforeRunSkipsJob) {
  concurrent::ThreadPoolExecutor pool(1);
  gate g;
  auto blocker = pool.submit([&] { g.wait(); });
  std::atomic<bool> ran{false};
  auto queued = pool.submit([&] { ran = true; });
  EXPECT_TRUE(queued.cancel());
  EXPECT_TRUE(queued.cancelled());
  EXPECT_THROW(queued.result(), concurrent::CancelledError);
  while (!blocker.running()) std::this_thread::yield();
  EXPECT_FALSE(blocker.cancel());  // running: too late
  g.release();
  pool.shutdown();
  EXPECT_FALSE(ran.load());
}

TEST_F(ThreadPool, MoveOnlyArgumentsAndResults) {
  concurrent::ThreadPoolExecutor pool(1);
  auto f = pool.submit([](std::unique_ptr<int> p) { return std::make_unique<int>(*p + 1); }, std::make_unique<int>(41));
  EXPECT_EQ(*f.result(), 42);
}

// The seed's loop: ten calls on five workers; every value comes back once.
TEST_F(ThreadPool, SeedTenJobsFiveWorkers) {
  concurrent::ThreadPoolExecutor pool(5);
  std::mutex mutex;
  std::vector<int> printed;
  std::vector<concurrent::Future<int>> fs;
  for (int i = 0; i < 10; ++i) {
    fs.push_back(pool.submit([&, i] {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      std::lock_guard<std::mutex> lock(mutex);
      printed.push_back(i);
      return 123;
    }));
  }
  for (auto& f : fs) EXPECT_EQ(f.result(), 123);
  std::sort(printed.begin(), printed.end());
  EXPECT_EQ(printed, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

}  // namespace
