// current_task_test.cpp: current_task(), all_tasks() and the AnyTask handle
// they return. Ported from CPython's Lib/test/test_asyncio/test_tasks.py
// (BaseTaskTests.test_current_task, test_current_task_with_interleaving_tasks)
// and the all_tasks() behaviour test_tasks.py checks; each case names its
// source.
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::run_briefly;
using asyncio_test::TestError;
using CurrentTask = greenlet_test::GreenletTest;

// test_tasks.py test_current_task: inside a task, current_task() is that
// task; in a plain loop callback there is none.
TEST_F(CurrentTask, test_current_task) {
  asyncio::event_loop loop;
  bool callback_saw_none = false;
  loop.call_soon([&] { callback_saw_none = asyncio::current_task().empty(); });
  run_briefly(loop);
  EXPECT_TRUE(callback_saw_none);

  asyncio::AnyTask seen;
  auto task = loop.create_task([&] { seen = asyncio::current_task(); });
  loop.run_until_complete(task);
  EXPECT_FALSE(seen.empty());
  EXPECT_TRUE(seen == asyncio::AnyTask(task));
  EXPECT_EQ(seen.get_name(), task.get_name());
}

// test_tasks.py test_current_task_with_interleaving_tasks: two tasks that
// take turns each see themselves, before and after every suspension.
TEST_F(CurrentTask, test_current_task_with_interleaving_tasks) {
  std::vector<std::string> log;
  asyncio::run([&] {
    auto worker = [&log](const std::string& me) {
      return [&log, me] {
        for (int i = 0; i < 3; ++i) {
          log.push_back(me + "=" + asyncio::current_task().get_name());
          asyncio::sleep(0);
        }
      };
    };
    auto a = asyncio::create_task(worker("a"), "a");
    auto b = asyncio::create_task(worker("b"), "b");
    asyncio::gather(a, b);
    EXPECT_EQ(asyncio::current_task().get_name().rfind("Task-", 0), 0u) << "run()'s own task, as asyncio names it";
  });
  EXPECT_EQ(log, (std::vector<std::string>{"a=a", "b=b", "a=a", "b=b", "a=a", "b=b"}));
}

// asyncio.current_task() raises RuntimeError without a running loop.
TEST_F(CurrentTask, test_current_task_no_running_loop) {
  EXPECT_THROW(asyncio::current_task(), asyncio::RuntimeError);
  EXPECT_THROW(asyncio::all_tasks(), asyncio::RuntimeError);
}

// test_tasks.py test_all_tasks-style: all_tasks() lists the unfinished tasks
// (the caller included), oldest first; finished ones drop out.
TEST_F(CurrentTask, test_all_tasks) {
  asyncio::run([&] {
    asyncio::Event stop;
    const std::string me = asyncio::current_task().get_name();
    auto quick = asyncio::create_task([] { return 1; }, "quick");
    auto slow1 = asyncio::create_task([&] { stop.wait(); }, "slow1");
    auto slow2 = asyncio::create_task([&] { stop.wait(); }, "slow2");
    std::vector<std::string> names;
    for (const asyncio::AnyTask& t : asyncio::all_tasks()) names.push_back(t.get_name());
    EXPECT_EQ(names, (std::vector<std::string>{me, "quick", "slow1", "slow2"}));

    asyncio::sleep(0);  // quick finishes; the slow ones wait on the event
    names.clear();
    for (const asyncio::AnyTask& t : asyncio::all_tasks()) names.push_back(t.get_name());
    EXPECT_EQ(names, (std::vector<std::string>{me, "slow1", "slow2"}));
    EXPECT_EQ(quick.result(), 1);
    stop.set();
    asyncio::gather(slow1, slow2);
    ASSERT_EQ(asyncio::all_tasks().size(), 1u);
    EXPECT_TRUE(asyncio::all_tasks()[0] == asyncio::current_task());
  });
}

// The shutdown idiom of asyncio code: cancel every other task, then gather
// them with return_exceptions; an AnyTask works with gather() and wait().
TEST_F(CurrentTask, CancelAllOtherTasksAndGatherThem) {
  int unwound = 0;
  asyncio::run([&] {
    for (int i = 0; i < 5; ++i) {
      asyncio::create_task([&unwound] {
        struct count_unwind {
          int& n;
          ~count_unwind() { ++n; }
        } guard{unwound};
        asyncio::sleep(3600);
      });
    }
    asyncio::sleep(0);
    std::vector<asyncio::AnyTask> others;
    for (asyncio::AnyTask& t : asyncio::all_tasks()) {
      if (!(t == asyncio::current_task())) others.push_back(t);
    }
    ASSERT_EQ(others.size(), 5u);
    for (asyncio::AnyTask& t : others) EXPECT_TRUE(t.cancel("shutting down"));
    auto outcomes = asyncio::gather(asyncio::return_exceptions, others);
    ASSERT_EQ(outcomes.size(), 5u);
    for (auto& o : outcomes) EXPECT_FALSE(o.has_value());
    auto [done, pending] = asyncio::wait(others);
    EXPECT_EQ(done.size(), 5u);
    EXPECT_TRUE(pending.empty());
    for (asyncio::AnyTask& t : others) EXPECT_TRUE(t.cancelled());
  });
  EXPECT_EQ(unwound, 5);
}

// A task can cancel itself through current_task(): CancelledError comes out
// of its next suspension, as in asyncio.
TEST_F(CurrentTask, SelfCancelThroughCurrentTask) {
  asyncio::run([&] {
    bool reached_after_sleep = false;
    auto t = asyncio::create_task([&] {
      asyncio::current_task().cancel("by myself");
      asyncio::sleep(0);
      reached_after_sleep = true;
    });
    try {
      asyncio::await(t);
      ADD_FAILURE() << "the task was not cancelled";
    } catch (const asyncio::CancelledError& e) {
      EXPECT_EQ(std::string(e.message()), "by myself");
    }
    EXPECT_FALSE(reached_after_sleep);
    EXPECT_TRUE(t.cancelled());
  });
}

// await(AnyTask) rethrows the task's own exception with its type; the handle
// keeps a finished task's state alive after the Task<T> is gone.
TEST_F(CurrentTask, AwaitAnyTaskRethrowsAndKeepsStateAlive) {
  asyncio::run([&] {
    asyncio::AnyTask handle;
    {
      auto t = asyncio::create_task([]() -> int { throw TestError("boom"); });
      handle = t;
    }
    EXPECT_THROW(asyncio::await(handle), TestError);
    EXPECT_TRUE(handle.done());
    EXPECT_FALSE(handle.cancelled());
    EXPECT_NE(handle.exception(), nullptr);
    EXPECT_THROW(handle.result(), TestError);
    EXPECT_NE(handle.repr().find("exception"), std::string::npos) << handle.repr();
  });
}

// AnyTask keys unordered containers by task: copies and the Task<T> it came
// from are one key.
TEST_F(CurrentTask, AnyTaskHashesByTask) {
  asyncio::run([&] {
    auto a = asyncio::create_task([] {});
    auto b = asyncio::create_task([] { return 2; });
    std::unordered_set<asyncio::AnyTask> set{a, b, asyncio::AnyTask(a)};
    EXPECT_EQ(set.size(), 2u);
    EXPECT_EQ(set.count(asyncio::AnyTask(b)), 1u);
    asyncio::gather(a, b);
  });
}

}  // namespace
