// cpython_asyncio_futures_port_test.cpp: CPython's Lib/test/test_asyncio/test_futures.py (commit
// 012819868449d48df37dc1de6406201cc067c7a3: BaseFutureTests, BaseFutureDoneCallbackTests,
// BaseFutureInheritanceTests) and test_futures2.py (commit 022d443de7cae8cec834edf59dabe45ba7474464:
// FutureTests, FutureReprTests) method by method. CPython runs each base class twice or three times
// (CFuture, CSubFuture, PyFuture; CTask, PyTask): the logic is ported once. future_test.cpp,
// done_callback_storage_test.cpp and repr_test.cpp hold earlier ports of some of these cases; each
// test here names its CPython method and keeps its values. `self.loop` (a test loop nobody runs) is
// an event_loop made in the test; test_utils.run_briefly is asyncio_test::run_briefly.
//
// Not ported (Python-only):
// - DuckTests.test_wrap_future, test_ensure_future: duck-typed futures; C++ types are static.
// - test_generic_alias: `Future[str]` typing alias; Future<T> is a template.
// - test_isfuture: asyncio.isfuture() duck typing (and mocks); static types.
// - test_constructor_positional: Python call convention (Future(42)).
// - test_future_cancel_message_setter: assigns the private _cancel_message.
// - test_stop_iteration_exception, test_stop_iteration_subclass_exception: StopIteration raised into a
//   generator-based coroutine; C++ has no StopIteration (a generator's end is no exception).
// - test_exception_class: set_exception(a class) instantiates it; C++ passes exception objects.
// - test_iter, test_future_stop_iteration_args, test_future_iter_throw,
//   test_futureiter_send_after_throw_no_crash: the `__iter__`/`__await__` protocol.
// - test_log_traceback: the private _log_traceback attribute.
// - test_wrap_future_future: wrap_future() of an asyncio future returns it; ours takes only a
//   concurrent::Future (an asyncio::Future is not one: it does not compile).
// - test_future_source_traceback, test_future_exception_never_retrieved_debug: debug mode's
//   _source_traceback; there is no debug mode.
// - test_set_result_unless_cancelled: the private futures._set_result_unless_cancelled.
// - test_future_del_collect, test_future_cancelled_result_refcycles,
//   test_future_cancelled_exception_refcycles: gc and reference cycles.
// - test_future_disallow_multiple_initialization: calling __init__ again.
// - CFutureTests.test_future_del_segfault, test_callbacks_copy: attributes of the C Future
//   (_asyncio_future_blocking, _log_traceback, _callbacks).
// - test_remove_done_callbacks_list_mutation, test_remove_done_callbacks_list_clear,
//   test_schedule_callbacks_list_mutation_2, test_use_after_free_on_fut_callback_0_with_evil__eq__:
//   a callback's __eq__ that mutates the list during remove_done_callback(); ours removes by id and
//   compares no user objects.
// - FutureReprTests.test_recursive_repr_for_pending_tasks (test_futures2.py): a task whose result
//   holds itself (all_tasks() returned from inside it); the repr of a result that is not a string,
//   number or None is `<value>` here, so a repr cannot recurse through a result, and a task holding
//   a handle to itself is a reference cycle C++ does not collect. Cycles of awaits print `...`
//   (repr_test.cpp).
// - test_evil_call_soon_list_mutation, test_use_after_free_on_fut_callback_0_with_evil__getattribute__:
//   a mock event loop whose call_soon (or attribute lookup) mutates the future.
//
// Deliberate differences the tests assert (docs/porting.md, docs/asyncio.md):
// - remove_done_callback() takes the id add_done_callback() returned, not the function: each
//   registration has its own id, so "remove every instance of cb1" is one call per registration
//   here, and the counts are summed.
// - An empty handle (test_uninitialized: a Future whose __init__ never ran) throws RuntimeError
//   (asyncio_errc::invalid_state) on every call, done() and cancelled() included, where Python's
//   result()/exception() raise InvalidStateError and done()/cancelled() are False.
// - repr() names a user's done callback `<callback>` (asyncio: its qualified name and source line).
// - A C++ exception made without a message prints its message as '' in repr():
//   `RuntimeError()` is runtime_error('') here.
// - test_constructor_without_loop: a Future is made by a loop (create_future()); with no loop
//   running, get_running_loop() refuses with RuntimeError, as Python's Future() does.
// - test_wrap_future_without_loop: wrap_future(cf) with no loop running takes get_event_loop(), which
//   makes the thread's loop when it has none (3.11's rule; 3.14 raises 'no current event loop').
// - test_copy_state: its last part (the traceback of a concurrent InvalidStateError counted once) is
//   not expressible; the rest goes through wrap_future(), _copy_future_state()'s public user.
// - test_future_traceback (test_futures2.py): the traceback count is not expressible (a C++
//   exception has no traceback); the five awaits raising TypeError each time are ported.
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <greenlet/concurrent.hpp>

