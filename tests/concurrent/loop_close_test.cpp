// What closing a loop does to the bridge: run_coroutine_threadsafe() requests
// it can no longer serve end cancelled (CPython 3.11's asyncio.run resolves
// a request that arrives as it ends the same way) and the closed loop is
// freed with its descriptors. Every wait is bounded: a regression fails
// instead of hanging.
#include <atomic>
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

}  // namespace
