// future_test.cpp: Future<T>, asyncio.Future. Ported from CPython's
// Lib/test/test_asyncio/test_futures.py (BaseFutureTests,
// BaseFutureDoneCallbackTests); each case names its source.
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::error_log;
using asyncio_test::run_briefly;
using asyncio_test::TestError;
using asyncio_test::virtual_time;
using FutureTests = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

// test_futures.py BaseFutureTests.test_initial_state
TEST_F(FutureTests, test_initial_state) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  EXPECT_FALSE(f.cancelled());
  EXPECT_FALSE(f.done());
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(f.done());
}

// test_futures.py BaseFutureTests.test_result (and the pending part of
// test_cancel: result()/exception() of a pending future raise InvalidStateError).
TEST_F(FutureTests, test_result) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  EXPECT_THROW(f.result(), asyncio::InvalidStateError);
  EXPECT_THROW(f.exception(), asyncio::InvalidStateError);

  f.set_result(42);
  EXPECT_FALSE(f.cancelled());
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.result(), 42);
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_THROW(f.set_result(1), asyncio::InvalidStateError);
  EXPECT_THROW(f.set_exception(TestError("late")), asyncio::InvalidStateError);
  EXPECT_FALSE(f.cancel());
  EXPECT_EQ(f.result(), 42);
}

// test_futures.py BaseFutureTests.test_exception
TEST_F(FutureTests, test_exception) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  f.set_exception(TestError("boom"));
  EXPECT_FALSE(f.cancelled());
  EXPECT_TRUE(f.done());
  EXPECT_THROW(f.result(), TestError);
  std::exception_ptr e = f.exception();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(asyncio_test::what_of(e), "boom");
  EXPECT_THROW(f.set_result(1), asyncio::InvalidStateError);
  EXPECT_THROW(f.set_exception(TestError("again")), asyncio::InvalidStateError);
  EXPECT_FALSE(f.cancel());
}

// test_futures.py BaseFutureTests.test_cancel
TEST_F(FutureTests, test_cancel) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(f.done());
  EXPECT_THROW(f.result(), asyncio::CancelledError);
  EXPECT_THROW(f.exception(), asyncio::CancelledError);
  EXPECT_THROW(f.set_result(1), asyncio::InvalidStateError);
  EXPECT_THROW(f.set_exception(TestError("x")), asyncio::InvalidStateError);
  EXPECT_FALSE(f.cancel());
}

// test_futures.py BaseFutureTests.test_future_cancel_message_getter and
// test_cancel_with_message: the message given to cancel() is carried by
// the CancelledError that result() raises.
TEST_F(FutureTests, test_future_cancel_message_getter) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  f.cancel("my message");
  try {
    f.result();
    ADD_FAILURE() << "no CancelledError";
  } catch (const asyncio::CancelledError& e) {
    EXPECT_EQ(e.message(), "my message");
  }
  auto g = loop.create_future<int>();
  g.cancel();
  try {
    g.exception();
    ADD_FAILURE() << "no CancelledError";
  } catch (const asyncio::CancelledError& e) {
    EXPECT_EQ(e.message(), "");
  }
}

// test_futures.py BaseFutureTests.test_future_repr (and _repr_running etc.):
// pending, cancelled, finished with a result or an exception.
TEST_F(FutureTests, test_future_repr) {
  asyncio::event_loop loop;
  auto pending = loop.create_future<int>();
  EXPECT_EQ(pending.repr(), "<Future pending>");
  auto cancelled = loop.create_future<int>();
  cancelled.cancel();
  EXPECT_EQ(cancelled.repr(), "<Future cancelled>");
  auto with_int = loop.create_future<int>();
  with_int.set_result(4);
  EXPECT_EQ(with_int.repr(), "<Future finished result=4>");
  auto with_str = loop.create_future<std::string>();
  with_str.set_result("abc");
  EXPECT_EQ(with_str.repr(), "<Future finished result='abc'>");
  auto with_void = loop.create_future<>();
  with_void.set_result();
  EXPECT_EQ(with_void.repr(), "<Future finished result=None>");
  auto with_exc = loop.create_future<int>();
  with_exc.set_exception(TestError("boom"));
  EXPECT_EQ(with_exc.repr(), "<Future finished exception=TestError('boom')>");
  with_exc.exception();  // retrieved: no report when it goes
}

// test_futures.py BaseFutureDoneCallbackTests.test_callbacks_invoked_on_set_result:
// done callbacks run in registration order, scheduled with call_soon, never
// inline in set_result(); each receives the future.
TEST_F(FutureTests, test_callbacks_invoked_on_set_result) {
  std::vector<int> bag;
  asyncio::event_loop loop;
  auto f = loop.create_future<std::string>();
  bool same_future = true;
  f.add_done_callback([&](asyncio::Future<std::string>& arg) {
    same_future = same_future && arg == f;
    bag.push_back(42);
  });
  f.add_done_callback([&](asyncio::Future<std::string>& arg) {
    same_future = same_future && arg == f;
    bag.push_back(17);
  });
  EXPECT_TRUE(bag.empty());
  f.set_result("foo");
  EXPECT_TRUE(bag.empty());  // not inline
  run_briefly(loop);
  EXPECT_EQ(bag, (std::vector<int>{42, 17}));
  EXPECT_EQ(f.result(), "foo");
  EXPECT_TRUE(same_future);
}