#include "asyncio_test_support.hpp"

namespace cpython_asyncio_futures_port {

namespace asyncio = greenlet::asyncio;
namespace concurrent = greenlet::concurrent;
using asyncio_test::Boom;
using asyncio_test::error_log;
using asyncio_test::run_briefly;
using asyncio_test::virtual_time;
using asyncio_test::what_of;

using CPythonFutureTests = greenlet_test::GreenletTest;
using CPythonFutureDoneCallbackTests = greenlet_test::GreenletTest;
using CPythonFutureInheritanceTests = greenlet_test::GreenletTest;
using CPythonFutureTests2 = greenlet_test::GreenletTest;
using CPythonFutureReprTests = greenlet_test::GreenletTest;
using Ints = std::vector<int>;
using Strings = std::vector<std::string>;

// Python's bare RuntimeError().
std::runtime_error runtime_error() { return std::runtime_error(""); }

// --------------------------------------------------------------------- BaseFutureTests

// test_initial_state
TEST_F(CPythonFutureTests, test_initial_state) {
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<int>();
  EXPECT_FALSE(f.cancelled());
  EXPECT_FALSE(f.done());
  f.cancel();
  EXPECT_TRUE(f.cancelled());
}

// test_constructor_without_loop: no loop runs, so there is none to make the future with.
TEST_F(CPythonFutureTests, test_constructor_without_loop) {
  try {
    asyncio::get_running_loop().create_future<int>();
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.code(), asyncio::asyncio_errc::no_running_loop);
    EXPECT_NE(std::string(e.what()).find("no running event loop"), std::string::npos) << e.what();
  }
}

// test_constructor_use_running_loop
TEST_F(CPythonFutureTests, test_constructor_use_running_loop) {
  asyncio::event_loop loop(virtual_time());
  auto f = loop.run_until_complete([] { return asyncio::get_running_loop().create_future<int>(); });
  EXPECT_EQ(&f.get_loop(), &loop);
}

// test_constructor_use_global_loop: the thread's current loop (get_event_loop()), not running.
TEST_F(CPythonFutureTests, test_constructor_use_global_loop) {
  auto loop = asyncio::new_event_loop(virtual_time());
  asyncio::set_event_loop(loop);
  struct cleanup {
    ~cleanup() { asyncio::set_event_loop(nullptr); }
  } unset;
  auto f = asyncio::get_event_loop().create_future<int>();
  EXPECT_EQ(&f.get_loop(), loop.get());
}

