// task_test.cpp: Task<T>, create_task(), await() and sleep(). Ported from
// CPython's Lib/test/test_asyncio/test_tasks.py (BaseTaskTests); each case
// names its source. C++-only cases (await from nested plain functions, from
// a greenlet, switching to the loop by hand) say so.
#include <string>
#include <vector>

#include <greenlet/generator.hpp>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::error_log;
using asyncio_test::Guard;
using asyncio_test::run_briefly;
using asyncio_test::TestError;
using asyncio_test::virtual_time;
using TaskTests = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

// tasks.py Task.__init__ (loop.call_soon(self.__step)): a new task starts
// on a later iteration, in FIFO order with other call_soon() callbacks.
TEST_F(TaskTests, test_task_starts_on_later_iteration) {
  Strings log;
  asyncio::event_loop loop;
  loop.call_soon([&] { log.push_back("a"); });
  auto t = loop.create_task([&] { log.push_back("task"); });
  loop.call_soon([&] { log.push_back("b"); });
  EXPECT_TRUE(log.empty());
  EXPECT_FALSE(t.done());
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"a", "task", "b"}));
  EXPECT_TRUE(t.done());
}

// test_tasks.py BaseTaskTests.test_create_task_... : a task created by a task
// starts only once its creator suspends.
TEST_F(TaskTests, test_task_created_in_task_waits_for_creator) {
  Strings log;
  asyncio::event_loop loop;
  auto outer = loop.create_task([&] {
    auto inner = asyncio::create_task([&] { log.push_back("inner"); });
    log.push_back("outer before sleep");
    asyncio::sleep(0);
    log.push_back("outer after sleep");
    asyncio::await(inner);
  });
  loop.run_until_complete(outer);
  EXPECT_EQ(log, (Strings{"outer before sleep", "inner", "outer after sleep"}));
}

// test_tasks.py BaseTaskTests.test_task_default_name / test_task_set_name /
// test_create_task_with_name (names "Task-N" count up).
TEST_F(TaskTests, test_task_names) {
  asyncio::event_loop loop;
  auto a = loop.create_task([] {});
  auto b = loop.create_task([] {});
  auto named = loop.create_task([] {}, "my-task");
  ASSERT_EQ(a.get_name().rfind("Task-", 0), 0u) << a.get_name();
  ASSERT_EQ(b.get_name().rfind("Task-", 0), 0u) << b.get_name();
  EXPECT_EQ(std::stoi(b.get_name().substr(5)), std::stoi(a.get_name().substr(5)) + 1);
  // N counts creations, whichever name is asked first (names are made lazily).
  auto c = loop.create_task([] {});
  auto d = loop.create_task([] {});
  const int d_number = std::stoi(d.get_name().substr(5));
  EXPECT_EQ(std::stoi(c.get_name().substr(5)), d_number - 1);
  EXPECT_EQ(named.get_name(), "my-task");
  named.set_name("renamed");
  EXPECT_EQ(named.get_name(), "renamed");
  run_briefly(loop);
}

// test_tasks.py BaseTaskTests.test_task_repr (without coro=): pending,
// finished with its result, cancelled.
TEST_F(TaskTests, test_task_repr) {
  asyncio::event_loop loop;
  auto t = loop.create_task([] { return 12; }, "TestTask");
  auto s = loop.create_task([] { return std::string("abc"); }, "StrTask");
  auto c = loop.create_task([] {}, "Cancelled");
  EXPECT_EQ(t.repr(), "<Task pending name='TestTask'>");
  c.cancel();
  // asyncio 3.11's _task_repr_info: a pending task with a cancel requested is "cancelling".
  EXPECT_EQ(c.repr(), "<Task cancelling name='Cancelled'>");
  run_briefly(loop);
  EXPECT_EQ(t.repr(), "<Task finished name='TestTask' result=12>");
  EXPECT_EQ(s.repr(), "<Task finished name='StrTask' result='abc'>");
  EXPECT_EQ(c.repr(), "<Task cancelled name='Cancelled'>");
}

