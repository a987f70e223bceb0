// cpython_tasks_port_b_test.cpp: CPython's Lib/test/test_asyncio/test_tasks.py method by method,
// SECOND HALF. The version read is the stored one, commit 0035be3fee832ebccd8c86576b9c604ca321cefa
// (the 3.5-era file: TaskTests, GatherTestsBase with FutureGatherTests and CoroutineGatherTests,
// RunCoroutineThreadsafeTests, SleepTests). Its 2,296 lines split at line 1,148; the first
// `def test_` at or after it is TaskTests.test_sleep (line 1,154): this file ports test_sleep and
// every test method after it; cpython_tasks_port_a_test.cpp has the ones before. task_test.cpp,
// gather_test.cpp, shield_test.cpp, current_task_test.cpp, wait_for_test.cpp and
// tests/concurrent/bridge_test.cpp hold older ports of some of these cases; each test here names
// its CPython method and keeps its values.
//
// How Python maps here. self.new_test_loop() is a loop on the virtual clock (it starts at 0, as
// TestLoop's), so loop.time() is exact; a `gen()` time generator is not needed. A coroutine passed
// to Task()/ensure_future()/run_until_complete() is a function (a lambda). test_utils.run_briefly()
// runs a no-op task to completion, two loop turns as in test_utils (the shared
// asyncio_test::run_briefly() runs one); GatherTestsBase._run_loop() (`while loop._ready`) is
// kRunLoopTurns of those: the ready queue is not public. test_utils.MockCallback is a counter of
// calls that records the future it was given. A gather() future is a task running gather()
// (docs/porting.md: gather() is a call, not an object).
//
// Not ported (Python-only):
// - test_step_in_completed_task: drives the private Task._step(); a Task has no set_result() here
//   (task_set_result_test.cpp).
// - test_step_result, test_yield_vs_yield_from, test_yield_vs_yield_from_generator: a
//   generator-based coroutine yielding a bare value, a future or a generator to the task.
// - test_iscoroutinefunction: asyncio.iscoroutinefunction() and the @coroutine decorator.
// - test_as_completed_invalid_args and the TypeError half of test_wait_invalid_args: passing a
//   future or a coroutine object where a list is expected does not compile here.
// - test_corowrapper_mocks_generator, test_yield_from_corowrapper, test_yield_from_corowrapper_send,
//   test_corowrapper_weakref, test_corowrapper_throw: CoroWrapper, the debug-mode coroutine wrapper.
// - test_log_destroyed_pending_task: a task destroyed by the GC while pending (`__del__`, gc); a
//   pending task here is held by its loop until the loop closes and unwinds it.
// - test_coroutine_never_yielded: a coroutine object never awaited, logged from `__del__`.
// - test_return_coroutine_from_coroutine: a @coroutine returning a coroutine object.
// - test_task_source_traceback: debug-mode origin tracking (_source_traceback).
// - GatherTestsBase.test_env_var_debug: coroutines._is_debug_mode(), Python's (the loop's
//   GREENLET_ASYNCIO_DEBUG is tested by cpython_base_events_port_test.cpp's test_env_var_debug).
//
// Deliberate differences the tests assert (each one's comment says so):
// - test_current_task(_with_interleaving_tasks): current_task() with no running loop throws
//   RuntimeError, as asyncio.current_task() does since 3.7 (3.5's Task.current_task(loop) gave None).
// - test_step_with_baseexception, test_baseexception_during_cancel: an exception that is not a
//   std::exception stands for BaseException; it ends the task as in Python but does not also come
//   out of the loop's run (KeyboardInterrupt/SystemExit have no C++ counterpart).
// - test_sleep_cancel: loop.call_later cannot be patched to catch the sleep's timer handle; the test
//   asserts what cancelling it does instead (the task ends cancelled, the clock does not move).
// - test_task_cancel_waiter_future: the private task._fut_waiter is read from repr()'s wait_for=.
// - test_gather_shield, FutureGatherTests.test_one_cancellation: the gather future is a task, and a
//   task that ends with CancelledError is cancelled(); Python's _GatheringFuture is not cancelled
//   but holds a CancelledError as its exception.
// - test_constructor_heterogenous_futures: futures of two loops given to gather() raise
//   RuntimeError (documented in tasks.hpp), where 3.5 raises ValueError; there is no loop= argument.
// - test_constructor_empty_sequence / test_constructor_homogenous_futures /
//   test_constructor_loop_selection: no loop= argument and no fut._loop: gather() runs on the loop
//   of the task calling it; the tests assert the results on each loop.
// - CoroutineGatherTests.test_cancellation_broadcast: the `gatherer` future is the gather() call in
//   outer(); `gatherer.cancel()` returning False afterwards has no object to ask.
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <greenlet/concurrent.hpp>

#include "asyncio_test_support.hpp"

