// cpython_eager_task_factory_port_test.cpp: CPython's Lib/test/test_asyncio/test_eager_task_factory.py
// (main at 03a13843c3da), method by method: EagerTaskFactoryLoopTests and the task-counting tests
// (BaseTaskCountingTests, eager and not). The loop's task factory is asyncio::eager_task_factory,
// set on the loop before run_until_complete() as the Python setUp() does; the Python C and Py
// task classes are one class here, so each method is ported once. The clock is virtual, for the
// sleep(0.1)s.
//
// Not ported:
// - test_staggered_race_with_eager_tasks(_no_delay): asyncio.staggered is a private module (the
//   happy-eyeballs helper of create_connection), not part of this library's API;
// - test_issue105987: _asyncio._swap_current_task on dummy objects, a C-module internal;
// - test_issue122332 asserts task.get_coro() is None once done: a task here has no coroutine
//   object; its twin is that the task's function, and what it captured, are gone once it is done
//   (test_issue122332 below checks a captured shared_ptr).
//
// The counting tests count tasks made without an eager start (Python's CountingTask counts those
// whose eager_start is false). Here a task is counted when create_task() returns it still pending,
// which is what an eager start that finishes avoids; test_awaitables_chain's `await coro()` makes
// no task in Python and is asyncio::await(fn), which makes one, here: counted 0 with the eager
// factory (each finishes in its first step) and 100 without (Python: 1, the outer task).
#include <memory>
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;

