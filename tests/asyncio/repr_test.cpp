// repr_test.cpp: the repr() of futures and tasks, as CPython 3.11's asyncio
// prints them (people porting compare log lines). Each case gives its Python
// twin and the line that prints (`coro=<...>` left out: C++ has no coroutine
// object to name). Before, an exception printed as `exception=boom` (its
// what() alone).
#include <stdexcept>
#include <string>
#include <vector>

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
