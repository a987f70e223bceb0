// task_context_arg_test.cpp: create_task(fn, name, ctx), asyncio's create_task(coro, context=ctx):
// the task runs in the context object itself, not in a copy. After CPython's
// Lib/test/test_asyncio/test_tasks.py (test_context_4/5/6) and test_taskgroups.py.
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;
using asyncio_test::virtual_time;

namespace {

using TaskContextArgTests = greenlet_test::GreenletTest;

// value_in(ctx, var) is Python's ctx.get(var, "none").
std::string value_in(asyncio::context& ctx, asyncio::context_var<std::string>& var) {
  return ctx.run([&] { return var.get("none"); });
}

// expect_context_entered(fn) expects fn to throw greenlet::error (errc::context_entered), Python's
// RuntimeError "... is already entered".
void expect_context_entered(const std::function<void()>& fn) {
  try {
    fn();
    ADD_FAILURE() << "no greenlet::error thrown";
  } catch (const greenlet::error& e) {
    EXPECT_EQ(e.code(), greenlet::errc::context_entered) << e.what();
    EXPECT_NE(std::string(e.what()).find("already entered"), std::string::npos) << e.what();
  }
}

// test_context_5: asyncio.create_task(coro(1), context=ctx), awaited, then coro(2) in the same ctx:
// what each task sets is in ctx afterwards ([None, 1, 2]), the creator's context untouched.
TEST_F(TaskContextArgTests, test_context_5_free_create_task) {
  asyncio::context_var<std::string> cvar("cvar");
  std::vector<std::string> ret;
  asyncio::run(
      [&] {
        auto coro = [&](std::string val) {
          return [&cvar, val] {
            asyncio::sleep(0);
            cvar.set(val);
          };
        };
        asyncio::context ctx = asyncio::copy_context();
        ret.push_back(value_in(ctx, cvar));
        auto t1 = asyncio::create_task(coro("1"), {}, ctx);
        asyncio::await(t1);
        ret.push_back(value_in(ctx, cvar));
        auto t2 = asyncio::create_task(coro("2"), {}, ctx);
        asyncio::await(t2);
        ret.push_back(value_in(ctx, cvar));
        EXPECT_EQ(cvar.get("none"), "none");  // the creator's own context
      },
      virtual_time());
  EXPECT_EQ(ret, (std::vector<std::string>{"none", "1", "2"}));
}

// test_context_6: the same with loop.create_task(coro, context=ctx), and a name.
TEST_F(TaskContextArgTests, test_context_6_loop_create_task) {
  asyncio::context_var<std::string> cvar("cvar");
  std::vector<std::string> ret;
  asyncio::event_loop loop(virtual_time());
  auto main = loop.create_task([&] {
    asyncio::context ctx = asyncio::copy_context();
    ret.push_back(value_in(ctx, cvar));
    auto t1 = loop.create_task(
        [&] {
          asyncio::sleep(0);
          cvar.set("1");
        },
        "t1", ctx);
    EXPECT_EQ(t1.get_name(), "t1");
    asyncio::await(t1);
    ret.push_back(value_in(ctx, cvar));
    auto t2 = loop.create_task(
        [&] {
          EXPECT_EQ(cvar.get(), "1");  // the second task sees what the first left in ctx
          asyncio::sleep(0);
          cvar.set("2");
        },
        "t2", ctx);
    asyncio::await(t2);
    ret.push_back(value_in(ctx, cvar));
  });
  loop.run_until_complete(main);
  loop.close();
  EXPECT_EQ(ret, (std::vector<std::string>{"none", "1", "2"}));
}

// The task sees ctx's values, not its creator's current ones (which a task without ctx copies).
TEST_F(TaskContextArgTests, TheTaskSeesTheGivenContextNotItsCreators) {
  asyncio::context_var<std::string> cvar("cvar");
  asyncio::run(
      [&] {
        asyncio::context ctx;
        ctx.run([&] { cvar.set("in ctx"); });
        cvar.set("creator");
        auto given = asyncio::create_task([&] { return cvar.get(); }, "given", ctx);
        auto copied = asyncio::create_task([&] { return cvar.get(); });
        EXPECT_EQ(asyncio::await(given), "in ctx");
        EXPECT_EQ(asyncio::await(copied), "creator");
        EXPECT_EQ(cvar.get(), "creator");
      },
      virtual_time());
}

// test_context_run_7 inside a task: ctx.run() in the task that runs ctx is Python's RuntimeError
// "cannot enter context: ... is already entered"; so is a run() of ctx by its creator while the
// task holds it, and a second task given ctx (here a task holds its context until it is done,
// where Python enters it per step). Once the task is done, ctx can be run again; a copy always.
TEST_F(TaskContextArgTests, RunOfTheContextWhileATaskRunsItIsRefused) {
  asyncio::context_var<std::string> cvar("cvar");
  asyncio::run(
      [&] {
        asyncio::context ctx;
        bool second_ran = false;
        auto task = asyncio::create_task(
            [&] {
              cvar.set("task");
              expect_context_entered([&] { ctx.run([] {}); });
              asyncio::sleep(0.01);
              asyncio::context copy = ctx;  // a copy is another context: allowed
              copy.run([&] { cvar.set("copy"); });
              return cvar.get();
            },
            "holder", ctx);
        expect_context_entered([&] { ctx.run([] {}); });  // not started yet: held already
        asyncio::sleep(0.001);
        expect_context_entered([&] { ctx.run([] {}); });  // suspended in the task
        expect_context_entered([&] { asyncio::create_task([&] { second_ran = true; }, "second", ctx); });
        EXPECT_EQ(asyncio::await(task), "task");
        EXPECT_EQ(value_in(ctx, cvar), "task");
        asyncio::sleep(0.01);
        EXPECT_FALSE(second_ran);
      },
      virtual_time());
}

// A token made by the task is one of ctx's: reset() accepts it in ctx.run() after the task, and
// refuses it in the creator's own context (Python's ValueError "... in a different Context").
TEST_F(TaskContextArgTests, ATokenMadeInTheTaskBelongsToTheContext) {
  asyncio::context_var<std::string> cvar("cvar", std::string("dflt"));
  asyncio::run(
      [&] {
        asyncio::context ctx;
        auto task = asyncio::create_task([&] { return cvar.set("task"); }, {}, ctx);
        auto token = asyncio::await(task);
        try {
          cvar.reset(token);
          ADD_FAILURE() << "reset() in the creator's context accepted the task's token";
        } catch (const greenlet::error& e) {
          EXPECT_EQ(e.code(), greenlet::errc::token_other_context) << e.what();
        }
        ctx.run([&] { cvar.reset(token); });
        EXPECT_EQ(ctx.run([&] { return cvar.get(); }), "dflt");
        EXPECT_EQ(ctx.size(), 0u);
      },
      virtual_time());
}

// What a failing task set stays in ctx (Python mutates the Context in place), and a task
// cancelled before it started gives ctx back unchanged.
TEST_F(TaskContextArgTests, AFailedOrCancelledTaskGivesTheContextBack) {
  asyncio::context_var<std::string> cvar("cvar");
  asyncio::run(
      [&] {
        asyncio::context ctx;
        auto failing = asyncio::create_task(
            [&] {
              cvar.set("before the throw");
              asyncio::sleep(0);
              throw std::runtime_error("boom");
            },
            {}, ctx);
        EXPECT_THROW(asyncio::await(failing), std::runtime_error);
        EXPECT_EQ(value_in(ctx, cvar), "before the throw");

        auto cancelled = asyncio::create_task([&] { cvar.set("never"); }, {}, ctx);
        cancelled.cancel();
        EXPECT_THROW(asyncio::await(cancelled), asyncio::CancelledError);
        EXPECT_EQ(value_in(ctx, cvar), "before the throw");
      },
      virtual_time());
}

// A loop closed with a task given ctx that never started lets go of ctx.
TEST_F(TaskContextArgTests, ClosingTheLoopLetsGoOfAnUnstartedTasksContext) {
  asyncio::context_var<std::string> cvar("cvar");
  asyncio::context ctx;
  {
    asyncio::event_loop loop(virtual_time());
    auto task = loop.create_task([&] { cvar.set("never"); }, {}, ctx);
    EXPECT_TRUE(ctx.entered());
    loop.close();
    EXPECT_FALSE(ctx.entered());
  }
  EXPECT_EQ(value_in(ctx, cvar), "none");
}

// TaskGroup.create_task(coro, context=ctx) (Python 3.12): the child runs in ctx.
TEST_F(TaskContextArgTests, TaskGroupCreateTaskWithContext) {
  asyncio::context_var<std::string> cvar("cvar");
  asyncio::run(
      [&] {
        asyncio::context ctx;
        ctx.run([&] { cvar.set("given"); });
        std::string seen;
        asyncio::task_group([&](asyncio::TaskGroup& tg) {
          tg.create_task(
              [&] {
                seen = cvar.get("none");
                cvar.set("child");
              },
              "child", ctx);
        });
        EXPECT_EQ(seen, "given");
        EXPECT_EQ(value_in(ctx, cvar), "child");
      },
      virtual_time());
}

}  // namespace
