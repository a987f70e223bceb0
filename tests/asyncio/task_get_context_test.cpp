// task_get_context_test.cpp: Task.get_context() (Python 3.12): the values a task's context holds
// before it runs, after it set its own, read from a done callback, for a task given a context
// object, through AnyTask, and for a task the loop let go of unfinished.
#include <string>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;

namespace task_get_context_test {

using TaskGetContext = greenlet_test::GreenletTest;

greenlet::context_var<std::string> request_id("request_id", std::string("none"));

std::string request_id_in(greenlet::context ctx) {
  return ctx.run([] { return request_id.get(); });
}

// Before its first step the task's context holds its creator's values; once it ran, what it set,
// while the creator's stay as they were (the task ran in a copy).
TEST_F(TaskGetContext, ItHoldsTheCreatorsValuesThenWhatTheTaskSet) {
  asyncio::run([] {
    request_id.set("from creator");
    auto task = asyncio::create_task([] {
      request_id.set("set by task");
      asyncio::sleep(0);
    });
    EXPECT_EQ(request_id_in(task.get_context()), "from creator");
    asyncio::sleep(0);  // the task's first step: it set its value and waits
    EXPECT_EQ(request_id_in(task.get_context()), "set by task");
    asyncio::await(task);
    EXPECT_EQ(request_id_in(task.get_context()), "set by task");
    EXPECT_EQ(request_id.get(), "from creator");
  });
}

// Python's use: a done callback reads what the task left in its context (a request id for a log
// line).
TEST_F(TaskGetContext, ADoneCallbackReadsWhatTheTaskLeft) {
  std::string logged;
  asyncio::run([&] {
    auto task = asyncio::create_task([] { request_id.set("req-42"); });
    asyncio::AnyTask(task).add_done_callback(
        [&](asyncio::AnyTask& t) { logged = "done " + request_id_in(t.get_context()); });
    asyncio::await(task);
    asyncio::sleep(0);
  });
  EXPECT_EQ(logged, "done req-42");
}

// A task given a context object runs in it: get_context() has that object's values, and what the
// task set; the object holds the same once the task is done. The copy is another context, so
// running it never conflicts with the task's own, even while the task runs.
TEST_F(TaskGetContext, ATaskGivenAContextObjectReportsItsValues) {
  asyncio::run([] {
    greenlet::context ctx = greenlet::copy_context();
    ctx.run([] { request_id.set("given"); });
    asyncio::Event go;
    auto task = asyncio::create_task(
        [&] {
          go.wait();
          request_id.set("changed in task");
        },
        {.context = &ctx});
    asyncio::sleep(0);
    greenlet::context copy = task.get_context();
    EXPECT_EQ(request_id_in(copy), "given");
    go.set();
    asyncio::await(task);
    EXPECT_EQ(request_id_in(task.get_context()), "changed in task");
    EXPECT_EQ(request_id_in(ctx), "changed in task");
    EXPECT_EQ(request_id_in(copy), "given");  // a snapshot: later sets do not reach it
  });
}

// An empty handle refuses, as its other calls; a task the loop let go of unfinished (closed under
// it) has no context left to report.
TEST_F(TaskGetContext, EmptyHandlesRefuseAndAnAbandonedTaskHasNone) {
  asyncio::AnyTask empty;
  EXPECT_THROW(empty.get_context(), asyncio::RuntimeError);
  asyncio::Task<void> no_task;
  EXPECT_THROW(no_task.get_context(), asyncio::RuntimeError);

  auto loop = asyncio::new_event_loop();
  asyncio::Event never;
  asyncio::Task<void> stuck;
  loop->run_until_complete([&] {
    stuck = asyncio::create_task([&] {
      request_id.set("stuck");
      never.wait();
    });
    asyncio::sleep(0);
    EXPECT_EQ(request_id_in(stuck.get_context()), "stuck");
  });
  loop->close();
  EXPECT_EQ(stuck.get_context().size(), 0U);
}

}  // namespace task_get_context_test
