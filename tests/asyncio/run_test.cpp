// run_test.cpp: asyncio::run. Ported from CPython's
// Lib/test/test_asyncio/test_runners.py (RunTests); each case names its source.
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::error_log;
using asyncio_test::Guard;
using asyncio_test::TestError;
using asyncio_test::virtual_time;
using RunTests = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

// test_runners.py RunTests.test_asyncio_run_return
TEST_F(RunTests, test_asyncio_run_return) {
  EXPECT_EQ(asyncio::run([] {
              asyncio::sleep(0);
              return 42;
            }),
            42);
  // No loop is left running or current.
  EXPECT_THROW(asyncio::get_running_loop(), asyncio::RuntimeError);
}

// test_runners.py RunTests.test_asyncio_run_raises
TEST_F(RunTests, test_asyncio_run_raises) {
  try {
    asyncio::run([]() -> int {
      asyncio::sleep(0);
      throw TestError("spam");
    });
    ADD_FAILURE() << "no exception";
  } catch (const TestError& e) {
    EXPECT_STREQ(e.what(), "spam");
  }
  EXPECT_THROW(asyncio::get_running_loop(), asyncio::RuntimeError);
}

// test_runners.py RunTests.test_asyncio_run_only_coro ... main may also be
// cancelled: run() raises CancelledError.
TEST_F(RunTests, test_asyncio_run_main_cancelled) {
  EXPECT_THROW(asyncio::run([] { throw asyncio::CancelledError("main"); }), asyncio::CancelledError);
}

// test_runners.py RunTests.test_asyncio_run_cancels_hanging_tasks: tasks
// still pending when main returns are cancelled and their stacks unwound.
TEST_F(RunTests, test_asyncio_run_cancels_hanging_tasks) {
  Strings log;
  asyncio::Task<void> lo_task;
  EXPECT_EQ(asyncio::run(
                [&] {
                  lo_task = asyncio::create_task([&] {
                    Guard g{log, "leftover"};
                    asyncio::sleep(0.1);
                    log.push_back("not reached");
                  });
                  asyncio::sleep(0);  // let it start
                  return 123;
                },
                virtual_time()),
            123);
  EXPECT_TRUE(lo_task.done());
  EXPECT_TRUE(lo_task.cancelled());
  EXPECT_EQ(log, (Strings{"~leftover"}));
}

// test_runners.py RunTests.test_asyncio_run_cancels_hanging_tasks, edge:
// a task created just before main returns is not cancelled unstarted: its
// first step was queued before main's done callback (which stops the loop),
// so it runs in the same iteration and finishes, as in CPython.
TEST_F(RunTests, test_asyncio_run_task_created_at_return_runs) {
  Strings log;
  asyncio::Task<void> lo_task;
  asyncio::run([&] { lo_task = asyncio::create_task([&] { log.push_back("ran"); }); });
  EXPECT_TRUE(lo_task.done());
  EXPECT_FALSE(lo_task.cancelled());
  EXPECT_EQ(log, (Strings{"ran"}));
}

// runners._cancel_all_tasks cancels what all_tasks() lists: oldest first
// in practice (CPython 3.11 prints "0 cancelled", "1 cancelled", "2
// cancelled" for this program). The loop links a new task at the head of
// its list, and run() used to cancel them from there: newest first.
TEST_F(RunTests, test_asyncio_run_cancels_leftover_tasks_oldest_first) {
  Strings log;
  asyncio::run([&] {
    for (int i = 0; i < 3; ++i) {
      asyncio::create_task([&log, i] {
        try {
          asyncio::sleep(10);
        } catch (const asyncio::CancelledError&) {
          log.push_back(std::to_string(i) + " cancelled");
          throw;
        }
      });
    }
    asyncio::sleep(0);
  });
  EXPECT_EQ(log, (Strings{"0 cancelled", "1 cancelled", "2 cancelled"}));
}

// base_events / runners._cancel_all_tasks: run() waits for the cancelled
// tasks to finish, even when they catch CancelledError and await more.
TEST_F(RunTests, test_asyncio_run_waits_for_cancelled_tasks) {
  Strings log;
  asyncio::run(
      [&] {
        asyncio::create_task([&] {
          try {
            asyncio::sleep(10);
          } catch (const asyncio::CancelledError&) {
            log.push_back("cleanup starts");
            asyncio::sleep(0.5);
            log.push_back("cleanup done");
          }
        });
        asyncio::sleep(0);
        log.push_back("main returns");
      },
      virtual_time());
  EXPECT_EQ(log, (Strings{"main returns", "cleanup starts", "cleanup done"}));
}

