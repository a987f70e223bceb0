// gather_test.cpp: asyncio::gather. Ported from CPython's
// Lib/test/test_asyncio/test_tasks.py (GatherTestsBase, FutureGatherTests,
// CoroutineGatherTests); each case names its source. gather() is called
// from a task here (it awaits), where CPython builds a _GatheringFuture.
#include <exception>
#include <functional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::error_log;
using asyncio_test::Guard;
using asyncio_test::run_briefly;
using asyncio_test::stamp;
using asyncio_test::TestError;
using asyncio_test::virtual_time;
using asyncio_test::what_of;
using GatherTests = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

// run_a_while(loop) is GatherTestsBase._run_loop: a few iterations, enough
// for done callbacks to reach the gathering task.
void run_a_while(asyncio::event_loop& loop) {
  for (int i = 0; i < 4; ++i) run_briefly(loop);
}

// test_tasks.py FutureGatherTests.test_result (GatherTestsBase.test_result):
// results come in argument order, whatever order the children finish in.
TEST_F(GatherTests, test_result) {
  asyncio::event_loop loop;
  auto a = loop.create_future<int>();
  auto b = loop.create_future<int>();
  auto c = loop.create_future<int>();
  auto t = loop.create_task([&] { return asyncio::gather(std::vector{a, b, c}); });
  run_a_while(loop);
  EXPECT_FALSE(t.done());
  b.set_result(1);
  run_a_while(loop);
  EXPECT_FALSE(t.done());
  c.set_result(2);
  a.set_result(3);
  EXPECT_EQ(loop.run_until_complete(t), (std::vector<int>{3, 1, 2}));
}

// test_tasks.py CoroutineGatherTests.test_coroutines (functions made into
// tasks) with mixed result types: a tuple in argument order.
// gather(a, b, c) of functions makes the children left to right, so they
// start in that order, as asyncio's (they started c, b, a: make_tuple's
// arguments were evaluated right to left); results in argument order.
TEST_F(GatherTests, FunctionsStartInArgumentOrder) {
  Strings log;
  for (bool return_exceptions : {false, true}) {
    log.clear();
    asyncio::run([&] {
      auto child = [&](std::string name) {
        return [&log, name] {
          log.push_back(name);
          return name;
        };
      };
      if (return_exceptions) {
        auto [a, b, c] = asyncio::gather(asyncio::return_exceptions, child("a"), child("b"), child("c"));
        EXPECT_EQ(a.value() + b.value() + c.value(), "abc");
      } else {
        auto [a, b, c] = asyncio::gather(child("a"), child("b"), child("c"));
        EXPECT_EQ(a + b + c, "abc");
      }
    });
    EXPECT_EQ(log, (Strings{"a", "b", "c"})) << "return_exceptions " << return_exceptions;
  }
}

TEST_F(GatherTests, test_gather_functions_tuple) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  auto done = loop.create_future<>();
  done.set_result();
  auto t = loop.create_task([&] {
    return asyncio::gather(
        [&] {
          asyncio::sleep(0.3);
          log.push_back("int");
          return 1;
        },
        [&] {
          asyncio::sleep(0.1);
          log.push_back("string");
          return std::string("two");
        },
        done);
  });
  auto [one, two, three] = loop.run_until_complete(t);
  EXPECT_EQ(one, 1);
  EXPECT_EQ(two, "two");
  EXPECT_EQ(three, std::monostate{});
  EXPECT_EQ(log, (Strings{"string", "int"}));
  EXPECT_DOUBLE_EQ(loop.time(), 0.3);
}

// test_tasks.py GatherTestsBase.test_constructor_empty_sequence: nothing to
// gather gives an empty result.
TEST_F(GatherTests, test_constructor_empty_sequence) {
  asyncio::event_loop loop;
  auto t = loop.create_task([] { return asyncio::gather(std::vector<asyncio::Future<int>>{}); });
  EXPECT_TRUE(loop.run_until_complete(t).empty());
}