// test_tasks.py BaseTaskTests.test_cancel: a task cancelled while sleeping
// raises CancelledError out of run_until_complete; cancel() again is false.
TEST_F(TaskTests, test_cancel) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  auto t = loop.create_task([&] {
    asyncio::sleep(10.0);
    log.push_back("not reached");
    return 12;
  });
  loop.call_soon([t]() mutable { t.cancel(); });
  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
  EXPECT_TRUE(t.done());
  EXPECT_TRUE(t.cancelled());
  EXPECT_FALSE(t.cancel());
  EXPECT_TRUE(log.empty());
}

// A task ended by the CancelledError its function raised hands that very exception to the first
// who retrieves it (asyncio's Task keeps it as _cancelled_exc): its object, its type (a subclass
// stays one), its message; later retrievals get a new CancelledError with the message.
TEST_F(TaskTests, cancelled_error_raised_by_the_task_reaches_the_awaiter) {
  struct Stop : asyncio::CancelledError {
    Stop() : asyncio::CancelledError("stop") {}
  };
  const void* raised = nullptr;
  asyncio::run([&] {
    auto t = asyncio::create_task([&] {
      try {
        throw Stop();
      } catch (const Stop& e) {
        raised = &e;
        throw;
      }
    });
    try {
      asyncio::await(t);
      ADD_FAILURE() << "no CancelledError";
    } catch (const Stop& e) {
      EXPECT_EQ(&e, raised);
    } catch (const asyncio::CancelledError& e) {
      ADD_FAILURE() << "a new CancelledError(\"" << e.message() << "\"), not the task's Stop";
    }
    EXPECT_TRUE(t.cancelled());
    try {
      t.result();
      ADD_FAILURE() << "no CancelledError";
    } catch (const Stop&) {
      ADD_FAILURE() << "the task's exception handed out twice";
    } catch (const asyncio::CancelledError& e) {
      EXPECT_EQ(e.message(), "stop");
    }
  });
}

