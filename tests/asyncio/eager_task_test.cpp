// eager_task_test.cpp: event_loop::set_task_factory(eager_task_factory) beyond CPython's tests
// (cpython_eager_task_factory_port_test.cpp): the order things print in, as Python 3.12 prints it
// with the eager factory; eager steps taken from a callback, from a task that was handed the turn,
// and nested; what stays lazy (before the loop runs, async generator bodies); failures.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;

namespace eager_task_test {

using EagerTask = greenlet_test::GreenletTest;
using strings = std::vector<std::string>;

std::shared_ptr<asyncio::event_loop> eager_loop() {
  auto loop = asyncio::new_event_loop();
  loop->set_task_factory(asyncio::eager_task_factory);
  return loop;
}

TEST_F(EagerTask, FactoryDefaultsToNoneAndCanBeReset) {
  auto loop = asyncio::new_event_loop();
  EXPECT_TRUE(loop->get_task_factory() == nullptr);
  EXPECT_FALSE(loop->get_task_factory());
  loop->set_task_factory(asyncio::eager_task_factory);
  EXPECT_TRUE(loop->get_task_factory() == asyncio::eager_task_factory);
  EXPECT_TRUE(loop->get_task_factory().eager());
  loop->set_task_factory(nullptr);
  EXPECT_TRUE(loop->get_task_factory() == nullptr);
  loop->close();
}

// async def child(): print("child start"); await asyncio.sleep(0); print("child end")
// async def main(): print("main start"); t = create_task(child()); print("main after create"); await t
// Python 3.12 prints, with the eager factory: main start, child start, main after create, child end;
// without it: main start, main after create, child start, child end.
strings run_print_order(bool eager) {
  strings out;
  auto loop = asyncio::new_event_loop();
  if (eager) loop->set_task_factory(asyncio::eager_task_factory);
  loop->run_until_complete([&] {
    out.push_back("main start");
    auto t = asyncio::create_task([&] {
      out.push_back("child start");
      asyncio::sleep(0);
      out.push_back("child end");
    });
    out.push_back("main after create");
    asyncio::await(t);
  });
  loop->close();
  return out;
}

TEST_F(EagerTask, FirstStepRunsInsideCreateTask) {
  EXPECT_EQ(run_print_order(true), (strings{"main start", "child start", "main after create", "child end"}));
  EXPECT_EQ(run_print_order(false), (strings{"main start", "main after create", "child start", "child end"}));
}

// await(fn) makes a task of fn: eager, a fn that returns without suspending is done at once and the
// awaiting task does not suspend, so a callback scheduled before it runs after.
TEST_F(EagerTask, AwaitOfAFunctionThatFinishesDoesNotSuspend) {
  for (bool eager : {true, false}) {
    strings out;
    auto loop = asyncio::new_event_loop();
    if (eager) loop->set_task_factory(asyncio::eager_task_factory);
    loop->run_until_complete([&] {
      loop->call_soon([&] { out.push_back("callback"); });
      const int got = asyncio::await([&] {
        out.push_back("fn");
        return 42;
      });
      out.push_back("after await " + std::to_string(got));
      asyncio::sleep(0);
    });
    loop->close();
    if (eager) {
      EXPECT_EQ(out, (strings{"fn", "after await 42", "callback"}));
    } else {
      EXPECT_EQ(out, (strings{"callback", "fn", "after await 42"}));
    }
  }
}

// Tasks created before the loop runs (run_until_complete()'s own) start on its first iteration.
TEST_F(EagerTask, NotEagerWhileTheLoopIsNotRunning) {
  auto loop = eager_loop();
  bool ran = false;
  auto t = loop->create_task([&] { ran = true; });
  EXPECT_FALSE(ran);
  EXPECT_FALSE(t.done());
  loop->run_until_complete(t);
  EXPECT_TRUE(ran);
  loop->close();
}

// From a plain callback the eager step comes back to the callback, which has no current task.
TEST_F(EagerTask, FromAPlainCallback) {
  auto loop = eager_loop();
  strings out;
  loop->run_until_complete([&] {
    auto done = loop->create_future();
    loop->call_soon([&] {
      auto t = asyncio::create_task([&] {
        out.push_back(asyncio::current_task().empty() ? "no task" : "in task");
        asyncio::sleep(0);
        out.push_back("task end");
        done.set_result();
      });
      out.push_back(asyncio::current_task().empty() ? "callback: no task" : "callback: in task");
      out.push_back(t.done() ? "done" : "pending");
    });
    asyncio::await(done);
  });
  EXPECT_EQ(out, (strings{"in task", "callback: no task", "pending", "task end"}));
  loop->close();
}

// An eager task making an eager task: each first step comes back to its own creator.
TEST_F(EagerTask, Nested) {
  auto loop = eager_loop();
  strings out;
  loop->run_until_complete([&] {
    auto outer = asyncio::create_task([&] {
      out.push_back("outer start");
      auto inner = asyncio::create_task([&] {
        out.push_back("inner start");
        asyncio::sleep(0);
        out.push_back("inner end");
        return 2;
      });
      out.push_back("outer after create");
      asyncio::sleep(0);
      out.push_back("outer end");
      return 1 + asyncio::await(inner);
    });
    out.push_back("main after create");
    EXPECT_EQ(asyncio::await(outer), 3);
  });
  EXPECT_EQ(out, (strings{"outer start", "inner start", "outer after create", "main after create", "inner end",
                          "outer end"}));
  loop->close();
}

// Python 3.12 with the eager factory prints this order for:
//   async def t1(): log("T1 a"); await sleep(0); log("T1 b"); create_task(t3()); log("T1 c")
//   async def t2(): log("T2 a"); await sleep(0); log("T2 b"); create_task(t4()); log("T2 c")
//   async def t3()/t4(): log("Tn a"); await sleep(0); log("Tn b")
//   async def main(): create_task(t1()); create_task(t2()); await sleep(0); log("main"); await sleep(0); await sleep(0)
// T2's second step is handed the turn by T1 here (take_handoff_step()), so its eager step for T4
// must come back to T2, not to the loop.
TEST_F(EagerTask, FromATaskThatWasHandedTheTurn) {
  auto loop = eager_loop();
  strings out;
  auto leaf = [&out](const std::string& name) {
    out.push_back(name + " a");
    asyncio::sleep(0);
    out.push_back(name + " b");
  };
  loop->run_until_complete([&] {
    auto t1 = asyncio::create_task([&] {
      out.push_back("T1 a");
      asyncio::sleep(0);
      out.push_back("T1 b");
      asyncio::create_task([&] { leaf("T3"); });
      out.push_back("T1 c");
    });
    auto t2 = asyncio::create_task([&] {
      out.push_back("T2 a");
      asyncio::sleep(0);
      out.push_back("T2 b");
      asyncio::create_task([&] { leaf("T4"); });
      out.push_back("T2 c");
    });
    asyncio::sleep(0);
    out.push_back("main");
    asyncio::sleep(0);
    asyncio::sleep(0);
  });
  EXPECT_EQ(out, (strings{"T1 a", "T2 a", "T1 b", "T3 a", "T1 c", "T2 b", "T4 a", "T2 c", "main", "T3 b", "T4 b"}));
  loop->close();
}

// An exception in the eager step is the task's, as after any step: create_task() returns normally.
TEST_F(EagerTask, ExceptionInTheFirstStepGoesToTheTask) {
  auto loop = eager_loop();
  loop->run_until_complete([&] {
    auto t = asyncio::create_task([]() -> int { throw asyncio_test::TestError("first step"); });
    ASSERT_TRUE(t.done());
    EXPECT_THROW(asyncio::await(t), asyncio_test::TestError);
  });
  loop->close();
}

// A task that cancels itself in its eager step ends cancelled at its first suspension.
TEST_F(EagerTask, CancelledDuringTheFirstStep) {
  auto loop = eager_loop();
  strings out;
  loop->run_until_complete([&] {
    auto t = asyncio::create_task([&] {
      asyncio::current_task().cancel("self");
      try {
        asyncio::sleep(0);
        out.push_back("not cancelled");
      } catch (const asyncio::CancelledError& e) {
        out.push_back(std::string("cancelled: ") + e.message());
        throw;
      }
    });
    EXPECT_FALSE(t.done());
    asyncio::wait(std::vector<asyncio::Task<>>{t});
    EXPECT_TRUE(t.cancelled());
  });
  EXPECT_EQ(out, (strings{"cancelled: self"}));
  loop->close();
}

// gather() and a TaskGroup make their tasks through the factory too; a child that fails in its
// eager step still fails the group.
TEST_F(EagerTask, GatherAndTaskGroup) {
  auto loop = eager_loop();
  loop->run_until_complete([&] {
    auto [a, b] = asyncio::gather([] { return 1; },
                                  [] {
                                    asyncio::sleep(0);
                                    return std::string("two");
                                  });
    EXPECT_EQ(a, 1);
    EXPECT_EQ(b, "two");
    bool sibling_cancelled = false;
    try {
      asyncio::task_group([&](asyncio::TaskGroup& tg) {
        tg.create_task([&] {
          try {
            asyncio::sleep(10);
          } catch (const asyncio::CancelledError&) {
            sibling_cancelled = true;
            throw;
          }
        });
        tg.create_task([] { throw asyncio_test::TestError("child"); });
      });
      ADD_FAILURE() << "ExceptionGroup expected";
    } catch (const asyncio::ExceptionGroup& eg) {
      ASSERT_EQ(eg.exceptions().size(), 1u);
      EXPECT_EQ(asyncio_test::what_of(eg.exceptions()[0]), "child");
    }
    EXPECT_TRUE(sibling_cancelled);
  });
  loop->close();
}

// An async generator's body task is never eager: the generator sets it up after create_task().
TEST_F(EagerTask, AsyncGeneratorsStillWork) {
  auto loop = eager_loop();
  const std::vector<int> got = loop->run_until_complete([&] {
    std::vector<int> items;
    asyncio::async_generator<int> ticks([](auto& co) {
      for (int i = 0; i < 3; ++i) {
        asyncio::sleep(0);
        co.yield(i);
      }
    });
    for (int i : asyncio::aiter(ticks)) items.push_back(i);
    return items;
  });
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
  loop->close();
}

// asyncio 3.14's create_task(coro, eager_start=True/False), here task_options{.eager_start}: one
// task eager without the factory, or one lazy under it; name and context pass through too.
TEST_F(EagerTask, EagerStartPerTask) {
  asyncio::event_loop loop;
  strings out;
  asyncio::context ctx;
  loop.run_until_complete([&] {
    auto eager = asyncio::create_task([&] { out.push_back("eager runs"); }, {.name = "e", .eager_start = true});
    out.push_back("after eager");
    auto lazy = asyncio::create_task([&] { out.push_back("lazy runs"); }, {.eager_start = false});
    auto plain = loop.create_task([&] { out.push_back("plain runs"); }, {.name = "p", .context = &ctx});
    out.push_back("after lazy and plain");
    EXPECT_TRUE(eager.done());
    EXPECT_FALSE(lazy.done());
    EXPECT_EQ(eager.get_name(), "e");
    EXPECT_EQ(plain.get_name(), "p");
    asyncio::gather(lazy, plain);
    asyncio::get_running_loop().set_task_factory(asyncio::eager_task_factory);
    auto not_eager = asyncio::create_task([&] { out.push_back("not eager runs"); }, {.eager_start = false});
    out.push_back("after not eager");
    asyncio::await(not_eager);
  });
  EXPECT_EQ(out, (strings{"eager runs", "after eager", "after lazy and plain", "lazy runs", "plain runs",
                          "after not eager", "not eager runs"}));
}

// A child that makes a sibling failing at once, in its own eager first step: the group aborts
// before the first child is listed; it is cancelled when it is, not left running.
TEST_F(EagerTask, TaskGroupAbortDuringAChildsEagerStep) {
  // Virtual time: without the cancel, the child's hour passes at once and the test fails, not hangs.
  auto loop = asyncio::new_event_loop(asyncio_test::virtual_time());
  loop->set_task_factory(asyncio::eager_task_factory);
  strings out;
  loop->run_until_complete([&] {
    try {
      asyncio::task_group([&](asyncio::TaskGroup& tg) {
        tg.create_task([&] {
          tg.create_task([] { throw asyncio_test::TestError("sibling"); });
          try {
            asyncio::sleep(3600);
            out.push_back("first child slept on");
          } catch (const asyncio::CancelledError&) {
            out.push_back("first child cancelled");
            throw;
          }
        });
      });
    } catch (const asyncio::ExceptionGroup& eg) {
      out.push_back("group: " + asyncio_test::what_of(eg.exceptions().at(0)));
    } catch (const asyncio::CancelledError&) {
      out.push_back("main cancelled");
    }
  });
  EXPECT_EQ(out, (strings{"first child cancelled", "group: sibling"}));
  loop->close();
}

}  // namespace eager_task_test
