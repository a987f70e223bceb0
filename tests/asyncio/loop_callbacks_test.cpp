// loop_callbacks_test.cpp: the event loop's callbacks, timers, stop/run,
// close and clock. Ported from CPython's Lib/test/test_asyncio/test_events.py
// (EventLoopTestsMixin, HandleTests, TimerTests) and test_base_events.py
// (BaseEventLoopTests); each case names its source.
#include <string>
#include <thread>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::error_log;
using asyncio_test::run_briefly;
using asyncio_test::TestError;
using asyncio_test::virtual_time;
using LoopCallbacks = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

// test_events.py EventLoopTestsMixin.test_call_soon, extended to several
// callbacks: they run in FIFO order.
TEST_F(LoopCallbacks, test_call_soon) {
  Strings log;
  asyncio::event_loop loop;
  loop.call_soon([&] { log.push_back("a"); });
  loop.call_soon([&] { log.push_back("b"); });
  loop.call_soon([&] { log.push_back("c"); });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(log, (Strings{"a", "b", "c"}));
}

// test_base_events.py BaseEventLoopTests.test__run_once_schedule_handle (the
// ready queue is a snapshot): what a callback schedules runs on the next
// iteration, after what was ready already.
TEST_F(LoopCallbacks, test_call_soon_from_callback_runs_next_iteration) {
  Strings log;
  asyncio::event_loop loop;
  loop.call_soon([&] {
    log.push_back("a");
    loop.call_soon([&] { log.push_back("c"); });
    loop.stop();
  });
  loop.call_soon([&] { log.push_back("b"); });
  loop.run_forever();
  // stop() ends the loop after this iteration: "c" waits for the next run.
  EXPECT_EQ(log, (Strings{"a", "b"}));
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"a", "b", "c"}));
}

// test_events.py EventLoopTestsMixin.test_call_later: the callback runs once
// the delay has passed on the loop's clock.
TEST_F(LoopCallbacks, test_call_later) {
  Strings log;
  std::vector<double> at;
  asyncio::event_loop loop(virtual_time());
  const double t0 = loop.time();
  loop.call_later(0.1, [&] {
    log.push_back("hello world");
    at.push_back(loop.time());
    loop.stop();
  });
  loop.run_forever();
  EXPECT_EQ(log, (Strings{"hello world"}));
  ASSERT_EQ(at.size(), 1u);
  EXPECT_DOUBLE_EQ(at[0] - t0, 0.1);
}

// test_events.py EventLoopTestsMixin.test_time_and_call_at; TimerTests
// test_timer_when: call_at() runs at its deadline and Handle::when() is it.
TEST_F(LoopCallbacks, test_time_and_call_at) {
  asyncio::event_loop loop(virtual_time());
  const double when = loop.time() + 0.1;
  double ran_at = -1;
  asyncio::TimerHandle h = loop.call_at(when, [&] {
    ran_at = loop.time();
    loop.stop();
  });
  EXPECT_DOUBLE_EQ(h.when(), when);
  loop.run_forever();
  EXPECT_DOUBLE_EQ(ran_at, when);
  EXPECT_DOUBLE_EQ(loop.time(), when);
}

// test_base_events.py BaseEventLoopTests.test__run_once: timers run in
// deadline order, whatever order they were scheduled in.
TEST_F(LoopCallbacks, test_timer_ordering_by_deadline) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  loop.call_later(0.3, [&] {
    log.push_back("c");
    loop.stop();
  });
  loop.call_later(0.1, [&] { log.push_back("a"); });
  loop.call_later(0.2, [&] { log.push_back("b"); });
  loop.call_later(-1, [&] { log.push_back("negative"); });  // already due
  loop.run_forever();
  EXPECT_EQ(log, (Strings{"negative", "a", "b", "c"}));
  EXPECT_DOUBLE_EQ(loop.time(), 0.3);
}

// test_base_events.py BaseEventLoopTests.test__run_once (ties): timers with
// the same deadline run in the order they were scheduled.
TEST_F(LoopCallbacks, test_timer_ties_run_in_scheduling_order) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  for (const char* name : {"t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"}) {
    loop.call_at(1.0, [&log, name] { log.push_back(name); });
  }
  loop.call_at(1.0, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(log, (Strings{"t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"}));
}

// test_base_events.py BaseEventLoopTests.test__run_once: timers that fall
// due join the ready queue behind callbacks already ready.
TEST_F(LoopCallbacks, test_due_timer_runs_after_ready_callbacks) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  loop.call_later(0, [&] { log.push_back("timer"); });
  loop.call_soon([&] { log.push_back("soon"); });
  loop.call_later(0, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(log, (Strings{"soon", "timer"}));
}