// test_tasks.py GatherTestsBase.test_one_exception: the first exception is
// raised at once; the other children are not cancelled, and finishing them
// later does nothing.
TEST_F(GatherTests, test_one_exception) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  auto a = loop.create_future<int>();
  auto b = loop.create_future<int>();
  auto c = loop.create_future<int>();
  auto d = loop.create_future<int>();
  auto e = loop.create_future<int>();
  auto t = loop.create_task([&] { return asyncio::gather(std::vector{a, b, c, d, e}); });
  run_briefly(loop);
  a.set_result(1);
  b.set_exception(TestError("zde"));
  run_a_while(loop);
  ASSERT_TRUE(t.done());
  EXPECT_EQ(what_of(t.exception()), "zde");
  EXPECT_FALSE(c.done());
  EXPECT_FALSE(d.done());
  // Does nothing.
  c.set_result(3);
  d.cancel();
  e.set_exception(TestError("rte"));
  e.exception();
  run_a_while(loop);
  EXPECT_TRUE(errors.messages.empty()) << errors.messages.front();
}

// test_tasks.py GatherTestsBase.test_return_exceptions: with
// return_exceptions, gather waits for all and returns each outcome.
TEST_F(GatherTests, test_return_exceptions) {
  asyncio::event_loop loop;
  auto a = loop.create_future<int>();
  auto b = loop.create_future<int>();
  auto c = loop.create_future<int>();
  auto d = loop.create_future<int>();
  auto t = loop.create_task([&] { return asyncio::gather(asyncio::return_exceptions, std::vector{a, b, c, d}); });
  run_briefly(loop);
  b.set_result(1);
  c.set_exception(TestError("zde"));
  a.set_result(3);
  run_a_while(loop);
  EXPECT_FALSE(t.done());
  d.set_exception(TestError("rte"));
  auto res = loop.run_until_complete(t);
  ASSERT_EQ(res.size(), 4u);
  EXPECT_EQ(res[0].value(), 3);
  EXPECT_EQ(res[1].value(), 1);
  EXPECT_FALSE(res[2].has_value());
  EXPECT_EQ(what_of(res[2].error()), "zde");
  EXPECT_EQ(what_of(res[3].error()), "rte");
  EXPECT_THROW(res[3].value(), TestError);
}

// test_tasks.py GatherTestsBase.test_one_cancellation: a cancelled child
// makes gather raise CancelledError (without return_exceptions).
TEST_F(GatherTests, test_one_cancellation) {
  Strings log;
  asyncio::event_loop loop;
  auto a = loop.create_future<int>();
  auto b = loop.create_future<int>();
  auto c = loop.create_future<int>();
  auto t = loop.create_task([&] {
    try {
      asyncio::gather(std::vector{a, b, c});
      log.push_back("returned");
    } catch (const asyncio::CancelledError&) {
      log.push_back("CancelledError");
    }
  });
  run_briefly(loop);
  a.set_result(1);
  b.cancel();
  loop.run_until_complete(t);
  EXPECT_EQ(log, (Strings{"CancelledError"}));
  EXPECT_FALSE(c.done());  // not cancelled by gather
  c.set_result(3);         // does nothing
  run_briefly(loop);
}

// test_tasks.py GatherTestsBase.test_result_exception_one_cancellation:
// with return_exceptions a cancelled child is a CancelledError outcome.
TEST_F(GatherTests, test_result_exception_one_cancellation) {
  asyncio::event_loop loop;
  std::vector<asyncio::Future<int>> fs;
  for (int i = 0; i < 6; ++i) fs.push_back(loop.create_future<int>());
  auto t = loop.create_task([&] { return asyncio::gather(asyncio::return_exceptions, fs); });
  run_briefly(loop);
  fs[0].set_result(1);
  fs[1].set_exception(TestError("zde"));
  fs[2].cancel();
  run_a_while(loop);
  EXPECT_FALSE(t.done());
  fs[3].set_result(3);
  fs[4].cancel();
  fs[5].set_exception(TestError("rte"));
  auto res = loop.run_until_complete(t);
  ASSERT_EQ(res.size(), 6u);
  EXPECT_EQ(res[0].value(), 1);
  EXPECT_EQ(what_of(res[1].error()), "zde");
  EXPECT_THROW(res[2].value(), asyncio::CancelledError);
  EXPECT_EQ(res[3].value(), 3);
  EXPECT_THROW(res[4].value(), asyncio::CancelledError);
  EXPECT_EQ(what_of(res[5].error()), "rte");
}

