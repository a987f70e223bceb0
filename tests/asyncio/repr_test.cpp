// repr_test.cpp: the repr() of futures and tasks, as CPython 3.11's asyncio
// prints them (people porting compare log lines). Each case gives its Python
// twin and the line that prints (`coro=<...>` left out: C++ has no coroutine
// object to name). Before, an exception printed as `exception=boom` (its
// what() alone) and a waiting task showed no wait_for= nor cb=.
#include <stdexcept>
#include <string>
#include <vector>

#include <greenlet/asyncio/locks.hpp>
#include <greenlet/asyncio/sync_errors.hpp>
#include <greenlet/asyncio/taskgroup.hpp>

#include "asyncio/asyncio_test_support.hpp"

namespace templated {
// A C++ exception type with namespaces and template arguments, which
// Python's repr of a class has no room for.
template <class T>
struct tagged_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace templated

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::error_log;
using asyncio_test::run_briefly;
using asyncio_test::TestError;
using ReprTests = greenlet_test::GreenletTest;

struct not_a_std_exception {};

// failed_future_repr(loop, e) is the repr of a future finished with e.
std::string failed_future_repr(asyncio::event_loop& loop, std::exception_ptr e) {
  auto f = loop.create_future<int>();
  f.set_exception(e);
  f.exception();  // retrieved: no report when it goes
  return f.repr();
}
template <class E>
std::string failed_future_repr(asyncio::event_loop& loop, E error) {
  return failed_future_repr(loop, std::make_exception_ptr(error));
}

// f = loop.create_future(); f.set_exception(ValueError('boom')); print(repr(f))
//   <Future finished exception=ValueError('boom')>
// The library's exceptions print their Python names; the message is a str's repr.
TEST_F(ReprTests, ExceptionShowsPythonNameAndQuotedMessage) {
  asyncio::event_loop loop;
  EXPECT_EQ(failed_future_repr(loop, asyncio::ValueError("boom")), "<Future finished exception=ValueError('boom')>");
  // RuntimeError("it's") -> RuntimeError("it's"): double quotes for a single quote.
  EXPECT_EQ(failed_future_repr(loop, asyncio::RuntimeError(asyncio::asyncio_errc::deadlock, "it's")),
            "<Future finished exception=RuntimeError(\"it's\")>");
  // asyncio.TimeoutError() -> TimeoutError(); CancelledError() -> CancelledError()
  EXPECT_EQ(failed_future_repr(loop, asyncio::TimeoutError()), "<Future finished exception=TimeoutError()>");
  EXPECT_EQ(failed_future_repr(loop, asyncio::TimeoutError("wait_for() timed out")),
            "<Future finished exception=TimeoutError('wait_for() timed out')>");
  EXPECT_EQ(failed_future_repr(loop, asyncio::CancelledError()), "<Future finished exception=CancelledError()>");
  EXPECT_EQ(failed_future_repr(loop, asyncio::CancelledError("stop")),
            "<Future finished exception=CancelledError('stop')>");
  // ExceptionGroup('unhandled errors in a TaskGroup', [ValueError('boom'), ValueError('x')])
  EXPECT_EQ(failed_future_repr(loop, asyncio::ExceptionGroup("unhandled errors in a TaskGroup",
                                                             {std::make_exception_ptr(asyncio::ValueError("boom")),
                                                              std::make_exception_ptr(asyncio::ValueError("x"))})),
            "<Future finished exception=ExceptionGroup('unhandled errors in a TaskGroup', [ValueError('boom'), "
            "ValueError('x')])>");
}

// Other C++ exceptions print their class name, unqualified (C++ only: no twin).
TEST_F(ReprTests, CppExceptionShowsUnqualifiedClassName) {
  asyncio::event_loop loop;
  EXPECT_EQ(failed_future_repr(loop, std::runtime_error("boom")), "<Future finished exception=runtime_error('boom')>");
  EXPECT_EQ(failed_future_repr(loop, TestError("boom")), "<Future finished exception=TestError('boom')>");
  EXPECT_EQ(failed_future_repr(loop, std::out_of_range("i")), "<Future finished exception=out_of_range('i')>");
  EXPECT_EQ(failed_future_repr(loop, templated::tagged_error<std::vector<int>>("t")),
            "<Future finished exception=tagged_error('t')>");
  // No what() to show: the type alone, as an exception made without arguments.
  EXPECT_EQ(failed_future_repr(loop, not_a_std_exception{}), "<Future finished exception=not_a_std_exception()>");
  EXPECT_EQ(failed_future_repr(loop, 42), "<Future finished exception=int()>");
}

// for m in ['say "hi"', 'both \' and "', 'a\\b\nc\td\x01e\x7f', '', 'héllo\xa0\u2028x']:
//     f = loop.create_future(); f.set_exception(RuntimeError(m)); print(repr(f))
//   <Future finished exception=RuntimeError('say "hi"')>
//   <Future finished exception=RuntimeError('both \' and "')>
//   <Future finished exception=RuntimeError('a\\b\nc\td\x01e\x7f')>
//   <Future finished exception=RuntimeError('')>
//   <Future finished exception=RuntimeError('héllo\xa0\u2028x')>
TEST_F(ReprTests, MessageIsQuotedAsPythonQuotesAStr) {
  asyncio::event_loop loop;
  const auto repr_of = [&](const std::string& message) {
    return failed_future_repr(loop, std::runtime_error(message));
  };
  EXPECT_EQ(repr_of("say \"hi\""), "<Future finished exception=runtime_error('say \"hi\"')>");
  EXPECT_EQ(repr_of("both ' and \""), "<Future finished exception=runtime_error('both \\' and \"')>");
  EXPECT_EQ(repr_of("a\\b\nc\td\x01"
                    "e\x7f"),
            "<Future finished exception=runtime_error('a\\\\b\\nc\\td\\x01e\\x7f')>");
  EXPECT_EQ(repr_of(""), "<Future finished exception=runtime_error('')>");
  EXPECT_EQ(repr_of("h\u00e9llo\u00a0\u2028x"), "<Future finished exception=runtime_error('h\u00e9llo\\xa0\\u2028x')>");
  // Not UTF-8 (C++ only: a Python str cannot hold it): the byte as \xhh.
  EXPECT_EQ(repr_of("bad\xff"), "<Future finished exception=runtime_error('bad\\xff')>");
}

// async def fail(): raise ValueError('boom')
// t = asyncio.create_task(fail(), name='failing'); (await it) print(repr(t))
//   <Task finished name='failing' coro=<...> exception=ValueError('boom')>
TEST_F(ReprTests, FailedTaskShowsExceptionRepr) {
  asyncio::event_loop loop;
  auto t = loop.create_task([]() -> int { throw asyncio::ValueError("boom"); }, "failing");
  run_briefly(loop);
  ASSERT_TRUE(t.done());
  t.exception();
  EXPECT_EQ(t.repr(), "<Task finished name='failing' exception=ValueError('boom')>");
}

// fut = loop.create_future()
// async def waiter(): await fut
// w = asyncio.create_task(waiter(), name='waiter'); await asyncio.sleep(0)
// print(repr(w)); print(repr(fut))
//   <Task pending name='waiter' coro=<...> wait_for=<Future pending cb=[Task.task_wakeup()]>>
//   <Future pending cb=[Task.task_wakeup()]>
// async def outer(): await w
// o = asyncio.create_task(outer(), name='outer'); await asyncio.sleep(0)
// print(repr(o)); print(repr(w))
//   <Task pending name='outer' coro=<...> wait_for=<Task pending name='waiter' coro=<...>
//       wait_for=<Future pending cb=[Task.task_wakeup()]> cb=[Task.task_wakeup()]>>
//   <Task pending name='waiter' coro=<...> wait_for=<Future pending cb=[Task.task_wakeup()]> cb=[Task.task_wakeup()]>
// fut.set_result(1) ... print(repr(w))
//   <Task finished name='waiter' coro=<...> result=None>
TEST_F(ReprTests, WaitingTaskShowsWhatItAwaits) {
  asyncio::event_loop loop;
  auto fut = loop.create_future<int>();
  auto w = loop.create_task([&] { asyncio::await(fut); }, "waiter");
  run_briefly(loop);
  EXPECT_EQ(w.repr(), "<Task pending name='waiter' wait_for=<Future pending cb=[Task.task_wakeup()]>>");
  EXPECT_EQ(fut.repr(), "<Future pending cb=[Task.task_wakeup()]>");
  auto o = loop.create_task([&] { asyncio::await(w); }, "outer");
  run_briefly(loop);
  EXPECT_EQ(o.repr(),
            "<Task pending name='outer' wait_for=<Task pending name='waiter' wait_for=<Future pending "
            "cb=[Task.task_wakeup()]> cb=[Task.task_wakeup()]>>");
  EXPECT_EQ(w.repr(),
            "<Task pending name='waiter' wait_for=<Future pending cb=[Task.task_wakeup()]> cb=[Task.task_wakeup()]>");
  fut.set_result(1);
  loop.run_until_complete(o);
  EXPECT_EQ(w.repr(), "<Task finished name='waiter' result=None>");
  EXPECT_EQ(o.repr(), "<Task finished name='outer' result=None>");
}

// async def sleeper(): await asyncio.sleep(10)
// async def yielder():
//     while True: await asyncio.sleep(0)
//   <Task pending name='sleeper' coro=<...> wait_for=<Future pending cb=[Task.task_wakeup()]>>
//   <Task pending name='yielder' coro=<...>>
// asyncio's sleep(10) awaits a future; sleep(0) only yields, awaiting nothing.
TEST_F(ReprTests, SleepShowsItsFutureButSleepZeroNothing) {
  asyncio::event_loop loop;
  auto sleeper = loop.create_task([] { asyncio::sleep(10); }, "sleeper");
  auto yielder = loop.create_task(
      [] {
        for (;;) asyncio::sleep(0);
      },
      "yielder");
  run_briefly(loop);
  EXPECT_EQ(sleeper.repr(), "<Task pending name='sleeper' wait_for=<Future pending cb=[Task.task_wakeup()]>>");
  EXPECT_EQ(yielder.repr(), "<Task pending name='yielder'>");
  sleeper.cancel();
  yielder.cancel();
  run_briefly(loop);
  EXPECT_EQ(sleeper.repr(), "<Task cancelled name='sleeper'>");
}

// w waits on fut; w.cancel(); print(repr(w)) before w runs again:
//   <Task cancelling name='waiter' coro=<...> wait_for=<Future cancelled>>
TEST_F(ReprTests, CancellingTaskShowsTheFutureItCancelled) {
  asyncio::event_loop loop;
  auto fut = loop.create_future<int>();
  auto w = loop.create_task([&] { asyncio::await(fut); }, "waiter");
  run_briefly(loop);
  w.cancel();
  EXPECT_EQ(w.repr(), "<Task cancelling name='waiter' wait_for=<Future cancelled>>");
  run_briefly(loop);
  EXPECT_EQ(w.repr(), "<Task cancelled name='waiter'>");
}

// lock = asyncio.Lock(); await lock.acquire()
// async def locker():
//     async with lock: pass
//   <Task pending name='locker' coro=<...> wait_for=<Future pending cb=[Task.task_wakeup()]>>
TEST_F(ReprTests, TaskBlockedOnLockShowsItsWaiterFuture) {
  asyncio::event_loop loop;
  asyncio::Lock lock;
  auto holder = loop.create_task([&] { lock.acquire(); }, "holder");
  run_briefly(loop);
  auto locker = loop.create_task([&] { lock.acquire(); }, "locker");
  run_briefly(loop);
  EXPECT_EQ(locker.repr(), "<Task pending name='locker' wait_for=<Future pending cb=[Task.task_wakeup()]>>");
  lock.release();
  loop.run_until_complete(locker);
  lock.release();
}

// async with asyncio.TaskGroup() as g:
//     c = g.create_task(asyncio.sleep(10), name='child'); await asyncio.sleep(0); print(repr(c))
//   <Task pending name='child' coro=<...> wait_for=<Future pending cb=[Task.task_wakeup()]>
//       cb=[TaskGroup._on_task_done()]>
TEST_F(ReprTests, TaskGroupChildShowsTheGroupsCallback) {
  asyncio::event_loop loop;
  std::string seen;
  loop.run_until_complete([&] {
    asyncio::task_group([&](asyncio::TaskGroup& g) {
      auto c = g.create_task([] { asyncio::sleep(10); }, "child");
      asyncio::sleep(0);
      seen = c.repr();
      c.cancel();
    });
  });
  EXPECT_EQ(seen,
            "<Task pending name='child' wait_for=<Future pending cb=[Task.task_wakeup()]> "
            "cb=[TaskGroup._on_task_done()]>");
}

// f = loop.create_future(); three add_done_callback(lambda f: None); print(repr(f))
//   <Future pending cb=[main.<locals>.<lambda>() at x.py:26, <1 more>, main.<locals>.<lambda>() at x.py:26]>
// Python's list: the first, "<N more>", the last. C++ has no name for a
// callback of the user's: "<callback>".
TEST_F(ReprTests, ManyCallbacksListFirstCountAndLast) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  f.add_done_callback([](asyncio::Future<int>&) {});
  EXPECT_EQ(f.repr(), "<Future pending cb=[<callback>]>");
  f.add_done_callback([](asyncio::Future<int>&) {});
  EXPECT_EQ(f.repr(), "<Future pending cb=[<callback>, <callback>]>");
  f.add_done_callback([](asyncio::Future<int>&) {});
  const std::uint64_t last = f.add_done_callback([](asyncio::Future<int>&) {});
  EXPECT_EQ(f.repr(), "<Future pending cb=[<callback>, <2 more>, <callback>]>");
  f.remove_done_callback(last);
  EXPECT_EQ(f.repr(), "<Future pending cb=[<callback>, <1 more>, <callback>]>");
  f.set_result(1);
  EXPECT_EQ(f.repr(), "<Future finished result=1>");  // the callbacks are scheduled: none left
  run_briefly(loop);
}

