// loop_thread_calls_test.cpp: the loop-thread-only calls (call_soon,
// call_later, call_at, create_task, create_future, add_reader, add_writer,
// run_in_executor) refuse another thread with RuntimeError(wrong_loop)
// naming call_soon_threadsafe(). They used to be accepted and corrupted the
// loop: a call_soon() from a worker while the loop ran lost callbacks,
// raised a false deadlock, std::bad_function_call, or crashed.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <greenlet/asyncio.hpp>

namespace asyncio = greenlet::asyncio;

namespace {

// refusal is what one call made on another thread did.
struct refusal {
  std::string call;
  bool refused = false;  // RuntimeError with asyncio_errc::wrong_loop
  std::string what;
};

// calls_on(loop, fds, ran) is every loop-thread-only call, each bumping ran if its function ever
// runs.
std::vector<std::pair<std::string, std::function<void()>>> calls_on(asyncio::event_loop& loop, const int* fds,
                                                                    std::atomic<int>& ran) {
  return {
      {"call_soon", [&] { loop.call_soon([&ran] { ++ran; }); }},
      {"call_later", [&] { loop.call_later(0, [&ran] { ++ran; }); }},
      {"call_at", [&] { loop.call_at(0, [&ran] { ++ran; }); }},
      {"create_task", [&] { loop.create_task([&ran] { ++ran; }); }},
      {"create_future", [&] { loop.create_future<int>(); }},
      {"add_reader", [&, fds] { loop.add_reader(fds[0], [&ran] { ++ran; }); }},
      {"add_writer", [&, fds] { loop.add_writer(fds[1], [&ran] { ++ran; }); }},
      {"run_in_executor", [&] { loop.run_in_executor(nullptr, [&ran] { ++ran; }); }},
  };
}

// try_each_on_another_thread() makes every call on a new thread and says what each did.
std::vector<refusal> try_each_on_another_thread(asyncio::event_loop& loop, const int* fds, std::atomic<int>& ran) {
  std::vector<refusal> out;
  std::thread other([&] {
    for (auto& [name, call] : calls_on(loop, fds, ran)) {
      refusal r;
      r.call = name;
      try {
        call();
      } catch (const asyncio::RuntimeError& e) {
        r.refused = e.condition() == asyncio::asyncio_errc::wrong_loop;
        r.what = e.what();
      } catch (const std::exception& e) {
        r.what = e.what();
      }
      out.push_back(std::move(r));
    }
  });
  other.join();
  return out;
}

void expect_all_refused(const std::vector<refusal>& results) {
  ASSERT_EQ(results.size(), 8u);
  for (const refusal& r : results) {
    EXPECT_TRUE(r.refused) << r.call << ": " << r.what;
    EXPECT_NE(r.what.find("another thread"), std::string::npos) << r.call << ": " << r.what;
    EXPECT_NE(r.what.find("call_soon_threadsafe()"), std::string::npos) << r.call << ": " << r.what;
  }
}

struct pipe_fds {
  int fds[2] = {-1, -1};
  pipe_fds() { EXPECT_EQ(::pipe(fds), 0); }
  ~pipe_fds() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
};

}  // namespace

TEST(LoopThreadCalls, RefusedFromAnotherThreadWhileTheLoopIsIdle) {
  asyncio::event_loop loop;
  pipe_fds pipe;
  std::atomic<int> ran{0};
  expect_all_refused(try_each_on_another_thread(loop, pipe.fds, ran));
  // Nothing was queued: the loop has nothing to run, and still works.
  loop.run_until_complete([] { asyncio::sleep(0.01); });
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(loop.run_until_complete([] { return 7; }), 7);
}

TEST(LoopThreadCalls, RefusedFromAnotherThreadWhileTheLoopRuns) {
  asyncio::event_loop loop;
  pipe_fds pipe;
  std::atomic<int> ran{0};
  std::vector<refusal> results;
  loop.run_until_complete([&] {
    // The loop runs (this task is suspended in sleep()) while the other thread calls.
    auto done = loop.create_future<void>();
    asyncio::event_loop::external_work_guard busy(loop);
    std::thread caller([&] {
      results = try_each_on_another_thread(loop, pipe.fds, ran);
      loop.call_soon_threadsafe([&] { done.set_result(); });
    });
    asyncio::await(done);
    caller.join();
    asyncio::sleep(0.01);
  });
  expect_all_refused(results);
  EXPECT_EQ(ran.load(), 0);
}

