// wait_for_test.cpp: asyncio::wait_for. Ported from CPython's
// Lib/test/test_asyncio/test_waitfor.py (AsyncioWaitForTest) and
// test_tasks.py (test_cancel_wait_for); each case names its source.
#include <optional>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::error_log;
using asyncio_test::run_briefly;
using asyncio_test::stamp;
using asyncio_test::TestError;
using asyncio_test::virtual_time;
using WaitForTests = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

constexpr double kTinyDelay = 0.0001;

// test_waitfor.py test_wait_for: at the timeout the task is cancelled, its
// finally-block runs, and TimeoutError is raised.
TEST_F(WaitForTests, test_wait_for) {
  asyncio::event_loop loop(virtual_time());
  int foo_running = -1;
  auto fut = loop.create_task([&] {
    foo_running = 1;
    struct finally {
      int& flag;
      ~finally() { flag = 0; }
    } f{foo_running};
    asyncio::sleep(0.2);
    return std::string("done");
  });
  EXPECT_THROW(loop.run_until_complete([&] { return asyncio::wait_for(fut, 0.1); }), asyncio::TimeoutError);
  EXPECT_TRUE(fut.done());
  EXPECT_TRUE(fut.cancelled());  // cancelled by the timeout
  EXPECT_DOUBLE_EQ(loop.time(), 0.1);
  EXPECT_EQ(foo_running, 0);
}

// test_waitfor.py test_wait_for_blocking (a generous timeout): the result
// comes back; time moves only to the completion.
TEST_F(WaitForTests, test_wait_for_result) {
  asyncio::event_loop loop(virtual_time());
  auto res = loop.run_until_complete([] {
    return asyncio::wait_for(
        [] {
          asyncio::sleep(0.3);
          return std::string("done");
        },
        60.0);
  });
  EXPECT_EQ(res, "done");
  EXPECT_DOUBLE_EQ(loop.time(), 0.3);
}

// test_waitfor.py test_wait_for_race_condition: the future finishes before
// the timeout; the timeout's timer goes away (the clock stays at 0.1).
TEST_F(WaitForTests, test_wait_for_race_condition) {
  asyncio::event_loop loop(virtual_time());
  auto fut = loop.create_future<std::string>();
  loop.call_later(0.1, [fut]() mutable { fut.set_result("ok"); });
  EXPECT_EQ(loop.run_until_complete([&] { return asyncio::wait_for(fut, 0.2); }), "ok");
  EXPECT_DOUBLE_EQ(loop.time(), 0.1);
  run_briefly(loop);
  auto marker = loop.create_future<>();
  loop.call_later(1.0, [marker]() mutable { marker.set_result(); });
  loop.run_until_complete(marker);
  EXPECT_DOUBLE_EQ(loop.time(), 1.1);
}