// test_tasks.py BaseTaskTests.test_sleep_cancel: cancelling a sleeping task
// cancels its timer, so the (virtual) clock never jumps to the sleep's end.
TEST_F(TaskTests, test_sleep_cancel) {
  asyncio::event_loop loop(virtual_time());
  auto t = loop.create_task([] { return asyncio::sleep(10.0, std::string("yeah")); });
  loop.call_soon([t]() mutable { t.cancel(); });
  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
  EXPECT_TRUE(t.cancelled());
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

// test_tasks.py BaseTaskTests.test_sleep: sleep(dt, result) returns result.
TEST_F(TaskTests, test_sleep) {
  asyncio::event_loop loop(virtual_time());
  auto t = loop.create_task([] {
    asyncio::sleep(0.05);
    return asyncio::sleep(0.05, std::string("yeah"));
  });
  loop.run_until_complete(t);
  EXPECT_EQ(t.result(), "yeah");
  EXPECT_DOUBLE_EQ(loop.time(), 0.1);
}

// test_tasks.py BaseTaskTests.test_cancel_yield (a bare yield is sleep(0)):
// a task cancelled between two yields does not run past the first.
TEST_F(TaskTests, test_cancel_yield) {
  Strings log;
  asyncio::event_loop loop;
  auto t = loop.create_task([&] {
    log.push_back("start");
    asyncio::sleep(0);
    log.push_back("after first yield");
    asyncio::sleep(0);
    return 12;
  });
  run_briefly(loop);  // start the task
  EXPECT_TRUE(t.cancel());
  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
  EXPECT_TRUE(t.done());
  EXPECT_TRUE(t.cancelled());
  EXPECT_FALSE(t.cancel());
  EXPECT_EQ(log, (Strings{"start"}));
}

// Cancel before start (test_tasks.py test_cancel_with_message_before_starting_task,
// without the message): the function never runs.
TEST_F(TaskTests, test_cancel_before_start) {
  Strings log;
  asyncio::event_loop loop;
  auto t = loop.create_task([&] { log.push_back("ran"); });
  EXPECT_TRUE(t.cancel("early"));
  EXPECT_FALSE(t.done());  // cancellation happens at its first step
  try {
    loop.run_until_complete(t);
    ADD_FAILURE() << "no CancelledError";
  } catch (const asyncio::CancelledError& e) {
    EXPECT_EQ(e.message(), "early");
  }
  EXPECT_TRUE(t.cancelled());
  EXPECT_TRUE(log.empty());
}

// test_tasks.py BaseTaskTests.test_cancel_inner_future: cancelling the
// future a task awaits cancels the task.
TEST_F(TaskTests, test_cancel_inner_future) {
  asyncio::event_loop loop;
  auto f = loop.create_future<>();
  auto t = loop.create_task([&] {
    asyncio::await(f);
    return 12;
  });
  run_briefly(loop);  // start the task
  f.cancel();
  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(t.cancelled());
}

// test_tasks.py BaseTaskTests.test_cancel_both_task_and_inner_future
TEST_F(TaskTests, test_cancel_both_task_and_inner_future) {
  asyncio::event_loop loop;
  auto f = loop.create_future<>();
  auto t = loop.create_task([&] {
    asyncio::await(f);
    return 12;
  });
  run_briefly(loop);
  f.cancel();
  t.cancel();
  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
  EXPECT_TRUE(t.done());
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(t.cancelled());
}

// test_tasks.py BaseTaskTests.test_task_cancel_waiter_future: cancel() on a
// task awaiting a future cancels that future.
TEST_F(TaskTests, test_task_cancel_waiter_future) {
  asyncio::event_loop loop;
  auto fut = loop.create_future<>();
  auto task = loop.create_task([&] { asyncio::await(fut); });
  run_briefly(loop);
  EXPECT_FALSE(fut.done());
  EXPECT_TRUE(task.cancel());
  EXPECT_TRUE(fut.cancelled());  // at once, as asyncio's _fut_waiter.cancel()
  run_briefly(loop);
  EXPECT_THROW(loop.run_until_complete(task), asyncio::CancelledError);
  EXPECT_TRUE(task.cancelled());
}

// Two cancels before a task awaiting a future wakes: the first cancels the
// future, so the task raises that future's CancelledError with the first
// message, and the second request is dropped (asyncio's Task.__step keeps the
// CancelledError it is thrown and clears _must_cancel): the next await is not
// cancelled. The task used to raise the second message.
TEST_F(TaskTests, SecondCancelOfTaskAwaitingAFutureKeepsTheFirstMessage) {
  asyncio::event_loop loop(virtual_time());
  auto fut = loop.create_future<>();
  Strings log;
  auto task = loop.create_task([&] {
    try {
      asyncio::await(fut);
    } catch (const asyncio::CancelledError& e) {
      log.push_back(std::string("CancelledError(") + e.what() + ")");
    }
    asyncio::sleep(0.5);
    log.push_back("slept again at " + std::to_string(loop.time()));
  });
  run_briefly(loop);
  EXPECT_TRUE(task.cancel("m1"));
  EXPECT_TRUE(task.cancel("m2"));
  loop.run_until_complete(task);
  EXPECT_EQ(log, (Strings{"CancelledError(m1)", "slept again at 0.500000"}));
}

// The future a task awaits cancelled by hand, then the task: the task raises
// the future's CancelledError, with the future's message, as asyncio does.
TEST_F(TaskTests, CancelOfTaskAwaitingACancelledFutureRaisesTheFuturesMessage) {
  asyncio::event_loop loop;
  auto fut = loop.create_future<>();
  std::string seen;
  auto task = loop.create_task([&] {
    try {
      asyncio::await(fut);
    } catch (const asyncio::CancelledError& e) {
      seen = e.what();
      throw;
    }
  });
  run_briefly(loop);
  fut.cancel("F");
  EXPECT_TRUE(task.cancel("T"));
  try {
    loop.run_until_complete(task);
    ADD_FAILURE() << "no CancelledError";
  } catch (const asyncio::CancelledError& e) {
    EXPECT_STREQ(e.what(), "F");
  }
  EXPECT_EQ(seen, "F");
  EXPECT_TRUE(task.cancelled());
}

// test_tasks.py BaseTaskTests.test_cancel_task_catching: a task may catch
// CancelledError and return a value; it then ends normally.
TEST_F(TaskTests, test_cancel_task_catching) {
  asyncio::event_loop loop;
  auto fut1 = loop.create_future<>();
  auto fut2 = loop.create_future<>();
  auto t = loop.create_task([&] {
    asyncio::await(fut1);
    try {
      asyncio::await(fut2);
    } catch (const asyncio::CancelledError&) {
      return 42;
    }
    return 0;
  });
  run_briefly(loop);
  fut1.set_result();
  run_briefly(loop);
  EXPECT_TRUE(t.cancel());
  EXPECT_TRUE(fut2.cancelled());
  EXPECT_EQ(loop.run_until_complete(t), 42);
  EXPECT_FALSE(t.cancelled());
}

// test_tasks.py BaseTaskTests.test_cancel_task_ignoring: after catching
// CancelledError a task may go on awaiting.
TEST_F(TaskTests, test_cancel_task_ignoring) {
  asyncio::event_loop loop;
  auto fut1 = loop.create_future<>();
  auto fut2 = loop.create_future<>();
  auto fut3 = loop.create_future<>();
  auto t = loop.create_task([&] {
    asyncio::await(fut1);
    try {
      asyncio::await(fut2);
    } catch (const asyncio::CancelledError&) {
    }
    asyncio::await(fut3);
    return 42;
  });
  run_briefly(loop);
  fut1.set_result();
  run_briefly(loop);
  EXPECT_TRUE(t.cancel());
  EXPECT_TRUE(fut2.cancelled());
  run_briefly(loop);
  EXPECT_FALSE(t.done());
  fut3.set_result();
  EXPECT_EQ(loop.run_until_complete(t), 42);
  EXPECT_FALSE(fut3.cancelled());
  EXPECT_FALSE(t.cancelled());
}

// test_tasks.py BaseTaskTests.test_cancel_current_task: a task that cancels
// itself gets CancelledError at its next await.
TEST_F(TaskTests, test_cancel_current_task) {
  Strings log;
  asyncio::event_loop loop;
  asyncio::Task<int> t;
  t = loop.create_task([&] {
    EXPECT_TRUE(t.cancel());
    EXPECT_FALSE(t.cancelled());
    log.push_back("before sleep");
    asyncio::sleep(0);
    log.push_back("not reached");
    return 12;
  });
  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
  EXPECT_TRUE(t.cancelled());
  EXPECT_FALSE(t.cancel());
  EXPECT_EQ(log, (Strings{"before sleep"}));
}

// test_tasks.py BaseTaskTests.test_cancel_at_end: a cancel() after the last
// suspension point still wins: the task ends cancelled, not with 12.
TEST_F(TaskTests, test_cancel_at_end) {
  asyncio::event_loop loop;
  asyncio::Task<int> t;
  t = loop.create_task([&] {
    t.cancel();
    return 12;
  });
  EXPECT_FALSE(t.cancelled());
  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
  EXPECT_TRUE(t.done());
  EXPECT_TRUE(t.cancelled());
  EXPECT_FALSE(t.cancel());
}

// test_tasks.py BaseTaskTests.test_cancel_with_message_then_future_result:
// the message given to cancel() reaches the CancelledError of an awaiting
// task, and of run_until_complete.
TEST_F(TaskTests, test_cancel_with_message_then_future_result) {
  asyncio::event_loop loop(virtual_time());
  auto task = loop.create_task([] {
    auto inner = asyncio::create_task([] { asyncio::sleep(10); });
    asyncio::sleep(0);
    inner.cancel("my message");
    asyncio::wait(std::vector{inner});
    inner.result();
  });
  try {
    loop.run_until_complete(task);
    ADD_FAILURE() << "no CancelledError";
  } catch (const asyncio::CancelledError& e) {
    EXPECT_EQ(e.message(), "my message");
  }
  EXPECT_TRUE(task.cancelled());
}

// test_tasks.py BaseTaskTests.test_cancel_with_message_before_starting_task
TEST_F(TaskTests, test_cancel_with_message_before_starting_task) {
  asyncio::event_loop loop(virtual_time());
  auto task = loop.create_task([] {
    auto inner = asyncio::create_task([] { asyncio::sleep(10); });
    inner.cancel("my message");  // no sleep first: inner has not started
    asyncio::wait(std::vector{inner});
    inner.exception();
  });
  try {
    loop.run_until_complete(task);
    ADD_FAILURE() << "no CancelledError";
  } catch (const asyncio::CancelledError& e) {
    EXPECT_EQ(e.message(), "my message");
  }
}

// tasks.py Task.cancel() with a Task as _fut_waiter (test_tasks.py
// test_cancel_inner_future, with a task inside): cancelling a task cancels
// the task it awaits; the inner one unwinds first, then the outer one.
TEST_F(TaskTests, test_cancel_propagates_into_awaited_task) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  auto inner = loop.create_task([&] {
    Guard g{log, "inner"};
    try {
      asyncio::sleep(10);
    } catch (const asyncio::CancelledError&) {
      log.push_back("inner CancelledError");
      throw;
    }
  });
  auto outer = loop.create_task([&] {
    Guard g{log, "outer"};
    try {
      asyncio::await(inner);
    } catch (const asyncio::CancelledError&) {
      log.push_back("outer CancelledError");
      throw;
    }
  });
  run_briefly(loop);
  EXPECT_TRUE(outer.cancel());
  EXPECT_THROW(loop.run_until_complete(outer), asyncio::CancelledError);
  EXPECT_TRUE(inner.cancelled());
  EXPECT_TRUE(outer.cancelled());
  EXPECT_EQ(log, (Strings{"inner CancelledError", "~inner", "outer CancelledError", "~outer"}));
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

// tasks.py Task.cancel() ("it may be a Task that catches and ignores the
// cancellation"): if the awaited task swallows the cancellation and returns,
// the outer task gets its value and is not cancelled.
TEST_F(TaskTests, test_cancel_swallowed_by_awaited_task) {
  asyncio::event_loop loop(virtual_time());
  auto inner = loop.create_task([] {
    try {
      asyncio::sleep(10);
    } catch (const asyncio::CancelledError&) {
      return 5;
    }
    return 0;
  });
  auto outer = loop.create_task([&] { return asyncio::await(inner) + 1; });
  run_briefly(loop);
  outer.cancel();
  EXPECT_EQ(loop.run_until_complete(outer), 6);
  EXPECT_FALSE(outer.cancelled());
}

// tasks.py Task.__step (except CancelledError: super().cancel()): a task
// that raises CancelledError itself ends cancelled.
TEST_F(TaskTests, test_task_raising_cancelled_error_is_cancelled) {
  asyncio::event_loop loop;
  auto t = loop.create_task([] { throw asyncio::CancelledError("by hand"); });
  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
  EXPECT_TRUE(t.cancelled());
}

// test_tasks.py BaseTaskTests.test_cancelling / test_uncancel_basic: every
// cancel() request is counted; uncancel() takes one back.
TEST_F(TaskTests, test_cancelling_and_uncancel) {
  asyncio::event_loop loop(virtual_time());
  auto t = loop.create_task([] {
    try {
      asyncio::sleep(10);
    } catch (const asyncio::CancelledError&) {
    }
  });
  run_briefly(loop);
  EXPECT_EQ(t.cancelling(), 0);
  t.cancel();
  EXPECT_EQ(t.cancelling(), 1);
  t.cancel();
  EXPECT_EQ(t.cancelling(), 2);
  EXPECT_EQ(t.uncancel(), 1);
  EXPECT_EQ(t.cancelling(), 1);
  loop.run_until_complete(t);
  EXPECT_FALSE(t.cancelled());
  EXPECT_FALSE(t.cancel());  // done
}

// test_tasks.py BaseTaskTests.test_uncancel_resets_must_cancel (CPython
// 3.13): uncancel() down to zero withdraws a pending cancellation.
// Regression test, this once failed: uncancel() only decrements the count; must_cancel stays set,
// so the task still gets CancelledError at its next resumption and ends
// cancelled instead of returning 42. (CPython <= 3.12 behaved like the library.)
TEST_F(TaskTests, test_uncancel_resets_must_cancel) {
  asyncio::event_loop loop;
  auto fut = loop.create_future<>();
  auto task = loop.create_task([&] {
    asyncio::await(fut);
    return 42;
  });
  run_briefly(loop);  // the task waits for fut
  fut.set_result();   // the task is runnable
  task.cancel();
  EXPECT_EQ(task.cancelling(), 1);
  task.uncancel();
  EXPECT_EQ(task.cancelling(), 0);
  int result = -1;
  try {
    result = loop.run_until_complete(task);
  } catch (const asyncio::CancelledError&) {
    result = -2;
  }
  EXPECT_EQ(result, 42);
}

// test_tasks.py BaseTaskTests.test_exception / test_task_exception: a task's
// exception is kept, raised to whoever awaits it, and counts as retrieved.
TEST_F(TaskTests, test_task_exception_propagates_to_awaiter) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  Strings log;
  {
    auto failing = loop.create_task([]() -> int { throw TestError("boom"); });
    auto waiter = loop.create_task([&] {
      try {
        asyncio::await(failing);
      } catch (const TestError& e) {
        log.push_back(std::string("caught ") + e.what());
      }
    });
    loop.run_until_complete(waiter);
    EXPECT_TRUE(failing.done());
    EXPECT_FALSE(failing.cancelled());
  }
  EXPECT_EQ(log, (Strings{"caught boom"}));
  EXPECT_TRUE(errors.messages.empty());
}