// Tasks awaiting each other (a deadlock):
// async def a(): await tasks['b']
// async def b(): await tasks['a']
//   <Task pending name='a' coro=<...> wait_for=<Task pending name='b' coro=<...> wait_for=...
//       cb=[Task.task_wakeup()]> cb=[Task.task_wakeup()]>
TEST_F(ReprTests, CycleOfAwaitsShowsEllipsis) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  asyncio::Task<int> a;
  asyncio::Task<int> b;
  a = loop.create_task([&] { return asyncio::await(b); }, "a");
  b = loop.create_task([&] { return asyncio::await(a); }, "b");
  run_briefly(loop);
  EXPECT_EQ(a.repr(),
            "<Task pending name='a' wait_for=<Task pending name='b' wait_for=... cb=[Task.task_wakeup()]> "
            "cb=[Task.task_wakeup()]>");
  loop.close();
}

// Names and string results are str reprs too:
// t = asyncio.create_task(f(), name="it's") where f returns "it's"
//   <Task finished name="it's" coro=<...> result="it's">
TEST_F(ReprTests, NameAndStringResultAreQuotedAsPython) {
  asyncio::event_loop loop;
  auto t = loop.create_task([] { return std::string("it's"); }, "it's");
  loop.run_until_complete(t);
  EXPECT_EQ(t.repr(), "<Task finished name=\"it's\" result=\"it's\">");
}

}  // namespace
