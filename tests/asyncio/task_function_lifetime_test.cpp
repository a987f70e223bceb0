// task_function_lifetime_test.cpp: a task's function, and everything it
// captured, is destroyed as soon as the task is through with it (returned,
// raised, cancelled, or let go of by the loop unstarted), not when the last
// Task handle goes: Python frees a finished coroutine's frame the same way.
// Before, a held handle kept the captures alive (a server's connection
// stayed open until nobody held its handler's task).
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::error_log;
using asyncio_test::run_briefly;
using TaskFunctionLifetime = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

TEST_F(TaskFunctionLifetime, FinishedTaskLetsGoOfItsCapturesWhileItsHandleIsHeld) {
  long after_value = -1, after_void = -1, after_throw = -1, after_cancel = -1;
  int value = 0;
  asyncio::run([&] {
    auto p = std::make_shared<int>(7);
    auto returns = asyncio::create_task([p] { return *p; });
    value = asyncio::await(returns);
    after_value = p.use_count();

    auto plain = asyncio::create_task([p] { asyncio::sleep(0); });
    asyncio::await(plain);
    after_void = p.use_count();

    auto raises = asyncio::create_task([p]() -> int { throw std::runtime_error("boom"); });
    try {
      asyncio::await(raises);
    } catch (const std::runtime_error&) {
    }
    after_throw = p.use_count();

    auto never = asyncio::get_running_loop().create_future<void>();
    auto cancelled = asyncio::create_task([p, never]() mutable { asyncio::await(never); });
    asyncio::sleep(0);
    cancelled.cancel();
    try {
      asyncio::await(cancelled);
    } catch (const asyncio::CancelledError&) {
    }
    after_cancel = p.use_count();
    // The handles are still held here.
    EXPECT_TRUE(returns.done() && plain.done() && raises.done() && cancelled.done());
  });
  EXPECT_EQ(value, 7);
  EXPECT_EQ(after_value, 1);
  EXPECT_EQ(after_void, 1);
  EXPECT_EQ(after_throw, 1);
  EXPECT_EQ(after_cancel, 1);
}

// A task that never runs its function drops it too: cancelled before its
// first step, or still unstarted when its loop closes.
TEST_F(TaskFunctionLifetime, TaskThatNeverRanLetsGoOfItsCaptures) {
  auto p = std::make_shared<int>(1);
  long after_early_cancel = -1, after_close = -1;
  error_log errors;
  {
    asyncio::event_loop loop;
    errors.attach(loop);
    auto early = loop.create_task([p] {});
    early.cancel();
    try {
      loop.run_until_complete(early);
    } catch (const asyncio::CancelledError&) {
    }
    after_early_cancel = p.use_count();
    auto unstarted = loop.create_task([p] {}, "unstarted");
    loop.close();
    after_close = p.use_count();
  }
  EXPECT_EQ(after_early_cancel, 1);
  EXPECT_EQ(after_close, 1);
  EXPECT_EQ(errors.messages, (Strings{"Task was destroyed but it is pending!"}));
}

// The captures are destroyed in the task itself, before its result is
// published: a destructor sees the task running and not done, and may await.
struct in_task_witness {
  Strings* log;
  ~in_task_witness() {
    if (log == nullptr) return;
    asyncio::AnyTask me = asyncio::current_task();
    log->push_back(!me.empty() ? "destroyed in " + me.get_name() + (me.done() ? " (done)" : " (pending)")
                               : std::string("destroyed outside a task"));
    asyncio::sleep(0);
    log->push_back("awaited in the destructor");
  }
  in_task_witness(Strings* l) : log(l) {}
  in_task_witness(in_task_witness&& o) noexcept : log(std::exchange(o.log, nullptr)) {}
  in_task_witness(const in_task_witness&) = delete;
};

TEST_F(TaskFunctionLifetime, CapturesAreDestroyedInTheTaskBeforeItsResult) {
  Strings log;
  asyncio::run([&] {
    auto t = asyncio::create_task(
        [w = in_task_witness(&log), &log] {
          log.push_back("body returns");
          return 5;
        },
        "worker");
    t.add_done_callback([&log](asyncio::Future<int>&) { log.push_back("done callback"); });
    EXPECT_EQ(asyncio::await(t), 5);
  });
  EXPECT_EQ(log,
            (Strings{"body returns", "destroyed in worker (pending)", "awaited in the destructor", "done callback"}));
}

}  // namespace