// test_runners.py RunTests.test_asyncio_run_reports_hanging_tasks_errors:
// an exception a leftover task raises while being cancelled goes to the
// exception handler, with a message matching "asyncio.run.*shutdown".
TEST_F(RunTests, test_asyncio_run_reports_hanging_tasks_errors) {
  error_log errors;
  asyncio::Task<void> lo_task;
  EXPECT_EQ(asyncio::run(
                [&] {
                  errors.attach(asyncio::get_running_loop());
                  lo_task = asyncio::create_task(
                      [] {
                        try {
                          asyncio::sleep(0.1);
                        } catch (const asyncio::CancelledError&) {
                          throw TestError("1 / 0");
                        }
                      },
                      "leftover");
                  asyncio::sleep(0);
                  return 123;
                },
                virtual_time()),
            123);
  EXPECT_TRUE(lo_task.done());
  ASSERT_EQ(errors.messages.size(), 1u) << (errors.messages.empty() ? "" : errors.messages.back());
  EXPECT_NE(errors.messages[0].find("asyncio::run() shutdown"), std::string::npos) << errors.messages[0];
  EXPECT_EQ(errors.whats[0], "1 / 0");
  EXPECT_NE(errors.sources[0].find("leftover"), std::string::npos) << errors.sources[0];
}

// The callbacks made ready in main's last turn run before the loop closes,
// as asyncio.run runs the loop for shutdown_asyncgens(): here the done
// callback of a task that finished in that turn, and a call_soon() it made.
// Found by structured_chaos_test.cpp, seed 6965: a fire-and-forget task's
// callback that looked at its exception never ran, and the task reported
// "Task exception was never retrieved".
// Regression test, this once failed: neither callback ran.
TEST_F(RunTests, callbacks_left_ready_by_mains_last_turn_run_before_the_loop_closes) {
  error_log errors;
  Strings log;
  asyncio::run([&] {
    errors.attach(asyncio::get_running_loop());
    asyncio::create_task([] {
      asyncio::sleep(0);
      throw TestError("looked at by its callback");
    }).add_done_callback([&](asyncio::Future<>& f) {
      log.push_back(asyncio_test::what_of(f.exception()));
      asyncio::get_running_loop().call_soon([&] { log.push_back("call_soon from the callback"); });
    });
    asyncio::sleep(0);  // main's last turn is the task's
  });
  EXPECT_EQ(log, (Strings{"looked at by its callback", "call_soon from the callback"}));
  EXPECT_TRUE(errors.messages.empty()) << errors.messages.front();
}

// test_runners.py RunTests.test_asyncio_run_from_running_loop: run() inside
// a running loop raises RuntimeError and main never runs.
TEST_F(RunTests, test_asyncio_run_from_running_loop) {
  Strings log;
  asyncio::event_loop loop;
  testing::internal::CaptureStderr();  // see test_asyncio_run_from_running_loop_is_quiet
  loop.run_until_complete([&] {
    try {
      asyncio::run([&] { log.push_back("inner main ran"); });
    } catch (const asyncio::RuntimeError& e) {
      log.push_back(e.condition() == asyncio::asyncio_errc::loop_running ? "RuntimeError" : "wrong condition");
    }
  });
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(log, (Strings{"RuntimeError"}));
}

// test_runners.py RunTests.test_asyncio_run_from_running_loop: CPython
// checks for a running loop before it makes anything, and closes the
// coroutine silently.
// Regression test, this once failed: run() first makes a loop and a task for main, fails
// to run it, then its epilogue reports "error while cancelling the remaining
// tasks of asyncio::run()" and "Task was destroyed but it is pending!" on
// stderr; it also resets the thread's current event loop
// (set_event_loop(nullptr)) though it never ran.
TEST_F(RunTests, test_asyncio_run_from_running_loop_is_quiet) {
  asyncio::event_loop loop;
  testing::internal::CaptureStderr();
  loop.run_until_complete([&] {
    try {
      asyncio::run([] {});
    } catch (const asyncio::RuntimeError&) {
    }
  });
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "");
}

// test_runners.py RunTests (each run() makes a fresh loop): two runs in a
// row are independent; the options reach the loop.
TEST_F(RunTests, test_asyncio_run_twice) {
  auto main = [] {
    asyncio::sleep(3.0);
    return asyncio::get_running_loop().time();
  };
  EXPECT_DOUBLE_EQ(asyncio::run(main, virtual_time()), 3.0);
  EXPECT_DOUBLE_EQ(asyncio::run(main, virtual_time()), 3.0);
}

}  // namespace