// test_waitfor.py test_wait_for_timeout_less_then_0_or_0_future_done
TEST_F(WaitForTests, test_wait_for_timeout_less_then_0_or_0_future_done) {
  asyncio::event_loop loop(virtual_time());
  auto fut = loop.create_future<std::string>();
  fut.set_result("done");
  EXPECT_EQ(loop.run_until_complete([&] { return asyncio::wait_for(fut, 0); }), "done");
  EXPECT_TRUE(fut.done());
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

// test_waitfor.py test_wait_for_timeout_less_then_0_or_0 (timeout 0): a
// task that would take time is cancelled at once; TimeoutError.
TEST_F(WaitForTests, test_wait_for_timeout_less_then_0_or_0) {
  asyncio::event_loop loop(virtual_time());
  bool foo_started = false;
  auto fut = loop.create_task([&] {
    foo_started = true;
    asyncio::sleep(0.2);
  });
  run_briefly(loop);  // start it
  EXPECT_THROW(loop.run_until_complete([&] { asyncio::wait_for(fut, 0); }), asyncio::TimeoutError);
  EXPECT_TRUE(fut.cancelled());
  EXPECT_TRUE(foo_started);
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

// test_waitfor.py test_wait_for_timeout_less_then_0_or_0 (timeout -1): a
// negative timeout has passed already, as 0 does.
// Regression test, this once failed: wait_for() hands the timeout to wait_until(), where a
// negative value means "no timeout", so wait_for(x, -1) waits for x to finish
// (the clock reaches 0.2) and returns normally instead of raising TimeoutError.
TEST_F(WaitForTests, test_wait_for_negative_timeout) {
  asyncio::event_loop loop(virtual_time());
  auto fut = loop.create_task([] { asyncio::sleep(0.2); });
  run_briefly(loop);
  EXPECT_THROW(loop.run_until_complete([&] { asyncio::wait_for(fut, -1.0); }), asyncio::TimeoutError);
  EXPECT_TRUE(fut.cancelled());
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

// test_waitfor.py test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started:
// with timeout <= 0 a coroutine (here: a function) is cancelled before it
// starts, and TimeoutError is raised.
// Regression test, this once failed: wait_for() wraps the function in a task and then waits for a
// 0-second timer; the task's first step is queued before the timer, so the
// function runs to completion and wait_for returns normally (no
// TimeoutError, foo_started is true).
TEST_F(WaitForTests, test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started) {
  asyncio::event_loop loop(virtual_time());
  bool foo_started = false;
  EXPECT_THROW(loop.run_until_complete([&] { asyncio::wait_for([&] { foo_started = true; }, 0); }),
               asyncio::TimeoutError);
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
  EXPECT_FALSE(foo_started);
}

// test_waitfor.py test_wait_for_waits_for_task_cancellation: wait_for waits
// for the cancelled task to finish unwinding before raising TimeoutError.
TEST_F(WaitForTests, test_wait_for_waits_for_task_cancellation) {
  asyncio::event_loop loop(virtual_time());
  Strings log;
  auto foo = [&] {
    auto inner_task = asyncio::create_task([&] {
      struct finally {
        Strings& log;
        ~finally() { log.push_back("inner done"); }
      } f{log};
      try {
        asyncio::sleep(0.2);
      } catch (const asyncio::CancelledError&) {
        asyncio::sleep(kTinyDelay);
        log.push_back("inner reraises");
        throw;
      }
    });
    try {
      asyncio::wait_for(inner_task, kTinyDelay);
    } catch (const asyncio::TimeoutError&) {
      log.push_back("TimeoutError");
      throw;
    }
  };
  EXPECT_THROW(loop.run_until_complete(foo), asyncio::TimeoutError);
  EXPECT_EQ(log, (Strings{"inner reraises", "inner done", "TimeoutError"}));
}

// test_waitfor.py test_wait_for_waits_for_task_cancellation_w_timeout_0
TEST_F(WaitForTests, test_wait_for_waits_for_task_cancellation_w_timeout_0) {
  asyncio::event_loop loop(virtual_time());
  bool task_done = false;
  auto foo = [&] {
    auto inner_task = asyncio::create_task([&] {
      struct finally {
        bool& flag;
        ~finally() { flag = true; }
      } f{task_done};
      try {
        asyncio::sleep(10);
      } catch (const asyncio::CancelledError&) {
        asyncio::sleep(kTinyDelay);
        throw;
      }
    });
    asyncio::sleep(kTinyDelay);
    asyncio::wait_for(inner_task, 0);
  };
  EXPECT_THROW(loop.run_until_complete(foo), asyncio::TimeoutError);
  EXPECT_TRUE(task_done);
}

// test_waitfor.py test_wait_for_reraises_exception_during_cancellation /
// plain failure: an exception of the awaited task comes out of wait_for.
TEST_F(WaitForTests, test_wait_for_raises_inner_exception) {
  asyncio::event_loop loop(virtual_time());
  EXPECT_THROW(loop.run_until_complete([] {
    asyncio::wait_for(
        [] {
          asyncio::sleep(0.1);
          throw TestError("inner");
        },
        1.0);
  }),
               TestError);
  EXPECT_DOUBLE_EQ(loop.time(), 0.1);
}

// test_waitfor.py test_wait_for_cancel_suppressed (GH-86296): a task that
// swallows the cancellation and returns a value: wait_for returns the value.
TEST_F(WaitForTests, test_wait_for_cancel_suppressed) {
  asyncio::event_loop loop(virtual_time());
  auto res = loop.run_until_complete([] {
    return asyncio::wait_for(
        [] {
          try {
            asyncio::sleep(10);
          } catch (const asyncio::CancelledError&) {
            return 42;
          }
          return 0;
        },
        0.1);
  });
  EXPECT_EQ(res, 42);
  EXPECT_DOUBLE_EQ(loop.time(), 0.1);
}

// test_tasks.py BaseTaskTests.test_cancel_wait_for (_test_cancel_wait_for,
// bpo-23219): cancelling the task blocked in wait_for raises CancelledError
// in it and cancels the awaited task too.
// Regression test, this once failed: cancel() of the waiting task cancels wait_until()'s private
// future, so wait_until() returns normally; wait_for() then treats it as a
// timeout: it cancels the inner task and raises TimeoutError instead of
// CancelledError (the waiting task ends failed, not cancelled).
TEST_F(WaitForTests, test_cancel_wait_for) {
  asyncio::event_loop loop(virtual_time());
  auto fut = loop.create_future<>();
  auto task = loop.create_task([&] { asyncio::await(fut); });  // blocks: fut is never set
  auto wait = loop.create_task([&] { asyncio::wait_for(task, 60.0); });
  loop.call_soon([wait]() mutable { wait.cancel(); });
  EXPECT_THROW(loop.run_until_complete(wait), asyncio::CancelledError);
  EXPECT_TRUE(wait.cancelled());
  EXPECT_TRUE(task.cancelled());
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

// test_waitfor.py test_wait_for_self_cancellation: wait_for stays
// cancellable while the inner task holds up its own cancellation.
// Regression test, this once failed: same root cause as test_cancel_wait_for: the outer cancel()
// turns into TimeoutError.
TEST_F(WaitForTests, test_wait_for_self_cancellation) {
  asyncio::event_loop loop(virtual_time());
  auto main = [&] {
    auto inner_task = asyncio::create_task([] {
      try {
        asyncio::sleep(0.3);
      } catch (const asyncio::CancelledError&) {
        try {
          asyncio::sleep(0.3);
        } catch (const asyncio::CancelledError&) {
          asyncio::sleep(0.3);
        }
      }
      return 42;
    });
    auto task = asyncio::create_task([inner_task] { return asyncio::wait_for(inner_task, 0.1); });
    asyncio::sleep(0.2);
    task.cancel();
    EXPECT_THROW(asyncio::await(task), asyncio::CancelledError);
    EXPECT_EQ(asyncio::await(inner_task), 42);
  };
  loop.run_until_complete(main);
}

// message_of(e) is "CancelledError(msg)" for a CancelledError, what() else.
std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const asyncio::CancelledError& c) {
    return "CancelledError(" + c.message() + ")";
  } catch (const std::exception& x) {
    return x.what();
  }
}

// The task in wait_for() cancelled from outside (bpo-32751): the awaited
// task gets the cancel with its message, and wait_for() raises only once it
// has finished its cleanup. The order and times are what Python 3.11 prints
// for the same program (asyncio.wait_for; inner sleeps 1, cleans up 0.2).
// Regression test, this once failed: wait_for() cancelled the inner task and
// raised at once (outer got CancelledError(m) t=1, before "inner cancelled").
TEST_F(WaitForTests, test_cancel_wait_for_waits_for_inner_cleanup) {
  asyncio::event_loop loop(virtual_time());
  Strings log;
  loop.run_until_complete([&] {
    auto outer = asyncio::create_task([&] {
      try {
        asyncio::wait_for(
            [&] {
              try {
                asyncio::sleep(1);
              } catch (const asyncio::CancelledError&) {
                log.push_back(stamp("inner cancelled " + message_of(std::current_exception())));
                asyncio::sleep(0.2);
                log.push_back(stamp("inner cleanup done"));
                throw;
              }
            },
            1);
      } catch (...) {
        log.push_back(stamp("outer got " + message_of(std::current_exception())));
        throw;
      }
    });
    asyncio::sleep(0.1);
    outer.cancel("m");
    try {
      asyncio::await(outer);
    } catch (...) {
      log.push_back(stamp("awaiting outer: " + message_of(std::current_exception())));
    }
  });
  EXPECT_EQ(log, (Strings{"inner cancelled CancelledError(m) t=1", "inner cleanup done t=3",
                          "outer got CancelledError(m) t=3", "awaiting outer: CancelledError(m) t=3"}));
}

// The awaited task swallows the forwarded cancel and returns a value:
// wait_for() still raises CancelledError, as Python 3.11 prints (3.12+
// would return the value; see wait_for() in tasks.hpp).
// Regression test, this once failed: the outer raised before the inner ran
// its handler ("outer2 got" came first).
TEST_F(WaitForTests, test_cancel_wait_for_inner_returns_value) {
  asyncio::event_loop loop(virtual_time());
  Strings log;
  loop.run_until_complete([&] {
    auto inner = asyncio::create_task([&] {
      try {
        asyncio::sleep(1);
      } catch (const asyncio::CancelledError&) {
        log.push_back(stamp("inner cancelled"));
        return std::string("caught-value");
      }
      return std::string("None");
    });
    auto outer = asyncio::create_task([&] {
      try {
        return asyncio::wait_for(inner, 1);
      } catch (...) {
        log.push_back(stamp("outer2 got " + message_of(std::current_exception())));
        throw;
      }
    });
    asyncio::sleep(0.1);
    outer.cancel("m");
    try {
      log.push_back("outer2 result " + asyncio::await(outer));
    } catch (...) {
      log.push_back(stamp("awaiting outer2: " + message_of(std::current_exception())));
    }
    EXPECT_EQ(asyncio::await(inner), "caught-value");
  });
  EXPECT_EQ(log, (Strings{"inner cancelled t=1", "outer2 got CancelledError(m) t=1",
                          "awaiting outer2: CancelledError(m) t=1"}));
}

// A second cancel of the task while wait_for() waits for the inner task's
// cleanup goes on to the inner task (as 3.12+ forwards it) and the waiting
// goes on: CancelledError, with the last message, once the inner is done.
TEST_F(WaitForTests, test_cancel_wait_for_twice) {
  asyncio::event_loop loop(virtual_time());
  Strings log;
  loop.run_until_complete([&] {
    auto outer = asyncio::create_task([&] {
      asyncio::wait_for(
          [&] {
            try {
              asyncio::sleep(1);
            } catch (const asyncio::CancelledError&) {
              log.push_back(stamp("inner cancelled " + message_of(std::current_exception())));
              try {
                asyncio::sleep(0.3);
              } catch (const asyncio::CancelledError&) {
                log.push_back(stamp("cleanup cancelled " + message_of(std::current_exception())));
              }
              asyncio::sleep(0.3);
              log.push_back(stamp("inner cleanup done"));
            }
          },
          1);
    });
    asyncio::sleep(0.1);
    outer.cancel("m");
    asyncio::sleep(0.1);
    outer.cancel("m2");
    try {
      asyncio::await(outer);
    } catch (...) {
      log.push_back(stamp("awaiting outer: " + message_of(std::current_exception())));
    }
    EXPECT_TRUE(outer.cancelled());
  });
  EXPECT_EQ(log, (Strings{"inner cancelled CancelledError(m) t=1", "cleanup cancelled CancelledError(m2) t=2",
                          "inner cleanup done t=5", "awaiting outer: CancelledError(m2) t=5"}));
}

// Python's wait_for(fut, timeout=None), a common pass-through: no deadline,
// the result comes when the future has it.
// Regression test, this once failed: wait_for() took only a double, so a
// std::nullopt (or an empty std::optional<double>) timeout did not compile.
TEST_F(WaitForTests, test_wait_for_none_timeout) {
  asyncio::event_loop loop(virtual_time());
  auto fut = loop.create_future<std::string>();
  loop.call_later(0.1, [fut]() mutable { fut.set_result("done"); });
  EXPECT_EQ(loop.run_until_complete([&] { return asyncio::wait_for(fut, std::nullopt); }), "done");
  EXPECT_DOUBLE_EQ(loop.time(), 0.1);
  const std::optional<double> none;
  EXPECT_EQ(loop.run_until_complete([&] {
    return asyncio::wait_for(
        [] {
          asyncio::sleep(3600);
          return 5;
        },
        none);
  }),
            5);
  EXPECT_DOUBLE_EQ(loop.time(), 3600.1);
}

// wait_for(x, std::nullopt) gives x's exception, as awaiting x does.
TEST_F(WaitForTests, test_wait_for_none_timeout_raises_inner_exception) {
  asyncio::event_loop loop(virtual_time());
  EXPECT_THROW(loop.run_until_complete([] {
    asyncio::wait_for(
        [] {
          asyncio::sleep(0.1);
          throw TestError("inner");
        },
        std::nullopt);
  }),
               TestError);
}

// wait_for(x, std::nullopt) is `await x` for cancellation too (Python 3.11
// prints the same): the waiting task's cancel goes on to x; an x that
// swallows it and returns a value has that value returned, a future
// cancelled with it raises CancelledError with its message.
TEST_F(WaitForTests, test_wait_for_none_timeout_cancel_as_await) {
  asyncio::event_loop loop(virtual_time());
  Strings log;
  loop.run_until_complete([&] {
    auto inner = asyncio::create_task([&] {
      try {
        asyncio::sleep(1);
      } catch (const asyncio::CancelledError&) {
        log.push_back("inner cancelled");
        return 42;
      }
      return 0;
    });
    auto outer = asyncio::create_task([&] { return asyncio::wait_for(inner, std::nullopt); });
    asyncio::sleep(0.1);
    outer.cancel("m");
    EXPECT_EQ(asyncio::await(outer), 42);
    EXPECT_EQ(outer.cancelling(), 1);

    auto never = asyncio::get_running_loop().create_future<int>();
    auto waiting = asyncio::create_task([&] { return asyncio::wait_for(never, std::nullopt); });
    asyncio::sleep(0.1);
    waiting.cancel("x");
    try {
      asyncio::await(waiting);
      log.push_back("waiting returned");
    } catch (const asyncio::CancelledError& e) {
      log.push_back("waiting: CancelledError(" + std::string(e.message()) + ")");
    }
    EXPECT_TRUE(never.cancelled());
  });
  EXPECT_EQ(log, (Strings{"inner cancelled", "waiting: CancelledError(x)"}));
}

// The timeout spellings that compiled with a double parameter still do, and
// mean the same: an int literal, a float, a long, a double, and optionals.
TEST_F(WaitForTests, test_wait_for_timeout_spellings) {
  asyncio::event_loop loop(virtual_time());
  auto slow = [] {
    asyncio::sleep(10);
    return 1;
  };
  loop.run_until_complete([&] {
    EXPECT_THROW(asyncio::wait_for(slow, 1), asyncio::TimeoutError);
    EXPECT_THROW(asyncio::wait_for(slow, 1L), asyncio::TimeoutError);
    EXPECT_THROW(asyncio::wait_for(slow, 0.5f), asyncio::TimeoutError);
    EXPECT_THROW(asyncio::wait_for(slow, 0.5), asyncio::TimeoutError);
    EXPECT_THROW(asyncio::wait_for(slow, std::optional<double>(0.5)), asyncio::TimeoutError);
    EXPECT_THROW(asyncio::wait_for(slow, std::optional<int>(1)), asyncio::TimeoutError);
    EXPECT_EQ(asyncio::wait_for(slow, 11), 1);
  });
  EXPECT_DOUBLE_EQ(loop.time(), 1 + 1 + 0.5 + 0.5 + 0.5 + 1 + 10);
}

}  // namespace
