// loop_teardown_test.cpp: an event_loop destroyed while it runs (from one of
// its own callbacks, or by a task dropping its last owner). The run touched
// the freed loop (heap-use-after-free). And reports made once the event_loop
// object is gone: they called the loop's handler with a null loop.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::TestError;
using LoopTeardown = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

// A call_soon callback resets the unique_ptr holding the loop. The run goes on (as Python's
// run_forever() keeps its loop): callbacks of the turn and later ones still run, get_running_loop()
// and the exception handler get a valid loop, and stop() through it ends the run. The loop is then
// closed, as its destructor would have: a task still pending is reported destroyed.
TEST_F(LoopTeardown, loop_reset_by_its_own_callback_runs_on_then_closes) {
  Strings log;
  auto loop = std::make_unique<asyncio::event_loop>();
  loop->set_exception_handler([&](asyncio::event_loop* l, const asyncio::exception_context& c) {
    log.push_back("handler: " + c.message + (l == nullptr ? " (null loop)" : l->is_closed() ? " (closed)" : " (open)"));
  });
  auto never = loop->create_future<int>();
  loop->create_task([&, never]() mutable { asyncio::await(never); }, "waiter");
  loop->call_soon([&] {
    log.push_back("reset");
    loop.reset();
  });
  loop->call_soon([&] {
    asyncio::event_loop& running = asyncio::get_running_loop();
    log.push_back(std::string("same turn, running: ") + (running.is_running() ? "yes" : "no"));
    running.call_soon([&] { throw TestError("late callback"); });
    running.call_later(0.001, [&] {
      log.push_back("timer");
      asyncio::get_running_loop().stop();
    });
  });
  loop->run_forever();
  EXPECT_EQ(loop, nullptr);
  EXPECT_EQ(log, (Strings{"reset", "same turn, running: yes", "handler: Exception in callback (open)", "timer",
                          "handler: Task was destroyed but it is pending! (closed)"}));
}

// The callback's reset drops the loop's only reference (no future, task or handle holds one): the
// core was freed then, under the run (heap-use-after-free under ASan).
TEST_F(LoopTeardown, only_reference_dropped_by_a_callback) {
  Strings log;
  auto loop = std::make_unique<asyncio::event_loop>();
  loop->call_soon([&] {
    loop.reset();
    asyncio::get_running_loop().stop();
    log.push_back("stopped");
  });
  loop->run_forever();
  EXPECT_EQ(log, Strings{"stopped"});
}

// The run ends in the deadlock error after the loop was destroyed: the loop is closed all the same
// (as the error unwinds), its pending task reported.
TEST_F(LoopTeardown, destroyed_loop_closed_when_its_run_ends_in_an_error) {
  auto loop = std::make_unique<asyncio::event_loop>();
  auto never = loop->create_future<int>();
  auto waiter = loop->create_task([never]() mutable { return asyncio::await(never); }, "waiter");
  loop->call_soon([&] { loop.reset(); });
  testing::internal::CaptureStderr();
  try {
    asyncio::event_loop* raw = loop.get();
    raw->run_forever();
    ADD_FAILURE() << "run_forever() returned";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::deadlock) << e.what();
  }
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("Task was destroyed but it is pending!\n  in <Task pending name='waiter'"), std::string::npos)
      << err;
  EXPECT_TRUE(waiter.done());  // killed by the close
}

// The last owner of the loop is a task's capture: the task drops it while run_until_complete()
// waits for the task. The task goes on (it awaits, makes another task through get_running_loop())
// and run_until_complete() returns its result.
TEST_F(LoopTeardown, task_dropping_the_last_owner_still_completes) {
  auto loop = std::make_shared<asyncio::event_loop>();
  asyncio::event_loop* raw = loop.get();
  auto main = raw->create_task([owner = std::move(loop)]() mutable {
    owner.reset();  // the last owner: the event_loop object is destroyed here
    asyncio::sleep(0);
    auto child = asyncio::create_task([] {
      asyncio::sleep(0.001);
      return 40;
    });
    return asyncio::await(child) + 2;
  });
  EXPECT_EQ(raw->run_until_complete(main), 42);  // raw is gone; run_until_complete() does not touch it after the run
  EXPECT_TRUE(main.done());
}

// Once the event_loop object is gone, the calls that reach the loop through its facade (a
// TaskGroup's join, run_in_executor(), shutdown_default_executor()) go through the stand-in, whose
// room the loop took when it was made, so making it cannot fail for want of memory.
TEST_F(LoopTeardown, group_and_executor_work_after_the_loop_object_is_gone) {
  auto loop = std::make_shared<asyncio::event_loop>();
  asyncio::event_loop* raw = loop.get();
  auto main = raw->create_task([owner = std::move(loop)]() mutable {
    owner.reset();
    int sum = 0;
    asyncio::task_group([&](asyncio::TaskGroup& group) {
      for (int i = 1; i <= 3; ++i)
        group.create_task([&sum, i] {
          asyncio::sleep(0.001 * i);
          sum += i;
        });
    });
    sum += asyncio::await(asyncio::get_running_loop().run_in_executor(nullptr, [] { return 100; }));
    asyncio::shutdown_default_executor(asyncio::get_running_loop());
    return sum;
  });
  EXPECT_EQ(raw->run_until_complete(main), 106);
}

