// What closing a loop does to the bridge: run_coroutine_threadsafe() requests
// it can no longer serve end cancelled (CPython 3.11's asyncio.run resolves
// a request that arrives as it ends the same way). Every wait is bounded: a
// regression fails instead of hanging.
#include <atomic>
#include <thread>

#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"

namespace asyncio = greenlet::asyncio;
namespace concurrent = greenlet::concurrent;

namespace {

class LoopClose : public greenlet_test::GreenletTest {};

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

}  // namespace