// test_uninitialized: an empty handle (see the head comment).
TEST_F(CPythonFutureTests, test_uninitialized) {
  {
    asyncio::Future<int> fut;
    EXPECT_THROW(fut.result(), asyncio::RuntimeError);
  }
  {
    asyncio::Future<int> fut;
    EXPECT_THROW(fut.exception(), asyncio::RuntimeError);
  }
  {
    asyncio::Future<int> fut;
    EXPECT_THROW(fut.set_result(0), asyncio::RuntimeError);
  }
  {
    asyncio::Future<int> fut;
    EXPECT_THROW(fut.set_exception(std::runtime_error("")), asyncio::RuntimeError);
  }
  {
    asyncio::Future<int> fut;
    EXPECT_THROW(fut.cancel(), asyncio::RuntimeError);
  }
  {
    asyncio::Future<int> fut;
    EXPECT_THROW(fut.add_done_callback([](asyncio::Future<int>&) {}), asyncio::RuntimeError);
  }
  {
    asyncio::Future<int> fut;
    EXPECT_THROW(fut.remove_done_callback(1), asyncio::RuntimeError);
  }
  {
    asyncio::Future<int> fut;
    EXPECT_THROW(fut.repr(), asyncio::RuntimeError);
  }
  {
    asyncio::Future<int> fut;
    asyncio::event_loop loop(virtual_time());
    EXPECT_THROW(loop.run_until_complete(fut), asyncio::RuntimeError);  // fut.__await__()
  }
  {
    asyncio::Future<int> fut;
    EXPECT_THROW(fut.cancelled(), asyncio::RuntimeError);
    EXPECT_THROW(fut.done(), asyncio::RuntimeError);
  }
}

// test_future_cancel_message_getter: f._cancel_message is the message of the CancelledError.
TEST_F(CPythonFutureTests, test_future_cancel_message_getter) {
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<int>();
  f.cancel("my message");
  EXPECT_EQ(asyncio_test::cancel_message_of([&] { loop.run_until_complete(f); }), "my message");
}

// test_cancel
TEST_F(CPythonFutureTests, test_cancel) {
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<int>();
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(f.done());
  EXPECT_THROW(f.result(), asyncio::CancelledError);
  EXPECT_THROW(f.exception(), asyncio::CancelledError);
  EXPECT_THROW(f.set_result(0), asyncio::InvalidStateError);
  EXPECT_THROW(f.set_exception(std::exception_ptr()), asyncio::InvalidStateError);
  EXPECT_FALSE(f.cancel());
}

// test_result
TEST_F(CPythonFutureTests, test_result) {
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<int>();
  EXPECT_THROW(f.result(), asyncio::InvalidStateError);

  f.set_result(42);
  EXPECT_FALSE(f.cancelled());
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.result(), 42);
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_THROW(f.set_result(0), asyncio::InvalidStateError);
  EXPECT_THROW(f.set_exception(std::exception_ptr()), asyncio::InvalidStateError);
  EXPECT_FALSE(f.cancel());
}

// test_exception
TEST_F(CPythonFutureTests, test_exception) {
  auto exc = std::make_exception_ptr(runtime_error());
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<int>();
  EXPECT_THROW(f.exception(), asyncio::InvalidStateError);

  f.set_exception(exc);
  EXPECT_FALSE(f.cancelled());
  EXPECT_TRUE(f.done());
  EXPECT_THROW(f.result(), std::runtime_error);
  EXPECT_EQ(f.exception(), exc);
  EXPECT_THROW(f.set_result(0), asyncio::InvalidStateError);
  EXPECT_THROW(f.set_exception(std::exception_ptr()), asyncio::InvalidStateError);
  EXPECT_FALSE(f.cancel());
}

// test_yield_from_twice: a task that waits on f twice; the first wait suspends until f is set,
// the second does not suspend ("The second yield from f does not yield f").
TEST_F(CPythonFutureTests, test_yield_from_twice) {
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<int>();
  Strings log;
  auto g = loop.create_task([&] {
    log.push_back("A");
    int x = asyncio::await(f);
    log.push_back("B " + std::to_string(x));
    int y = asyncio::await(f);
    log.push_back("C " + std::to_string(y));
  });
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"A"}));  // First wait on f.
  f.set_result(42);
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"A", "B 42", "C 42"}));
  EXPECT_TRUE(g.done());
}

