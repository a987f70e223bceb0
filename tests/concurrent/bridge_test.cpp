// The asyncio bridge: run_in_executor, wrap_future, to_thread,
// run_coroutine_threadsafe, cancellation across it, deadlock detection.
// Ported in spirit from CPython's Lib/test/test_asyncio/test_futures.py
// (wrap_future), test_tasks.py (run_coroutine_threadsafe) and
// test_threads.py (to_thread).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>

#include "gate.hpp"
#include "support/greenlet_test.hpp"

namespace asyncio = greenlet::asyncio;
namespace concurrent = greenlet::concurrent;

namespace {

class Bridge : public greenlet_test::GreenletTest {};

using concurrent_test::gate;

TEST_F(Bridge, RunInExecutorDefaultPool) {
  std::thread::id loop_thread = std::this_thread::get_id();
  auto result = asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    auto fut = loop.run_in_executor(nullptr, [&] {
      EXPECT_NE(std::this_thread::get_id(), loop_thread);
      return std::string("123");
    });
    return asyncio::await(fut);
  });
  EXPECT_EQ(result, "123");
}

TEST_F(Bridge, RunInExecutorCustomPoolAndArguments) {
  concurrent::ThreadPoolExecutor pool(2);
  int r = asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    return asyncio::await(asyncio::run_in_executor(
        loop, &pool, [](int a, int b) { return a + b; }, 40, 2));
  });
  EXPECT_EQ(r, 42);
}

TEST_F(Bridge, ExceptionCrossesTheBridge) {
  asyncio::run([] {
    auto fut = asyncio::get_running_loop().run_in_executor(nullptr, []() -> int { throw std::out_of_range("far"); });
    EXPECT_THROW(asyncio::await(fut), std::out_of_range);
  });
}

TEST_F(Bridge, ManyJobsInFlight) {
  concurrent::ThreadPoolExecutor pool(4);
  long total = asyncio::run([&] {
    std::vector<asyncio::Future<int>> fs;
    auto& loop = asyncio::get_running_loop();
    for (int i = 0; i < 1000; ++i) fs.push_back(loop.run_in_executor(&pool, [i] { return i; }));
    long sum = 0;
    for (auto& f : fs) sum += asyncio::await(f);
    return sum;
  });
  EXPECT_EQ(total, 999L * 1000 / 2);
}

TEST_F(Bridge, ToThread) {
  int r = asyncio::run([] { return asyncio::await(asyncio::to_thread([](int x) { return x * 3; }, 14)); });
  EXPECT_EQ(r, 42);
}

// test_threads.py test_to_thread_contextvars: to_thread() runs the function
// in a copy of the caller's context. What it sets stays in that copy: not
// in the caller's, nor in the next job on the same worker thread.
// run_in_executor() copies nothing (the worker's own context, as asyncio).
TEST_F(Bridge, ToThreadRunsInACopyOfTheCallersContext) {
  asyncio::context_var<std::string> var("var", std::string("dflt"));
  std::vector<std::string> seen;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    asyncio::set_default_executor(loop, std::make_shared<concurrent::ThreadPoolExecutor>(1));  // one worker
    var.set("caller");
    seen.push_back(asyncio::await(asyncio::to_thread([&] { return var.get(); })));
    seen.push_back(asyncio::await(asyncio::to_thread(
        [&](const std::string& v) {
          var.set(v);
          return var.get();
        },
        std::string("set in worker"))));
    seen.push_back(asyncio::await(asyncio::to_thread([&] { return var.get(); })));
    seen.push_back(asyncio::await(loop.run_in_executor(nullptr, [&] { return var.get(); })));
    seen.push_back(var.get());
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"caller", "set in worker", "caller", "dflt", "caller"}));
}

TEST_F(Bridge, WrapFutureCompletedFromPlainThread) {
  concurrent::Future<int> cf;
  std::thread setter;
  int r = asyncio::run([&] {
    auto af = asyncio::wrap_future(cf);
    setter = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      cf.set_result(7);
    });
    // No timer, no I/O: only the external-work count keeps deadlock
    // detection from firing while the thread sleeps.
    return asyncio::await(af);
  });
  setter.join();
  EXPECT_EQ(r, 7);
}