// test_futures.py test_tb_logger_exception_unretrieved, for a task
// (base_events "Task exception was never retrieved"): a failed task nobody
// awaited reports through the loop's exception handler once it is dropped.
TEST_F(TaskTests, test_task_exception_never_retrieved) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  loop.create_task([] { throw TestError("nobody looks"); }, "lonely");
  run_briefly(loop);
  EXPECT_EQ(errors.messages, (Strings{"Task exception was never retrieved"}));
  EXPECT_EQ(errors.whats, (Strings{"nobody looks"}));
}

// Task.cancel() counts as looking at the outcome, as asyncio's sets
// _log_traceback = False before it checks done(): cancelling a task that
// already failed, then dropping it, reports nothing.
// Regression test, this once failed: "Task exception was never retrieved".
TEST_F(TaskTests, cancel_of_a_failed_task_counts_as_retrieving_its_exception) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  {
    auto failed = loop.create_task([] { throw TestError("looked at by cancel()"); });
    run_briefly(loop);
    ASSERT_TRUE(failed.done());
    EXPECT_FALSE(failed.cancel());
  }
  run_briefly(loop);
  EXPECT_TRUE(errors.messages.empty()) << errors.messages.front();
}

// A task woken by a future that failed, and cancelled before its step runs,
// raises CancelledError, and the future's exception counts as retrieved:
// asyncio's Task.__wakeup calls future.result() before that step. The
// future here is one whose cancel() does not count (gather's outer future,
// like asyncio's _GatheringFuture, does nothing once done), so only the
// wake-up can mark it. Found by structured_chaos_test.cpp, seed 1599.
// Regression test, this once failed: "Future exception was never retrieved".
TEST_F(TaskTests, a_cancel_after_the_awaited_future_failed_still_retrieves_its_exception) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  Strings log;
  {
    auto child = loop.create_task([] {
      asyncio::sleep(0.001);
      throw TestError("child failed");
    });
    asyncio::Task<> waiter;
    waiter = loop.create_task([&] {
      try {
        asyncio::gather(child);
        log.push_back("gather returned");
      } catch (const asyncio::CancelledError&) {
        log.push_back("cancelled");
      } catch (const TestError&) {
        log.push_back("TestError");
      }
    });
    // Once the child failed (gather's future is then done and the waiter's
    // wake-up queued), cancel the waiter before its step: this task awaits
    // the child after gather() did, so it wakes first.
    auto canceller = loop.create_task([&] {
      try {
        asyncio::await(child);
      } catch (const TestError&) {
        waiter.cancel();
      }
    });
    loop.run_until_complete(waiter);
    loop.run_until_complete(canceller);
    EXPECT_TRUE(child.exception() != nullptr);
  }
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"cancelled"}));
  EXPECT_TRUE(errors.messages.empty()) << errors.messages.front() << ": " << errors.whats.front();
}