// test_future_repr (without its debug-mode part: no set_debug(), no source traceback).
TEST_F(CPythonFutureTests, test_future_repr) {
  asyncio::event_loop loop(virtual_time());
  auto f_pending = loop.create_future<int>();
  EXPECT_EQ(f_pending.repr(), "<Future pending>");
  f_pending.cancel();

  auto f_cancelled = loop.create_future<int>();
  f_cancelled.cancel();
  EXPECT_EQ(f_cancelled.repr(), "<Future cancelled>");

  auto f_result = loop.create_future<int>();
  f_result.set_result(4);
  EXPECT_EQ(f_result.repr(), "<Future finished result=4>");
  EXPECT_EQ(f_result.result(), 4);

  auto exc = std::make_exception_ptr(runtime_error());
  auto f_exception = loop.create_future<int>();
  f_exception.set_exception(exc);
  EXPECT_EQ(f_exception.repr(), "<Future finished exception=runtime_error('')>");
  EXPECT_EQ(f_exception.exception(), exc);

  auto fakefunc = [](asyncio::Future<int>&) {};
  auto f_one_callbacks = loop.create_future<int>();
  f_one_callbacks.add_done_callback(fakefunc);
  EXPECT_EQ(f_one_callbacks.repr(), "<Future pending cb=[<callback>]>");
  f_one_callbacks.cancel();
  EXPECT_EQ(f_one_callbacks.repr(), "<Future cancelled>");

  auto f_two_callbacks = loop.create_future<int>();
  f_two_callbacks.add_done_callback(fakefunc);  // first_cb
  f_two_callbacks.add_done_callback(fakefunc);  // last_cb
  EXPECT_EQ(f_two_callbacks.repr(), "<Future pending cb=[<callback>, <callback>]>");

  auto f_many_callbacks = loop.create_future<int>();
  f_many_callbacks.add_done_callback(fakefunc);  // first_cb
  for (int i = 0; i < 8; ++i) f_many_callbacks.add_done_callback(fakefunc);
  f_many_callbacks.add_done_callback(fakefunc);  // last_cb
  EXPECT_EQ(f_many_callbacks.repr(), "<Future pending cb=[<callback>, <8 more>, <callback>]>");
  f_many_callbacks.cancel();
  EXPECT_EQ(f_many_callbacks.repr(), "<Future cancelled>");
  f_two_callbacks.cancel();
  run_briefly(loop);
}

// test_copy_state: futures._copy_future_state() is private; its public user is wrap_future(),
// which copies a concurrent future's outcome into an asyncio one.
TEST_F(CPythonFutureTests, test_copy_state) {
  asyncio::event_loop loop(virtual_time());

  concurrent::Future<int> f;
  f.set_result(10);
  auto newf = asyncio::wrap_future(f, loop);
  run_briefly(loop);
  EXPECT_TRUE(newf.done());
  EXPECT_EQ(newf.result(), 10);

  concurrent::Future<int> f_exception;
  f_exception.set_exception(std::make_exception_ptr(runtime_error()));
  auto newf_exception = asyncio::wrap_future(f_exception, loop);
  run_briefly(loop);
  EXPECT_TRUE(newf_exception.done());
  EXPECT_THROW(newf_exception.result(), std::runtime_error);

  concurrent::Future<int> f_cancelled;
  f_cancelled.cancel();
  auto newf_cancelled = asyncio::wrap_future(f_cancelled, loop);
  run_briefly(loop);
  EXPECT_TRUE(newf_cancelled.cancelled());
}

// test_copy_state_from_concurrent_futures (through wrap_future(), as test_copy_state). The
// "destination already cancelled" part is test_wrap_future_cancel2's case, ported there. The
// "exception type conversion" part: the library has one InvalidStateError for both layers.
TEST_F(CPythonFutureTests, test_copy_state_from_concurrent_futures) {
  asyncio::event_loop loop(virtual_time());

  // Test with a result
  concurrent::Future<int> f_concurrent;
  f_concurrent.set_result(42);
  auto f_asyncio = asyncio::wrap_future(f_concurrent, loop);
  run_briefly(loop);
  EXPECT_TRUE(f_asyncio.done());
  EXPECT_EQ(f_asyncio.result(), 42);

  // Test with an exception
  concurrent::Future<int> f_concurrent_exc;
  f_concurrent_exc.set_exception(std::make_exception_ptr(std::invalid_argument("test exception")));
  auto f_asyncio_exc = asyncio::wrap_future(f_concurrent_exc, loop);
  run_briefly(loop);
  EXPECT_TRUE(f_asyncio_exc.done());
  try {
    f_asyncio_exc.result();
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "test exception");
  }

  // Test with cancelled state
  concurrent::Future<int> f_concurrent_cancelled;
  f_concurrent_cancelled.cancel();
  auto f_asyncio_cancelled = asyncio::wrap_future(f_concurrent_cancelled, loop);
  run_briefly(loop);
  EXPECT_TRUE(f_asyncio_cancelled.cancelled());

  // Test exception type conversion
  concurrent::Future<int> f_concurrent_invalid;
  f_concurrent_invalid.set_exception(std::make_exception_ptr(asyncio::InvalidStateError("invalid")));
  auto f_asyncio_invalid = asyncio::wrap_future(f_concurrent_invalid, loop);
  run_briefly(loop);
  EXPECT_TRUE(f_asyncio_invalid.done());
  try {
    f_asyncio_invalid.result();
    ADD_FAILURE() << "no InvalidStateError";
  } catch (const asyncio::InvalidStateError& e) {
    EXPECT_EQ(std::string(e.what()), "invalid");
  }
}