TEST_F(Bridge, WrapFutureAlreadyDone) {
  concurrent::Future<std::string> cf;
  cf.set_result("done");
  EXPECT_EQ(asyncio::run([&] { return asyncio::await(asyncio::wrap_future(cf)); }), "done");
}

TEST_F(Bridge, CancellingTheTaskCancelsAQueuedJob) {
  concurrent::ThreadPoolExecutor pool(1);
  gate g;
  std::atomic<bool> ran{false};
  concurrent::Future<void> blocker = pool.submit([&] { g.wait(); });
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    auto waiter = asyncio::create_task([&] { asyncio::await(loop.run_in_executor(&pool, [&] { ran = true; })); });
    asyncio::sleep(0);
    asyncio::sleep(0);
    waiter.cancel();
    EXPECT_THROW(asyncio::await(waiter), asyncio::CancelledError);
  });
  g.release();
  pool.shutdown();
  EXPECT_FALSE(ran.load());  // cancelled before it started
  blocker.result();
}

TEST_F(Bridge, ResultForCancelledFutureIsDropped) {
  concurrent::ThreadPoolExecutor pool(1);
  gate g;
  std::atomic<bool> started{false}, posted{false};
  asyncio::run([&] {
    auto cf = pool.submit([&] {
      started = true;
      g.wait();
      return 5;
    });
    auto fut = asyncio::wrap_future(cf);
    // Registered after wrap_future's callback, so it runs after the late
    // result has been posted to the loop.
    cf.add_done_callback([&](const concurrent::Future<int>&) { posted = true; });
    auto waiter = asyncio::create_task([&] { return asyncio::await(fut); });
    asyncio::sleep(0);  // the waiter starts awaiting fut
    while (!started.load()) asyncio::sleep(0.001);
    waiter.cancel();  // the job is running: only the asyncio side ends
    EXPECT_THROW(asyncio::await(waiter), asyncio::CancelledError);
    EXPECT_TRUE(fut.cancelled());
    EXPECT_FALSE(cf.cancelled());
    g.release();
    while (!posted.load()) asyncio::sleep(0.001);
    asyncio::sleep(0);  // the late result is delivered, dropped, no error
    EXPECT_TRUE(fut.cancelled());
    EXPECT_EQ(cf.result(), 5);
  });
}

TEST_F(Bridge, RunShutsDownDefaultExecutorAfterCancellingTasks) {
  std::atomic<bool> finished{false}, started{false};
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    // Left pending: run() cancels the waiting task, then waits for the job.
    asyncio::create_task([&] {
      asyncio::await(loop.run_in_executor(nullptr, [&] {
        started = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        finished = true;
      }));
    });
    while (!started.load()) asyncio::sleep(0.001);
  });
  EXPECT_TRUE(finished.load());
}

TEST_F(Bridge, SetDefaultExecutor) {
  auto pool = std::make_shared<concurrent::ThreadPoolExecutor>(1, "custom");
  std::string name = asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    asyncio::set_default_executor(loop, pool);
    return asyncio::await(loop.run_in_executor(nullptr, [] {
      char buffer[16] = {};
      pthread_getname_np(pthread_self(), buffer, sizeof buffer);
      return std::string(buffer);
    }));
  });
  EXPECT_EQ(name, "custom_0");
  EXPECT_THROW(pool->submit([] {}), concurrent::RuntimeError);  // run() shut it down
}

