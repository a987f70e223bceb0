// known_answer_wait_test.cpp: wait(), wait_for() and as_completed() go
// through the loop even when their answer is known (every child done, or a
// timeout of zero or less), as CPython 3.11's tasks.py does: the children's
// callbacks are queued by add_done_callback and a timeout is a call_later.
// They used to return without suspending, so a loop polling with
// wait(fs, 0.0) never let the polled task run and spun for ever. gather() of
// children all done returns (or raises) at once, as 3.12's does: it runs the
// done children's callbacks itself, which is what lets eager tasks that
// finished in create_task() be gathered without a trip through the loop.
// Each expectation is what the Python twin of the case prints (3.12 for
// gather).
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::run_briefly;
using asyncio_test::TestError;
using asyncio_test::virtual_time;
using KnownAnswerWait = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;
using IntTasks = std::vector<asyncio::Task<int>>;

// The polling loop: `while pending: done, pending = await wait([t], timeout=0)`.
// Python: done after 1 poll (the wait lets t run). Bounded here, so that
// the old behaviour fails instead of hanging.
TEST_F(KnownAnswerWait, PollingWithZeroTimeoutLetsThePolledTaskRun) {
  asyncio::event_loop loop;
  const long polls = loop.run_until_complete([] {
    auto t = asyncio::create_task([] {
      asyncio::sleep(0);
      return 1;
    });
    long n = 0;
    for (;;) {
      ++n;
      auto [done, pending] = asyncio::wait(IntTasks{t}, 0.0);
      if (pending.empty() || n >= 1000) return n;
    }
  });
  EXPECT_EQ(polls, 1);
}

// wait([just created task], timeout=0): the timer due now runs after the
// task's first step, which finishes it. Python: 1 done, 0 pending.
TEST_F(KnownAnswerWait, ZeroTimeoutCountsATaskThatFinishesOnThatTurn) {
  asyncio::event_loop loop;
  loop.run_until_complete([] {
    auto t = asyncio::create_task([] { return 1; });
    auto [done, pending] = asyncio::wait(IntTasks{t}, 0.0);
    EXPECT_EQ(done.size(), 1U);
    EXPECT_TRUE(pending.empty());
  });
}

// wait([done future, just created task], FIRST_COMPLETED): the waiting task
// resumes after the task ran. Python: 2 done, 0 pending.
TEST_F(KnownAnswerWait, FirstCompletedWithOneDoneStillLetsReadyTasksFinish) {
  asyncio::event_loop loop;
  loop.run_until_complete([&loop] {
    auto g = loop.create_future<int>();
    g.set_result(0);
    auto t = asyncio::create_task([] { return 1; });
    auto [done, pending] =
        asyncio::wait(std::vector<asyncio::Future<int>>{g, t}, std::nullopt, asyncio::FIRST_COMPLETED);
    EXPECT_EQ(done.size(), 2U);
    EXPECT_TRUE(pending.empty());
  });
}

// wait([done]), as_completed([done]) and wait_for(done, 1) each let a task
// that was ready run before they return. wait_for(done, 0) returns at once,
// as Python 3.11's; so do gather(done) and a gather whose children are all
// done, one of them failed, as Python 3.12's.
TEST_F(KnownAnswerWait, DoneChildrenStillLetOtherReadyTasksRunFirst) {
  asyncio::event_loop loop;
  Strings log;
  loop.run_until_complete([&] {
    auto f = loop.create_future<int>();
    f.set_result(1);
    auto bad = loop.create_future<int>();
    bad.set_exception(std::make_exception_ptr(TestError("pre")));
    auto other = [&](const char* name) { return asyncio::create_task([&log, name] { log.push_back(name); }); };

    auto o = other("other before gather's return");
    asyncio::gather(f);
    log.push_back("gather returned");
    asyncio::await(o);

    o = other("other before wait's return");
    asyncio::wait(std::vector{f});
    log.push_back("wait returned");
    asyncio::await(o);

    o = other("other before as_completed's first");
    for (auto x : asyncio::as_completed(std::vector{f}))
      log.push_back("as_completed gave " + std::to_string(x.result()));
    asyncio::await(o);

    o = other("other before wait_for's return");
    asyncio::wait_for(f, 1.0);
    log.push_back("wait_for returned");
    asyncio::await(o);

    o = other("other before gather raised");
    try {
      asyncio::gather(f, bad);
    } catch (const TestError& e) {
      log.push_back(std::string("gather raised ") + e.what());
    }
    asyncio::await(o);

    o = other("other after wait_for(done, 0) returned");
    asyncio::wait_for(f, 0.0);
    log.push_back("wait_for(done, 0) returned");
    asyncio::await(o);
  });
  EXPECT_EQ(log,
            (Strings{"gather returned", "other before gather's return", "other before wait's return", "wait returned",
                     "other before as_completed's first", "as_completed gave 1", "other before wait_for's return",
                     "wait_for returned", "gather raised pre", "other before gather raised",
                     "wait_for(done, 0) returned", "other after wait_for(done, 0) returned"}));
}

// as_completed(done futures, timeout=0): the futures done at the start come
// out (their callbacks run before the timer due now), then TimeoutError for
// the one still pending. Python: a, b, TimeoutError.
TEST_F(KnownAnswerWait, AsCompletedWithZeroTimeoutGivesTheDoneFuturesFirst) {
  asyncio::event_loop loop(virtual_time());
  Strings log;
  loop.run_until_complete([&] {
    auto a = loop.create_future<std::string>();
    auto b = loop.create_future<std::string>();
    auto never = loop.create_future<std::string>();
    a.set_result("a");
    b.set_result("b");
    asyncio::as_completed<asyncio::Future<std::string>> queue({a, never, b}, 0.0);
    try {
      for (;;) log.push_back(queue.next().result());
    } catch (const asyncio::TimeoutError&) {
      log.push_back("TimeoutError");
    }
    never.cancel();
  });
  EXPECT_EQ(log, (Strings{"a", "b", "TimeoutError"}));
}

// The waiting task cancelled during that one suspension: CancelledError, as
// in asyncio (wait()'s waiter future is cancelled). gather() of done children
// does not suspend (3.12): its task is done before the cancel comes.
TEST_F(KnownAnswerWait, CancelDuringTheSuspensionRaisesCancelledError) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  f.set_result(1);
  auto gathering = loop.create_task([&] { return std::get<0>(asyncio::gather(f)); });
  auto waiting = loop.create_task([&] { asyncio::wait(std::vector{f}); });
  run_briefly(loop);
  EXPECT_TRUE(gathering.done());
  EXPECT_FALSE(waiting.done());
  EXPECT_FALSE(gathering.cancel("g"));
  waiting.cancel("w");
  EXPECT_EQ(loop.run_until_complete(gathering), 1);
  try {
    loop.run_until_complete(waiting);
    ADD_FAILURE() << "wait returned";
  } catch (const asyncio::CancelledError& e) {
    EXPECT_STREQ(e.what(), "w");
  }
}

}  // namespace
