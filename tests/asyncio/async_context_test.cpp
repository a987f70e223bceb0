// async_context_test.cpp: `async with` as an RAII object whose constructor
// (__aenter__) and destructor (__aexit__) await. Follows the semantics of
// CPython's Lib/test/test_coroutines.py (test_with_*) and
// test_contextlib_async.py; what C++ changes is noted per case.
//
// What happens to a destructor that awaits:
// - Normal exit, or an exception from the body: the destructor runs in the
//   task as the scope unwinds, and its awaits suspend the task as usual.
// - Cancellation: CancelledError is delivered once, at the await where the
//   task was suspended. While it unwinds the stack, the task is an ordinary
//   running task again, so the destructor's awaits work and take their time;
//   the task ends cancelled afterwards. A second cancel() arriving during
//   the destructor's await raises CancelledError *inside* the destructor,
//   which must catch it (a destructor may not throw: std::terminate).
// - Loop closed (close(), or ~event_loop) with the task suspended: the task
//   is killed by GreenletExit outside the running loop, so an await in the
//   destructor throws RuntimeError (no running loop); catch it there too.
// - An exception in __aenter__ (the constructor): the destructor does not
//   run, as __aexit__ is not called when __aenter__ raises.
// - Python's __aexit__ can suppress the exception by returning True; a
//   destructor cannot. Use try/catch around the scope.
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::run_briefly;
using asyncio_test::TestError;
using asyncio_test::virtual_time;
using AsyncContextTests = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

// Manager logs enter/exit with the loop time; its exit awaits 1 s.
class Manager {
 public:
  explicit Manager(Strings& log, double enter_delay = 1.0) : log_(log) {
    log_.push_back("enter");
    asyncio::sleep(enter_delay);
    log_.push_back("entered");
  }
  ~Manager() {
    log_.push_back("exit");
    try {
      asyncio::sleep(1.0);
      log_.push_back("exited at " + std::to_string(static_cast<int>(asyncio::get_running_loop().time())));
    } catch (const asyncio::CancelledError&) {
      log_.push_back("exit cancelled");
    } catch (const asyncio::RuntimeError&) {
      log_.push_back("exit without loop");
    }
  }
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

 private:
  Strings& log_;
};

// test_coroutines.py test_with_1: enter, body, exit, in order, each awaiting.
TEST_F(AsyncContextTests, normal_exit_awaits) {
  Strings log;
  asyncio::run(
      [&] {
        {
          Manager m(log);
          log.push_back("body");
        }
        log.push_back("after");
      },
      virtual_time());
  EXPECT_EQ(log, (Strings{"enter", "entered", "body", "exit", "exited at 2", "after"}));
}

// test_coroutines.py test_with_6 (exception in the body): __aexit__ runs,
// awaiting, and the exception goes on.
TEST_F(AsyncContextTests, exit_runs_when_body_throws) {
  Strings log;
  EXPECT_THROW(asyncio::run(
                   [&] {
                     Manager m(log);
                     throw TestError("body failed");
                   },
                   virtual_time()),
               TestError);
  EXPECT_EQ(log, (Strings{"enter", "entered", "exit", "exited at 2"}));
}

// Cancelled in the body: CancelledError unwinds the scope and the exit's
// await works (cancellation is delivered once); the task ends cancelled.
TEST_F(AsyncContextTests, exit_awaits_while_cancellation_unwinds) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  auto task = loop.create_task([&] {
    Manager m(log);
    log.push_back("body");
    asyncio::sleep(100);
    log.push_back("not reached");
  });
  loop.call_later(5, [&] { task.cancel(); });
  EXPECT_THROW(loop.run_until_complete(task), asyncio::CancelledError);
  EXPECT_TRUE(task.cancelled());
  EXPECT_EQ(log, (Strings{"enter", "entered", "body", "exit", "exited at 6"}));
  EXPECT_DOUBLE_EQ(loop.time(), 6.0);
}

// A second cancel() during the exit's await raises CancelledError inside
// the destructor; it catches it, and the task still ends cancelled.
TEST_F(AsyncContextTests, cancelled_again_inside_exit) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  auto task = loop.create_task([&] {
    Manager m(log);
    asyncio::sleep(100);
  });
  loop.call_later(5, [&] { task.cancel(); });
  loop.call_later(5.5, [&] { task.cancel(); });
  EXPECT_THROW(loop.run_until_complete(task), asyncio::CancelledError);
  EXPECT_EQ(log, (Strings{"enter", "entered", "exit", "exit cancelled"}));
  EXPECT_DOUBLE_EQ(loop.time(), 5.5);
}

// Cancelled in __aenter__: the destructor does not run.
TEST_F(AsyncContextTests, cancelled_in_enter_skips_exit) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  auto task = loop.create_task([&] {
    Manager m(log, 10.0);
    log.push_back("body");
  });
  loop.call_later(1, [&] { task.cancel(); });
  EXPECT_THROW(loop.run_until_complete(task), asyncio::CancelledError);
  EXPECT_EQ(log, (Strings{"enter"}));
}

// wait_for() timing out cancels the body; wait_for waits for the exit's
// await to finish before raising TimeoutError.
TEST_F(AsyncContextTests, wait_for_timeout_waits_for_exit) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  EXPECT_THROW(loop.run_until_complete([&] {
    asyncio::wait_for(
        [&] {
          Manager m(log);
          asyncio::sleep(100);
        },
        3.0);
  }),
               asyncio::TimeoutError);
  EXPECT_EQ(log, (Strings{"enter", "entered", "exit", "exited at 4"}));
  EXPECT_DOUBLE_EQ(loop.time(), 4.0);
}

// The loop closed with the task suspended in the body: the task is killed
// outside the running loop, the exit's await throws RuntimeError (caught).
TEST_F(AsyncContextTests, killed_by_loop_close) {
  Strings log;
  {
    asyncio::event_loop loop(virtual_time());
    auto task = loop.create_task([&] {
      Manager m(log);
      asyncio::sleep(100);
    });
    loop.call_later(2, [&] { loop.stop(); });
    loop.run_forever();
    loop.close();
  }
  EXPECT_EQ(log, (Strings{"enter", "entered", "exit", "exit without loop"}));
}

// asyncio.run() cancels what main left pending: such a task's exit awaits
// normally during run()'s epilogue.
TEST_F(AsyncContextTests, run_epilogue_cancels_and_exit_awaits) {
  Strings log;
  asyncio::run(
      [&] {
        asyncio::create_task([&] {
          Manager m(log, 0.0);
          asyncio::sleep(100);
        });
        asyncio::sleep(0.5);
      },
      virtual_time());
  EXPECT_EQ(log, (Strings{"enter", "entered", "exit", "exited at 1"}));
}

}  // namespace