// Same as above: asyncio's context carries 'future': the task, so the
// report says which task failed.
// Regression test, this once failed: exception_context::source is empty for "Task/Future
// exception was never retrieved" reports, so they do not name the task.
TEST_F(TaskTests, test_task_exception_never_retrieved_names_task) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  loop.create_task([] { throw TestError("nobody looks"); }, "lonely");
  run_briefly(loop);
  ASSERT_EQ(errors.sources.size(), 1u);
  EXPECT_NE(errors.sources[0].find("lonely"), std::string::npos) << errors.sources[0];
}

// test_tasks.py BaseTaskTests.test_log_destroyed_pending_task: closing the
// loop with a task still pending reports it and unwinds its stack.
TEST_F(TaskTests, test_log_destroyed_pending_task) {
  Strings log;
  error_log errors;
  {
    asyncio::event_loop loop;
    errors.attach(loop);
    auto never = loop.create_future<>();
    loop.create_task(
        [&log, never]() mutable {
          Guard g{log, "pending task"};
          asyncio::await(never);
        },
        "stuck");
    run_briefly(loop);
    EXPECT_TRUE(log.empty());
    loop.close();
    EXPECT_EQ(log, (Strings{"~pending task"}));
  }
  EXPECT_EQ(errors.messages, (Strings{"Task was destroyed but it is pending!"}));
  ASSERT_EQ(errors.sources.size(), 1u);
  EXPECT_NE(errors.sources[0].find("stuck"), std::string::npos) << errors.sources[0];
}