// test_tasks.py CoroutineGatherTests.test_duplicate_coroutines: the same
// child given several times gives its result at each place.
TEST_F(GatherTests, test_duplicate_coroutines) {
  asyncio::event_loop loop;
  auto t = loop.create_task([] {
    auto c = asyncio::create_task([] { return std::string("abc"); });
    auto d = asyncio::create_task([] { return std::string("def"); });
    return asyncio::gather(std::vector{c, c, d, c});
  });
  EXPECT_EQ(loop.run_until_complete(t), (Strings{"abc", "abc", "def", "abc"}));
}

// test_tasks.py CoroutineGatherTests.test_cancellation_broadcast: cancelling
// the task that awaits gather() cancels every child.
// Regression test, this once failed: gather_wait() only cancels the children when await_state()
// throws CancelledError, but a cancel() of the gathering task cancels the
// private "outer" future it waits on, so await_state() returns normally and
// the CancelledError comes from out->check_result(), outside the try: the
// children are never cancelled and keep waiting (here: forever).
TEST_F(GatherTests, test_cancellation_broadcast) {
  int proof = 0;
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  auto waiter = loop.create_future<>();
  auto inner = [&] {
    asyncio::await(waiter);
    proof += 1;
  };
  auto child1 = loop.create_task(inner);
  auto child2 = loop.create_task(inner);
  auto f = loop.create_task([&] {
    asyncio::gather(child1, child2);
    proof += 100;
  });
  run_briefly(loop);
  EXPECT_TRUE(f.cancel());
  EXPECT_THROW(loop.run_until_complete(f), asyncio::CancelledError);
  run_briefly(loop);
  EXPECT_TRUE(waiter.cancelled());
  EXPECT_TRUE(child1.cancelled());
  EXPECT_TRUE(child2.cancelled());
  run_briefly(loop);
  EXPECT_EQ(proof, 0);
  loop.close();
}

// Same case, C++ spelling of CPython's assertion that the children's stacks
// unwind: the gathering task is cancelled while its children sleep.
// Regression test, this once failed: as above; the children are not cancelled and go on sleeping
// (log stays empty until close() kills them as pending tasks).
TEST_F(GatherTests, test_cancel_gathering_task_cancels_children) {
  Strings log;
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  auto child = [&log](const char* name) {
    return [&log, name] {
      Guard g{log, name};
      asyncio::sleep(10);
      log.push_back(std::string(name) + " finished");
    };
  };
  auto f = loop.create_task([&] { asyncio::gather(child("a"), child("b")); });
  run_briefly(loop);
  run_briefly(loop);
  f.cancel();
  EXPECT_THROW(loop.run_until_complete(f), asyncio::CancelledError);
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"~a", "~b"}));
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
  loop.close();
}

// test_tasks.py CoroutineGatherTests.test_exception_marking: once gather
// has raised the first exception, later failures of the other children are
// marked retrieved (gather's _done_callback), so nothing is reported.
// Regression test, this once failed: gather_wait() removes its callbacks from the children when it
// raises, so a second child failing later is dropped unretrieved and the
// loop reports "Task exception was never retrieved".
TEST_F(GatherTests, test_exception_marking) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  auto a = loop.create_future<>();
  auto b = loop.create_future<>();
  auto inner = [](asyncio::Future<> f) {
    return [f]() mutable {
      asyncio::await(f);
      throw TestError("should not be ignored");
    };
  };
  auto f = loop.create_task([&] { asyncio::gather(inner(a), inner(b)); });
  run_briefly(loop);
  a.set_result();
  run_a_while(loop);
  b.set_result();
  run_a_while(loop);
  ASSERT_TRUE(f.done());
  EXPECT_EQ(what_of(f.exception()), "should not be ignored");
  EXPECT_TRUE(errors.messages.empty()) << errors.messages.front();
}