namespace cpython_tasks_port_b {

namespace asyncio = greenlet::asyncio;
using asyncio_test::Boom;
using asyncio_test::virtual_time;

using CPythonTaskTests = greenlet_test::GreenletTest;
using CPythonFutureGatherTests = greenlet_test::GreenletTest;
using CPythonCoroutineGatherTests = greenlet_test::GreenletTest;
using CPythonRunCoroutineThreadsafeTests = greenlet_test::GreenletTest;
using CPythonSleepTests = greenlet_test::GreenletTest;

// new_test_loop() is test_utils.TestCase.new_test_loop(): a loop on the virtual clock.
std::shared_ptr<asyncio::event_loop> new_test_loop() { return asyncio::new_event_loop(virtual_time()); }

// run_briefly(loop) is test_utils.run_briefly(): run a no-op task to completion (its step, then
// run_until_complete()'s stop callback: two turns).
void run_briefly(asyncio::event_loop& loop) {
  loop.run_until_complete([] {});
}

// run_loop(loop) is GatherTestsBase._run_loop(), `while loop._ready: run_briefly(loop)`: the ready
// queue is not public, so a fixed number of run_briefly() calls, more than any chain here needs.
constexpr int kRunLoopTurns = 5;
void run_loop(asyncio::event_loop& loop) {
  for (int i = 0; i < kRunLoopTurns; ++i) run_briefly(loop);
}

// expect_almost_equal(a, b) is assertAlmostEqual: equal to 7 decimal places.
void expect_almost_equal(double expected, double actual) { EXPECT_NEAR(expected, actual, 1e-7); }

// MockCallback is test_utils.MockCallback as the gather tests use it: counts its calls and keeps
// the future of the last one.
template <class T>
struct MockCallback {
  int called = 0;
  asyncio::detail::future_state* with = nullptr;
  template <class F>
  void attach(F& fut) {
    fut.add_done_callback([this](asyncio::Future<T>& f) {
      ++called;
      with = f.state();
    });
  }
  // assert_called_once_with(fut)
  template <class F>
  void expect_called_once_with(const F& fut) const {
    EXPECT_EQ(called, 1);
    EXPECT_EQ(with, fut.state());
  }
};

// BaseException stands for Python's BaseException: not a std::exception.
struct BaseException {
  int id = 0;
};

// ================================================================ TaskTests

// test_sleep
TEST_F(CPythonTaskTests, test_sleep) {
  auto loop = new_test_loop();
  auto sleeper = [](double dt, std::string arg) {
    asyncio::sleep(dt / 2);
    auto res = asyncio::sleep(dt / 2, arg);
    return res;
  };
  auto t = loop->create_task([&] { return sleeper(0.1, "yeah"); });
  loop->run_until_complete(t);
  EXPECT_TRUE(t.done());
  EXPECT_EQ(t.result(), "yeah");
  expect_almost_equal(0.1, loop->time());
}

// test_sleep_cancel: Python patches loop.call_later to catch the sleep's timer handle and checks
// handle._cancelled; here the loop's call_later cannot be patched, so the test asserts what the
// cancel does instead: the task ends cancelled at once, and the clock never went to the 10 s timer.
TEST_F(CPythonTaskTests, test_sleep_cancel) {
  auto loop = new_test_loop();
  auto t = loop->create_task([] { return asyncio::sleep(10.0, std::string("yeah")); });
  run_briefly(*loop);
  EXPECT_FALSE(t.done());  // handle not cancelled: the task still sleeps

  t.cancel();
  run_briefly(*loop);
  EXPECT_TRUE(t.cancelled());
  expect_almost_equal(0.0, loop->time());
}

// test_task_cancel_sleeping_task
TEST_F(CPythonTaskTests, test_task_cancel_sleeping_task) {
  auto loop = new_test_loop();
  auto sleep = [](double dt) { asyncio::sleep(dt); };
  auto doit = [&] {
    auto sleeper = asyncio::create_task([&] { sleep(5000); });
    loop->call_later(0.1, [sleeper]() mutable { sleeper.cancel(); });
    try {
      asyncio::await(sleeper);
    } catch (const asyncio::CancelledError&) {
      return std::string("cancelled");
    }
    return std::string("slept in");
  };
  EXPECT_EQ(loop->run_until_complete(doit), "cancelled");
  expect_almost_equal(0.1, loop->time());
}

// test_task_cancel_waiter_future: task._fut_waiter (private) is what repr() shows as wait_for=.
TEST_F(CPythonTaskTests, test_task_cancel_waiter_future) {
  auto loop = new_test_loop();
  auto fut = loop->create_future();
  auto task = loop->create_task([&] { asyncio::await(fut); });
  run_briefly(*loop);
  EXPECT_NE(task.repr().find("wait_for=" + fut.repr()), std::string::npos) << task.repr();

  task.cancel();
  run_briefly(*loop);
  EXPECT_THROW(loop->run_until_complete(task), asyncio::CancelledError);
  EXPECT_EQ(task.repr().find("wait_for="), std::string::npos) << task.repr();
  EXPECT_TRUE(fut.cancelled());
}

// test_step_result_future: Python's Fut subclass records add_done_callback(); here the task's
// wake-up shows in the future's repr() as cb=[Task.task_wakeup()]. res = object() is a pointer
// compared by identity.
TEST_F(CPythonTaskTests, test_step_result_future) {
  auto loop = new_test_loop();
  auto fut = loop->create_future<std::shared_ptr<int>>();
  std::shared_ptr<int> result;
  auto t = loop->create_task([&] { result = asyncio::await(fut); });
  run_briefly(*loop);
  EXPECT_EQ(fut.repr(), "<Future pending cb=[Task.task_wakeup()]>");  // fut.cb_added

  auto res = std::make_shared<int>(0);
  fut.set_result(res);
  run_briefly(*loop);
  EXPECT_EQ(res, result);
  EXPECT_TRUE(t.done());
  EXPECT_NO_THROW(t.result());  // None
}

// test_step_with_baseexception: Python's task._step() raises the BaseException out of the step;
// here the loop keeps it in the task (the step is the loop's), which is done with it.
TEST_F(CPythonTaskTests, test_step_with_baseexception) {
  auto loop = new_test_loop();
  auto task = loop->create_task([] { throw BaseException(); });
  run_briefly(*loop);

  EXPECT_TRUE(task.done());
  EXPECT_THROW(std::rethrow_exception(task.exception()), BaseException);
}

// test_baseexception_during_cancel: the task answers its cancel with a BaseException; in Python
// that also comes out of run_briefly(), here it stays in the task (see above).
TEST_F(CPythonTaskTests, test_baseexception_during_cancel) {
  auto loop = new_test_loop();
  auto sleeper = [] { asyncio::sleep(10); };
  const std::exception_ptr base_exc = std::make_exception_ptr(BaseException{7});
  auto notmutch = [&] {
    try {
      sleeper();
    } catch (const asyncio::CancelledError&) {
      std::rethrow_exception(base_exc);
    }
  };
  auto task = loop->create_task(notmutch);
  run_briefly(*loop);

  task.cancel();
  EXPECT_FALSE(task.done());

  run_briefly(*loop);

  EXPECT_TRUE(task.done());
  EXPECT_FALSE(task.cancelled());
  EXPECT_EQ(task.exception(), base_exc);
}

// test_coroutine_non_gen_function: the iscoroutinefunction()/iscoroutine() checks are Python's;
// running a function that returns at once is ported.
TEST_F(CPythonTaskTests, test_coroutine_non_gen_function) {
  auto loop = new_test_loop();
  auto func = [] { return std::string("test"); };
  auto res = loop->run_until_complete(func);
  EXPECT_EQ(res, "test");
}

// test_coroutine_non_gen_function_return_future: a @coroutine returning a future is awaited on it.
TEST_F(CPythonTaskTests, test_coroutine_non_gen_function_return_future) {
  auto loop = new_test_loop();
  auto fut = loop->create_future<std::string>();
  auto func = [&]() -> std::string { return asyncio::await(fut); };
  auto coro = [&] { fut.set_result("test"); };
  auto t1 = loop->create_task(func);
  auto t2 = loop->create_task(coro);
  auto res = loop->run_until_complete(t1);
  EXPECT_EQ(res, "test");
  EXPECT_NO_THROW(t2.result());  // None
}

// test_current_task: with no running loop current_task() throws RuntimeError, as
// asyncio.current_task() does since 3.7 (3.5's Task.current_task(loop=loop) returned None).
TEST_F(CPythonTaskTests, test_current_task) {
  auto loop = new_test_loop();
  EXPECT_THROW(asyncio::current_task(), asyncio::RuntimeError);

  asyncio::Task<> task;
  auto coro = [&] { EXPECT_TRUE(asyncio::current_task() == asyncio::AnyTask(task)); };
  task = loop->create_task(coro);
  loop->run_until_complete(task);
  EXPECT_THROW(asyncio::current_task(), asyncio::RuntimeError);
}

// test_current_task_with_interleaving_tasks (current_task() outside the loop: see test_current_task)
TEST_F(CPythonTaskTests, test_current_task_with_interleaving_tasks) {
  auto loop = new_test_loop();
  EXPECT_THROW(asyncio::current_task(), asyncio::RuntimeError);

  auto fut1 = loop->create_future<bool>();
  auto fut2 = loop->create_future<bool>();
  asyncio::Task<> task1, task2;

  auto coro1 = [&] {
    EXPECT_TRUE(asyncio::current_task() == asyncio::AnyTask(task1));
    asyncio::await(fut1);
    EXPECT_TRUE(asyncio::current_task() == asyncio::AnyTask(task1));
    fut2.set_result(true);
  };
  auto coro2 = [&] {
    EXPECT_TRUE(asyncio::current_task() == asyncio::AnyTask(task2));
    fut1.set_result(true);
    asyncio::await(fut2);
    EXPECT_TRUE(asyncio::current_task() == asyncio::AnyTask(task2));
  };

  task1 = loop->create_task(coro1);
  task2 = loop->create_task(coro2);

  loop->run_until_complete([&] { asyncio::wait(std::vector{task1, task2}); });
  EXPECT_THROW(asyncio::current_task(), asyncio::RuntimeError);
}

// Some thorough tests for cancellation propagation through coroutines, tasks and wait().

// test_yield_future_passes_cancel: cancelling outer() cancels inner() cancels waiter.
TEST_F(CPythonTaskTests, test_yield_future_passes_cancel) {
  auto loop = new_test_loop();
  int proof = 0;
  auto waiter = loop->create_future();

  auto inner = [&] {
    try {
      asyncio::await(waiter);
    } catch (const asyncio::CancelledError&) {
      proof += 1;
      throw;
    }
    ADD_FAILURE() << "got past sleep() in inner()";
  };
  auto outer = [&] {
    bool cancelled = false;
    try {
      inner();
    } catch (const asyncio::CancelledError&) {
      proof += 100;  // Expect this path.
      cancelled = true;
    }
    if (!cancelled) proof += 10;
  };

  auto f = loop->create_task(outer);
  run_briefly(*loop);
  f.cancel();
  loop->run_until_complete(f);
  EXPECT_EQ(proof, 101);
  EXPECT_TRUE(waiter.cancelled());
}

// test_yield_wait_does_not_shield_cancel: cancelling outer() makes wait() return early, leaves
// inner() running.
TEST_F(CPythonTaskTests, test_yield_wait_does_not_shield_cancel) {
  auto loop = new_test_loop();
  int proof = 0;
  auto waiter = loop->create_future();

  auto inner = [&] {
    asyncio::await(waiter);
    proof += 1;
  };
  auto outer = [&] {
    auto [d, p] = asyncio::wait(std::vector{asyncio::create_task(inner)});
    proof += 100;
  };

  auto f = loop->create_task(outer);
  run_briefly(*loop);
  f.cancel();
  EXPECT_THROW(loop->run_until_complete(f), asyncio::CancelledError);
  waiter.set_result();
  run_briefly(*loop);
  EXPECT_EQ(proof, 1);
}

// test_shield_result
TEST_F(CPythonTaskTests, test_shield_result) {
  auto loop = new_test_loop();
  auto inner = loop->create_future<int>();
  auto outer = asyncio::shield(inner);
  inner.set_result(42);
  auto res = loop->run_until_complete(outer);
  EXPECT_EQ(res, 42);
}

// test_shield_exception
TEST_F(CPythonTaskTests, test_shield_exception) {
  auto loop = new_test_loop();
  auto inner = loop->create_future();
  auto outer = asyncio::shield(inner);
  run_briefly(*loop);
  const std::exception_ptr exc = std::make_exception_ptr(std::runtime_error("expected"));
  inner.set_exception(exc);
  run_briefly(*loop);
  EXPECT_EQ(outer.exception(), exc);
}

// test_shield_cancel
TEST_F(CPythonTaskTests, test_shield_cancel) {
  auto loop = new_test_loop();
  auto inner = loop->create_future();
  auto outer = asyncio::shield(inner);
  run_briefly(*loop);
  inner.cancel();
  run_briefly(*loop);
  EXPECT_TRUE(outer.cancelled());
}

// test_shield_shortcut
TEST_F(CPythonTaskTests, test_shield_shortcut) {
  auto loop = new_test_loop();
  auto fut = loop->create_future<int>();
  fut.set_result(42);
  auto res = loop->run_until_complete(asyncio::shield(fut));
  EXPECT_EQ(res, 42);
}

// test_shield_effect: cancelling outer() does not affect inner().
TEST_F(CPythonTaskTests, test_shield_effect) {
  auto loop = new_test_loop();
  int proof = 0;
  auto waiter = loop->create_future();

  auto inner = [&] {
    asyncio::await(waiter);
    proof += 1;
  };
  auto outer = [&] {
    asyncio::await(asyncio::shield(inner));
    proof += 100;
  };

  auto f = loop->create_task(outer);
  run_briefly(*loop);
  f.cancel();
  EXPECT_THROW(loop->run_until_complete(f), asyncio::CancelledError);
  waiter.set_result();
  run_briefly(*loop);
  EXPECT_EQ(proof, 1);
}

// test_shield_gather: the gather future is a task running gather().
TEST_F(CPythonTaskTests, test_shield_gather) {
  auto loop = new_test_loop();
  auto child1 = loop->create_future<int>();
  auto child2 = loop->create_future<int>();
  auto parent = loop->create_task([&] { return asyncio::gather(child1, child2); });
  auto outer = asyncio::shield(parent);
  run_briefly(*loop);
  outer.cancel();
  run_briefly(*loop);
  EXPECT_TRUE(outer.cancelled());
  child1.set_result(1);
  child2.set_result(2);
  run_briefly(*loop);
  EXPECT_EQ(parent.result(), std::make_tuple(1, 2));
}

// test_gather_shield: the gather future is a task running gather(); cancelling it cancels inner1
// and inner2 (the shields) but not child1 and child2. Python's gather future then holds a
// CancelledError without being cancelled(); a task ending with CancelledError is cancelled.
TEST_F(CPythonTaskTests, test_gather_shield) {
  auto loop = new_test_loop();
  auto child1 = loop->create_future<int>();
  auto child2 = loop->create_future<int>();
  auto inner1 = asyncio::shield(child1);
  auto inner2 = asyncio::shield(child2);
  auto parent = loop->create_task([&] { return asyncio::gather(inner1, inner2); });
  run_briefly(*loop);
  parent.cancel();
  // This should cancel inner1 and inner2 but bot child1 and child2.
  run_briefly(*loop);
  EXPECT_TRUE(parent.cancelled());
  EXPECT_THROW(parent.exception(), asyncio::CancelledError);
  EXPECT_TRUE(inner1.cancelled());
  EXPECT_TRUE(inner2.cancelled());
  EXPECT_FALSE(child1.done());
  EXPECT_FALSE(child2.done());
  child1.set_result(1);
  child2.set_result(2);
  run_briefly(*loop);
}

// test_wait_invalid_args: the TypeError half (a future or a coroutine object instead of a list)
// does not compile here; wait() of no future is ValueError.
TEST_F(CPythonTaskTests, test_wait_invalid_args) {
  auto loop = new_test_loop();
  // wait() expects at least a future
  EXPECT_THROW(loop->run_until_complete([] { asyncio::wait(std::vector<asyncio::Future<>>{}); }), asyncio::ValueError);
}

// _test_cancel_wait_for(timeout): Python issue #23219, cancelling the wait must also cancel the task.
void check_cancel_wait_for(std::optional<double> timeout) {
  auto loop = asyncio::new_event_loop(virtual_time());

  auto blocking_coroutine = [] {
    auto fut = asyncio::get_running_loop().create_future();
    // Block: fut result is never set
    asyncio::await(fut);
  };

  auto task = loop->create_task(blocking_coroutine);

  auto wait = loop->create_task([&] { asyncio::wait_for(task, timeout); });
  loop->call_soon([wait]() mutable { wait.cancel(); });

  EXPECT_THROW(loop->run_until_complete(wait), asyncio::CancelledError);

  // Python issue #23219: cancelling the wait must also cancel the task
  EXPECT_TRUE(task.cancelled());
}

// test_cancel_blocking_wait_for
TEST_F(CPythonTaskTests, test_cancel_blocking_wait_for) { check_cancel_wait_for(std::nullopt); }

// test_cancel_wait_for
TEST_F(CPythonTaskTests, test_cancel_wait_for) { check_cancel_wait_for(60.0); }

// ================================================================ GatherTestsBase

// FutureWrap and CoroutineWrap are GatherTestsBase.wrap_futures() of FutureGatherTests (the
// futures themselves) and CoroutineGatherTests (a coroutine awaiting each: a function here).
struct FutureWrap {
  static asyncio::Future<int> wrap(const asyncio::Future<int>& fut) { return fut; }
};
struct CoroutineWrap {
  static auto wrap(asyncio::Future<int> fut) {
    return [fut]() mutable -> int { return asyncio::await(fut); };
  }
};

// futures(loop, n) is `[asyncio.Future(loop=loop) for i in range(n)]`.
std::vector<asyncio::Future<int>> futures(asyncio::event_loop& loop, int n) {
  std::vector<asyncio::Future<int>> out;
  for (int i = 0; i < n; ++i) out.push_back(loop.create_future<int>());
  return out;
}

// _check_success(return_exceptions)
template <class W>
void check_success(bool return_exceptions) {
  auto one_loop = new_test_loop();
  auto fs = futures(*one_loop, 3);
  auto &a = fs[0], &b = fs[1], &c = fs[2];
  auto fut = one_loop->create_task([&]() -> std::vector<int> {
    if (!return_exceptions) {
      auto [x, y, z] = asyncio::gather(W::wrap(a), W::wrap(b), W::wrap(c));
      return {x, y, z};
    }
    auto [x, y, z] = asyncio::gather(asyncio::return_exceptions, W::wrap(a), W::wrap(b), W::wrap(c));
    return {x.value(), y.value(), z.value()};
  });
  MockCallback<std::vector<int>> cb;
  cb.attach(fut);
  b.set_result(1);
  a.set_result(2);
  run_loop(*one_loop);
  EXPECT_EQ(cb.called, 0);
  EXPECT_FALSE(fut.done());
  c.set_result(3);
  run_loop(*one_loop);
  cb.expect_called_once_with(fut);
  EXPECT_EQ(fut.result(), (std::vector<int>{2, 1, 3}));
}

// test_success
template <class W>
void check_test_success() {
  check_success<W>(false);
  check_success<W>(false);  // return_exceptions=False
}

// test_one_exception
template <class W>
void check_one_exception() {
  // The loop closes with the tasks awaiting c, d and e still pending (they never ran again): it
  // reports them, as Python's GC does ("Task was destroyed but it is pending!"); kept off stderr.
  asyncio_test::error_log reports;
  auto one_loop = new_test_loop();
  reports.attach(*one_loop);
  auto fs = futures(*one_loop, 5);
  auto &a = fs[0], &b = fs[1], &c = fs[2], &d = fs[3], &e = fs[4];
  auto fut = one_loop->create_task(
      [&] { return asyncio::gather(W::wrap(a), W::wrap(b), W::wrap(c), W::wrap(d), W::wrap(e)); });
  MockCallback<std::tuple<int, int, int, int, int>> cb;
  cb.attach(fut);
  const std::exception_ptr exc = std::make_exception_ptr(Boom());
  a.set_result(1);
  b.set_exception(exc);
  run_loop(*one_loop);
  EXPECT_TRUE(fut.done());
  cb.expect_called_once_with(fut);
  EXPECT_EQ(fut.exception(), exc);
  // Does nothing
  c.set_result(3);
  d.cancel();
  e.set_exception(std::runtime_error(""));
  (void)e.exception();
}

// test_return_exceptions
template <class W>
void check_return_exceptions() {
  auto one_loop = new_test_loop();
  auto fs = futures(*one_loop, 4);
  auto &a = fs[0], &b = fs[1], &c = fs[2], &d = fs[3];
  auto fut = one_loop->create_task(
      [&] { return asyncio::gather(asyncio::return_exceptions, W::wrap(a), W::wrap(b), W::wrap(c), W::wrap(d)); });
  MockCallback<std::tuple<asyncio::outcome<int>, asyncio::outcome<int>, asyncio::outcome<int>, asyncio::outcome<int>>>
      cb;
  cb.attach(fut);
  const std::exception_ptr exc = std::make_exception_ptr(Boom());
  const std::exception_ptr exc2 = std::make_exception_ptr(std::runtime_error(""));
  b.set_result(1);
  c.set_exception(exc);
  a.set_result(3);
  run_loop(*one_loop);
  EXPECT_FALSE(fut.done());
  d.set_exception(exc2);
  run_loop(*one_loop);
  EXPECT_TRUE(fut.done());
  cb.expect_called_once_with(fut);
  auto& res = fut.result();
  EXPECT_EQ(std::get<0>(res).value(), 3);
  EXPECT_EQ(std::get<1>(res).value(), 1);
  EXPECT_EQ(std::get<2>(res).error(), exc);
  EXPECT_EQ(std::get<3>(res).error(), exc2);
}

// ================================================================ FutureGatherTests

// test_success
TEST_F(CPythonFutureGatherTests, test_success) { check_test_success<FutureWrap>(); }

// test_result_exception_success
TEST_F(CPythonFutureGatherTests, test_result_exception_success) { check_success<FutureWrap>(true); }

// test_one_exception
TEST_F(CPythonFutureGatherTests, test_one_exception) { check_one_exception<FutureWrap>(); }

// test_return_exceptions
TEST_F(CPythonFutureGatherTests, test_return_exceptions) { check_return_exceptions<FutureWrap>(); }

// test_constructor_empty_sequence: [], (), set() and iter("") are all the empty vector here; there
// is no loop= argument (gather() runs on the loop of its task), so each loop is checked in turn.
TEST_F(CPythonFutureGatherTests, test_constructor_empty_sequence) {
  auto one_loop = new_test_loop();
  auto other_loop = new_test_loop();
  for (auto* loop : {one_loop.get(), other_loop.get()}) {
    auto fut = loop->create_task([] { return asyncio::gather(std::vector<asyncio::Future<int>>{}); });
    run_loop(*loop);
    EXPECT_TRUE(fut.done());
    EXPECT_EQ(fut.result(), std::vector<int>{});
  }
}

// test_constructor_heterogenous_futures: futures of two loops are RuntimeError here (ValueError in
// 3.5), raised by gather() in a task of either loop.
TEST_F(CPythonFutureGatherTests, test_constructor_heterogenous_futures) {
  auto one_loop = new_test_loop();
  auto other_loop = new_test_loop();
  auto fut1 = one_loop->create_future<int>();
  auto fut2 = other_loop->create_future<int>();
  EXPECT_THROW(one_loop->run_until_complete([&] { asyncio::gather(fut1, fut2); }), asyncio::RuntimeError);
  EXPECT_THROW(other_loop->run_until_complete([&] { asyncio::gather(fut1); }), asyncio::RuntimeError);
}

// test_constructor_homogenous_futures: the children's loop runs the gather (no loop= argument). The
// loop closes with the task still in gather() on children that never finish: closing unwinds it,
// and its callbacks on the children must go with it (they held the gather's state, which holds the
// children: a cycle that leaked, which the fixture reports).
TEST_F(CPythonFutureGatherTests, test_constructor_homogenous_futures) {
  auto other_loop = new_test_loop();
  auto children = futures(*other_loop, 3);
  auto fut = other_loop->create_task([&] { return asyncio::gather(children); });
  run_loop(*other_loop);
  EXPECT_FALSE(fut.done());
}

// test_one_cancellation: Python's gather future is done, not cancelled(), and holds a
// CancelledError; the task running gather() here ends with that CancelledError, so it is
// cancelled().
TEST_F(CPythonFutureGatherTests, test_one_cancellation) {
  auto one_loop = new_test_loop();
  auto fs = futures(*one_loop, 5);
  auto &a = fs[0], &b = fs[1], &c = fs[2], &d = fs[3], &e = fs[4];
  auto fut = one_loop->create_task([&] { return asyncio::gather(a, b, c, d, e); });
  MockCallback<std::tuple<int, int, int, int, int>> cb;
  cb.attach(fut);
  a.set_result(1);
  b.cancel();
  run_loop(*one_loop);
  EXPECT_TRUE(fut.done());
  cb.expect_called_once_with(fut);
  EXPECT_TRUE(fut.cancelled());
  EXPECT_THROW(fut.exception(), asyncio::CancelledError);
  // Does nothing
  c.set_result(3);
  d.cancel();
  e.set_exception(std::runtime_error(""));
  (void)e.exception();
}

// test_result_exception_one_cancellation
TEST_F(CPythonFutureGatherTests, test_result_exception_one_cancellation) {
  auto one_loop = new_test_loop();
  auto fs = futures(*one_loop, 6);
  auto &a = fs[0], &b = fs[1], &c = fs[2], &d = fs[3], &e = fs[4], &f = fs[5];
  auto fut = one_loop->create_task([&] { return asyncio::gather(asyncio::return_exceptions, fs); });
  MockCallback<std::vector<asyncio::outcome<int>>> cb;
  cb.attach(fut);
  a.set_result(1);
  const std::exception_ptr zde = std::make_exception_ptr(Boom());
  b.set_exception(zde);
  c.cancel();
  run_loop(*one_loop);
  EXPECT_FALSE(fut.done());
  d.set_result(3);
  e.cancel();
  const std::exception_ptr rte = std::make_exception_ptr(std::runtime_error(""));
  f.set_exception(rte);
  auto res = one_loop->run_until_complete(fut);
  ASSERT_EQ(res.size(), 6u);
  EXPECT_THROW(std::rethrow_exception(res[2].error()), asyncio::CancelledError);
  EXPECT_THROW(std::rethrow_exception(res[4].error()), asyncio::CancelledError);
  EXPECT_EQ(res[0].value(), 1);
  EXPECT_EQ(res[1].error(), zde);
  EXPECT_EQ(res[3].value(), 3);
  EXPECT_EQ(res[5].error(), rte);
  cb.expect_called_once_with(fut);
}

// ================================================================ CoroutineGatherTests

// test_success
TEST_F(CPythonCoroutineGatherTests, test_success) { check_test_success<CoroutineWrap>(); }

// test_result_exception_success
TEST_F(CPythonCoroutineGatherTests, test_result_exception_success) { check_success<CoroutineWrap>(true); }

// test_one_exception
TEST_F(CPythonCoroutineGatherTests, test_one_exception) { check_one_exception<CoroutineWrap>(); }

// test_return_exceptions
TEST_F(CPythonCoroutineGatherTests, test_return_exceptions) { check_return_exceptions<CoroutineWrap>(); }

// test_constructor_loop_selection: gather() runs on the loop of its task (no loop= argument).
TEST_F(CPythonCoroutineGatherTests, test_constructor_loop_selection) {
  auto one_loop = new_test_loop();
  auto other_loop = new_test_loop();
  auto coro = [] { return std::string("abc"); };
  auto fut = one_loop->create_task([&] { return asyncio::gather(coro, coro); });
  EXPECT_EQ(one_loop->run_until_complete(fut), std::make_tuple(std::string("abc"), std::string("abc")));

  auto fut2 = other_loop->create_task([&] { return asyncio::gather(coro, coro); });
  EXPECT_EQ(other_loop->run_until_complete(fut2), std::make_tuple(std::string("abc"), std::string("abc")));
}

// test_duplicate_coroutines: one coroutine object given three times is one task here.
TEST_F(CPythonCoroutineGatherTests, test_duplicate_coroutines) {
  auto one_loop = new_test_loop();
  auto coro = [](std::string s) { return s; };
  auto c = one_loop->create_task([&] { return coro("abc"); });
  auto fut = one_loop->create_task([&] {
    return asyncio::gather(
        c, c, [&] { return coro("def"); }, c);
  });
  run_loop(*one_loop);
  EXPECT_EQ(fut.result(),
            std::make_tuple(std::string("abc"), std::string("abc"), std::string("def"), std::string("abc")));
}

// test_cancellation_broadcast: cancelling outer() cancels all children. The gatherer is the
// gather() call in outer(): `gatherer.cancel()` returning False has no object to ask.
TEST_F(CPythonCoroutineGatherTests, test_cancellation_broadcast) {
  auto one_loop = new_test_loop();
  int proof = 0;
  auto waiter = one_loop->create_future();

  auto inner = [&] {
    asyncio::await(waiter);
    proof += 1;
  };

  auto child1 = one_loop->create_task(inner);
  auto child2 = one_loop->create_task(inner);

  auto outer = [&] {
    asyncio::gather(child1, child2);
    proof += 100;
  };

  auto f = one_loop->create_task(outer);
  run_briefly(*one_loop);
  EXPECT_TRUE(f.cancel());
  EXPECT_THROW(one_loop->run_until_complete(f), asyncio::CancelledError);
  EXPECT_TRUE(waiter.cancelled());
  EXPECT_TRUE(child1.cancelled());
  EXPECT_TRUE(child2.cancelled());
  run_briefly(*one_loop);
  EXPECT_EQ(proof, 0);
}

// test_exception_marking: test for the first line marked "Mark exception retrieved."
TEST_F(CPythonCoroutineGatherTests, test_exception_marking) {
  auto one_loop = new_test_loop();
  auto inner = [](asyncio::Future<> f) {
    asyncio::await(f);
    throw std::runtime_error("should not be ignored");
  };

  auto a = one_loop->create_future();
  auto b = one_loop->create_future();

  auto outer = [&] { asyncio::gather([&] { inner(a); }, [&] { inner(b); }); };

  auto f = one_loop->create_task(outer);
  run_briefly(*one_loop);
  a.set_result();
  run_briefly(*one_loop);
  b.set_result();
  run_briefly(*one_loop);
  EXPECT_THROW(std::rethrow_exception(f.exception()), std::runtime_error);
}

// ================================================================ RunCoroutineThreadsafeTests

// ThreadsafeCase is RunCoroutineThreadsafeTests' setUp/tearDown and its add()/target() helpers: a
// loop on the real clock (add() sleeps 0.05 s of it, as Python's), run by the test's thread while
// target() runs on an executor thread.
struct ThreadsafeCase {
  std::shared_ptr<asyncio::event_loop> loop = asyncio::new_event_loop();