// A loop thread, for run_coroutine_threadsafe from this (the test's) thread.
struct loop_thread {
  std::shared_ptr<asyncio::event_loop> loop;
  std::thread thread;
  std::mutex mutex;
  std::condition_variable cv;
  bool started = false;
  loop_thread() {
    thread = std::thread([this] {
      loop = asyncio::new_event_loop();
      {
        asyncio::event_loop::external_work_guard keep(*loop);  // runs until stopped
        loop->call_soon([this] {
          std::lock_guard<std::mutex> lock(mutex);
          started = true;
          cv.notify_all();
        });
        loop->run_forever();
      }
      loop->close();
    });
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [this] { return started; });
  }
  // The loop is destroyed here, after the join: call_soon_threadsafe() may
  // still be waking it when its thread sees stop().
  ~loop_thread() {
    loop->call_soon_threadsafe([l = loop.get()] { l->stop(); });
    thread.join();
    loop.reset();
  }
};

TEST_F(Bridge, RunCoroutineThreadsafe) {
  loop_thread lt;
  auto cf = asyncio::run_coroutine_threadsafe(
      [] {
        asyncio::sleep(0.001);
        return 42;
      },
      *lt.loop);
  EXPECT_EQ(cf.result(30), 42);
  auto bad = asyncio::run_coroutine_threadsafe([]() -> int { throw std::logic_error("nope"); }, *lt.loop);
  EXPECT_THROW(bad.result(30), std::logic_error);
}

TEST_F(Bridge, RunCoroutineThreadsafeCancel) {
  loop_thread lt;
  std::atomic<bool> started{false}, cancelled{false};
  auto cf = asyncio::run_coroutine_threadsafe(
      [&] {
        started = true;
        try {
          asyncio::sleep(3600);
        } catch (const asyncio::CancelledError&) {
          cancelled = true;
          throw;
        }
      },
      *lt.loop);
  while (!started.load()) std::this_thread::yield();
  EXPECT_TRUE(cf.cancel());
  EXPECT_THROW(cf.result(), concurrent::CancelledError);
  while (!cancelled.load()) std::this_thread::yield();
}

TEST_F(Bridge, RunCoroutineThreadsafeAwaitedFromAnotherLoop) {
  loop_thread lt;
  int r = asyncio::run([&] {
    auto cf = asyncio::run_coroutine_threadsafe([] { return asyncio::sleep(0.001, 5); }, *lt.loop);
    return asyncio::await(asyncio::wrap_future(cf));
  });
  EXPECT_EQ(r, 5);
}

TEST_F(Bridge, ShutdownWaitInsideTaskIsAnError) {
  concurrent::ThreadPoolExecutor pool(1);
  asyncio::run([&] { EXPECT_THROW(pool.shutdown(true), concurrent::RuntimeError); });
}

}  // namespace

namespace {

// Once the executor's job is delivered, nothing external is pending: a task
// still waiting on a future nobody completes is a deadlock again.
TEST_F(Bridge, DeadlockDetectedAfterExecutorWorkIsDone) {
  try {
    asyncio::run([] {
      auto& loop = asyncio::get_running_loop();
      EXPECT_EQ(asyncio::await(loop.run_in_executor(nullptr, [] { return 1; })), 1);
      auto never = loop.create_future<int>();
      asyncio::await(never);
    });
    FAIL() << "no deadlock reported";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::deadlock);
  }
}

}  // namespace

namespace {

// The natural use of external_work_guard: a thread posts its result and
// then drops its guard. The loop may finish on that post and be destroyed
// before the guard goes; the guard then wrote into the freed loop
// (heap-use-after-free under ASan, a race under TSan). It now holds the
// loop's core until it goes.
TEST_F(Bridge, ExternalWorkGuardMayOutliveItsLoop) {
  gate loop_gone;
  std::thread worker;
  std::string got;
  {
    asyncio::event_loop loop;
    auto result = loop.create_future<std::string>();
    auto guard = std::make_unique<asyncio::event_loop::external_work_guard>(loop);
    worker = std::thread([&loop, &result, &loop_gone, guard = std::move(guard)]() mutable {
      loop.call_soon_threadsafe([&result] { result.set_result("posted"); });
      loop_gone.wait();  // the loop is destroyed before the guard goes
      guard.reset();
    });
    got = loop.run_until_complete(result);
  }
  loop_gone.release();
  worker.join();
  EXPECT_EQ(got, "posted");
}

}  // namespace