// test_tb_logger_abandoned: `del fut` is the last handle going.
TEST_F(CPythonFutureTests, test_tb_logger_abandoned) {
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  { auto fut = loop.create_future<int>(); }
  EXPECT_TRUE(errors.messages.empty());
}

// test_tb_logger_not_called_after_cancel
TEST_F(CPythonFutureTests, test_tb_logger_not_called_after_cancel) {
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  {
    auto fut = loop.create_future<int>();
    fut.set_exception(std::runtime_error(""));
    fut.cancel();
  }
  EXPECT_TRUE(errors.messages.empty());
}

// test_tb_logger_result_unretrieved
TEST_F(CPythonFutureTests, test_tb_logger_result_unretrieved) {
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  {
    auto fut = loop.create_future<int>();
    fut.set_result(42);
  }
  EXPECT_TRUE(errors.messages.empty());
}

// test_tb_logger_result_retrieved
TEST_F(CPythonFutureTests, test_tb_logger_result_retrieved) {
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  {
    auto fut = loop.create_future<int>();
    fut.set_result(42);
    fut.result();
  }
  EXPECT_TRUE(errors.messages.empty());
}

// test_tb_logger_exception_unretrieved
TEST_F(CPythonFutureTests, test_tb_logger_exception_unretrieved) {
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  {
    auto fut = loop.create_future<int>();
    fut.set_exception(std::runtime_error("boom"));
  }
  run_briefly(loop);
  ASSERT_EQ(errors.messages.size(), 1u);
  EXPECT_EQ(errors.whats[0], "boom");
}

// test_tb_logger_exception_retrieved
TEST_F(CPythonFutureTests, test_tb_logger_exception_retrieved) {
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  {
    auto fut = loop.create_future<int>();
    fut.set_exception(std::runtime_error("boom"));
    fut.exception();
  }
  EXPECT_TRUE(errors.messages.empty());
}

// test_tb_logger_exception_result_retrieved
TEST_F(CPythonFutureTests, test_tb_logger_exception_result_retrieved) {
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  {
    auto fut = loop.create_future<int>();
    fut.set_exception(std::runtime_error("boom"));
    EXPECT_THROW(fut.result(), std::runtime_error);
  }
  EXPECT_TRUE(errors.messages.empty());
}

// test_wrap_future: a job of a one-thread pool, awaited through wrap_future(); it ran on
// another thread.
TEST_F(CPythonFutureTests, test_wrap_future) {
  auto run = [](std::string arg) { return std::make_pair(arg, std::this_thread::get_id()); };
  concurrent::ThreadPoolExecutor ex(1);
  auto f1 = ex.submit(run, std::string("oi"));
  asyncio::event_loop loop(virtual_time());
  auto f2 = asyncio::wrap_future(f1, loop);
  auto [res, ident] = loop.run_until_complete(f2);
  EXPECT_EQ(res, "oi");
  EXPECT_NE(ident, std::this_thread::get_id());
  ex.shutdown(true);
}