namespace cpython_eager_task_factory_port {

using EagerTaskFactoryLoopTests = greenlet_test::GreenletTest;

// eager_loop() is setUp()'s loop: virtual time, eager_task_factory set.
std::shared_ptr<asyncio::event_loop> eager_loop() {
  auto loop = asyncio::new_event_loop(asyncio_test::virtual_time());
  loop->set_task_factory(asyncio::eager_task_factory);
  return loop;
}

// test_eager_task_factory_set
TEST_F(EagerTaskFactoryLoopTests, test_eager_task_factory_set) {
  auto loop = eager_loop();
  EXPECT_TRUE(loop->get_task_factory() == asyncio::eager_task_factory);
  EXPECT_TRUE(loop->get_task_factory());
  bool ran = false;
  loop->run_until_complete([&] {
    EXPECT_TRUE(asyncio::get_event_loop().is_running());
    asyncio::Task<> t = loop->create_task([&] { ran = true; });
    asyncio::await(t);
  });
  EXPECT_TRUE(ran);
  loop->close();
}

// test_await_future_during_eager_step
TEST_F(EagerTaskFactoryLoopTests, test_await_future_during_eager_step) {
  auto loop = eager_loop();
  const std::string got = loop->run_until_complete([&] {
    auto fut = loop->create_future<std::string>();
    auto t = loop->create_task([&] { fut.set_result("my message"); });
    // assert the eager step completed the task
    EXPECT_TRUE(t.done());
    return asyncio::await(fut);
  });
  EXPECT_EQ(got, "my message");
  loop->close();
}

// test_eager_completion
TEST_F(EagerTaskFactoryLoopTests, test_eager_completion) {
  auto loop = eager_loop();
  const std::string got = loop->run_until_complete([&] {
    auto t = loop->create_task([] { return std::string("hello"); });
    // assert the eager step completed the task
    EXPECT_TRUE(t.done());
    return asyncio::await(t);
  });
  EXPECT_EQ(got, "hello");
  loop->close();
}

// test_block_after_eager_step
TEST_F(EagerTaskFactoryLoopTests, test_block_after_eager_step) {
  auto loop = eager_loop();
  const std::string got = loop->run_until_complete([&] {
    auto t = loop->create_task([] {
      asyncio::sleep(0.1);
      return std::string("finished after blocking");
    });
    EXPECT_FALSE(t.done());
    std::string result = asyncio::await(t);
    EXPECT_TRUE(t.done());
    return result;
  });
  EXPECT_EQ(got, "finished after blocking");
  loop->close();
}

// test_cancellation_after_eager_completion
TEST_F(EagerTaskFactoryLoopTests, test_cancellation_after_eager_completion) {
  auto loop = eager_loop();
  const std::string got = loop->run_until_complete([&] {
    auto t = loop->create_task([] { return std::string("finished without blocking"); });
    EXPECT_FALSE(t.cancel());
    std::string result = asyncio::await(t);
    // finished task can't be cancelled
    EXPECT_FALSE(t.cancelled());
    return result;
  });
  EXPECT_EQ(got, "finished without blocking");
  loop->close();
}

// test_cancellation_after_eager_step_blocks
TEST_F(EagerTaskFactoryLoopTests, test_cancellation_after_eager_step_blocks) {
  auto loop = eager_loop();
  try {
    loop->run_until_complete([&] {
      auto t = loop->create_task([] {
        asyncio::sleep(0.1);
        return std::string("finished after blocking");
      });
      t.cancel("cancellation message");
      EXPECT_GT(t.cancelling(), 0);
      asyncio::await(t);
    });
    FAIL() << "CancelledError expected";
  } catch (const asyncio::CancelledError& e) {
    EXPECT_EQ(e.message(), "cancellation message");
  }
  loop->close();
}

// test_current_task
TEST_F(EagerTaskFactoryLoopTests, test_current_task) {
  auto loop = eager_loop();
  asyncio::AnyTask captured_current_task;
  loop->run_until_complete([&] {
    auto t = loop->create_task([&] {
      captured_current_task = asyncio::current_task();
      // verify the task before and after blocking is identical
      asyncio::sleep(0.1);
      EXPECT_TRUE(asyncio::current_task() == captured_current_task);
    });
    EXPECT_TRUE(captured_current_task == asyncio::AnyTask(t));
    asyncio::await(t);
  });
  captured_current_task = asyncio::AnyTask();
  loop->close();
}

bool contains(const std::vector<asyncio::AnyTask>& tasks, const asyncio::AnyTask& t) {
  for (const auto& each : tasks) {
    if (each == t) return true;
  }
  return false;
}

// test_all_tasks_with_eager_completion
TEST_F(EagerTaskFactoryLoopTests, test_all_tasks_with_eager_completion) {
  auto loop = eager_loop();
  std::vector<asyncio::AnyTask> captured_all_tasks;
  loop->run_until_complete([&] {
    auto t = loop->create_task([&] { captured_all_tasks = asyncio::all_tasks(); });
    EXPECT_TRUE(contains(captured_all_tasks, t));
    EXPECT_FALSE(contains(asyncio::all_tasks(), t));
  });
  captured_all_tasks.clear();
  loop->close();
}

// test_all_tasks_with_blocking
TEST_F(EagerTaskFactoryLoopTests, test_all_tasks_with_blocking) {
  auto loop = eager_loop();
  std::vector<asyncio::AnyTask> captured_eager_all_tasks;
  loop->run_until_complete([&] {
    auto fut1 = loop->create_future();
    auto fut2 = loop->create_future();
    auto t = loop->create_task([&] {
      captured_eager_all_tasks = asyncio::all_tasks();
      asyncio::await(fut1);
      fut2.set_result();
    });
    EXPECT_TRUE(contains(captured_eager_all_tasks, t));
    EXPECT_TRUE(contains(asyncio::all_tasks(), t));
    fut1.set_result();
    asyncio::await(fut2);
    EXPECT_FALSE(contains(asyncio::all_tasks(), t));
  });
  captured_eager_all_tasks.clear();
  loop->close();
}

// test_context_vars
TEST_F(EagerTaskFactoryLoopTests, test_context_vars) {
  asyncio::context_var<int> cv("cv", 0);
  bool coro_first_step_ran = false;
  bool coro_second_step_ran = false;
  auto loop = eager_loop();
  loop->run_until_complete([&] {
    cv.set(1);
    auto t = loop->create_task([&] {
      EXPECT_EQ(cv.get(), 1);
      cv.set(2);
      EXPECT_EQ(cv.get(), 2);
      coro_first_step_ran = true;
      asyncio::sleep(0.1);
      EXPECT_EQ(cv.get(), 2);
      cv.set(3);
      EXPECT_EQ(cv.get(), 3);
      coro_second_step_ran = true;
    });
    EXPECT_TRUE(coro_first_step_ran);
    EXPECT_FALSE(coro_second_step_ran);
    EXPECT_EQ(cv.get(), 1);
    asyncio::await(t);
    EXPECT_TRUE(coro_second_step_ran);
    EXPECT_EQ(cv.get(), 1);
  });
  loop->close();
}

// test_issue122332 (see the head: the task's function is gone once it is done)
TEST_F(EagerTaskFactoryLoopTests, test_issue122332) {
  auto loop = eager_loop();
  auto captured = std::make_shared<int>(7);
  std::weak_ptr<int> watch = captured;
  loop->run_until_complete([&] {
    auto task = loop->create_task([held = std::move(captured)] { return *held; });
    EXPECT_EQ(asyncio::await(task), 7);
    EXPECT_TRUE(watch.expired());
  });
  loop->close();
}

// The task-counting tests: AsyncTaskCounter's count, as the head explains.
struct task_counter {
  int task_count = 0;