// C++-only: await works from any depth of plain calls inside a task.
int level3(asyncio::Future<int>& f, std::vector<std::string>& log) {
  log.push_back("level3 awaits");
  int v = asyncio::await(f);
  asyncio::sleep(0.5);
  log.push_back("level3 resumed");
  return v * 2;
}
int level2(asyncio::Future<int>& f, std::vector<std::string>& log) { return level3(f, log) + 1; }
int level1(asyncio::Future<int>& f, std::vector<std::string>& log) { return level2(f, log) + 1; }

TEST_F(TaskTests, test_await_from_nested_plain_functions) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<int>();
  auto t = loop.create_task([&] { return level1(f, log); });
  loop.call_later(1.0, [&] {
    log.push_back("set");
    f.set_result(20);
  });
  EXPECT_EQ(loop.run_until_complete(t), 42);
  EXPECT_EQ(log, (Strings{"level3 awaits", "set", "level3 resumed"}));
  EXPECT_DOUBLE_EQ(loop.time(), 1.5);
}

// events.get_running_loop() / tasks.sleep outside a loop raise RuntimeError
// ("no running event loop"); the message says where await may be used.
TEST_F(TaskTests, test_await_outside_loop) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  try {
    asyncio::await(f);
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::no_running_loop);
    EXPECT_NE(std::string(e.what()).find("asyncio::run"), std::string::npos) << e.what();
  }
  try {
    asyncio::sleep(1);
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::no_running_loop);
  }
  EXPECT_THROW(asyncio::get_running_loop(), asyncio::RuntimeError);
}