// test_wrap_future_without_loop: wrap_future(f1) with no loop running takes get_event_loop(),
// which makes the thread's loop when there is none (3.11's get_event_loop(); 3.14 raises
// RuntimeError 'no current event loop').
TEST_F(CPythonFutureTests, test_wrap_future_without_loop) {
  auto run = [](std::string arg) { return std::make_pair(arg, std::this_thread::get_id()); };
  concurrent::ThreadPoolExecutor ex(1);
  auto f1 = ex.submit(run, std::string("oi"));
  struct cleanup {
    ~cleanup() { asyncio::set_event_loop(nullptr); }
  } unset;
  {
    auto f2 = asyncio::wrap_future(f1);
    EXPECT_EQ(&f2.get_loop(), &asyncio::get_event_loop());
    asyncio::get_event_loop().run_until_complete(f2);
  }
  ex.shutdown(true);
}

// test_wrap_future_use_running_loop
TEST_F(CPythonFutureTests, test_wrap_future_use_running_loop) {
  auto run = [](std::string arg) { return std::make_pair(arg, std::this_thread::get_id()); };
  concurrent::ThreadPoolExecutor ex(1);
  auto f1 = ex.submit(run, std::string("oi"));
  asyncio::event_loop loop(virtual_time());
  auto f2 = loop.run_until_complete([&] { return asyncio::wrap_future(f1); });
  EXPECT_EQ(&loop, &f2.get_loop());
  loop.run_until_complete(f2);
  ex.shutdown(true);
}

// test_wrap_future_use_global_loop
TEST_F(CPythonFutureTests, test_wrap_future_use_global_loop) {
  auto loop = asyncio::new_event_loop(virtual_time());
  asyncio::set_event_loop(loop);
  struct cleanup {
    ~cleanup() { asyncio::set_event_loop(nullptr); }
  } unset;
  auto run = [](std::string arg) { return std::make_pair(arg, std::this_thread::get_id()); };
  concurrent::ThreadPoolExecutor ex(1);
  auto f1 = ex.submit(run, std::string("oi"));
  auto f2 = asyncio::wrap_future(f1);
  EXPECT_EQ(loop.get(), &f2.get_loop());
  loop->run_until_complete(f2);
  ex.shutdown(true);
}

// test_wrap_future_cancel
TEST_F(CPythonFutureTests, test_wrap_future_cancel) {
  asyncio::event_loop loop(virtual_time());
  concurrent::Future<int> f1;
  auto f2 = asyncio::wrap_future(f1, loop);
  f2.cancel();
  run_briefly(loop);
  EXPECT_TRUE(f1.cancelled());
  EXPECT_TRUE(f2.cancelled());
}

// test_wrap_future_cancel2
TEST_F(CPythonFutureTests, test_wrap_future_cancel2) {
  asyncio::event_loop loop(virtual_time());
  concurrent::Future<int> f1;
  auto f2 = asyncio::wrap_future(f1, loop);
  f1.set_result(42);
  f2.cancel();
  run_briefly(loop);
  EXPECT_FALSE(f1.cancelled());
  EXPECT_EQ(f1.result(), 42);
  EXPECT_TRUE(f2.cancelled());
}

// test_future_exception_never_retrieved (check_future_exception_never_retrieved(False)): a
// MemoryError nobody retrieved is reported once, with the future named, when the future goes.
TEST_F(CPythonFutureTests, test_future_exception_never_retrieved) {
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  auto exc = std::make_exception_ptr(std::bad_alloc());
  {
    auto future = loop.create_future<int>();
    future.set_exception(exc);
  }
  run_briefly(loop);
  ASSERT_EQ(errors.messages.size(), 1u);
  EXPECT_EQ(errors.messages[0], "Future exception was never retrieved");
  EXPECT_EQ(errors.exceptions[0], exc);
}

// ------------------------------------------------------------ BaseFutureDoneCallbackTests

// make_callback(bag, thing) is _make_callback: a done callback that appends thing to bag.
auto make_callback(Ints& bag, int thing) {
  return [&bag, thing](asyncio::Future<std::string>&) { bag.push_back(thing); };
}