// A child that has already failed when gather() is called: gather raises its
// exception and, as asyncio's gather (whose callbacks are on every child),
// marks the other children's later failures retrieved. gather() used to raise
// before watching them, and the loop reported the later failure "Task
// exception was never retrieved".
TEST_F(GatherTests, ChildFailedBeforeGatherStillMarksLaterFailuresRetrieved) {
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  std::string raised;
  {
    auto bad = loop.create_future<>();
    bad.set_exception(std::make_exception_ptr(TestError("pre")));
    auto later = loop.create_task([] {
      asyncio::sleep(0.01);
      throw TestError("later");
    });
    loop.run_until_complete(loop.create_task([&] {
      try {
        asyncio::gather(bad, later);
      } catch (const TestError& e) {
        raised = e.what();
      }
      asyncio::sleep(0.02);
    }));
    EXPECT_TRUE(later.done());
  }
  EXPECT_EQ(raised, "pre");
  EXPECT_EQ(errors.whats, Strings{});
}

// test_tasks.py FutureGatherTests.test_constructor_heterogenous_futures /
// test_tasks.py test_other_loop_future: children of another loop are an
// error (CPython: ValueError from gather, or RuntimeError when awaited).
// Regression test, this once failed: gather() does not check the children's loop; the task waits
// for a future this loop can never complete and the loop raises the
// deadlock RuntimeError (with timers around it would hang until they end).
TEST_F(GatherTests, test_constructor_heterogenous_futures) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  asyncio::event_loop other;
  auto foreign = other.create_future<int>();
  auto t = loop.create_task([&] { return asyncio::gather(std::vector{foreign}); });
  try {
    loop.run_until_complete(t);
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::wrong_loop) << e.what();
  }
  loop.close();
}

// test_tasks.py GatherTestsBase.test_one_exception, timed so that another
// child finishes in the iteration after the failure, before the gathering
// task resumes: gather raises the first exception and nothing else happens.
// LIBRARY BUG (memory safety): gather_wait()'s child callback captures the
// raw "outer" future and a reference to `remaining`, a local of the task's
// frame; b's callback is already queued when gather_wait() unregisters, so it
// runs after gather() raised: heap-use-after-free of the outer future (and a
// write to a dead stack slot if it got that far). Found with
// -DGREENLET_SANITIZE=address; a plain build passes by luck.
TEST_F(GatherTests, test_child_finishing_after_failure_is_safe) {
  Strings log;
  asyncio::event_loop loop;
  auto a = loop.create_task([]() -> int {
    asyncio::sleep(0);
    throw TestError("a failed");
  });
  auto b = loop.create_task([] {
    asyncio::sleep(0);
    asyncio::sleep(0);
    return 2;
  });
  auto t = loop.create_task([&] {
    try {
      asyncio::gather(a, b);
    } catch (const TestError& e) {
      log.push_back(e.what());
    }
  });
  loop.run_until_complete(t);
  run_briefly(loop);
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"a failed"}));
  EXPECT_EQ(b.result(), 2);
}

// described() is the exception being handled as "CancelledError(msg)".
std::string described() {
  try {
    throw;
  } catch (const asyncio::CancelledError& c) {
    return "CancelledError(" + c.message() + ")";
  } catch (const std::exception& e) {
    return e.what();
  }
}

// child(log, n, d, cleanup, swallow) is the twin's child(): sleeps d, and on
// CancelledError logs it, sleeps `cleanup` (a second cancel there is logged
// and the cleanup goes on), then re-raises or, if `swallow`, returns -n.
std::function<int()> child(Strings& log, int n, double d, double cleanup = 0, bool swallow = false) {
  return [&log, n, d, cleanup, swallow] {
    const std::string name = "child " + std::to_string(n);
    std::exception_ptr cancelled;
    try {
      asyncio::sleep(d);
      log.push_back(name + " done");
      return n;
    } catch (const asyncio::CancelledError&) {
      log.push_back(stamp(name + " cancelled " + described()));
      cancelled = std::current_exception();  // re-raised below, out of the handler
    }
    if (cleanup > 0) {
      try {
        asyncio::sleep(cleanup);
      } catch (const asyncio::CancelledError&) {
        log.push_back(stamp(name + " cleanup cancelled " + described()));
        asyncio::sleep(cleanup);
      }
      log.push_back(stamp(name + " cleanup done"));
    }
    if (swallow) return -n;
    std::rethrow_exception(cancelled);
  };
}

