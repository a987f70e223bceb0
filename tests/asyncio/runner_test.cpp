// runner_test.cpp: asyncio::Runner, after CPython's
// Lib/test/test_asyncio/test_runners.py (RunnerTests).
#include <string>
#include <vector>

#include <greenlet/asyncio.hpp>

#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using RunnerTests = greenlet_test::GreenletTest;

// test_run
TEST_F(RunnerTests, RunReturnsTheResultOfEachCall) {
  asyncio::Runner runner;
  EXPECT_EQ(runner.run([] {
    asyncio::sleep(0);
    return 42;
  }),
            42);
  EXPECT_EQ(runner.run([] { return std::string("again"); }), "again");
}

// Two run() calls share one loop, and a task the first left pending goes on
// in the second (asyncio.run would have cancelled it).
TEST_F(RunnerTests, CallsShareOneLoopAndItsPendingTasks) {
  std::vector<std::string> events;
  asyncio::Runner runner;
  asyncio::event_loop* first = nullptr;
  asyncio::Task<> background;
  // The background task waits for the second run, not for a timer: on a loaded machine a short
  // timer could be due before the first run has stopped.
  asyncio::Event second_run_started;
  runner.run([&] {
    first = &asyncio::get_running_loop();
    background = asyncio::create_task([&] {
      events.push_back("background started");
      second_run_started.wait();
      events.push_back("background finished");
    });
    asyncio::sleep(0);
    events.push_back("first run returns");
  });
  runner.run([&] {
    EXPECT_EQ(&asyncio::get_running_loop(), first);
    events.push_back("second run");
    second_run_started.set();
    asyncio::await(background);
  });
  EXPECT_EQ(&runner.get_loop(), first);
  EXPECT_EQ(events,
            (std::vector<std::string>{"background started", "first run returns", "second run", "background finished"}));
}

// test_run_keeps_context
TEST_F(RunnerTests, RunsShareOneContext) {
  asyncio::context_var<int> cvar("cvar", -1);
  asyncio::Runner runner;
  EXPECT_EQ(runner.run([&] { return cvar.get(); }), -1);
  runner.run([&] { cvar.set(2); });
  EXPECT_EQ(runner.run([&] { return cvar.get(); }), 2);
  EXPECT_EQ(cvar.get(), -1);  // the caller's context is not the runner's
}

// test_explicit_close, test_double_close, test_second_run_after_close
TEST_F(RunnerTests, CloseEndsTheLoopOnceAndLaterUseIsAClearError) {
  asyncio::Runner runner;
  asyncio::event_loop& loop = runner.get_loop();
  EXPECT_FALSE(loop.is_closed());
  runner.close();
  runner.close();
  try {
    runner.run([] {});
    ADD_FAILURE() << "ran on a closed runner";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::loop_closed);
    EXPECT_NE(std::string(e.what()).find("Runner is closed"), std::string::npos) << e.what();
  }
  EXPECT_THROW(runner.get_loop(), asyncio::RuntimeError);
}

// The loop is made on first use, not by the constructor; a runner never used closes without one.
TEST_F(RunnerTests, TheLoopIsMadeOnFirstUse) {
  { asyncio::Runner unused; }
  asyncio::Runner runner;
  asyncio::event_loop& loop = runner.get_loop();
  EXPECT_FALSE(loop.is_running());
  EXPECT_EQ(runner.run([] { return asyncio::get_running_loop().is_running(); }), true);
}

// test_recursive_run
TEST_F(RunnerTests, RunInsideARunningLoopIsRefused) {
  asyncio::Runner runner;
  runner.run([&] {
    try {
      runner.run([] {});
      ADD_FAILURE() << "a nested run() ran";
    } catch (const asyncio::RuntimeError& e) {
      EXPECT_EQ(e.condition(), asyncio::asyncio_errc::loop_running);
      EXPECT_NE(std::string(e.what()).find("Runner.run() cannot be called from a running event loop"),
                std::string::npos)
          << e.what();
    }
  });
  asyncio::Runner other;
  runner.run([&] { EXPECT_THROW(other.run([] {}), asyncio::RuntimeError); });
}

// Closing cancels what is still pending, as asyncio.run's end does, and the
// cancelled task's cleanup runs before close() returns.
TEST_F(RunnerTests, CloseCancelsPendingTasks) {
  std::vector<std::string> events;
  {
    asyncio::Runner runner;
    runner.run([&] {
      asyncio::create_task([&] {
        try {
          asyncio::sleep(3600);
        } catch (const asyncio::CancelledError&) {
          events.push_back("cancelled");
          throw;
        }
      });
      asyncio::sleep(0);
    });
    events.push_back("closing");
  }
  EXPECT_EQ(events, (std::vector<std::string>{"closing", "cancelled"}));
}

// An exception of the function comes out of run(); the runner stays usable.
TEST_F(RunnerTests, AFailingCallLeavesTheRunnerUsable) {
  asyncio::Runner runner;
  EXPECT_THROW(runner.run([]() -> int { throw std::runtime_error("boom"); }), std::runtime_error);
  EXPECT_EQ(runner.run([] { return 7; }), 7);
}

// Options reach the loop (Python's loop_factory).
TEST_F(RunnerTests, OptionsMakeTheLoop) {
  asyncio::Runner runner({.virtual_time = true});
  const double took = runner.run([] {
    const double start = asyncio::get_running_loop().time();
    asyncio::sleep(1000);
    return asyncio::get_running_loop().time() - start;
  });
  EXPECT_GE(took, 1000);
}

}  // namespace