// test_callbacks_remove_first_callback
TEST_F(CPythonFutureDoneCallbackTests, test_callbacks_remove_first_callback) {
  Ints bag;
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<std::string>();

  auto cb1 = f.add_done_callback(make_callback(bag, 42));
  f.add_done_callback(make_callback(bag, 17));
  f.add_done_callback(make_callback(bag, 100));

  f.remove_done_callback(cb1);
  f.remove_done_callback(cb1);

  EXPECT_EQ(bag, Ints{});
  f.set_result("foo");

  run_briefly(loop);

  EXPECT_EQ(bag, (Ints{17, 100}));
  EXPECT_EQ(f.result(), "foo");
}

// test_callbacks_remove_first_and_second_callback
TEST_F(CPythonFutureDoneCallbackTests, test_callbacks_remove_first_and_second_callback) {
  Ints bag;
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<std::string>();

  auto cb1 = f.add_done_callback(make_callback(bag, 42));
  auto cb2 = f.add_done_callback(make_callback(bag, 17));
  f.add_done_callback(make_callback(bag, 100));

  f.remove_done_callback(cb1);
  f.remove_done_callback(cb2);
  f.remove_done_callback(cb1);

  EXPECT_EQ(bag, Ints{});
  f.set_result("foo");

  run_briefly(loop);

  EXPECT_EQ(bag, (Ints{100}));
  EXPECT_EQ(f.result(), "foo");
}

// test_callbacks_remove_third_callback
TEST_F(CPythonFutureDoneCallbackTests, test_callbacks_remove_third_callback) {
  Ints bag;
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<std::string>();

  f.add_done_callback(make_callback(bag, 42));
  f.add_done_callback(make_callback(bag, 17));
  auto cb3 = f.add_done_callback(make_callback(bag, 100));

  f.remove_done_callback(cb3);
  f.remove_done_callback(cb3);

  EXPECT_EQ(bag, Ints{});
  f.set_result("foo");

  run_briefly(loop);

  EXPECT_EQ(bag, (Ints{42, 17}));
  EXPECT_EQ(f.result(), "foo");
}

// test_callbacks_invoked_on_set_result
TEST_F(CPythonFutureDoneCallbackTests, test_callbacks_invoked_on_set_result) {
  Ints bag;
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<std::string>();
  f.add_done_callback(make_callback(bag, 42));
  f.add_done_callback(make_callback(bag, 17));

  EXPECT_EQ(bag, Ints{});
  f.set_result("foo");

  run_briefly(loop);

  EXPECT_EQ(bag, (Ints{42, 17}));
  EXPECT_EQ(f.result(), "foo");
}

// test_callbacks_invoked_on_set_exception
TEST_F(CPythonFutureDoneCallbackTests, test_callbacks_invoked_on_set_exception) {
  Ints bag;
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<std::string>();
  f.add_done_callback(make_callback(bag, 100));

  EXPECT_EQ(bag, Ints{});
  auto exc = std::make_exception_ptr(runtime_error());
  f.set_exception(exc);

  run_briefly(loop);

  EXPECT_EQ(bag, (Ints{100}));
  EXPECT_EQ(f.exception(), exc);
}

// test_remove_done_callback: "all instances of cb1" is each registration's id (head comment).
TEST_F(CPythonFutureDoneCallbackTests, test_remove_done_callback) {
  Ints bag;
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<std::string>();
  std::vector<std::uint64_t> cb1;

  // Add one cb1 and one cb2.
  cb1.push_back(f.add_done_callback(make_callback(bag, 1)));
  auto cb2 = f.add_done_callback(make_callback(bag, 2));

  // One instance of cb2 removed. Now there's only one cb1.
  EXPECT_EQ(f.remove_done_callback(cb2), 1u);

  // Never had any cb3 in there.
  const std::uint64_t cb3 = cb2 + 1000;
  EXPECT_EQ(f.remove_done_callback(cb3), 0u);

  // After this there will be 6 instances of cb1 and one of cb2.
  f.add_done_callback(make_callback(bag, 2));
  for (int i = 0; i < 5; ++i) cb1.push_back(f.add_done_callback(make_callback(bag, 1)));

  // Remove all instances of cb1. One cb2 remains.
  std::size_t removed = 0;
  for (auto id : cb1) removed += f.remove_done_callback(id);
  EXPECT_EQ(removed, 6u);

  EXPECT_EQ(bag, Ints{});
  f.set_result("foo");

  run_briefly(loop);

  EXPECT_EQ(bag, (Ints{2}));
  EXPECT_EQ(f.result(), "foo");
}

