// What closing a loop does to the bridge: run_coroutine_threadsafe() requests
// it can no longer serve end cancelled (CPython 3.11's asyncio.run resolves
// a request that arrives as it ends the same way), the closed loop is freed
// with its descriptors, and its default executor is shut down and forgotten
// (asyncio's BaseEventLoop.close() calls executor.shutdown(wait=False)), so
// no worker outlives it and no later loop inherits it. Every wait is bounded:
// a regression fails instead of hanging.
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"
#include "support/process_stats.hpp"

namespace asyncio = greenlet::asyncio;
namespace concurrent = greenlet::concurrent;

namespace {

class LoopClose : public greenlet_test::GreenletTest {};

using greenlet_test::open_fd_count;
using greenlet_test::thread_count;

// Posted, then the loop closes without running: the request is dropped
// unrun and its future cancelled (it used to stay pending for ever).
TEST_F(LoopClose, ThreadsafeRequestQueuedAtCloseIsCancelled) {
  auto loop = asyncio::new_event_loop();
  std::atomic<bool> ran{false};
  concurrent::Future<int> cf;
  std::thread other([&] {
    cf = asyncio::run_coroutine_threadsafe(
        [&] {
          ran = true;
          return 42;
        },
        *loop);
  });
  other.join();
  loop->close();
  EXPECT_TRUE(cf.cancelled());
  EXPECT_THROW(cf.result(0), concurrent::CancelledError);
  EXPECT_FALSE(ran.load());
}

// Loop A awaits a request to loop B made just as B's asyncio::run ends: B
// takes it after its main returned, so its task is cancelled before its
// first step, and A gets CancelledError (it used to wait for ever).
TEST_F(LoopClose, ThreadsafeRequestArrivingAsRunEndsIsCancelled) {
  std::atomic<asyncio::event_loop*> loop_b{nullptr};
  std::atomic<bool> posted{false};
  std::thread b([&] {
    asyncio::run([&] {
      loop_b = &asyncio::get_running_loop();
      while (!posted.load()) std::this_thread::yield();  // a busy main, then it returns
    });
  });
  while (loop_b.load() == nullptr) std::this_thread::yield();
  std::atomic<bool> ran{false};
  asyncio::run([&] {
    auto cf = asyncio::run_coroutine_threadsafe(
        [&] {
          ran = true;
          return 42;
        },
        *loop_b.load());
    posted = true;
    EXPECT_THROW(asyncio::wait_for(asyncio::wrap_future(cf), 10.0), asyncio::CancelledError);
  });
  b.join();
  EXPECT_FALSE(ran.load());
}

// Requests whose tasks are suspended, or created but not yet started, when
// their loop closes: each future ends cancelled and the loop is freed with
// its epoll and eventfd descriptors. The link between a request's task and
// its future was a reference cycle only the task's done callback broke,
// which a closed loop never runs: every such loop leaked.
TEST_F(LoopClose, LoopClosedWithThreadsafeTasksIsFreed) {
  const int fds_before = open_fd_count();
  for (int round = 0; round < 10; ++round) {
    auto loop = asyncio::new_event_loop();
    std::vector<concurrent::Future<int>> futures;
    auto post = [&] {
      std::thread other([&] {
        for (int i = 0; i < 2; ++i) {
          futures.push_back(asyncio::run_coroutine_threadsafe(
              [] {
                asyncio::sleep(3600);
                return 1;
              },
              *loop));
        }
      });
      other.join();
    };
    post();
    loop->run_until_complete([] {
      for (int i = 0; i < 5; ++i) asyncio::sleep(0);  // the two tasks start and sleep
    });
    post();
    loop->call_soon([&] { loop->stop(); });
    loop->run_forever();  // takes the two new requests: tasks made, not started
    loop->close();        // cancels them all before it returns
    for (auto& f : futures) EXPECT_TRUE(f.cancelled());
  }
  EXPECT_EQ(open_fd_count(), fds_before) << "loops closed with run_coroutine_threadsafe() tasks were kept alive";
}

// close() shuts the default executor down without waiting, as asyncio's.
TEST_F(LoopClose, CloseShutsDownTheDefaultExecutor) {
  auto pool = std::make_shared<concurrent::ThreadPoolExecutor>(1, "custom");
  {
    asyncio::event_loop loop;
    asyncio::set_default_executor(loop, pool);
    EXPECT_EQ(loop.run_until_complete([] { return asyncio::await(asyncio::to_thread([] { return 7; })); }), 7);
    loop.close();
  }
  EXPECT_THROW(pool->submit([] {}), concurrent::RuntimeError);
  EXPECT_EQ(pool.use_count(), 1) << "the closed loop still holds its default executor";
}

// A loop made where a closed one was (the same address) starts without a
// default executor; the registry was keyed by address and never forgot a
// loop not run by asyncio::run, so the new loop got the old one's (here
// shut down: to_thread() threw "cannot schedule new futures after shutdown").
TEST_F(LoopClose, NewLoopDoesNotInheritAClosedLoopsExecutor) {
  const void* first_core = nullptr;
  {
    asyncio::event_loop loop;
    first_core = loop.core();
    auto pool = std::make_shared<concurrent::ThreadPoolExecutor>(1, "first");
    asyncio::set_default_executor(loop, pool);
    pool->shutdown(true);  // its owner is done with it
    loop.close();
  }
  asyncio::event_loop loop;
  const bool same_address = loop.core() == first_core;
  EXPECT_EQ(loop.run_until_complete([] { return asyncio::await(asyncio::to_thread([] { return 7; })); }), 7)
      << (same_address ? "at the closed loop's address" : "at another address");
}

// Given to a loop already closed, an executor is not kept (nothing would
// ever shut it down or forget it); run_in_executor(nullptr) refuses.
TEST_F(LoopClose, ClosedLoopKeepsNoDefaultExecutor) {
  auto pool = std::make_shared<concurrent::ThreadPoolExecutor>(1);
  asyncio::event_loop loop;
  loop.close();
  asyncio::set_default_executor(loop, pool);
  EXPECT_EQ(pool.use_count(), 1);
  EXPECT_THROW(loop.run_in_executor(nullptr, [] { return 1; }), asyncio::RuntimeError);
}

// Loops on several threads, each closed after a to_thread() call: their
// default pools' workers all end (each used to idle for ever).
TEST_F(LoopClose, ClosedLoopsLeaveNoWorkerThreads) {
  const int threads_before = thread_count();
  for (int round = 0; round < 5; ++round) {
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([] {
        auto loop = std::make_unique<asyncio::event_loop>();
        EXPECT_EQ(loop->run_until_complete([] { return asyncio::await(asyncio::to_thread([] { return 7; })); }), 7);
        loop->close();
      });
    }
    for (auto& t : threads) t.join();
  }
  // Joined threads may be listed a moment longer: look again for a while.
  // At most as many as before, not exactly: a thread an earlier test joined
  // (the whole binary runs in one process under TSan) may still have been
  // listed in threads_before.
  for (int i = 0; i < 500 && thread_count() > threads_before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_LE(thread_count(), threads_before) << "default executors' workers outlived their closed loops";
}

}  // namespace