// A run_until_complete() whose loop is destroyed mid-run, and whose future then never completes
// before the run is stopped, says so.
TEST_F(LoopTeardown, run_until_complete_stopped_after_the_loop_is_destroyed) {
  auto loop = std::make_unique<asyncio::event_loop>();
  auto never = loop->create_future<int>();
  loop->call_soon([&] {
    loop.reset();
    asyncio::get_running_loop().stop();
  });
  try {
    asyncio::event_loop* raw = loop.get();
    raw->run_until_complete(never);
    ADD_FAILURE() << "run_until_complete() returned";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(std::string(e.what()), "Event loop stopped before Future completed.");
  }
  EXPECT_FALSE(never.done());
}

// A future failing unretrieved outlives its event_loop object: its report, made when the last
// handle drops it, goes to the default handler (stderr), not to the loop's handler with a null
// loop (which the handler read: a crash).
TEST_F(LoopTeardown, report_after_the_loop_object_is_gone_goes_to_stderr) {
  Strings log;
  asyncio::Future<int> kept;
  asyncio::Task<int> kept_task;
  {
    asyncio::event_loop loop;
    loop.set_exception_handler([&](asyncio::event_loop* l, const asyncio::exception_context& c) {
      log.push_back(c.message + (l == nullptr ? " (null loop)" : ""));
    });
    kept = loop.create_future<int>();
    kept.set_exception(std::make_exception_ptr(TestError("late")));
    kept_task = loop.create_task([]() -> int { throw TestError("task failed"); }, "failing");
    loop.run_until_complete([] { asyncio::sleep(0); });
  }
  testing::internal::CaptureStderr();
  kept = {};
  kept_task = {};
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(log, Strings{});
  EXPECT_NE(err.find("asyncio: Future exception was never retrieved"), std::string::npos) << err;
  EXPECT_NE(err.find("asyncio: Task exception was never retrieved\n  in <Task finished name='failing'"),
            std::string::npos)
      << err;
}

// A callback given as a plain function, from call_soon_threadsafe().
void throw_from_a_function() { throw TestError("threadsafe"); }

// teardown_source_as_gcc_spells(source, n): a handle's text with its lambda's type spelled as g++
// spells the n-th lambda of a function, "{lambda()#n}"; clang's is "$_k", k a counter of its own.
std::string teardown_source_as_gcc_spells(std::string source, int n) {
  if (const std::size_t at = source.find("$_"); at != std::string::npos) {
    std::size_t end = at + 2;
    while (end < source.size() && source[end] >= '0' && source[end] <= '9') ++end;
    source.replace(at, end - at, "{lambda()#" + std::to_string(n) + "}");
  }
  return source;
}

// The reports name their source: the never-retrieved future (its repr), and the callback that
// threw (its handle's repr, asyncio's "Exception in callback ..." / "handle: <Handle ...>").
TEST_F(LoopTeardown, reports_name_their_source) {
  asyncio_test::error_log errors;
  asyncio::event_loop loop(asyncio_test::virtual_time());
  errors.attach(loop);
  {
    auto f = loop.create_future<int>();
    f.set_exception(std::make_exception_ptr(TestError("dropped")));
  }
  loop.call_soon([] { throw TestError("soon"); });
  loop.call_later(2.5, [] { throw TestError("later"); });
  loop.call_soon_threadsafe(&throw_from_a_function);
  loop.run_until_complete([] { asyncio::sleep(3); });
  ASSERT_EQ(errors.sources.size(), 4u);
  EXPECT_EQ(errors.messages[0], "Future exception was never retrieved");
  EXPECT_EQ(errors.sources[0], "<Future finished exception=TestError('dropped')>");
  EXPECT_EQ(errors.messages[1], "Exception in callback");
  EXPECT_EQ(teardown_source_as_gcc_spells(errors.sources[1], 1),
            "<Handle LoopTeardown_reports_name_their_source_Test::TestBody()::{lambda()#1}()>");
  EXPECT_EQ(errors.messages[3], "Exception in callback");
  EXPECT_EQ(teardown_source_as_gcc_spells(errors.sources[3], 2),
            "<TimerHandle when=2.5 LoopTeardown_reports_name_their_source_Test::TestBody()::{lambda()#2}()>");
  EXPECT_EQ(errors.sources[2], "<Handle <function pointer>()>");
  EXPECT_EQ(errors.whats, (Strings{"dropped", "soon", "threadsafe", "later"}));
}

}  // namespace
