// cpython_tasks_port_c_test.cpp: CPython's Lib/test/test_asyncio/test_tasks.py method by method, the
// MODERN methods: the file read is python/cpython commit 871838b30b132737810cc334f9b4cf53f70fe038
// (3.12-era: BaseTaskTests with its C/Py twin classes, SetMethodsTest, BaseTaskIntrospectionTests,
// BaseCurrentLoopTests, GenericTaskTests, GatherTestsBase, ...).
//
// Selection rule: cpython_tasks_port_a_test.cpp and cpython_tasks_port_b_test.cpp ported the 3.5-era
// file (commit 0035be3fee832ebccd8c86576b9c604ca321cefa). This file takes every test method of the
// modern file whose NAME appears in neither of those two files (neither as a TEST_F nor in their
// "not ported" lists), in the modern file's order: 72 methods, 41 ported, 31 listed below. Methods
// the 3.5 file also has (test_cancel, test_wait, test_shield_effect, ...) are theirs even where the
// modern body differs. Twin classes
// (CTask_CFuture_Tests, PyTask_PyFuture_Tests, ... ) are ported once. Fixtures are named after the
// Python classes with "Modern" in front, to stay distinct from the a/b files' CPythonTaskTests.
// context_test.cpp and task_context_arg_test.cpp hold older ports of test_context_*; they are
// ported again here, method by method.
//
// Python-to-C++ as in the a/b files: a coroutine is a function run as a task; `await x` is
// asyncio::await(x); self.new_test_loop() / asyncio.new_event_loop() is an event_loop on the virtual
// clock (virtual_time()); test_utils.run_briefly is asyncio_test::run_briefly; self.new_task(loop,
// coro(), name=...) is loop.create_task(fn, name).
//
// (a) Not ported:
// - test_generic_alias: Task[str] (typing.GenericAlias); Task<T> is a template.
// - test_task_cancel_message_setter: writes the private attribute _cancel_message.
// - test_task_del_collect: gc.collect() in __del__.
// - test_ensure_future_error_msg: ensure_future(f, loop=other) raising ValueError; ensure_future()
//   takes no loop.
// - test_task_repr_name_not_str: set_name({6}) stores str({6}); set_name() takes a std::string.
// - test_cancel_traceback_for_future_result, test_cancel_traceback_for_future_exception: the text of
//   a Python traceback.
// - test_log_traceback: the private Task._log_traceback.
// - test_wait_with_iterator_of_tasks: wait(iter([b, a])); wait() takes a std::vector, so any range
//   becomes one at the call (it would be test_wait again).
// - test_as_completed_coroutine_without_loop: as_completed() takes futures, not coroutine objects to
//   wrap on get_event_loop() (DeprecationWarning path).
// - test_shield_coroutine_use_global_loop, FutureGatherTests.test_constructor_empty_sequence_use_global_loop,
//   CoroutineGatherTests.test_constructor_use_global_loop: the deprecated fallback to the policy's
//   loop (DeprecationWarning); ours need a running loop (the *_without_loop twins are ported).
// - test_tb_logger_not_called_after_cancel: what Task.__del__ logs once the GC drops the task.
// - test_error_in_call_soon: patches loop.call_soon; then __del__ logging.
// - test_create_task_with_noncoroutine: create_task(123) is a compile error (static_assert, checked by
//   tests/compile_fail), not a TypeError.
// - test_get_coro: Task.get_coro() returns the coroutine object; a task holds a function it destroys
//   when done.
// - add_subclass_tests' test_subclasses_ctask_cfuture: Python subclasses of Task/Future overriding
//   add_done_callback/_check_future.
// - CTask_CFuture_Tests.test_refleaks_in_task___init__, test_del__log_destroy_pending_segfault,
//   CTask_Future_Tests.test_foobar: refcounts, `del` of an attribute, a get_loop property raising.
// - BaseTaskIntrospectionTests (test__register_task_1, test__register_task_2, test__register_task_3,
//   test__enter_task, test__enter_task_failure, test__leave_task, test__leave_task_failure1,
//   test__leave_task_failure2, test__unregister_task, test__unregister_task_not_registered): the
//   private _register_task/_enter_task/... hooks called with mock loops and task-like objects; there
//   are no such hooks here.
// - BaseCurrentLoopTests.test_current_task_no_running_loop: current_task(loop=...) of a loop that does
//   not run; current_task() takes no loop here.
// - GenericTaskTests.test_asyncio_module_compiled: the C _asyncio module.
// - CoroutineGatherTests.test_issue46672: gather(c, {}) (a dict) is a compile error here.
//
// (b) Deliberate differences the tests assert:
// - cancel(msg): the message is a std::string; Python's cases cancel() and cancel(None) are the empty
//   message, cancel(5) (a non-string that round-trips) has no counterpart. CancelledError's args
//   are its message(); get_innermost_context()'s depth 0 (no __context__) holds by construction, and
//   `raise X from ex` is std::throw_with_nested, whose nested exception the test reads.
// - No DeprecationWarning for cancel(msg), and no _cancel_message attribute: the message is read from
//   the CancelledError that run_until_complete() raises.
// - test_task_awaits_on_itself: RuntimeError "a task cannot await itself" (Python: "Task cannot
//   await on itself").
// - test_cancelling / test_uncancel: cancelling() is a count (Python asserts its truth value).
// - test_exception_chaining_after_await: C++ has no __context__; its twin is that the exception the
//   task was handling when it awaited is still the one `throw;` rethrows after the await (each
//   greenlet keeps its own exception being handled across the switch); that of
//   test_exception_chaining_after_await_with_context_cycle is that the task re-raising the very
//   exception object its awaiter is handling gives the awaiter that object, and its own handler
//   still rethrows it after.
// - test_task_set_methods / SetMethodsTest: Task<T> has no set_result()/set_exception() (deleted);
//   through a Future<T>& they throw RuntimeError "Task does not support set_result operation", so the
//   task is never put in the state where Python's step() then fails with InvalidStateError: the test
//   asserts the refusal and that the task's own result is kept.
// - test_cancel_gather_1: the gather future is a task awaiting gather() (docs/porting.md, "a call,
//   not an object"); cancel() once the child is done returns true and the task ends cancelled, as a
//   Python Task awaiting gather() does (its _fut_waiter.cancel() returns False, so _must_cancel is
//   set); Python's bare _GatheringFuture returns False and completes with [42] (issue #26923).
// - test_create_task_with_asynclike_function: CoroLikeObject (send/throw/close) becomes a function
//   object type, not a lambda.
// - test_context_3: random.uniform/randint are a fixed-seed std::mt19937 (the times are virtual).
#include <exception>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "asyncio_test_support.hpp"