  ~ThreadsafeCase() {
    asyncio::shutdown_default_executor(*loop);
    loop->close();
  }

  // add(a, b, fail, cancel): wait 0.05 second and return a + b.
  static int add(int a, int b, bool fail = false, bool cancel = false) {
    asyncio::sleep(0.05);
    if (fail) throw std::runtime_error("Fail!");
    if (cancel) {
      asyncio::current_task().cancel();
      asyncio::sleep(0);
    }
    return a + b;
  }

  // target(fail, cancel, timeout): run add coroutine in the event loop.
  int target(bool fail = false, bool cancel = false, std::optional<double> timeout = std::nullopt) {
    auto future = asyncio::run_coroutine_threadsafe([=] { return add(1, 2, fail, cancel); }, *loop);
    try {
      int result = future.result(timeout);
      if (!future.done()) future.cancel();  // finally
      return result;
    } catch (...) {
      if (!future.done()) future.cancel();  // finally
      throw;
    }
  }
};

// test_run_coroutine_threadsafe: coroutine submission from a thread to an event loop.
TEST_F(CPythonRunCoroutineThreadsafeTests, test_run_coroutine_threadsafe) {
  ThreadsafeCase self;
  auto future = self.loop->run_in_executor(nullptr, [&] { return self.target(); });
  auto result = self.loop->run_until_complete(future);
  EXPECT_EQ(result, 3);
}

// test_run_coroutine_threadsafe_with_exception: an exception is raised.
TEST_F(CPythonRunCoroutineThreadsafeTests, test_run_coroutine_threadsafe_with_exception) {
  ThreadsafeCase self;
  auto future = self.loop->run_in_executor(nullptr, [&] { return self.target(true); });
  try {
    self.loop->run_until_complete(future);
    ADD_FAILURE() << "RuntimeError expected";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "Fail!");
  }
}

