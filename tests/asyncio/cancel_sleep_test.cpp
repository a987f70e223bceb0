// cancel_sleep_test.cpp: cancelling a task in sleep(), as asyncio does it:
// sleep() awaits a future, and Task.cancel() cancels that future. So a task
// that cancels itself and then sleeps raises CancelledError on the next turn
// (not at the sleep's end), and a cancelled sleep raises even when the
// request is withdrawn with uncancel() before the task wakes (asyncio 3.11
// and 3.13 alike: the future is cancelled already).
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::virtual_time;
using CancelSleep = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

// A task that cancels itself and then sleeps: CancelledError right away.
TEST_F(CancelSleep, SelfCancelThenSleepRaisesOnTheNextTurn) {
  asyncio::event_loop loop(virtual_time());
  Strings log;
  auto task = loop.create_task([&] {
    asyncio::current_task().cancel("self");
    try {
      asyncio::sleep(1.0);
      log.push_back("slept");
    } catch (const asyncio::CancelledError& e) {
      log.push_back(std::string("CancelledError(") + e.what() + ") at " + std::to_string(loop.time()));
    }
  });
  loop.run_until_complete(task);
  EXPECT_EQ(log, (Strings{"CancelledError(self) at 0.000000"}));
}

// cancel() then uncancel() of a sleeping task: the sleep still raises, with
// the cancel's message, when the task wakes (not at its deadline).
TEST_F(CancelSleep, UncancelDoesNotRevokeACancelledSleep) {
  asyncio::event_loop loop(virtual_time());
  Strings log;
  auto sleeper = loop.create_task([&] {
    try {
      asyncio::sleep(1.0);
      log.push_back("sleep returned at " + std::to_string(loop.time()));
    } catch (const asyncio::CancelledError& e) {
      log.push_back(std::string("CancelledError(") + e.what() + ") at " + std::to_string(loop.time()));
    }
  });
  auto canceller = loop.create_task([&] {
    asyncio::sleep(0.1);
    EXPECT_TRUE(sleeper.cancel("c"));
    EXPECT_EQ(sleeper.uncancel(), 0);
  });
  loop.run_until_complete(canceller);
  loop.run_until_complete(sleeper);
  EXPECT_EQ(log, (Strings{"CancelledError(c) at 0.100000"}));
}

// Two cancels before the sleeper wakes: the sleep's own cancel (the first
// message) is what it raises, and the second request is absorbed by it.
TEST_F(CancelSleep, SecondCancelBeforeWakingKeepsTheFirstMessage) {
  asyncio::event_loop loop(virtual_time());
  Strings log;
  auto sleeper = loop.create_task([&] {
    try {
      asyncio::sleep(1.0);
    } catch (const asyncio::CancelledError& e) {
      log.push_back(e.what());
    }
    asyncio::sleep(0.5);  // the second request does not cancel this one
    log.push_back("slept again at " + std::to_string(loop.time()));
  });
  loop.run_until_complete(loop.create_task([&] {
    asyncio::sleep(0.1);
    EXPECT_TRUE(sleeper.cancel("first"));
    EXPECT_TRUE(sleeper.cancel("second"));
  }));
  loop.run_until_complete(sleeper);
  EXPECT_EQ(log, (Strings{"first", "slept again at 0.600000"}));
}

}  // namespace

namespace {

// A sleep's timer and a cancel() due at the same moment: asyncio's timer
// only completes the sleep's future, the task steps on the next turn, and
// the cancel (run in between) makes the sleep raise. The timer used to step
// the task itself: the sleep returned and the cancel came too late.
TEST_F(CancelSleep, CancelDueWithTheSleepsDeadlineWins) {
  asyncio::event_loop loop(virtual_time());
  Strings log;
  auto sleeper = loop.create_task([&] {
    try {
      asyncio::sleep(0.02);
      log.push_back("woke");
    } catch (const asyncio::CancelledError&) {
      log.push_back("cancelled");
    }
  });
  loop.run_until_complete(loop.create_task([&] {
    asyncio::sleep(0);  // the sleeper is asleep now, its deadline 0.02
    loop.call_later(0.02, [&] { sleeper.cancel(); });
  }));
  loop.run_until_complete(sleeper);
  EXPECT_EQ(log, (Strings{"cancelled"}));
}

// Two timers due together, a sleep's and a plain call_later's scheduled
// after it: asyncio runs both timer callbacks, then the task's step, so the
// callback comes first.
TEST_F(CancelSleep, CallbacksDueWithASleepRunBeforeTheTaskSteps) {
  asyncio::event_loop loop(virtual_time());
  Strings log;
  auto sleeper = loop.create_task([&] {
    asyncio::sleep(0.05);
    log.push_back("task");
  });
  loop.run_until_complete(loop.create_task([&] {
    asyncio::sleep(0);
    loop.call_later(0.05, [&] { log.push_back("callback"); });
  }));
  loop.run_until_complete(sleeper);
  EXPECT_EQ(log, (Strings{"callback", "task"}));
}

}  // namespace
