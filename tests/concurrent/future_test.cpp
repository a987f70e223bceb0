// concurrent::Future: states, repr, callbacks, timeouts. Ported from
// CPython's Lib/test/test_concurrent_futures/test_future.py.
#include <atomic>
#include <cctype>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"

namespace concurrent = greenlet::concurrent;
namespace asyncio = greenlet::asyncio;

namespace {

class ConcurrentFuture : public greenlet_test::GreenletTest {};

// future_repr_without_address(repr) is repr with the hex digits of its
// " at 0x..." address replaced by "?", so that it compares exactly. (Not
// std::regex: g++ 12 warns inside <regex> under sanitizer instrumentation.)
std::string future_repr_without_address(std::string repr) {
  const std::size_t digits = repr.find(" at 0x");
  if (digits == std::string::npos) return repr;
  std::size_t end = digits + 6;
  while (end < repr.size() && std::isxdigit(static_cast<unsigned char>(repr[end])) != 0) ++end;
  if (end > digits + 6) repr.replace(digits + 6, end - (digits + 6), "?");
  return repr;
}

TEST_F(ConcurrentFuture, Repr) {
  concurrent::Future<int> pending, running, cancelled, finished, raised;
  running.set_running_or_notify_cancel();
  cancelled.cancel();
  finished.set_running_or_notify_cancel();
  finished.set_result(1);
  raised.set_exception(std::make_exception_ptr(std::runtime_error("x")));
  EXPECT_EQ(future_repr_without_address(pending.repr()), "<Future at 0x? state=pending>");
  EXPECT_EQ(future_repr_without_address(running.repr()), "<Future at 0x? state=running>");
  EXPECT_EQ(future_repr_without_address(cancelled.repr()), "<Future at 0x? state=cancelled>");
  EXPECT_EQ(future_repr_without_address(finished.repr()), "<Future at 0x? state=finished returned int>");
  EXPECT_EQ(future_repr_without_address(raised.repr()), "<Future at 0x? state=finished raised runtime_error>");
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

// test_future.py's set_running_or_notify_cancel on a running or finished
// future: Python raises RuntimeError("Future in unexpected state"); it was
// InvalidStateError.
TEST_F(ConcurrentFuture, SetRunningTwiceIsARuntimeError) {
  auto expect_unexpected_state = [](const concurrent::Future<int>& f, const char* state) {
    try {
      f.set_running_or_notify_cancel();
      ADD_FAILURE() << "no exception on a " << state << " future";
    } catch (const concurrent::RuntimeError& e) {
      EXPECT_EQ(e.condition(), concurrent::concurrent_errc::unexpected_state);
      EXPECT_NE(std::string(e.what()).find("Future in unexpected state"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(state), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a concurrent::RuntimeError: " << e.what();
    }
  };
  concurrent::Future<int> f;
  ASSERT_TRUE(f.set_running_or_notify_cancel());
  expect_unexpected_state(f, "running");
  f.set_result(1);
  expect_unexpected_state(f, "finished");
  EXPECT_EQ(f.result(), 1);
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

// tracked records which of its objects are alive, by address, so that a
// test can tell whether a reference points at a live value without reading
// what it points at.
struct tracked {
  explicit tracked(int v) : value(v) { live().insert(this); }
  tracked(const tracked& other) : value(other.value) { live().insert(this); }
  tracked& operator=(const tracked&) = delete;
  ~tracked() { live().erase(this); }
  static bool is_live(const tracked* t) { return live().count(t) != 0; }
  static std::set<const tracked*>& live() {
    static std::set<const tracked*> objects;
    return objects;
  }
  int value;
};

// Python's `for x in pool.submit(f).result():` ported word for word: on a
// temporary handle, the last one, result() returned a reference into the
// shared state the temporary freed (a heap-use-after-free under ASan). It
// is now the value, a copy: another handle still sees the result.
TEST_F(ConcurrentFuture, ResultOfATemporaryHandleIsAValue) {
  using vector_future = concurrent::Future<std::vector<int>>;
  static_assert(std::is_same_v<decltype(std::declval<vector_future>().result()), std::vector<int>>);
  static_assert(std::is_same_v<decltype(std::declval<vector_future&>().result()), std::vector<int>&>);
  static_assert(std::is_same_v<decltype(std::declval<const vector_future&>().result()), std::vector<int>&>);
  auto finished = [](int v) {
    concurrent::Future<tracked> f;
    f.set_result(v);
    return f;
  };
  {
    auto&& v = finished(7).result();
    EXPECT_TRUE(tracked::is_live(&v));
    EXPECT_EQ(v.value, 7);
  }

  concurrent::ThreadPoolExecutor pool(1);
  int sum = 0;
  for (int x : pool.submit([] { return std::vector<int>{1, 2, 3}; }).result()) sum += x;
  EXPECT_EQ(sum, 6);

  vector_future shared;
  shared.set_result(std::vector<int>{4, 5});
  std::vector<int> copy = vector_future(shared).result();
  EXPECT_EQ(copy, (std::vector<int>{4, 5}));
  EXPECT_EQ(shared.result(), (std::vector<int>{4, 5}));  // copied, not moved out
}

// A move-only result cannot be copied: result() on a temporary handle moves
// it out, once; any handle's result() then says so (InvalidStateError)
// instead of handing out a moved-from (null) value.
TEST_F(ConcurrentFuture, MoveOnlyResultOfATemporaryHandleIsTakenOnce) {
  concurrent::ThreadPoolExecutor pool(1);
  std::unique_ptr<int> direct = pool.submit([] { return std::make_unique<int>(3); }).result();
  ASSERT_TRUE(direct);
  EXPECT_EQ(*direct, 3);

  concurrent::Future<std::unique_ptr<int>> f;
  f.set_result(std::make_unique<int>(7));
  EXPECT_EQ(*f.result(), 7);  // an lvalue handle reads it in place
  std::unique_ptr<int> taken = concurrent::Future<std::unique_ptr<int>>(f).result();
  ASSERT_TRUE(taken);
  EXPECT_EQ(*taken, 7);
  try {
    f.result();
    ADD_FAILURE() << "result() after the value was taken";
  } catch (const asyncio::InvalidStateError& e) {
    EXPECT_NE(std::string(e.what()).find("already moved out"), std::string::npos) << e.what();
  }
  EXPECT_THROW(concurrent::Future<std::unique_ptr<int>>(f).result(), asyncio::InvalidStateError);
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.exception(), nullptr);  // it did succeed
}

// Two asyncio::wrap_future()s of one future with a move-only result: the
// first gets the value, the second InvalidStateError, and so does the
// future's own result() afterwards. Before, the first delivery moved the
// value out of the shared state, so the second wrap got a null and so did
// cf.result(), silently.
TEST_F(ConcurrentFuture, WrapFutureOfAMoveOnlyResultHasOneConsumer) {
  asyncio::run([] {
    concurrent::ThreadPoolExecutor pool(1);
    auto cf = pool.submit([] { return std::make_unique<int>(7); });
    auto first = asyncio::wrap_future(cf);
    auto second = asyncio::wrap_future(cf);
    auto& value = asyncio::await(first);
    ASSERT_TRUE(value);
    EXPECT_EQ(*value, 7);
    EXPECT_THROW(asyncio::await(second), asyncio::InvalidStateError);
    EXPECT_THROW(cf.result(), asyncio::InvalidStateError);

    // Copyable results are copied: every wrap and the future keep the value.
    auto shared = pool.submit([] { return std::string("x"); });
    auto a = asyncio::wrap_future(shared);
    auto b = asyncio::wrap_future(shared);
    EXPECT_EQ(asyncio::await(a), "x");
    EXPECT_EQ(asyncio::await(b), "x");
    EXPECT_EQ(shared.result(), "x");
  });
}

// finish_with_callbacks_held finishes a future on another thread and holds
// its done callbacks up at the first, registered when it is made: while they
// are held, the future is done, so a wrap_future() made then posts its
// delivery at once, ahead of the wraps made before. finish(v) returns once
// the future is done; release() lets the callbacks go on and joins.
class finish_with_callbacks_held {
 public:
  explicit finish_with_callbacks_held(const concurrent::Future<std::unique_ptr<int>>& cf) : cf_(cf) {
    cf_.add_done_callback([this](const concurrent::Future<std::unique_ptr<int>>&) {
      holding_ = true;
      while (!release_) std::this_thread::yield();
    });
  }
  void finish(int v) {
    finisher_ = std::thread([this, v] { cf_.set_result(std::make_unique<int>(v)); });
    while (!holding_) std::this_thread::yield();
  }
  void release() {
    release_ = true;
    finisher_.join();
  }

 private:
  concurrent::Future<std::unique_ptr<int>> cf_;
  std::atomic<bool> holding_{false};
  std::atomic<bool> release_{false};
  std::thread finisher_;
};

// The consumer of a move-only result is the wrap made first, even when the
// second wrap's callback posts first: here cf finishes on another thread,
// whose callbacks are held up before the first wrap's, while the second wrap
// is made (cf is done: its callback posts at once, from this thread). Before,
// the first delivery to run took the value, so the first wrap got
// InvalidStateError; CI met it by chance when the pool's worker was slow.
TEST_F(ConcurrentFuture, FirstWrapOfAMoveOnlyResultGetsItWhicheverCallbackPostsFirst) {
  asyncio::run([] {
    concurrent::Future<std::unique_ptr<int>> cf;
    finish_with_callbacks_held held(cf);
    auto first = asyncio::wrap_future(cf);
    held.finish(7);
    auto second = asyncio::wrap_future(cf);  // posts now, before the first's callback
    held.release();
    try {
      asyncio::await(second);
      ADD_FAILURE() << "the second wrap got the value";
    } catch (const asyncio::InvalidStateError& e) {
      EXPECT_NE(std::string(e.what()).find("only one consumer"), std::string::npos) << e.what();
    }
    auto& value = asyncio::await(first);
    ASSERT_TRUE(value);
    EXPECT_EQ(*value, 7);
    EXPECT_THROW(concurrent::Future<std::unique_ptr<int>>(cf).result(), asyncio::InvalidStateError);
  });
}

// A wrap cancelled before cf finishes gives its claim back at once, not at
// its own delivery: here the second wrap's delivery runs first (cf's
// callbacks are held up on the finishing thread while the second wrap is
// made, and it posts at once), and still gets the value.
TEST_F(ConcurrentFuture, ACancelledFirstWrapLeavesTheMoveOnlyResultToTheSecond) {
  concurrent::Future<std::unique_ptr<int>> cf;
  ASSERT_TRUE(cf.set_running_or_notify_cancel());  // running: cancelling a wrap cannot cancel cf
  asyncio::run([&] {
    finish_with_callbacks_held held(cf);
    auto first = asyncio::wrap_future(cf);
    EXPECT_TRUE(first.cancel());
    asyncio::sleep(0);  // the cancelled wrap's done callback runs: the claim goes back
    held.finish(9);
    auto second = asyncio::wrap_future(cf);  // posts now, before the first's delivery
    held.release();
    auto& value = asyncio::await(second);
    ASSERT_TRUE(value);
    EXPECT_EQ(*value, 9);
    EXPECT_TRUE(first.cancelled());
  });
}

// A wrap cancelled before its delivery gives its claim back: the value stays
// in cf for the next consumer, here result() on a temporary handle.
TEST_F(ConcurrentFuture, CancelledWrapLeavesTheMoveOnlyResultToTheNextConsumer) {
  concurrent::Future<std::unique_ptr<int>> cf;
  ASSERT_TRUE(cf.set_running_or_notify_cancel());  // running: cancelling the wrap cannot cancel cf
  asyncio::run([&] {
    auto wrap = asyncio::wrap_future(cf);
    EXPECT_TRUE(wrap.cancel());
    cf.set_result(std::make_unique<int>(5));
    for (int i = 0; i < 3; ++i) asyncio::sleep(0);  // the delivery runs and finds its future done
    EXPECT_FALSE(cf.cancelled());
  });
  std::unique_ptr<int> taken = concurrent::Future<std::unique_ptr<int>>(cf).result();
  ASSERT_TRUE(taken);
  EXPECT_EQ(*taken, 5);
}

}  // namespace
