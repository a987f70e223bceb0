// cpython_runners_port_test.cpp: CPython's Lib/test/test_asyncio/test_runners.py (commit
// e7ef4624f9bcc2f13f7b6c28a5f8466d59ce31d2: RunTests, RunnerTests) method by method. run_test.cpp
// and runner_test.cpp hold earlier ports of some cases; each test here names its CPython method and
// keeps its values. CPython's BaseTest gives asyncio.run() a mocked BaseEventLoop through a policy;
// here every run makes a real loop, with virtual time for run() (so sleep(0.1) costs nothing).
//
// Not ported:
// - test_asyncio_run_only_coro, RunnerTests.test_run_non_coro, test_run_future: run(1),
//   run(lambda: None), runner.run(123) and runner.run(fut) do not compile here (a static_assert
//   says what to pass; tests/compile_fail/ checks it), where Python raises ValueError.
// - test_asyncio_run_debug, RunnerTests.test_non_debug, test_debug: there is no debug mode.
// - RunnerTests.test_custom_factory: a mock loop from loop_factory; Runner(options) stands for the
//   factory (runner_test.cpp OptionsMakeTheLoop).
// - test_asyncio_run_without_uncancel: a duck-typed Task from a task factory; a factory here makes
//   the task create_task() returns (task_request::create()) and cannot return another kind.
// - test_interrupt_call_soon, test_interrupt_wait, test_interrupt_cancelled_task,
//   test_signal_install_not_supported_ok: Runner turns no Ctrl-C into a cancel and installs no SIGINT
//   handler (docs/porting.md, "Ctrl-C is not KeyboardInterrupt").
//
// Deliberate differences the tests assert:
// - `with runner:` is the Runner's scope; a second `with` block on a closed runner is a run() on
//   it, refused with the same "Runner is closed" RuntimeError.
// - test_asyncio_run_reports_hanging_tasks_errors: the report's message says "asyncio::run()
//   shutdown" (Python's regex 'asyncio.run.*shutdown' wants one character between the names), and
//   names the task by its repr (Python's context['task']).
// - test_recursive_run: no "coroutine was never awaited" warning: g is a function, never called.
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace cpython_runners_port {

namespace asyncio = greenlet::asyncio;
using asyncio_test::Boom;
using asyncio_test::error_log;
using asyncio_test::virtual_time;

using CPythonRunTests = greenlet_test::GreenletTest;
using CPythonRunnerTests = greenlet_test::GreenletTest;

// ------------------------------------------------------------------------------ RunTests

// test_asyncio_run_return
TEST_F(CPythonRunTests, test_asyncio_run_return) {
  auto main = [] {
    asyncio::sleep(0);
    return 42;
  };
  EXPECT_EQ(asyncio::run(main, virtual_time()), 42);
}

// test_asyncio_run_raises
TEST_F(CPythonRunTests, test_asyncio_run_raises) {
  auto main = [] {
    asyncio::sleep(0);
    throw asyncio::ValueError("spam");
  };
  try {
    asyncio::run(main, virtual_time());
    ADD_FAILURE() << "no ValueError";
  } catch (const asyncio::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("spam"), std::string::npos) << e.what();
  }
}