// C++-only (a plain callback is not a coroutine): await in a call_soon()
// callback raises RuntimeError(not_in_task) with a hint to use create_task.
TEST_F(TaskTests, test_await_from_plain_callback) {
  Strings log;
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  loop.call_soon([&] {
    try {
      asyncio::await(f);
      log.push_back("awaited");
    } catch (const asyncio::RuntimeError& e) {
      log.push_back(e.condition() == asyncio::asyncio_errc::not_in_task ? "not_in_task" : "wrong condition");
      if (std::string(e.what()).find("create_task") != std::string::npos) log.push_back("hint");
    }
  });
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"not_in_task", "hint"}));
}

// C++-only: a greenlet switched to inside a task is not the task, so it
// cannot await.
TEST_F(TaskTests, test_await_from_foreign_greenlet_in_task) {
  Strings log;
  asyncio::event_loop loop;
  auto t = loop.create_task([&] {
    greenlet::greenlet g([&] {
      try {
        asyncio::sleep(0);
        log.push_back("slept");
      } catch (const asyncio::RuntimeError& e) {
        log.push_back(e.condition() == asyncio::asyncio_errc::not_in_task ? "not_in_task" : "wrong condition");
      }
    });
    g.switch_();
    asyncio::sleep(0);  // the task itself still can
    log.push_back("task slept");
  });
  loop.run_until_complete(t);
  EXPECT_EQ(log, (Strings{"not_in_task", "task slept"}));
}