// test_futures.py BaseFutureDoneCallbackTests.test_callbacks_invoked_on_set_exception
TEST_F(FutureTests, test_callbacks_invoked_on_set_exception) {
  std::vector<int> bag;
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  f.add_done_callback([&](asyncio::Future<int>&) { bag.push_back(100); });
  EXPECT_TRUE(bag.empty());
  f.set_exception(TestError("boom"));
  EXPECT_TRUE(bag.empty());
  run_briefly(loop);
  EXPECT_EQ(bag, (std::vector<int>{100}));
  EXPECT_EQ(asyncio_test::what_of(f.exception()), "boom");
}

// test_futures.py BaseFutureDoneCallbackTests (cancel schedules callbacks too).
TEST_F(FutureTests, test_callbacks_invoked_on_cancel) {
  std::vector<std::string> log;
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  f.add_done_callback([&](asyncio::Future<int>& arg) { log.push_back(arg.cancelled() ? "cancelled" : "?"); });
  f.cancel();
  EXPECT_TRUE(log.empty());
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"cancelled"}));
}

// futures.py Future.add_done_callback: "If the future is already done when
// this is called, the callback is scheduled with call_soon". It queues behind
// callbacks already scheduled.
TEST_F(FutureTests, test_add_done_callback_on_done_future_is_scheduled) {
  Strings log;
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  f.set_result(1);
  loop.call_soon([&] { log.push_back("earlier call_soon"); });
  f.add_done_callback([&](asyncio::Future<int>& arg) { log.push_back("done cb " + std::to_string(arg.result())); });
  EXPECT_TRUE(log.empty());
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"earlier call_soon", "done cb 1"}));
}

// futures.py Future.__schedule_callbacks: callbacks are queued at the moment
// the future finishes, in FIFO order with other call_soon() callbacks.
TEST_F(FutureTests, test_callbacks_queue_with_call_soon) {
  Strings log;
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  f.add_done_callback([&](asyncio::Future<int>&) { log.push_back("done cb"); });
  loop.call_soon([&] { log.push_back("before"); });
  f.set_result(1);
  loop.call_soon([&] { log.push_back("after"); });
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"before", "done cb", "after"}));
}

// test_futures.py BaseFutureDoneCallbackTests.test_callbacks_remove_first_callback,
// test_callbacks_remove_third_callback, test_callbacks_invoked_on_set_result
// (remove_done_callback returns how many were removed).
TEST_F(FutureTests, test_callbacks_remove_callback) {
  std::vector<int> bag;
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  const auto id1 = f.add_done_callback([&](asyncio::Future<int>&) { bag.push_back(17); });
  f.add_done_callback([&](asyncio::Future<int>&) { bag.push_back(42); });
  const auto id3 = f.add_done_callback([&](asyncio::Future<int>&) { bag.push_back(100); });
  f.add_done_callback([&](asyncio::Future<int>&) { bag.push_back(7); });
  EXPECT_EQ(f.remove_done_callback(id1), 1u);
  EXPECT_EQ(f.remove_done_callback(id3), 1u);
  EXPECT_EQ(f.remove_done_callback(id3), 0u);
  f.set_result(1);
  run_briefly(loop);
  EXPECT_EQ(bag, (std::vector<int>{42, 7}));
}

// futures.py Future.__schedule_callbacks clears the list: once the future is
// done, remove_done_callback() finds nothing and the callback still runs.
TEST_F(FutureTests, test_remove_done_callback_after_done) {
  std::vector<int> bag;
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  const auto id = f.add_done_callback([&](asyncio::Future<int>&) { bag.push_back(1); });
  f.set_result(1);
  EXPECT_EQ(f.remove_done_callback(id), 0u);
  run_briefly(loop);
  EXPECT_EQ(bag, (std::vector<int>{1}));
}

// test_futures.py BaseFutureTests.test_tb_logger_exception_unretrieved: a
// future whose exception nobody retrieved reports it when it goes.
TEST_F(FutureTests, test_tb_logger_exception_unretrieved) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  {
    auto f = loop.create_future<int>();
    f.set_exception(TestError("boom"));
  }
  run_briefly(loop);
  EXPECT_EQ(errors.messages, (Strings{"Future exception was never retrieved"}));
  EXPECT_EQ(errors.whats, (Strings{"boom"}));
}

// test_futures.py BaseFutureTests.test_tb_logger_exception_retrieved,
// test_tb_logger_exception_result_retrieved, test_tb_logger_result_unretrieved,
// test_tb_logger_abandoned: no report.
TEST_F(FutureTests, test_tb_logger_exception_retrieved) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  {
    auto by_exception = loop.create_future<int>();
    by_exception.set_exception(TestError("boom"));
    by_exception.exception();
    auto by_result = loop.create_future<int>();
    by_result.set_exception(TestError("boom"));
    EXPECT_THROW(by_result.result(), TestError);
    auto result_unretrieved = loop.create_future<int>();
    result_unretrieved.set_result(42);
    auto abandoned = loop.create_future<int>();
    auto cancelled = loop.create_future<int>();
    cancelled.cancel();
  }
  run_briefly(loop);
  EXPECT_TRUE(errors.messages.empty()) << errors.messages.front();
}

