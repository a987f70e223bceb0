// concurrent::Future: states, repr, callbacks, timeouts. Ported from
// CPython's Lib/test/test_concurrent_futures/test_future.py.
#include <atomic>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"

namespace concurrent = greenlet::concurrent;
namespace asyncio = greenlet::asyncio;

namespace {

class ConcurrentFuture : public greenlet_test::GreenletTest {};

TEST_F(ConcurrentFuture, Repr) {
  concurrent::Future<int> pending, running, cancelled, finished, raised;
  running.set_running_or_notify_cancel();
  cancelled.cancel();
  finished.set_running_or_notify_cancel();
  finished.set_result(1);
  raised.set_exception(std::make_exception_ptr(std::runtime_error("x")));
  const std::string at = "<Future at 0x[0-9a-f]+ state=";
  EXPECT_TRUE(std::regex_match(pending.repr(), std::regex(at + "pending>"))) << pending.repr();
  EXPECT_TRUE(std::regex_match(running.repr(), std::regex(at + "running>"))) << running.repr();
  EXPECT_TRUE(std::regex_match(cancelled.repr(), std::regex(at + "cancelled>")));
  EXPECT_TRUE(std::regex_match(finished.repr(), std::regex(at + "finished returned int>"))) << finished.repr();
  EXPECT_TRUE(std::regex_match(raised.repr(), std::regex(at + "finished raised runtime_error>"))) << raised.repr();
  concurrent::Future<std::string> s;
  s.set_result("x");
  EXPECT_NE(s.repr().find("returned str"), std::string::npos);
}

TEST_F(ConcurrentFuture, CancelOnlyBeforeRunning) {
  concurrent::Future<int> f;
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancel());  // cancelling twice is fine
  EXPECT_FALSE(f.set_running_or_notify_cancel());
  concurrent::Future<int> g;
  EXPECT_TRUE(g.set_running_or_notify_cancel());
  EXPECT_TRUE(g.running());
  EXPECT_FALSE(g.cancel());
  g.set_result(3);
  EXPECT_FALSE(g.cancel());
  EXPECT_EQ(g.result(), 3);
}

TEST_F(ConcurrentFuture, DoneCallbackRunsInCompletingThreadOrAtOnce) {
  concurrent::Future<int> f;
  std::thread::id where;
  int seen = 0;
  f.add_done_callback([&](const concurrent::Future<int>& done) {
    where = std::this_thread::get_id();
    seen = done.result();
  });
  std::thread t([&] { f.set_result(9); });
  const std::thread::id setter = t.get_id();
  t.join();
  EXPECT_EQ(where, setter);
  EXPECT_EQ(seen, 9);
  bool now = false;
  f.add_done_callback([&](const concurrent::Future<int>&) { now = true; });
  EXPECT_TRUE(now);
}

TEST_F(ConcurrentFuture, CallbackSeesCancellation) {
  concurrent::Future<int> f;
  bool cancelled = false;
  f.add_done_callback([&](const concurrent::Future<int>& done) { cancelled = done.cancelled(); });
  f.cancel();
  EXPECT_TRUE(cancelled);
}

TEST_F(ConcurrentFuture, ResultTimeout) {
  concurrent::Future<int> f;
  EXPECT_THROW(f.result(0.01), concurrent::TimeoutError);
  EXPECT_THROW(f.result(0), concurrent::TimeoutError);
  EXPECT_THROW(f.exception(0.001), concurrent::TimeoutError);
  std::thread t([&] { f.set_result(5); });
  EXPECT_EQ(f.result(30), 5);
  t.join();
}

TEST_F(ConcurrentFuture, SetTwiceIsInvalidState) {
  concurrent::Future<int> f;
  f.set_result(1);
  EXPECT_THROW(f.set_result(2), asyncio::InvalidStateError);
  EXPECT_THROW(f.set_exception(std::make_exception_ptr(std::runtime_error("x"))), asyncio::InvalidStateError);
}

TEST_F(ConcurrentFuture, ExceptionIsNullOnSuccess) {
  concurrent::Future<void> f;
  f.set_result();
  EXPECT_EQ(f.exception(), nullptr);
  f.result();
}

// A blocking result() inside a running task would stall the loop thread.
TEST_F(ConcurrentFuture, BlockingInsideTaskIsAnError) {
  concurrent::Future<int> f;
  asyncio::run([&] {
    try {
      f.result();
      ADD_FAILURE() << "result() blocked inside a task";
    } catch (const concurrent::RuntimeError& e) {
      EXPECT_EQ(e.condition(), concurrent::concurrent_errc::blocking_in_loop);
      EXPECT_NE(std::string(e.what()).find("wrap_future"), std::string::npos);
    }
    EXPECT_THROW(f.result(0), concurrent::TimeoutError);  // a poll is fine
    f.set_result(1);
    EXPECT_EQ(f.result(), 1);  // done: nothing to block on
  });
}

// A type's name as Python shows a class: unqualified, without template
// arguments, and a class nested in a template named by itself, not by its
// enclosing template (it gave "outer" before asyncio's repr shared this code).
namespace naming {
template <class T>
struct outer {
  struct inner {};
};
}  // namespace naming

TEST_F(ConcurrentFuture, DemangleGivesTheUnqualifiedClassName) {
  EXPECT_EQ(concurrent::detail::demangle(typeid(std::runtime_error).name()), "runtime_error");
  EXPECT_EQ(concurrent::detail::demangle(typeid(std::vector<int>).name()), "vector");
  EXPECT_EQ(concurrent::detail::demangle(typeid(naming::outer<std::string>::inner).name()), "inner");
}

}  // namespace