TEST(LoopThreadCalls, TheOwnerThreadMayScheduleBeforeAndWhileRunning) {
  asyncio::event_loop loop;
  std::vector<int> order;
  loop.call_soon([&] { order.push_back(1); });
  loop.call_later(0, [&] { order.push_back(2); });
  loop.run_until_complete([&] {
    loop.call_soon([&] { order.push_back(3); });
    loop.create_future<int>().cancel();
    asyncio::await(loop.create_task([&] { order.push_back(4); }));
  });
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
}

// The race the explorer found: a worker thread's call_soon() while the loop ran lost callbacks or
// crashed. Now every call is refused and the loop's own work is intact.
TEST(LoopThreadCalls, CallSoonFromAWorkerRacingTheLoopIsRefusedEveryTime) {
  asyncio::event_loop loop;
  std::atomic<int> ran{0};
  std::atomic<int> refused{0};
  std::atomic<bool> go{false};
  const int attempts = 20000;
  std::thread worker([&] {
    while (!go) std::this_thread::yield();
    for (int i = 0; i < attempts; ++i) {
      try {
        loop.call_soon([&] { ++ran; });
      } catch (const asyncio::RuntimeError&) {
        ++refused;
      }
    }
  });
  int steps = 0;
  loop.run_until_complete([&] {
    go = true;
    for (int i = 0; i < 20000; ++i) {
      asyncio::sleep(0);
      ++steps;
    }
  });
  worker.join();
  EXPECT_EQ(steps, 20000);
  EXPECT_EQ(refused.load(), attempts);
  EXPECT_EQ(ran.load(), 0);
}

// A future's and a task's own calls (cancel, add/remove_done_callback, set_result, set_exception)
// from another thread are refused too, before they change anything. cancel() and
// add_done_callback() were not checked: they raced with the loop (its node pool) and a task's
// cancel() was half applied (a cancel counted, the task still running).
TEST(LoopThreadCalls, FutureAndTaskCallsFromAnotherThreadAreRefusedBeforeAnyChange) {
  asyncio::event_loop loop;
  auto future = loop.create_future<int>();
  auto task = loop.create_task([] { asyncio::sleep(0.05); });
  asyncio::AnyTask any_task = task;
  const std::uint64_t registered = future.add_done_callback([](asyncio::Future<int>&) {});
  const std::string future_before = future.repr();
  std::vector<std::pair<std::string, std::function<void()>>> calls = {
      {"Future::cancel", [&] { future.cancel(); }},
      {"Future::add_done_callback", [&] { future.add_done_callback([](asyncio::Future<int>&) {}); }},
      {"Future::remove_done_callback", [&] { future.remove_done_callback(registered); }},
      {"Future::set_result", [&] { future.set_result(1); }},
      {"Future::set_exception", [&] { future.set_exception(std::runtime_error("x")); }},
      {"Task::cancel", [&] { task.cancel(); }},
      {"Task::add_done_callback", [&] { task.add_done_callback([](asyncio::Future<void>&) {}); }},
      {"AnyTask::cancel", [&] { any_task.cancel(); }},
  };
  std::vector<refusal> results;
  std::thread other([&] {
    for (auto& [name, call] : calls) {
      refusal r;
      r.call = name;
      try {
        call();
      } catch (const asyncio::RuntimeError& e) {
        r.refused = e.condition() == asyncio::asyncio_errc::wrong_loop;
        r.what = e.what();
      } catch (const std::exception& e) {
        r.what = e.what();
      }
      results.push_back(std::move(r));
    }
  });
  other.join();
  for (const refusal& r : results) {
    EXPECT_TRUE(r.refused) << r.call << ": " << r.what;
    EXPECT_NE(r.what.find("call_soon_threadsafe()"), std::string::npos) << r.call << ": " << r.what;
  }
  // Nothing changed: the future is pending with its one callback, the task has no cancel request.
  EXPECT_FALSE(future.done());
  EXPECT_EQ(future.repr(), future_before);
  EXPECT_EQ(task.cancelling(), 0);
  loop.run_until_complete(task);
  EXPECT_FALSE(task.cancelled());
  future.cancel();
  loop.close();
}
