// wait_for_cancel_race_test.cpp: a task cancelled in wait_for() after the awaited function had
// already failed (both on the same loop turn: the function's wake-up ran first). Found by
// tests/io/server_chaos_test.cpp: a client cancelled while wait_for(readline) met a reset.
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace wait_for_cancel_race {

namespace asyncio = greenlet::asyncio;
using asyncio_test::error_log;
using asyncio_test::TestError;
using WaitForCancelRace = greenlet_test::GreenletTest;

// Python 3.12's wait_for() raises CancelledError there and the inner task's exception counts as
// retrieved (the outer task's wake-up took its result); 3.11's returned fut.result(), raising the
// exception itself. Neither reports "Task exception was never retrieved": the caller had no way to
// retrieve it.
TEST_F(WaitForCancelRace, AnExceptionOfTheFunctionDoneBeforeTheCancelIsNotReported) {
  error_log log;
  asyncio::event_loop loop;
  log.attach(loop);
  loop.run_until_complete([&] {
    asyncio::Future<void> gate = loop.create_future<void>();
    std::vector<std::string> steps;
    auto outer = asyncio::create_task([&] {
      try {
        asyncio::wait_for(
            [&] {
              asyncio::await(gate);
              steps.push_back("inner fails");
              throw TestError("reset");
            },
            10.0);
        steps.push_back("wait_for returned");
      } catch (const asyncio::CancelledError&) {
        steps.push_back("outer cancelled");
        throw;
      }
    });
    for (int i = 0; i < 3; ++i) asyncio::sleep(0);  // outer waits in wait_for, the function on gate
    gate.set_result();                              // the function's wake-up is queued first...
    outer.cancel();  // ...then the outer task's: the function fails before wait_for sees the cancel
    asyncio::gather(asyncio::return_exceptions, outer);
    EXPECT_TRUE(outer.cancelled());
    EXPECT_EQ((std::vector<std::string>{"inner fails", "outer cancelled"}), steps);
  });
  loop.close();
  EXPECT_EQ(std::vector<std::string>{}, log.messages);
}

// The same for a Task given to wait_for(): it is the caller's, who may still ask it, so its
// exception stays to be retrieved (and is reported if nobody does), as with any task.
TEST_F(WaitForCancelRace, AGivenTaskKeepsItsExceptionForItsOwner) {
  error_log log;
  asyncio::event_loop loop;
  log.attach(loop);
  loop.run_until_complete([&] {
    asyncio::Future<void> gate = loop.create_future<void>();
    auto inner = asyncio::create_task([&] {
      asyncio::await(gate);
      throw TestError("reset");
    });
    auto outer = asyncio::create_task([&] { asyncio::wait_for(inner, 10.0); });
    for (int i = 0; i < 3; ++i) asyncio::sleep(0);
    gate.set_result();
    outer.cancel();
    asyncio::gather(asyncio::return_exceptions, outer);
    EXPECT_TRUE(outer.cancelled());
    ASSERT_TRUE(inner.done());
    EXPECT_THROW(inner.result(), TestError);
  });
  loop.close();
  EXPECT_EQ(std::vector<std::string>{}, log.messages);
}

// The rule underneath, asyncio's Task.cancel(): `_log_traceback = False` comes before the done()
// check, so cancel() on a task that already failed returns false and silences the report.
TEST_F(WaitForCancelRace, CancelOnAFailedTaskReturnsFalseAndSilencesTheReport) {
  error_log log;
  asyncio::event_loop loop;
  log.attach(loop);
  loop.run_until_complete([&] {
    auto failed = asyncio::create_task([] { throw TestError("boom"); });
    asyncio::sleep(0);
    ASSERT_TRUE(failed.done());
    EXPECT_FALSE(failed.cancel());
  });
  loop.close();
  EXPECT_EQ(std::vector<std::string>{}, log.messages);
}

}  // namespace wait_for_cancel_race