// test_schedule_callbacks_list_mutation_1: a done callback removes the others once they are
// already scheduled: nothing to remove, and they still run.
TEST_F(CPythonFutureDoneCallbackTests, test_schedule_callbacks_list_mutation_1) {
  asyncio::event_loop loop(virtual_time());
  Strings log;
  std::vector<std::uint64_t> str_ids;
  std::size_t removed = 0;
  auto fut = loop.create_future<int>();
  fut.add_done_callback([&](asyncio::Future<int>& f) {  // mut
    for (auto id : str_ids) removed += f.remove_done_callback(id);
    log.push_back("mut");
  });
  str_ids.push_back(fut.add_done_callback([&](asyncio::Future<int>&) { log.push_back("str"); }));
  str_ids.push_back(fut.add_done_callback([&](asyncio::Future<int>&) { log.push_back("str"); }));
  fut.set_result(1);
  run_briefly(loop);
  EXPECT_EQ(removed, 0u);
  EXPECT_EQ(log, (Strings{"mut", "str", "str"}));
}

// ------------------------------------------------------------- BaseFutureInheritanceTests

// test_inherit_without_calling_super_init: a Future never initialized is an empty handle here.
TEST_F(CPythonFutureInheritanceTests, test_inherit_without_calling_super_init) {
  asyncio::Future<int> fut;
  try {
    fut.get_loop();
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.code(), asyncio::asyncio_errc::invalid_state);
    EXPECT_NE(std::string(e.what()).find("empty Future/Task handle"), std::string::npos) << e.what();
  }
}

// ------------------------------------------------------------ test_futures2.py FutureTests

// test_future_traceback: the task's TypeError(42) is raised to each of five awaits.
TEST_F(CPythonFutureTests2, test_future_traceback) {
  asyncio::run(
      [] {
        auto future = asyncio::create_task([] { throw std::invalid_argument("42"); });
        for (int i = 0; i < 5; ++i) {
          try {
            asyncio::await(future);
            ADD_FAILURE() << "TypeError was not raised";
          } catch (const std::invalid_argument& e) {
            EXPECT_EQ(std::string(e.what()), "42");
          }
        }
      },
      virtual_time());
}

// test_task_exc_handler_correct_context (gh-96704): the exception handler reporting a failed task
// runs in the task's context.
TEST_F(CPythonFutureTests2, test_task_exc_handler_correct_context) {
  greenlet::context_var<std::string> name("name", std::string("foo"));
  bool exc_handler_called = false;
  asyncio::run(
      [&] {
        auto& loop = asyncio::get_running_loop();
        loop.set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context&) {
          EXPECT_EQ(name.get(), "bar");
          exc_handler_called = true;
        });
        asyncio::create_task([&] {
          name.set("bar");
          throw Boom();
        });
        asyncio::sleep(0);
        EXPECT_TRUE(exc_handler_called);
      },
      virtual_time());
}

// test_handle_exc_handler_correct_context (gh-96704): the exception handler reporting a callback
// that threw runs in the callback's context.
TEST_F(CPythonFutureTests2, test_handle_exc_handler_correct_context) {
  greenlet::context_var<std::string> name("name", std::string("foo"));
  bool exc_handler_called = false;
  asyncio::run(
      [&] {
        auto& loop = asyncio::get_running_loop();
        loop.set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context&) {
          EXPECT_EQ(name.get(), "bar");
          exc_handler_called = true;
        });
        loop.call_soon([&] {
          name.set("bar");
          throw Boom();
        });
        asyncio::sleep(0);
        EXPECT_TRUE(exc_handler_called);
      },
      virtual_time());
}

}  // namespace cpython_asyncio_futures_port