// what_await_says(fn) is the message of the RuntimeError an await raises in
// fn, run in a task on a greenlet of its own making.
template <class Await>
std::string what_await_says(Await await_somewhere) {
  std::string what;
  asyncio::run([&] {
    try {
      await_somewhere();
      what = "no error";
    } catch (const asyncio::RuntimeError& e) {
      what = e.condition() == asyncio::asyncio_errc::not_in_task ? e.what() : "wrong condition";
    }
  });
  return what;
}

// C++-only: a sync generator's body runs on a greenlet of its own, so it
// cannot await (Python: `await` in a plain generator is a SyntaxError). The
// error says so and points to async_generator; it said "a greenlet that is
// not the task's own", which names neither. Also from a plain greenlet
// started in the body, and from a nested generator's body.
TEST_F(TaskTests, test_await_in_generator_body_points_to_async_generator) {
  using gen_t = greenlet::generator<int>;
  const std::string from_body = what_await_says([] {
    gen_t g([] { asyncio::sleep(0); });
    g.next();
  });
  EXPECT_NE(from_body.find("await inside a generator's body"), std::string::npos) << from_body;
  EXPECT_NE(from_body.find("asyncio::async_generator"), std::string::npos) << from_body;
  const std::string below_body = what_await_says([] {
    gen_t g([] { greenlet::greenlet([] { asyncio::sleep(0); }).switch_(); });
    g.next();
  });
  EXPECT_NE(below_body.find("await inside a generator's body"), std::string::npos) << below_body;
  const std::string nested = what_await_says([] {
    gen_t outer([] {
      gen_t inner([] { asyncio::sleep(0); });
      inner.next();
    });
    outer.next();
  });
  EXPECT_NE(nested.find("await inside a generator's body"), std::string::npos) << nested;
  // A plain greenlet in the task keeps its own message.
  const std::string plain = what_await_says([] { greenlet::greenlet([] { asyncio::sleep(0); }).switch_(); });
  EXPECT_NE(plain.find("not the task's own"), std::string::npos) << plain;
  EXPECT_EQ(plain.find("generator"), std::string::npos) << plain;
}

// test_tasks.py BaseTaskTests.test_other_loop_future: awaiting a future of
// another loop raises RuntimeError.
TEST_F(TaskTests, test_other_loop_future) {
  asyncio::event_loop loop;
  asyncio::event_loop other;
  auto fut = other.create_future<int>();
  auto t = loop.create_task([&] { return asyncio::await(fut); });
  try {
    loop.run_until_complete(t);
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::wrong_loop) << e.what();
  }
}

// tasks.py Task.__step ("Task cannot await on itself").
TEST_F(TaskTests, test_task_await_itself) {
  asyncio::event_loop loop;
  asyncio::Task<int> t;
  t = loop.create_task([&] { return asyncio::await(t); });
  EXPECT_THROW(loop.run_until_complete(t), asyncio::RuntimeError);
}

// C++-only: a task that switches to the loop's greenlet by hand would never
// be resumed; it fails with RuntimeError(stranded_task) and its stack unwinds.
TEST_F(TaskTests, test_task_switching_to_loop_greenlet_by_hand) {
  Strings log;
  asyncio::event_loop loop;
  auto t = loop.create_task([&] {
    Guard g{log, "task frame"};
    greenlet::getcurrent().parent().switch_();
    log.push_back("resumed?");
  });
  try {
    loop.run_until_complete(t);
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::stranded_task) << e.what();
  }
  EXPECT_EQ(log, (Strings{"~task frame"}));
  // The loop still works afterwards.
  EXPECT_EQ(loop.run_until_complete([] { return 3; }), 3);
}

}  // namespace