// test_events.py HandleTests.test_handle / test_call_later (h.cancel()): a
// cancelled handle's callback never runs; cancel() is idempotent and harmless
// after the callback ran.
TEST_F(LoopCallbacks, test_handle_cancel) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  asyncio::Handle soon = loop.call_soon([&] { log.push_back("soon"); });
  asyncio::TimerHandle later = loop.call_later(0.1, [&] { log.push_back("later"); });
  asyncio::Handle ran = loop.call_soon([&] { log.push_back("ran"); });
  EXPECT_FALSE(soon.cancelled());
  soon.cancel();
  later.cancel();
  soon.cancel();
  EXPECT_TRUE(soon.cancelled());
  EXPECT_TRUE(later.cancelled());
  loop.call_later(0.2, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(log, (Strings{"ran"}));
  ran.cancel();  // after it ran: nothing happens
  EXPECT_DOUBLE_EQ(loop.time(), 0.2);
}

// test_base_events.py BaseEventLoopTests.test__run_once_cancelled_event_cleanup
// (a handle cancelled by an earlier callback of the same iteration is
// skipped: _run_once checks handle._cancelled just before running it).
TEST_F(LoopCallbacks, test_cancel_handle_ready_in_same_iteration) {
  Strings log;
  asyncio::event_loop loop;
  asyncio::Handle second;
  loop.call_soon([&] {
    log.push_back("first");
    second.cancel();
  });
  second = loop.call_soon([&] { log.push_back("second"); });
  loop.call_soon([&] { log.push_back("third"); });
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"first", "third"}));
}

// test_base_events.py BaseEventLoopTests.test_default_exc_handler_callback
// and test_set_exc_handler_custom: an exception from a callback goes to the
// exception handler, and the loop goes on with the next callback.
TEST_F(LoopCallbacks, test_callback_exception_goes_to_handler) {
  Strings log;
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  loop.call_soon([&] {
    log.push_back("raise");
    throw TestError("boom");
  });
  loop.call_soon([&] { log.push_back("after"); });
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"raise", "after"}));
  EXPECT_EQ(errors.messages, (Strings{"Exception in callback"}));
  EXPECT_EQ(errors.whats, (Strings{"boom"}));
  ASSERT_EQ(errors.exceptions.size(), 1u);
  EXPECT_THROW(std::rethrow_exception(errors.exceptions[0]), TestError);
}

// test_base_events.py BaseEventLoopTests.test_set_exc_handler_broken: a
// handler that raises falls back to the default handler (which prints to
// stderr) with "Unhandled error in exception handler", the handler's own
// exception and the context it was handling (the handler's exception used to
// be dropped); the loop keeps running.
TEST_F(LoopCallbacks, test_set_exc_handler_broken) {
  Strings log;
  asyncio::event_loop loop;
  loop.set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context&) {
    log.push_back("handler");
    throw TestError("handler is broken");
  });
  loop.call_soon([] { throw TestError("boom"); });
  loop.call_soon([&] { log.push_back("after"); });
  testing::internal::CaptureStderr();
  run_briefly(loop);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(log, (Strings{"handler", "after"}));
  EXPECT_NE(err.find("Unhandled error in exception handler"), std::string::npos) << err;
  EXPECT_NE(err.find("exception: handler is broken"), std::string::npos) << err;
  EXPECT_NE(err.find("context: Exception in callback"), std::string::npos) << err;
  EXPECT_NE(err.find("exception: boom"), std::string::npos) << err;
}

// test_base_events.py BaseEventLoopTests.test_call_exception_handler passes
// its context through: call_exception_handler() reaches the custom handler.
TEST_F(LoopCallbacks, test_call_exception_handler) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  loop.call_exception_handler({"custom message", std::make_exception_ptr(TestError("x")), "source"});
  EXPECT_EQ(errors.messages, (Strings{"custom message"}));
  EXPECT_EQ(errors.whats, (Strings{"x"}));
  EXPECT_EQ(errors.sources, (Strings{"source"}));
}

// test_base_events.py BaseEventLoopTests.test_single_selecter_event_callback_after_stopping
// (bpo-25593 semantics): stop() inside a callback lets the rest of the
// iteration run, then run_forever() returns; a second run_forever() resumes
// with what was scheduled meanwhile.
TEST_F(LoopCallbacks, test_stop_then_run_forever_again) {
  Strings log;
  asyncio::event_loop loop;
  loop.call_soon([&] {
    log.push_back("1");
    loop.stop();
    loop.call_soon([&] {
      log.push_back("3");
      loop.stop();
    });
  });
  loop.call_soon([&] { log.push_back("2"); });
  loop.run_forever();
  EXPECT_FALSE(loop.is_running());
  EXPECT_EQ(log, (Strings{"1", "2"}));
  loop.run_forever();
  EXPECT_EQ(log, (Strings{"1", "2", "3"}));
}