// The task awaiting gather() is cancelled with a message: each child gets it
// and reacts before the waiting task wakes, which then raises the first
// cancelled child's CancelledError. Order, messages and times are what
// Python 3.11 prints for the same program (ga.py g2).
// Regression test, this once failed: the children were cancelled without the
// message, and the waiter raised before they ran their handlers.
TEST_F(GatherTests, test_cancel_gathering_task_forwards_message) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  loop.run_until_complete([&] {
    auto waiter = asyncio::create_task([&] {
      try {
        return asyncio::gather(child(log, 1, 1, 0.2), child(log, 2, 1));
      } catch (...) {
        log.push_back(stamp("waiter got " + described()));
        throw;
      }
    });
    asyncio::sleep(0.1);
    waiter.cancel("outer-msg");
    try {
      asyncio::await(waiter);
    } catch (...) {
      log.push_back(stamp("awaiting waiter: " + described()));
    }
    asyncio::sleep(0.5);
  });
  EXPECT_EQ(log, (Strings{"child 1 cancelled CancelledError(outer-msg) t=1",
                          "child 2 cancelled CancelledError(outer-msg) t=1", "waiter got CancelledError(outer-msg) t=1",
                          "awaiting waiter: CancelledError(outer-msg) t=1", "child 1 cleanup done t=3"}));
}

// gather(return_exceptions) cancelled while its children swallow the cancel
// and return: CancelledError all the same, once both are done (ga.py g2b).
// Regression test, this once failed: the waiter raised before the children
// ran their handlers.
TEST_F(GatherTests, test_cancel_gathering_task_children_ignore) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  loop.run_until_complete([&] {
    auto waiter = asyncio::create_task([&] {
      try {
        return asyncio::gather(asyncio::return_exceptions, child(log, 1, 1, 0, true), child(log, 2, 1, 0, true));
      } catch (...) {
        log.push_back(stamp("waiter got " + described()));
        throw;
      }
    });
    asyncio::sleep(0.1);
    waiter.cancel();
    try {
      asyncio::await(waiter);
      log.push_back("waiter result");
    } catch (...) {
      log.push_back("awaiting waiter: " + described());
    }
  });
  EXPECT_EQ(log, (Strings{"child 1 cancelled CancelledError() t=1", "child 2 cancelled CancelledError() t=1",
                          "waiter got CancelledError() t=1", "awaiting waiter: CancelledError()"}));
}

// A second cancel while gather() waits for its children goes on to them
// (child 1 is in its cleanup; child 2 is done and ignores it) and gather()
// still raises CancelledError, with the last message, once all are done.
TEST_F(GatherTests, test_cancel_gathering_task_twice) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  loop.run_until_complete([&] {
    auto waiter = asyncio::create_task([&] {
      return asyncio::gather(asyncio::return_exceptions, child(log, 1, 1, 0.3, true), child(log, 2, 1, 0, true));
    });
    asyncio::sleep(0.1);
    waiter.cancel("m");
    asyncio::sleep(0.1);
    waiter.cancel("m2");
    try {
      asyncio::await(waiter);
      log.push_back("waiter result");
    } catch (...) {
      log.push_back(stamp("awaiting waiter: " + described()));
    }
    EXPECT_TRUE(waiter.cancelled());
  });
  EXPECT_EQ(log, (Strings{"child 1 cancelled CancelledError(m) t=1", "child 2 cancelled CancelledError(m) t=1",
                          "child 1 cleanup cancelled CancelledError(m2) t=2", "child 1 cleanup done t=5",
                          "awaiting waiter: CancelledError(m2) t=5"}));
}

// A child that takes the cancel and then waits for a future nobody sets:
// gather() waits for it, and the loop reports the deadlock rather than hang.
TEST_F(GatherTests, test_cancel_gathering_task_child_never_finishes_is_a_deadlock) {
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  auto never = loop.create_future<>();
  auto waiter = loop.create_task([&] {
    asyncio::gather(asyncio::return_exceptions, [&] {
      try {
        asyncio::sleep(1);
      } catch (const asyncio::CancelledError&) {
        asyncio::await(never);
      }
    });
  });
  loop.call_later(0.1, [waiter]() mutable { waiter.cancel(); });
  try {
    loop.run_until_complete(waiter);
    ADD_FAILURE() << "no deadlock RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::deadlock) << e.what();
  }
  loop.close();
}

}  // namespace