// test_run_coroutine_threadsafe_with_timeout: a timeout is raised; add has been cancelled.
TEST_F(CPythonRunCoroutineThreadsafeTests, test_run_coroutine_threadsafe_with_timeout) {
  ThreadsafeCase self;
  auto future = self.loop->run_in_executor(nullptr, [&] { return self.target(false, false, 0.0); });
  EXPECT_THROW(self.loop->run_until_complete(future), asyncio::TimeoutError);
  run_briefly(*self.loop);
  // Check that there's no pending task (add has been cancelled): all_tasks() lists the pending
  // ones, here the task asking alone.
  self.loop->run_until_complete([] {
    for (auto& task : asyncio::all_tasks()) {
      if (!(task == asyncio::current_task())) {
        EXPECT_TRUE(task.done());
      }
    }
  });
}

// test_run_coroutine_threadsafe_task_cancelled: the task is cancelled.
TEST_F(CPythonRunCoroutineThreadsafeTests, test_run_coroutine_threadsafe_task_cancelled) {
  ThreadsafeCase self;
  auto future = self.loop->run_in_executor(nullptr, [&] { return self.target(false, true); });
  EXPECT_THROW(self.loop->run_until_complete(future), asyncio::CancelledError);
}

// test_run_coroutine_threadsafe_task_factory_exception: the task factory throws; the future and the
// loop's exception handler both get that exception. NameError stands for Python's.
TEST_F(CPythonRunCoroutineThreadsafeTests, test_run_coroutine_threadsafe_task_factory_exception) {
  struct NameError : std::runtime_error {
    NameError() : std::runtime_error("NameError") {}
  };
  ThreadsafeCase self;
  auto run = self.loop->run_in_executor(nullptr, [&] { return self.target(); });
  // Set exception handler
  std::vector<std::exception_ptr> handled;
  self.loop->set_exception_handler(
      [&](asyncio::event_loop*, const asyncio::exception_context& context) { handled.push_back(context.exception); });
  // Set corrupted task factory
  self.loop->set_task_factory([](asyncio::event_loop&, asyncio::task_request&) { throw NameError(); });
  // Run event loop
  std::exception_ptr raised;
  try {
    self.loop->run_until_complete(run);
    ADD_FAILURE() << "NameError expected";
  } catch (const NameError&) {
    raised = std::current_exception();
  }
  self.loop->set_task_factory(nullptr);
  // Check exceptions
  ASSERT_EQ(handled.size(), 1U);
  EXPECT_EQ(handled[0], raised);
}

// ================================================================ SleepTests

// test_sleep_zero
TEST_F(CPythonSleepTests, test_sleep_zero) {
  auto loop = asyncio::new_event_loop();
  int result = 0;

  auto inc_result = [&](int num) { result += num; };

  auto coro = [&] {
    loop->call_soon([&] { inc_result(1); });
    EXPECT_EQ(result, 0);
    int num = asyncio::sleep(0, 10);
    EXPECT_EQ(result, 1);  // inc'ed by call_soon
    inc_result(num);       // num should be 11
  };

  loop->run_until_complete(coro);
  EXPECT_EQ(result, 11);
  loop->close();
}

}  // namespace cpython_tasks_port_b