// asyncio docs of loop.stop() and test_base_events.py's pre-stopped loop
// (BaseEventLoopTests.test_run_forever_pre_stopped, bpo-25593): stop() called
// before run_forever() makes it run the ready callbacks once and return.
// Regression test, this once failed: run_forever() resets the stopping flag on entry, so a stop()
// made before it is lost: the loop runs "cb" and then, with nothing left,
// raises the deadlock RuntimeError instead of returning.
TEST_F(LoopCallbacks, test_run_forever_pre_stopped) {
  Strings log;
  asyncio::event_loop loop;
  loop.stop();
  loop.call_soon([&] { log.push_back("cb"); });
  EXPECT_NO_THROW(loop.run_forever());
  EXPECT_EQ(log, (Strings{"cb"}));
}

// test_events.py EventLoopTestsMixin.test_run_until_complete: returns the
// future's result once it is set (here by a timer).
TEST_F(LoopCallbacks, test_run_until_complete) {
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<std::string>();
  loop.call_later(0.1, [f]() mutable { f.set_result("done"); });
  EXPECT_EQ(loop.run_until_complete(f), "done");
  EXPECT_DOUBLE_EQ(loop.time(), 0.1);
  EXPECT_FALSE(loop.is_running());
}

// test_base_events.py BaseEventLoopTests.test_run_until_complete (a function
// is run as a task, like a coroutine object) and test_run_until_complete_baseexception
// (its exception comes out of run_until_complete).
TEST_F(LoopCallbacks, test_run_until_complete_function) {
  asyncio::event_loop loop(virtual_time());
  EXPECT_EQ(loop.run_until_complete([] {
    asyncio::sleep(0.5);
    return 7;
  }),
            7);
  EXPECT_DOUBLE_EQ(loop.time(), 0.5);
  EXPECT_THROW(loop.run_until_complete([]() -> int { throw TestError("spam"); }), TestError);
}

// test_events.py EventLoopTestsMixin.test_run_until_complete_stopped: a task
// that stops the loop makes run_until_complete raise RuntimeError.
TEST_F(LoopCallbacks, test_run_until_complete_stopped) {
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  auto t = loop.create_task([&] {
    loop.stop();
    asyncio::sleep(0.1);
  });
  try {
    loop.run_until_complete(t);
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("Event loop stopped before Future completed"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(t.done());
  loop.run_until_complete(t);  // finish it
  EXPECT_TRUE(t.done());
}

// test_base_events.py BaseEventLoopTests.test_run_until_complete_loop: a
// future of another loop is refused (CPython: ValueError "The future belongs
// to a different loop than the one specified as the loop argument").
// Regression test, this once failed: run_until_complete() does not check the future's loop: it runs
// this loop, which has nothing to do, and raises the deadlock RuntimeError
// (or, with timers pending, runs until they are done and then deadlocks).
TEST_F(LoopCallbacks, test_run_until_complete_loop) {
  asyncio::event_loop loop;
  asyncio::event_loop other;
  auto f = loop.create_future<int>();
  try {
    other.run_until_complete(f);
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::wrong_loop) << e.what();
  }
}

// test_events.py EventLoopTestsMixin.test_run_until_complete_nesting: a task
// cannot run its own loop, and what it passed never runs ("coroutine ... was
// never awaited").
TEST_F(LoopCallbacks, test_run_until_complete_nesting) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  auto outer = loop.create_task([&] {
    EXPECT_TRUE(loop.is_running());
    try {
      loop.run_until_complete([&] { log.push_back("inner ran"); });
    } catch (const asyncio::RuntimeError& e) {
      log.push_back(e.condition() == asyncio::asyncio_errc::loop_running ? "RuntimeError loop_running"
                                                                         : "wrong condition");
    }
  });
  loop.run_until_complete(outer);
  run_briefly(loop);  // an iteration in which a task made by the refused call would run
  EXPECT_EQ(log, (Strings{"RuntimeError loop_running"}));
}

// test_base_events.py BaseEventLoopTests.test_run_forever_... "Cannot run the
// event loop while another loop is running" (base_events._check_running).
TEST_F(LoopCallbacks, test_run_other_loop_while_running) {
  Strings log;
  asyncio::event_loop loop;
  asyncio::event_loop other;
  loop.call_soon([&] {
    try {
      other.run_forever();
      log.push_back("ran");
    } catch (const asyncio::RuntimeError& e) {
      log.push_back(e.condition() == asyncio::asyncio_errc::loop_running ? "RuntimeError" : "wrong condition");
    }
  });
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"RuntimeError"}));
}