// test_asyncio_run_from_running_loop
TEST_F(CPythonRunTests, test_asyncio_run_from_running_loop) {
  bool inner_ran = false;
  auto main = [&] { asyncio::run([&] { inner_ran = true; }); };
  try {
    asyncio::run(main, virtual_time());
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be called from a running"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(inner_ran);
}

// test_asyncio_run_cancels_hanging_tasks
TEST_F(CPythonRunTests, test_asyncio_run_cancels_hanging_tasks) {
  asyncio::Task<void> lo_task;
  auto leftover = [] { asyncio::sleep(0.1); };
  auto main = [&] {
    lo_task = asyncio::create_task(leftover);
    return 123;
  };
  EXPECT_EQ(asyncio::run(main, virtual_time()), 123);
  EXPECT_TRUE(lo_task.done());
}

// test_asyncio_run_reports_hanging_tasks_errors
TEST_F(CPythonRunTests, test_asyncio_run_reports_hanging_tasks_errors) {
  error_log errors;
  asyncio::Task<void> lo_task;
  auto leftover = [] {
    try {
      asyncio::sleep(0.1);
    } catch (const asyncio::CancelledError&) {
      throw Boom();  // 1 / 0
    }
  };
  auto main = [&] {
    errors.attach(asyncio::get_running_loop());  // loop.call_exception_handler = mock
    lo_task = asyncio::create_task(leftover);
    return 123;
  };
  EXPECT_EQ(asyncio::run(main, virtual_time()), 123);
  EXPECT_TRUE(lo_task.done());

  ASSERT_EQ(errors.messages.size(), 1u);
  EXPECT_NE(errors.messages[0].find("asyncio::run() shutdown"), std::string::npos) << errors.messages[0];
  EXPECT_EQ(errors.sources[0], lo_task.repr());
  EXPECT_EQ(errors.whats[0], "division by zero");
  EXPECT_EQ(errors.exceptions[0], lo_task.exception());
}

// test_asyncio_run_closes_gens_after_hanging_tasks_errors: the hanging task's generator is closed
// (its body unwound) by the time run() has raised main's exception.
TEST_F(CPythonRunTests, test_asyncio_run_closes_gens_after_hanging_tasks_errors) {
  struct FancyExit : std::runtime_error {
    FancyExit() : std::runtime_error("FancyExit") {}
  };
  error_log errors;
  std::vector<std::string> unwound;
  std::optional<asyncio::async_generator<int>> spinner;
  asyncio::Task<void> lazyboy;

  auto fidget = [&](auto& co) {
    asyncio_test::Guard frame{unwound, "fidget"};
    while (true) {
      co.yield(1);
      asyncio::sleep(1);
    }
  };
  auto spin = [&] {
    spinner.emplace(fidget);
    try {
      for (int the_meaning_of_life : asyncio::aiter(*spinner)) (void)the_meaning_of_life;
    } catch (const asyncio::CancelledError&) {
      throw Boom();  // 1 / 0
    }
  };
  auto main = [&] {
    errors.attach(asyncio::get_running_loop());  // loop.call_exception_handler = mock.Mock()
    lazyboy = asyncio::create_task(spin);
    throw FancyExit();
  };

  EXPECT_THROW(asyncio::run(main, virtual_time()), FancyExit);

  EXPECT_TRUE(lazyboy.done());

  ASSERT_TRUE(spinner.has_value());
  EXPECT_TRUE(spinner->finished());                           // spinner.ag_frame is None
  EXPECT_EQ(unwound, (std::vector<std::string>{"~fidget"}));  // not spinner.ag_running
  spinner.reset();
}

// test_asyncio_run_set_event_loop (gh-93896): run() makes its loop the thread's current one (a
// policy's set_event_loop() mock in CPython): get_event_loop() in main is the running loop, and the
// loop is unset again when run() ends.
TEST_F(CPythonRunTests, test_asyncio_run_set_event_loop) {
  auto main = [] {
    asyncio::sleep(0);
    EXPECT_EQ(&asyncio::get_event_loop(), &asyncio::get_running_loop());
    return 42;
  };
  EXPECT_EQ(asyncio::run(main, virtual_time()), 42);
  struct cleanup {
    ~cleanup() { asyncio::set_event_loop(nullptr); }
  } unset;
  EXPECT_FALSE(asyncio::get_event_loop().is_closed());  // a new one: run()'s was unset
}

// ------------------------------------------------------------------------------ RunnerTests

// test_run
TEST_F(CPythonRunnerTests, test_run) {
  auto f = [] {
    asyncio::sleep(0);
    return std::string("done");
  };

  asyncio::Runner runner;
  EXPECT_EQ("done", runner.run(f));
  asyncio::event_loop& loop = runner.get_loop();
  runner.close();  // the end of the with block

  try {
    runner.get_loop();
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("Runner is closed"), std::string::npos) << e.what();
  }

  EXPECT_TRUE(loop.is_closed());
}

// test_explicit_close
TEST_F(CPythonRunnerTests, test_explicit_close) {
  asyncio::Runner runner;
  asyncio::event_loop& loop = runner.get_loop();
  runner.close();
  try {
    runner.get_loop();
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("Runner is closed"), std::string::npos) << e.what();
  }

  EXPECT_TRUE(loop.is_closed());
}

// test_double_close
TEST_F(CPythonRunnerTests, test_double_close) {
  asyncio::Runner runner;
  asyncio::event_loop& loop = runner.get_loop();

  runner.close();
  EXPECT_TRUE(loop.is_closed());

  // the second call is no-op
  runner.close();
  EXPECT_TRUE(loop.is_closed());
}

// test_second_with_block_raises
TEST_F(CPythonRunnerTests, test_second_with_block_raises) {
  std::vector<int> ret;
  auto f = [&](int arg) { return [&ret, arg] { ret.push_back(arg); }; };

  asyncio::Runner runner;
  runner.run(f(1));
  runner.close();  // the end of the first with block

  try {
    runner.run(f(2));
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("Runner is closed"), std::string::npos) << e.what();
  }

  EXPECT_EQ(std::vector<int>{1}, ret);
}

// test_run_keeps_context
TEST_F(CPythonRunnerTests, test_run_keeps_context) {
  greenlet::context_var<int> cvar("cvar", -1);

  auto f = [&](int val) {
    return [&cvar, val] {
      int old = cvar.get();
      asyncio::sleep(0);
      cvar.set(val);
      return old;
    };
  };
  auto get_context = [] { return greenlet::copy_context(); };

  asyncio::Runner runner;
  EXPECT_EQ(-1, runner.run(f(1)));
  EXPECT_EQ(1, runner.run(f(2)));

  auto ctx = runner.run(get_context);
  EXPECT_EQ(2, ctx.run([&] { return cvar.get(); }));
}

// test_recursive_run
TEST_F(CPythonRunnerTests, test_recursive_run) {
  bool g_ran = false;
  asyncio::Runner runner;
  auto g = [&] { g_ran = true; };
  auto f = [&] { runner.run(g); };

  try {
    runner.run(f);
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("Runner.run() cannot be called from a running event loop"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(g_ran);
}

// test_set_event_loop_called_once (gh-95736): two runs, one loop, set as the thread's loop once
// (CPython counts the policy's set_event_loop() calls): after both runs it is still the thread's.
TEST_F(CPythonRunnerTests, test_set_event_loop_called_once) {
  auto coro = [] {};
  asyncio::Runner runner;
  runner.run(coro);
  asyncio::event_loop* first = &asyncio::get_event_loop();
  runner.run(coro);

  EXPECT_EQ(first, &runner.get_loop());
  EXPECT_EQ(&asyncio::get_event_loop(), &runner.get_loop());
  runner.close();
}

}  // namespace cpython_runners_port