// test_futures.py BaseFutureTests.test_tb_logger_not_called_after_cancel:
// cancel() on a failed future (which returns false) still marks the
// exception as seen: Future.cancel() clears __log_traceback first.
// Regression test, this once failed: cancel() on a done future changes nothing, so the
// "Future exception was never retrieved" report is still made.
TEST_F(FutureTests, test_tb_logger_not_called_after_cancel) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  {
    auto f = loop.create_future<int>();
    f.set_exception(TestError("boom"));
    EXPECT_FALSE(f.cancel());
  }
  EXPECT_TRUE(errors.messages.empty());
}

// test_futures.py BaseFutureTests.test_await / test_yield_from_twice: a
// task awaits a future set by a timer; awaiting it again returns at once.
TEST_F(FutureTests, test_await_future) {
  Strings log;
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<std::string>();
  loop.call_later(0.5, [f]() mutable { f.set_result("value"); });
  auto t = loop.create_task([&] {
    log.push_back("first " + asyncio::await(f));
    log.push_back("second " + asyncio::await(f));
    std::string& ref = asyncio::await(f);  // an lvalue future gives a reference
    log.push_back(&ref == &f.result() ? "same object" : "copy");
  });
  loop.run_until_complete(t);
  EXPECT_EQ(log, (Strings{"first value", "second value", "same object"}));
  EXPECT_DOUBLE_EQ(loop.time(), 0.5);
}

// test_futures.py BaseFutureTests.test_exception (awaiting a failed future
// raises its exception in the task).
TEST_F(FutureTests, test_await_future_exception) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  auto t = loop.create_task([&] { return asyncio::await(f); });
  loop.call_soon([f]() mutable { f.set_exception(TestError("boom")); });
  EXPECT_THROW(loop.run_until_complete(t), TestError);
  EXPECT_TRUE(t.done());
  EXPECT_FALSE(t.cancelled());
}

// A move-only result: awaiting a temporary future moves it out.
TEST_F(FutureTests, test_move_only_result) {
  asyncio::event_loop loop;
  auto f = loop.create_future<std::unique_ptr<int>>();
  f.set_result(std::make_unique<int>(5));
  auto t = loop.create_task([f]() mutable { return *asyncio::await(std::move(f)); });
  EXPECT_EQ(loop.run_until_complete(t), 5);
}

// result() on a temporary handle, the last one (a function returning a done
// future): the value, not a reference into the state the temporary frees.
// Moved out when the temporary is the only handle, copied otherwise.
TEST_F(FutureTests, ResultOfATemporaryHandleIsAValue) {
  using vector_future = asyncio::Future<std::vector<int>>;
  static_assert(std::is_same_v<decltype(std::declval<vector_future>().result()), std::vector<int>>);
  static_assert(std::is_same_v<decltype(std::declval<vector_future&>().result()), std::vector<int>&>);
  asyncio::event_loop loop;
  auto finished = [&loop](std::vector<int> v) {
    auto f = loop.create_future<std::vector<int>>();
    f.set_result(std::move(v));
    return f;
  };
  int sum = 0;
  for (int x : finished({1, 2, 3}).result()) sum += x;
  EXPECT_EQ(sum, 6);

  auto shared = finished({4, 5});
  std::vector<int> copy = vector_future(shared).result();
  EXPECT_EQ(copy, (std::vector<int>{4, 5}));
  EXPECT_EQ(shared.result(), (std::vector<int>{4, 5}));  // copied, not moved out
  std::vector<int> last = std::move(shared).result();
  EXPECT_EQ(last, (std::vector<int>{4, 5}));
}

// set_exception(nullptr) is refused with InvalidStateError, as a null exception_ptr is. The
// literal took the exception-object overload: the future failed with a std::nullptr_t.
TEST_F(FutureTests, SetExceptionNullLiteralIsRefused) {
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<int>();
  EXPECT_THROW(f.set_exception(nullptr), asyncio::InvalidStateError);
  EXPECT_FALSE(f.done());
  f.set_result(3);
  EXPECT_EQ(f.result(), 3);
  loop.close();
}

// futures.py Future.get_loop(): the loop that made the future; once that event_loop object is
// gone (the future outlived it) a clear RuntimeError instead of a dangling reference.
TEST_F(FutureTests, get_loop_is_the_loop_and_refuses_once_it_is_gone) {
  asyncio::Future<int> f;
  {
    asyncio::event_loop loop;
    f = loop.create_future<int>();
    EXPECT_EQ(&f.get_loop(), &loop);
  }
  try {
    f.get_loop();
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.code(), asyncio::asyncio_errc::loop_closed);
    EXPECT_NE(std::string(e.what()).find("event loop object was destroyed"), std::string::npos) << e.what();
  }
}

}  // namespace