  template <class F>
  auto create_task(F&& fn) {
    auto t = asyncio::create_task(std::forward<F>(fn));
    if (!t.done()) ++task_count;
    return t;
  }
};

int awaitable_chain(task_counter& counter, int depth) {
  if (depth == 0) return 0;
  return 1 + asyncio::await(counter.create_task([&counter, depth] { return awaitable_chain(counter, depth - 1); }));
}

void recursive_taskgroups(task_counter& counter, int width, int depth) {
  if (depth == 0) return;
  asyncio::task_group([&](asyncio::TaskGroup& tg) {
    for (int i = 0; i < width; ++i) {
      auto t = tg.create_task([&counter, width, depth] { recursive_taskgroups(counter, width, depth - 1); });
      if (!t.done()) ++counter.task_count;
    }
  });
}

void recursive_gather(task_counter& counter, int width, int depth) {
  if (depth == 0) return;
  std::vector<asyncio::Task<>> children;
  for (int i = 0; i < width; ++i) {
    children.push_back(counter.create_task([&counter, width, depth] { recursive_gather(counter, width, depth - 1); }));
  }
  asyncio::gather(children);
}

// BaseTaskCountingTests, run with and without the eager factory (EagerTests, NonEagerTests).
class BaseTaskCountingTests : public greenlet_test::GreenletTest, public ::testing::WithParamInterface<bool> {
 protected:
  bool eager() const { return GetParam(); }
  std::shared_ptr<asyncio::event_loop> make_loop() const {
    auto loop = asyncio::new_event_loop();
    if (eager()) loop->set_task_factory(asyncio::eager_task_factory);
    return loop;
  }
  // expected_task_count: the 5 + 5^2 + 5^3 + 5^4 tasks the recursion makes, without an eager
  // start. Python's 781 counts the outer task too, made here by run_until_complete(), uncounted.
  int expected_task_count() const { return eager() ? 0 : 780; }
};

// test_awaitables_chain
TEST_P(BaseTaskCountingTests, test_awaitables_chain) {
  auto loop = make_loop();
  task_counter counter;
  const int observed_depth = loop->run_until_complete([&] { return awaitable_chain(counter, 100); });
  EXPECT_EQ(observed_depth, 100);
  EXPECT_EQ(counter.task_count, eager() ? 0 : 100);
  loop->close();
}

// test_recursive_taskgroups
TEST_P(BaseTaskCountingTests, test_recursive_taskgroups) {
  auto loop = make_loop();
  task_counter counter;
  loop->run_until_complete([&] { recursive_taskgroups(counter, 5, 4); });
  EXPECT_EQ(counter.task_count, expected_task_count());
  loop->close();
}

// test_recursive_gather
TEST_P(BaseTaskCountingTests, test_recursive_gather) {
  auto loop = make_loop();
  task_counter counter;
  loop->run_until_complete([&] { recursive_gather(counter, 5, 4); });
  EXPECT_EQ(counter.task_count, expected_task_count());
  loop->close();
}

INSTANTIATE_TEST_SUITE_P(EagerAndNot, BaseTaskCountingTests, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("EagerTests") : std::string("NonEagerTests");
                         });

}  // namespace cpython_eager_task_factory_port