namespace cpython_tasks_port_c {

namespace asyncio = greenlet::asyncio;
using asyncio_test::cancel_message_of;
using asyncio_test::run_briefly;
using asyncio_test::TestError;
using asyncio_test::virtual_time;

using CPythonModernTaskTests = greenlet_test::GreenletTest;
using CPythonModernSetMethodsTest = greenlet_test::GreenletTest;
using CPythonModernCurrentLoopTests = greenlet_test::GreenletTest;
using CPythonModernGenericTaskTests = greenlet_test::GreenletTest;
using CPythonModernFutureGatherTests = greenlet_test::GreenletTest;
using CPythonModernCoroutineGatherTests = greenlet_test::GreenletTest;

// contains(text, part): Python's `part in text`.
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// test_task_cancel_message_getter
TEST_F(CPythonModernTaskTests, test_task_cancel_message_getter) {
  asyncio::event_loop loop(virtual_time());
  auto t = loop.create_task([] {}, "TestTask");
  t.cancel("my message");  // no _cancel_message to read (see the head)
  EXPECT_EQ(cancel_message_of([&] { loop.run_until_complete(t); }), "my message");
}

// test_task_awaits_on_itself
TEST_F(CPythonModernTaskTests, test_task_awaits_on_itself) {
  auto loop = asyncio::new_event_loop(virtual_time());
  asyncio::set_event_loop(loop);
  asyncio::Task<> task;
  task = asyncio::ensure_future([&] { asyncio::await(task); });
  try {
    loop->run_until_complete(task);
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_TRUE(contains(e.what(), "a task cannot await itself")) << e.what();
  }
  loop->close();
  asyncio::set_event_loop(nullptr);
}

// test_task_repr_autogenerated
TEST_F(CPythonModernTaskTests, test_task_repr_autogenerated) {
  asyncio::event_loop loop(virtual_time());
  auto notmuch = [] { return 123; };
  auto t1 = loop.create_task(notmuch);
  auto t2 = loop.create_task(notmuch);
  EXPECT_NE(t1.repr(), t2.repr());

  // Python's re.match(r"^<Task pending name='Task-(\d+)'", ...), by hand: <regex> makes GCC 12
  // warn inside libstdc++ under ASan (see locks_queues_repr_test.cpp).
  const auto task_number = [](const std::string& repr) -> long long {
    const std::string head = "<Task pending name='Task-";
    if (repr.rfind(head, 0) != 0) return -1;
    std::size_t end = head.size();
    while (end < repr.size() && repr[end] >= '0' && repr[end] <= '9') ++end;
    if (end == head.size() || end >= repr.size() || repr[end] != '\'') return -1;
    return std::stoll(repr.substr(head.size(), end - head.size()));
  };
  const std::string r1 = t1.repr(), r2 = t2.repr();
  const long long n1 = task_number(r1), n2 = task_number(r2);
  ASSERT_GE(n1, 0) << r1;
  ASSERT_GE(n2, 0) << r2;

  // Autogenerated task names should have monotonically increasing numbers
  EXPECT_LT(n1, n2);
  loop.run_until_complete(t1);
  loop.run_until_complete(t2);
}

// test_exception_chaining_after_await: the twin of __context__ (see the head).
TEST_F(CPythonModernTaskTests, test_exception_chaining_after_await) {
  asyncio::event_loop loop(virtual_time());
  auto raise_error = []() -> void { throw std::invalid_argument("ValueError"); };
  bool checked = false;
  auto run = [&] {
    try {
      throw std::out_of_range("KeyError(3)");
    } catch (const std::out_of_range&) {
      auto task = loop.create_task(raise_error);
      try {
        asyncio::await(task);
      } catch (const std::exception& exc) {
        EXPECT_TRUE(dynamic_cast<const std::invalid_argument*>(&exc) != nullptr) << exc.what();
      }
      // The exception being handled when the task awaited is still KeyError(3).
      try {
        throw;
      } catch (const std::out_of_range& chained) {
        EXPECT_STREQ(chained.what(), "KeyError(3)");
        checked = true;
      }
    }
  };
  auto task = loop.create_task(run);
  loop.run_until_complete(task);
  EXPECT_TRUE(checked);
}

// test_exception_chaining_after_await_with_context_cycle: the twin of "no __context__ cycle" (see
// the head): the task re-raises the very exception object the awaiting task is handling; the
// awaiting task catches that same object, and its outer handler still rethrows it afterwards.
TEST_F(CPythonModernTaskTests, test_exception_chaining_after_await_with_context_cycle) {
  asyncio::event_loop loop(virtual_time());
  std::optional<bool> same_object;
  std::optional<std::string> outer_after;
  auto process_exc = [](std::exception_ptr exc) { std::rethrow_exception(exc); };
  auto run = [&] {
    try {
      throw std::out_of_range("KeyError('a')");
    } catch (const std::out_of_range&) {
      std::exception_ptr exc = std::current_exception();
      auto task = loop.create_task([process_exc, exc] { process_exc(exc); });
      try {
        asyncio::await(task);
      } catch (...) {
        same_object = (std::current_exception() == exc);
      }
      try {
        throw;
      } catch (const std::out_of_range& e) {
        outer_after = e.what();
      }
    }
  };
  auto task = loop.create_task(run);
  loop.run_until_complete(task);
  EXPECT_EQ(same_object, true);
  EXPECT_EQ(outer_after, "KeyError('a')");
}

// test_cancelling
TEST_F(CPythonModernTaskTests, test_cancelling) {
  asyncio::event_loop loop(virtual_time());
  auto t = loop.create_task([] { asyncio::sleep(10); }, "TestTask");
  EXPECT_EQ(t.cancelling(), 0);
  EXPECT_FALSE(contains(t.repr(), " cancelling "));
  EXPECT_TRUE(t.cancel());
  EXPECT_EQ(t.cancelling(), 1);
  EXPECT_TRUE(contains(t.repr(), " cancelling "));

  // Since we commented out two lines from Task.cancel(),
  // this t.cancel() call now returns True.
  EXPECT_TRUE(t.cancel());

  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
}

// test_uncancel
TEST_F(CPythonModernTaskTests, test_uncancel) {
  asyncio::event_loop loop(virtual_time());
  auto task = [] {
    try {
      asyncio::sleep(10);
    } catch (const asyncio::CancelledError&) {
      asyncio::current_task().uncancel();
      asyncio::sleep(10);
    }
  };
  auto t = loop.create_task(task, "TestTask");
  loop.run_until_complete([] { asyncio::sleep(0.01); });
  EXPECT_TRUE(t.cancel());  // Cancel first sleep
  EXPECT_TRUE(contains(t.repr(), " cancelling ")) << t.repr();
  loop.run_until_complete([] { asyncio::sleep(0.01); });
  EXPECT_FALSE(contains(t.repr(), " cancelling ")) << t.repr();  // after .uncancel()
  EXPECT_TRUE(t.cancel());                                       // Cancel second sleep

  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
}

// The subTest cases of test_cancel_with_message_then_future_*: (cancel argument, expected args);
// () and (None,) are both the empty message, (5,) has no std::string twin (see the head).
struct MessageCase {
  std::string cancel_arg;
  std::string expected;
};
const std::vector<MessageCase> kMessageCases = {{"", ""}, {"my message", "my message"}};

// test_cancel_with_message_then_future_result
TEST_F(CPythonModernTaskTests, test_cancel_with_message_then_future_result) {
  for (const MessageCase& c : kMessageCases) {
    asyncio::event_loop loop(virtual_time());
    auto sleep = [] { asyncio::sleep(10); };
    auto coro = [&] {
      auto task = loop.create_task(sleep);
      asyncio::sleep(0);
      task.cancel(c.cancel_arg);
      auto [done, pending] = asyncio::wait(std::vector{task});
      task.result();
    };
    auto task = loop.create_task(coro);
    EXPECT_EQ(cancel_message_of([&] { loop.run_until_complete(task); }), c.expected) << "cancel_arg=" << c.cancel_arg;
  }
}

// test_cancel_with_message_then_future_exception
TEST_F(CPythonModernTaskTests, test_cancel_with_message_then_future_exception) {
  for (const MessageCase& c : kMessageCases) {
    asyncio::event_loop loop(virtual_time());
    auto sleep = [] { asyncio::sleep(10); };
    auto coro = [&] {
      auto task = loop.create_task(sleep);
      asyncio::sleep(0);
      task.cancel(c.cancel_arg);
      auto [done, pending] = asyncio::wait(std::vector{task});
      task.exception();
    };
    auto task = loop.create_task(coro);
    EXPECT_EQ(cancel_message_of([&] { loop.run_until_complete(task); }), c.expected) << "cancel_arg=" << c.cancel_arg;
  }
}

// test_cancellation_exception_context: `raise ValueError("cancelled") from ex` is
// std::throw_with_nested; the nested exception is the CancelledError('msg') (depth 1).
TEST_F(CPythonModernTaskTests, test_cancellation_exception_context) {
  asyncio::event_loop loop(virtual_time());
  auto fut = loop.create_future<>();
  auto sleep = [&] {
    fut.set_result();
    asyncio::sleep(10);
  };
  auto coro = [&] {
    auto inner_task = loop.create_task(sleep);
    asyncio::await(fut);
    loop.call_soon([inner_task]() mutable { inner_task.cancel("msg"); });
    try {
      asyncio::await(inner_task);
    } catch (const asyncio::CancelledError&) {
      std::throw_with_nested(std::invalid_argument("cancelled"));
    }
  };
  auto task = loop.create_task(coro);
  try {
    loop.run_until_complete(task);
    ADD_FAILURE() << "no ValueError";
  } catch (const std::invalid_argument& exc) {
    EXPECT_STREQ(exc.what(), "cancelled");
    EXPECT_EQ(cancel_message_of([&] { std::rethrow_if_nested(exc); }), "msg");
  }
}

// test_cancel_with_message_before_starting_task
TEST_F(CPythonModernTaskTests, test_cancel_with_message_before_starting_task) {
  asyncio::event_loop loop(virtual_time());
  auto sleep = [] { asyncio::sleep(10); };
  auto coro = [&] {
    auto task = loop.create_task(sleep);
    // We deliberately leave out the sleep here.
    task.cancel("my message");
    auto [done, pending] = asyncio::wait(std::vector{task});
    task.exception();
  };
  auto task = loop.create_task(coro);
  EXPECT_EQ(cancel_message_of([&] { loop.run_until_complete(task); }), "my message");
}

// test_cancel_at_end: the task returns right after cancelling itself; it ends cancelled.
TEST_F(CPythonModernTaskTests, test_cancel_at_end) {
  asyncio::event_loop loop(virtual_time());
  asyncio::Task<int> t;
  auto task = [&] {
    t.cancel();  // t._must_cancel is not read (white-box)
    return 12;
  };
  t = loop.create_task(task);
  EXPECT_FALSE(t.cancelled());
  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
  EXPECT_TRUE(t.done());
  EXPECT_TRUE(t.cancelled());
  EXPECT_FALSE(t.cancel());
}

// test_cancel_awaited_task
TEST_F(CPythonModernTaskTests, test_cancel_awaited_task) {
  asyncio::event_loop loop(virtual_time());
  asyncio::Task<> task;
  asyncio::Task<> nested_task;
  auto fut = loop.create_future<>();
  auto nested = [&] { asyncio::await(fut); };
  auto coro = [&] {
    // Create a sub-task and wait for it to run.
    nested_task = loop.create_task(nested);
    asyncio::sleep(0);
    // Request the current task to be cancelled.
    task.cancel();
    // Block on the nested task, which should be immediately cancelled.
    asyncio::await(nested_task);
  };
  task = loop.create_task(coro);
  EXPECT_THROW(loop.run_until_complete(task), asyncio::CancelledError);
  EXPECT_TRUE(task.cancelled());
  EXPECT_TRUE(nested_task.cancelled());
  EXPECT_TRUE(fut.cancelled());
}

// test_as_completed_coroutine_use_running_loop: the coroutine becomes a task of the running loop.
TEST_F(CPythonModernTaskTests, test_as_completed_coroutine_use_running_loop) {
  asyncio::event_loop loop(virtual_time());
  auto coro = [] { return 42; };
  auto test = [&] {
    std::vector<asyncio::Task<int>> futs;
    for (auto f : asyncio::as_completed(std::vector{asyncio::create_task(coro)})) futs.push_back(f);
    EXPECT_EQ(futs.size(), 1u);
    EXPECT_EQ(asyncio::await(futs[0]), 42);
  };
  loop.run_until_complete(test);
}

// test_task_set_methods: refused through a Future<T>& (Task<T> has none; see the head).
TEST_F(CPythonModernTaskTests, test_task_set_methods) {
  asyncio::event_loop loop(virtual_time());
  auto task = loop.create_task([] { return std::string("ko"); });
  asyncio::Future<std::string>& as_future = task;
  try {
    as_future.set_result("ok");
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_TRUE(contains(e.what(), "not support set_result")) << e.what();
  }
  try {
    as_future.set_exception(std::make_exception_ptr(std::invalid_argument("ValueError")));
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_TRUE(contains(e.what(), "not support set_exception")) << e.what();
  }
  EXPECT_EQ(loop.run_until_complete(task), "ko");
}

// test_shield_cancel_inner
TEST_F(CPythonModernTaskTests, test_shield_cancel_inner) {
  asyncio::event_loop loop(virtual_time());
  auto inner = loop.create_future<>();
  auto outer = asyncio::shield(inner);
  run_briefly(loop);
  inner.cancel();
  run_briefly(loop);
  EXPECT_TRUE(outer.cancelled());
}

// test_shield_cancel_outer: outer._callbacks is not read (private); inner is left alone.
TEST_F(CPythonModernTaskTests, test_shield_cancel_outer) {
  asyncio::event_loop loop(virtual_time());
  auto inner = loop.create_future<>();
  auto outer = asyncio::shield(inner);
  run_briefly(loop);
  outer.cancel();
  run_briefly(loop);
  EXPECT_TRUE(outer.cancelled());
  EXPECT_FALSE(inner.done());
}

// test_shield_coroutine_without_loop: a function to shield needs a running loop.
TEST_F(CPythonModernTaskTests, test_shield_coroutine_without_loop) {
  auto coro = [] { return 42; };
  try {
    asyncio::shield(coro);
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_TRUE(contains(e.what(), "no running event loop")) << e.what();
  }
}

// test_shield_coroutine_use_running_loop
TEST_F(CPythonModernTaskTests, test_shield_coroutine_use_running_loop) {
  asyncio::event_loop loop(virtual_time());
  auto coro = [] { return 42; };
  auto test = [&] { return asyncio::shield(coro); };
  auto outer = loop.run_until_complete(test);
  // outer._loop is self.loop: it completes when this loop runs.
  EXPECT_EQ(loop.run_until_complete(outer), 42);
}

// test_cancel_gather_1: the gather future is a task awaiting gather() (see the head), so cancel()
// takes effect as it does on a Python Task awaiting a _GatheringFuture whose cancel() returns
// False: the task is cancelled at its next step. Python's bare gather future refuses (False) and
// completes with [42].
TEST_F(CPythonModernTaskTests, test_cancel_gather_1) {
  auto loop = asyncio::new_event_loop(virtual_time());
  auto fut = loop->create_future<int>();
  auto create = [&] {
    // The indirection fut->child_coro is needed since otherwise the
    // gathering task is done at the same time as the child future
    auto child_coro = [&] { return asyncio::await(fut); };
    return asyncio::create_task(
        [child_coro] { return asyncio::gather(std::vector{asyncio::create_task(child_coro)}); });
  };
  auto gather_task = loop->run_until_complete(create);

  std::optional<bool> cancel_result;
  fut.add_done_callback([&](asyncio::Future<int>&) { cancel_result = gather_task.cancel(); });

  fut.set_result(42);  // calls the cancelling_callback after fut is done()

  // At this point the task should complete.
  EXPECT_THROW(loop->run_until_complete(gather_task), asyncio::CancelledError);

  // Python: cancel_result is False, the gather future is not cancelled and its result is [42].
  EXPECT_EQ(cancel_result, true);
  EXPECT_TRUE(gather_task.cancelled());
  loop->close();
}

// test_cancel_gather_2
TEST_F(CPythonModernTaskTests, test_cancel_gather_2) {
  for (const MessageCase& c : kMessageCases) {
    asyncio::event_loop loop(virtual_time());
    auto test = [] {
      double time = 0;
      while (true) {
        time += 0.05;
        asyncio::gather(asyncio::return_exceptions, [] { asyncio::sleep(0.05); });
        if (time > 1) return;
      }
    };
    auto main = [&] {
      auto qwe = loop.create_task(test);
      asyncio::sleep(0.2);
      qwe.cancel(c.cancel_arg);
      asyncio::await(qwe);
    };
    // gather() propagates the CancelledError raised by the inner task to the gather() caller.
    EXPECT_EQ(cancel_message_of([&] { loop.run_until_complete(main); }), c.expected) << "cancel_arg=" << c.cancel_arg;
  }
}

// test_exception_traceback: task.exception() holds the exception (no __traceback__ to read).
TEST_F(CPythonModernTaskTests, test_exception_traceback) {
  asyncio::event_loop loop(virtual_time());
  auto foo = []() -> void { throw asyncio_test::Boom(); };
  auto main = [&] {
    auto task = loop.create_task(foo);
    asyncio::sleep(0);  // skip one loop iteration
    EXPECT_EQ(asyncio_test::what_of(task.exception()), "division by zero");
  };
  loop.run_until_complete(main);
}

// test_create_task_with_async_function
TEST_F(CPythonModernTaskTests, test_create_task_with_async_function) {
  asyncio::event_loop loop(virtual_time());
  auto coro = [] {};
  auto task = loop.create_task(coro);
  static_assert(std::is_same_v<decltype(task), asyncio::Task<>>);
  loop.run_until_complete(task);
  EXPECT_TRUE(task.done());

  // test it for the second time to ensure that caching
  // in asyncio.iscoroutine() doesn't break things.
  task = loop.create_task(coro);
  loop.run_until_complete(task);
  EXPECT_TRUE(task.done());
}

// CoroLikeObject: not a lambda, a function object type (see the head).
struct CoroLikeObject {
  int operator()() const { return 42; }
};

// test_create_task_with_asynclike_function
TEST_F(CPythonModernTaskTests, test_create_task_with_asynclike_function) {
  asyncio::event_loop loop(virtual_time());
  auto task = loop.create_task(CoroLikeObject());
  static_assert(std::is_same_v<decltype(task), asyncio::Task<int>>);
  EXPECT_EQ(loop.run_until_complete(task), 42);

  // test it for the second time to ensure that caching
  // in asyncio.iscoroutine() doesn't break things.
  task = loop.create_task(CoroLikeObject());
  EXPECT_EQ(loop.run_until_complete(task), 42);
}

// test_bare_create_task
TEST_F(CPythonModernTaskTests, test_bare_create_task) {
  asyncio::event_loop loop(virtual_time());
  auto inner = [] { return 1; };
  auto coro = [&] {
    auto task = asyncio::create_task(inner);
    static_assert(std::is_same_v<decltype(task), asyncio::Task<int>>);
    const int ret = asyncio::await(task);
    EXPECT_EQ(1, ret);
  };
  loop.run_until_complete(coro);
}

// test_bare_create_named_task
TEST_F(CPythonModernTaskTests, test_bare_create_named_task) {
  asyncio::event_loop loop(virtual_time());
  auto coro_noop = [] {};
  auto coro = [&] {
    auto task = asyncio::create_task(coro_noop, "No-op");
    EXPECT_EQ(task.get_name(), "No-op");
    asyncio::await(task);
  };
  loop.run_until_complete(coro);
}

// test_context_1
TEST_F(CPythonModernTaskTests, test_context_1) {
  asyncio::context_var<std::string> cvar("cvar", "nope");
  asyncio::event_loop loop(virtual_time());
  auto sub = [&] {
    asyncio::sleep(0.01);
    EXPECT_EQ(cvar.get(), "nope");
    cvar.set("something else");
  };
  auto main = [&] {
    EXPECT_EQ(cvar.get(), "nope");
    auto subtask = loop.create_task(sub);
    cvar.set("yes");
    EXPECT_EQ(cvar.get(), "yes");
    asyncio::await(subtask);
    EXPECT_EQ(cvar.get(), "yes");
  };
  auto task = loop.create_task(main);
  loop.run_until_complete(task);
}

// test_context_2
TEST_F(CPythonModernTaskTests, test_context_2) {
  asyncio::context_var<std::string> cvar("cvar", "nope");
  {
    asyncio::event_loop loop(virtual_time());
    auto main = [&] {
      auto fut_on_done = [&](asyncio::Future<>&) {
        // This change must not pollute the context
        // of the "main()" task.
        cvar.set("something else");
      };
      EXPECT_EQ(cvar.get(), "nope");

      for (int j = 0; j < 2; ++j) {
        auto fut = loop.create_future<>();
        fut.add_done_callback(fut_on_done);
        cvar.set("yes" + std::to_string(j));
        loop.call_soon([fut]() mutable { fut.set_result(); });
        asyncio::await(fut);
        EXPECT_EQ(cvar.get(), "yes" + std::to_string(j));

        for (int i = 0; i < 3; ++i) {
          // Test that task passed its context to add_done_callback:
          cvar.set("yes" + std::to_string(i) + "-" + std::to_string(j));
          asyncio::sleep(0.001);
          EXPECT_EQ(cvar.get(), "yes" + std::to_string(i) + "-" + std::to_string(j));
        }
      }
    };
    auto task = loop.create_task(main);
    loop.run_until_complete(task);
  }
  EXPECT_EQ(cvar.get(), "nope");
}

// test_context_3: Run 100 Tasks in parallel, each modifying cvar (fixed-seed random, see the head).
TEST_F(CPythonModernTaskTests, test_context_3) {
  asyncio::context_var<int> cvar("cvar", -1);
  std::mt19937 random(12345);
  {
    asyncio::event_loop loop(virtual_time());
    auto sub = [&](int num) {
      for (int i = 0; i < 10; ++i) {
        cvar.set(num + i);
        asyncio::sleep(std::uniform_real_distribution<double>(0.001, 0.05)(random));
        EXPECT_EQ(cvar.get(), num + i);
      }
    };
    auto main = [&] {
      std::vector<asyncio::Task<>> tasks;
      for (int i = 0; i < 100; ++i) {
        const int num = std::uniform_int_distribution<int>(0, 10)(random);
        tasks.push_back(loop.create_task([&sub, num] { sub(num); }));
      }
      asyncio::gather(tasks);
    };
    loop.run_until_complete(main);
  }
  EXPECT_EQ(cvar.get(), -1);
}

// ctx_get(ctx, cvar) is Python's ctx.get(cvar): the value in ctx, or -1 for None.
int ctx_get(asyncio::context& ctx, asyncio::context_var<int>& cvar) {
  asyncio::context copy = ctx;  // a copy has the same values, and running it is always allowed
  return copy.run([&] { return cvar.get(-1); });
}

// test_context_4
TEST_F(CPythonModernTaskTests, test_context_4) {
  asyncio::context_var<int> cvar("cvar");
  asyncio::event_loop loop(virtual_time());
  auto coro = [&](int val) {
    asyncio::sleep(0);
    cvar.set(val);
  };
  auto main = [&] {
    std::vector<int> ret;
    asyncio::context ctx = asyncio::copy_context();
    ret.push_back(ctx_get(ctx, cvar));
    auto t1 = loop.create_task([&] { coro(1); }, "TestTask", ctx);
    asyncio::await(t1);
    ret.push_back(ctx_get(ctx, cvar));
    auto t2 = loop.create_task([&] { coro(2); }, "TestTask", ctx);
    asyncio::await(t2);
    ret.push_back(ctx_get(ctx, cvar));
    return ret;
  };
  auto task = loop.create_task(main);
  EXPECT_EQ(loop.run_until_complete(task), (std::vector<int>{-1, 1, 2}));
}

// test_context_5
TEST_F(CPythonModernTaskTests, test_context_5) {
  asyncio::context_var<int> cvar("cvar");
  asyncio::event_loop loop(virtual_time());
  auto coro = [&](int val) {
    asyncio::sleep(0);
    cvar.set(val);
  };
  auto main = [&] {
    std::vector<int> ret;
    asyncio::context ctx = asyncio::copy_context();
    ret.push_back(ctx_get(ctx, cvar));
    auto t1 = asyncio::create_task([&] { coro(1); }, "", ctx);
    asyncio::await(t1);
    ret.push_back(ctx_get(ctx, cvar));
    auto t2 = asyncio::create_task([&] { coro(2); }, "", ctx);
    asyncio::await(t2);
    ret.push_back(ctx_get(ctx, cvar));
    return ret;
  };
  auto task = loop.create_task(main);
  EXPECT_EQ(loop.run_until_complete(task), (std::vector<int>{-1, 1, 2}));
}

// test_context_6
TEST_F(CPythonModernTaskTests, test_context_6) {
  asyncio::context_var<int> cvar("cvar");
  asyncio::event_loop loop(virtual_time());
  auto coro = [&](int val) {
    asyncio::sleep(0);
    cvar.set(val);
  };
  auto main = [&] {
    std::vector<int> ret;
    asyncio::context ctx = asyncio::copy_context();
    ret.push_back(ctx_get(ctx, cvar));
    auto t1 = loop.create_task([&] { coro(1); }, "", ctx);
    asyncio::await(t1);
    ret.push_back(ctx_get(ctx, cvar));
    auto t2 = loop.create_task([&] { coro(2); }, "", ctx);
    asyncio::await(t2);
    ret.push_back(ctx_get(ctx, cvar));
    return ret;
  };
  auto task = loop.create_task(main);
  EXPECT_EQ(loop.run_until_complete(task), (std::vector<int>{-1, 1, 2}));
}

// SetMethodsTest.test_set_result_causes_invalid_state: Future.set_result(task, 'spam') is refused
// here (RuntimeError), so the task keeps its own result (see the head).
TEST_F(CPythonModernSetMethodsTest, test_set_result_causes_invalid_state) {
  asyncio::event_loop loop(virtual_time());
  asyncio_test::error_log errors;
  errors.attach(loop);
  auto foo = [] {
    asyncio::sleep(0.1);
    return std::string("10");
  };
  auto task = loop.create_task(foo);
  asyncio::Future<std::string>& as_future = task;
  EXPECT_THROW(as_future.set_result("spam"), asyncio::RuntimeError);
  EXPECT_EQ(loop.run_until_complete(task), "10");
  EXPECT_TRUE(errors.messages.empty());
}

// SetMethodsTest.test_set_exception_causes_invalid_state: refused as set_result (see the head).
TEST_F(CPythonModernSetMethodsTest, test_set_exception_causes_invalid_state) {
  asyncio::event_loop loop(virtual_time());
  asyncio_test::error_log errors;
  errors.attach(loop);
  auto foo = [] {
    asyncio::sleep(0.1);
    return 10;
  };
  auto task = loop.create_task(foo);
  asyncio::Future<int>& as_future = task;
  EXPECT_THROW(as_future.set_exception(std::make_exception_ptr(TestError("MyExc"))), asyncio::RuntimeError);
  EXPECT_EQ(loop.run_until_complete(task), 10);
  EXPECT_TRUE(errors.messages.empty());
}

// BaseCurrentLoopTests.test_current_task_no_running_loop_implicit
TEST_F(CPythonModernCurrentLoopTests, test_current_task_no_running_loop_implicit) {
  auto loop = asyncio::new_event_loop(virtual_time());
  asyncio::set_event_loop(loop);
  EXPECT_THROW(asyncio::current_task(), asyncio::RuntimeError);
  loop->close();
  asyncio::set_event_loop(nullptr);
}

// BaseCurrentLoopTests.test_current_task_with_implicit_loop: current_task(loop=...) after the run
// is not asked (current_task() takes no loop).
TEST_F(CPythonModernCurrentLoopTests, test_current_task_with_implicit_loop) {
  auto loop = asyncio::new_event_loop(virtual_time());
  asyncio::set_event_loop(loop);
  asyncio::Task<> task;
  auto coro = [&] { EXPECT_TRUE(asyncio::current_task() == task); };
  task = loop->create_task(coro);
  loop->run_until_complete(task);
  loop->close();
  asyncio::set_event_loop(nullptr);
}

// GenericTaskTests.test_future_subclass
TEST_F(CPythonModernGenericTaskTests, test_future_subclass) {
  EXPECT_TRUE((std::is_base_of_v<asyncio::Future<>, asyncio::Task<>>));
  EXPECT_TRUE((std::is_base_of_v<asyncio::Future<int>, asyncio::Task<int>>));
}

// FutureGatherTests.test_constructor_empty_sequence_without_loop
TEST_F(CPythonModernFutureGatherTests, test_constructor_empty_sequence_without_loop) {
  EXPECT_THROW(asyncio::gather(std::vector<asyncio::Future<int>>{}), asyncio::RuntimeError);
}

// FutureGatherTests.test_constructor_empty_sequence_use_running_loop
TEST_F(CPythonModernFutureGatherTests, test_constructor_empty_sequence_use_running_loop) {
  asyncio::event_loop one_loop(virtual_time());
  auto gather = [] { return asyncio::gather(std::vector<asyncio::Future<int>>{}); };
  EXPECT_EQ(one_loop.run_until_complete(gather), std::vector<int>{});
}

// CoroutineGatherTests.test_constructor_without_loop
TEST_F(CPythonModernCoroutineGatherTests, test_constructor_without_loop) {
  auto coro = [] { return std::string("abc"); };
  EXPECT_THROW(asyncio::gather(coro, coro), asyncio::RuntimeError);
}

// CoroutineGatherTests.test_constructor_use_running_loop
TEST_F(CPythonModernCoroutineGatherTests, test_constructor_use_running_loop) {
  asyncio::event_loop one_loop(virtual_time());
  auto coro = [] { return std::string("abc"); };
  auto gather = [&] { return asyncio::gather(coro, coro); };
  auto [a, b] = one_loop.run_until_complete(gather);
  EXPECT_EQ(a, "abc");
  EXPECT_EQ(b, "abc");
}

}  // namespace cpython_tasks_port_c