// test_base_events.py BaseEventLoopTests.test_close: close() is idempotent,
// and a closed loop refuses to run or schedule.
TEST_F(LoopCallbacks, test_close) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  EXPECT_FALSE(loop.is_closed());
  loop.close();
  EXPECT_TRUE(loop.is_closed());
  loop.close();
  loop.close();
  auto expect_closed = [](auto&& fn) {
    try {
      fn();
      ADD_FAILURE() << "no RuntimeError";
    } catch (const asyncio::RuntimeError& e) {
      EXPECT_EQ(e.condition(), asyncio::asyncio_errc::loop_closed) << e.what();
    }
  };
  expect_closed([&] { loop.run_forever(); });
  expect_closed([&] { loop.run_until_complete(f); });
  expect_closed([&] { loop.call_soon([] {}); });
  expect_closed([&] { loop.call_later(1, [] {}); });
  expect_closed([&] { loop.call_at(1, [] {}); });
}

// test_base_events.py BaseEventLoopTests.test_close: "f = loop.create_future()"
// after close() succeeds in CPython (create_future does not check).
// Regression test, this once failed: create_future() on a closed loop raises RuntimeError
// ("Event loop is closed").
TEST_F(LoopCallbacks, test_create_future_after_close) {
  asyncio::event_loop loop;
  loop.close();
  EXPECT_NO_THROW((void)loop.create_future<int>());
}

// test_events.py EventLoopTestsMixin.test_close_running_event_loop: close()
// from inside the running loop raises RuntimeError.
TEST_F(LoopCallbacks, test_close_running_event_loop) {
  asyncio::event_loop loop;
  try {
    loop.run_until_complete([&] { loop.close(); });
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::loop_running) << e.what();
  }
  EXPECT_FALSE(loop.is_closed());
}

// test_events.py EventLoopTestsMixin.test_close (pending callbacks are
// dropped): close() drops callbacks and timers that have not run.
TEST_F(LoopCallbacks, test_close_drops_pending_callbacks) {
  Strings log;
  {
    asyncio::event_loop loop;
    loop.call_soon([&] { log.push_back("soon"); });
    loop.call_later(1, [&] { log.push_back("later"); });
    loop.close();
  }
  EXPECT_TRUE(log.empty());
}

// test_events.py EventLoopTestsMixin.test_call_soon_threadsafe: a callback
// from another thread wakes the sleeping loop and runs on it.
TEST_F(LoopCallbacks, test_call_soon_threadsafe) {
  Strings log;
  asyncio::event_loop loop;
  auto f = loop.create_future<std::string>();
  std::thread worker;
  {
    // Without the guard the loop would see nothing that could wake it and
    // report a deadlock (a deliberate difference from asyncio, see deadlock_test).
    asyncio::event_loop::external_work_guard guard(loop);
    worker = std::thread([&] {
      loop.call_soon_threadsafe([&] {
        log.push_back("threadsafe");
        f.set_result("from thread");
      });
    });
    EXPECT_EQ(loop.run_until_complete(f), "from thread");
  }
  worker.join();
  EXPECT_EQ(log, (Strings{"threadsafe"}));
}

// test_base_events.py BaseEventLoopTests.test_time (monotonic) with the
// virtual clock: time() starts still and only timers move it.
TEST_F(LoopCallbacks, test_virtual_time_moves_only_to_timers) {
  asyncio::event_loop loop(virtual_time());
  const double t0 = loop.time();
  run_briefly(loop);
  EXPECT_DOUBLE_EQ(loop.time(), t0);
  loop.call_later(2.5, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_DOUBLE_EQ(loop.time(), t0 + 2.5);
}

// test_events.py HandleTests.test_handle_weakref / handles are plain objects
// in asyncio: a Handle may outlive its loop, and cancel() or dropping it
// afterwards is harmless.
// Regression test, this once failed: a callback_node does not keep its loop_core alive; when the
// last Handle goes after the loop, release() calls n->loop->recycle(n) on the
// freed loop_core (heap-use-after-free, seen under -DGREENLET_SANITIZE=address).
TEST_F(LoopCallbacks, test_handle_outlives_loop) {
  asyncio::Handle h;
  asyncio::TimerHandle t;
  {
    asyncio::event_loop loop;
    h = loop.call_soon([] {});
    t = loop.call_later(1.0, [] {});
  }
  EXPECT_FALSE(h.cancelled());
  h = asyncio::Handle();
  t = asyncio::TimerHandle();
}

}  // namespace
