// task_traceback_test.cpp: a failed task's traceback. asyncio's Task.get_stack() of a task that
// raised gives its exception's traceback frames, print_stack() prints them under "Traceback for",
// then the exception (CPython's test_tasks.py test_get_stack, base_tasks._task_print_stack), and
// the "Task exception was never retrieved" log shows them. Here the frames are recorded as the
// exception leaves the task's function, before they unwind (src/fiber/escape_trace.cpp).
#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;

namespace task_traceback_test {

using TaskTraceback = greenlet_test::GreenletTest;
using asyncio_test::error_log;
using asyncio_test::run_briefly;
using asyncio_test::TestError;

int throw_line = 0;
int call_line = 0;
int destructors_run = 0;

struct counts_destruction {
  ~counts_destruction() { ++destructors_run; }
};

[[gnu::noinline]] void task_traceback_test_throws(int n) {
  const counts_destruction guard;
  throw_line = __LINE__ + 1;
  if (n > 0) throw TestError("boom " + std::to_string(n));
}

[[gnu::noinline]] int task_traceback_test_calls(int n) {
  call_line = __LINE__ + 1;
  task_traceback_test_throws(n);
  return n;  // not a tail call: the frame is in the traceback
}

bool names(const greenlet::stack_frame& f, const char* function) {
  return f.function.find(function) != std::string::npos;
}

// The frames the exception left the task from, oldest first: the caller at its call, then the
// thrower at its throw; nothing of the library or of the C++ runtime's throw at either end.
void expect_traceback_of_the_throw(const greenlet::stack_summary& frames) {
  ASSERT_GE(frames.size(), 2u) << greenlet::format_stack(frames);
  const greenlet::stack_frame& thrower = frames.back();
  const greenlet::stack_frame& caller = frames[frames.size() - 2];
  EXPECT_TRUE(names(thrower, "task_traceback_test_throws")) << greenlet::format_stack(frames);
  EXPECT_EQ(thrower.file, __FILE__);
  EXPECT_EQ(thrower.line, static_cast<unsigned>(throw_line));
  EXPECT_TRUE(names(caller, "task_traceback_test_calls")) << greenlet::format_stack(frames);
  EXPECT_EQ(caller.line, static_cast<unsigned>(call_line));
  for (const greenlet::stack_frame& f : frames) {
    EXPECT_NE(f.function.rfind("greenlet::", 0), 0u) << greenlet::format_stack(frames);
    EXPECT_NE(f.function.rfind("__cxa_", 0), 0u) << greenlet::format_stack(frames);
    EXPECT_NE(f.function.rfind("_Unwind_", 0), 0u) << greenlet::format_stack(frames);
  }
}

TEST_F(TaskTraceback, AFailedTaskGivesTheFramesItsExceptionLeftFrom) {
  destructors_run = 0;
  asyncio::run([] {
    auto t = asyncio::create_task([] { return task_traceback_test_calls(3); }, "failing");
    EXPECT_THROW(asyncio::await(t), TestError);
    EXPECT_EQ(destructors_run, 1);  // recorded before the unwinding, which went on as ever
    const greenlet::stack_summary frames = t.get_stack();
    expect_traceback_of_the_throw(frames);
    // A traceback's limit keeps the oldest frames (a stack's, the newest), as in Python.
    const greenlet::stack_summary oldest = asyncio::AnyTask(t).get_stack(1);
    ASSERT_EQ(oldest.size(), 1u);
    EXPECT_EQ(oldest[0].function, frames.front().function);
    EXPECT_EQ(oldest[0].line, frames.front().line);
    EXPECT_TRUE(t.get_stack(0).empty());
    // The call graph's node of a done task has no call stack, as Python's: not the traceback.
    EXPECT_TRUE(asyncio::capture_call_graph(t).call_stack.empty());
  });
}

TEST_F(TaskTraceback, PrintStackPrintsTheTracebackAndTheException) {
  asyncio::run([] {
    auto t = asyncio::create_task([] { return task_traceback_test_calls(4); }, "failing");
    asyncio::wait(std::vector<asyncio::AnyTask>{asyncio::AnyTask(t)});
    std::ostringstream out;
    t.print_stack(greenlet::no_frame_limit, out);
    EXPECT_EQ(out.str(), "Traceback for " + t.repr() + " (most recent call last):\n" +
                             greenlet::format_stack(t.get_stack()) + "TestError: boom 4\n");
    // Printing does not count as retrieving the exception: awaiting it still raises it.
    EXPECT_THROW(asyncio::await(t), TestError);
  });
}

// A cancelled task has no traceback (asyncio's get_stack() gives none for it): its CancelledError
// is not recorded at all.
TEST_F(TaskTraceback, ACancelledTaskHasNoStack) {
  asyncio::run([] {
    auto t = asyncio::create_task([] { asyncio::sleep(10); }, "cancelled");
    asyncio::sleep(0);
    t.cancel();
    EXPECT_THROW(asyncio::await(t), asyncio::CancelledError);
    EXPECT_TRUE(t.get_stack().empty());
    std::ostringstream out;
    t.print_stack(greenlet::no_frame_limit, out);
    EXPECT_EQ(out.str(), "No stack for <Task cancelled name='cancelled'>\n");
  });
}

TEST_F(TaskTraceback, ATaskThatReturnedHasNoStack) {
  asyncio::run([] {
    auto t = asyncio::create_task([] { return task_traceback_test_calls(0); }, "fine");
    EXPECT_EQ(asyncio::await(t), 0);
    EXPECT_TRUE(t.get_stack().empty());
  });
}

// An exception the task caught and handled leaves no trace; the one that ends it does.
TEST_F(TaskTraceback, OnlyTheExceptionThatLeavesTheTaskIsRecorded) {
  asyncio::run([] {
    auto t = asyncio::create_task(
        [] {
          try {
            task_traceback_test_throws(1);
          } catch (const TestError&) {
          }
          return task_traceback_test_calls(2);
        },
        "second");
    EXPECT_THROW(asyncio::await(t), TestError);
    expect_traceback_of_the_throw(t.get_stack());
  });
}

int await_line = 0;

[[gnu::noinline]] int task_traceback_test_awaits(asyncio::Future<int> f) {
  await_line = __LINE__ + 1;
  const int v = asyncio::await(f);
  return v + 1;
}

// Raised by the library (an awaited future's exception): the newest frame is the task's call
// into it, as Python's traceback ends at the await.
TEST_F(TaskTraceback, AnExceptionTheLibraryRaisesEndsAtTheCallIntoIt) {
  asyncio::run([] {
    asyncio::Future<int> f = asyncio::get_running_loop().create_future<int>();
    auto t = asyncio::create_task([f] { return task_traceback_test_awaits(f); }, "awaiting");
    asyncio::sleep(0);
    f.set_exception(std::make_exception_ptr(std::out_of_range("no value")));
    EXPECT_THROW(asyncio::await(t), std::out_of_range);
    const greenlet::stack_summary frames = t.get_stack();
    ASSERT_FALSE(frames.empty());
    EXPECT_TRUE(names(frames.back(), "task_traceback_test_awaits")) << greenlet::format_stack(frames);
    EXPECT_EQ(frames.back().line, static_cast<unsigned>(await_line)) << greenlet::format_stack(frames);
    std::ostringstream out;
    t.print_stack(greenlet::no_frame_limit, out);
    EXPECT_NE(out.str().find("\nout_of_range: no value\n"), std::string::npos) << out.str();
  });
}

int outer_await_line = 0;

[[gnu::noinline]] int task_traceback_test_awaits_task(asyncio::Task<int> inner) {
  outer_await_line = __LINE__ + 1;
  const int v = asyncio::await(inner);
  return v + 1;
}

// A task that fails with the exception of a task it awaited: its traceback goes on into that
// task's, as Python's traceback of the exception grows on its way up: this task's frames down to
// its await, then the awaited task's down to the throw.
TEST_F(TaskTraceback, AwaitingAFailedTaskContinuesItsTraceback) {
  asyncio::run([] {
    auto inner = asyncio::create_task([] { return task_traceback_test_calls(10); }, "inner");
    auto outer = asyncio::create_task([inner] { return task_traceback_test_awaits_task(inner); }, "outer");
    EXPECT_THROW(asyncio::await(outer), TestError);
    const greenlet::stack_summary frames = outer.get_stack();
    expect_traceback_of_the_throw(frames);
    const auto await_frame = std::find_if(frames.begin(), frames.end(), [](const greenlet::stack_frame& f) {
      return names(f, "task_traceback_test_awaits_task");
    });
    ASSERT_NE(await_frame, frames.end()) << greenlet::format_stack(frames);
    EXPECT_EQ(await_frame->line, static_cast<unsigned>(outer_await_line)) << greenlet::format_stack(frames);
    // The awaited task's own traceback is its part alone.
    const greenlet::stack_summary own = inner.get_stack();
    expect_traceback_of_the_throw(own);
    EXPECT_LT(own.size(), frames.size()) << greenlet::format_stack(own);
  });
}

// The "Task exception was never retrieved" report hands the traceback to the exception handler,
// and the default handler prints it before the exception, as Python's log does.
TEST_F(TaskTraceback, TheNeverRetrievedReportCarriesTheTraceback) {
  std::vector<greenlet::stack_summary> stacks;
  {
    asyncio::event_loop loop;
    loop.set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context& c) {
      EXPECT_EQ(c.message, "Task exception was never retrieved");
      stacks.push_back(c.stack);
    });
    loop.create_task([] { task_traceback_test_calls(5); }, "lonely");
    run_briefly(loop);
  }
  ASSERT_EQ(stacks.size(), 1u);
  expect_traceback_of_the_throw(stacks[0]);

  testing::internal::CaptureStderr();
  {
    asyncio::event_loop loop;
    loop.create_task([] { task_traceback_test_calls(6); }, "lonely");
    run_briefly(loop);
  }
  const std::string err = testing::internal::GetCapturedStderr();
  const std::string frame_line =
      "\n    File \"" + std::string(__FILE__) + "\", line " + std::to_string(throw_line) + ", in ";
  const std::size_t traceback = err.find("\n  Traceback (most recent call last):\n    File ");
  const std::size_t frame = err.find(frame_line);
  const std::size_t exception = err.find("\n  exception: boom 6");
  ASSERT_NE(traceback, std::string::npos) << err;
  ASSERT_NE(frame, std::string::npos) << err;
  ASSERT_NE(exception, std::string::npos) << err;
  EXPECT_LT(traceback, frame) << err;
  EXPECT_LT(frame, exception) << err;
  EXPECT_EQ(err.rfind("asyncio: Task exception was never retrieved\n  in <Task finished name='lonely'", 0), 0u) << err;
}

int body_call_line = 0;

[[gnu::noinline]] void task_traceback_test_wrapper(asyncio::task_body& body) {
  body_call_line = __LINE__ + 1;
  body();
  asyncio::sleep(0);  // not a tail call
}

[[gnu::noinline]] void task_traceback_test_swallowing_wrapper(asyncio::task_body& body) {
  try {
    body();
  } catch (const TestError&) {  // the task still fails with it (task_body.hpp)
  }
}

// A task factory's wrapper between the task and its function (task_request::wrap()): the traceback
// goes through the wrapper's frame, then on from its call of the body, as Python's through a
// wrapping coroutine; a wrapper that swallows the exception adds no frame.
TEST_F(TaskTraceback, AWrappedTaskIncludesTheWrappersFrame) {
  auto loop = asyncio::new_event_loop();
  loop->set_task_factory([](asyncio::event_loop&, asyncio::task_request& request) {
    if (request.name == "wrapped") request.wrap(&task_traceback_test_wrapper);
    if (request.name == "swallowed") request.wrap(&task_traceback_test_swallowing_wrapper);
  });
  loop->run_until_complete([] {
    auto wrapped = asyncio::create_task([] { return task_traceback_test_calls(7); }, "wrapped");
    EXPECT_THROW(asyncio::await(wrapped), TestError);
    const greenlet::stack_summary frames = wrapped.get_stack();
    expect_traceback_of_the_throw(frames);
    ASSERT_GE(frames.size(), 3u);
    const auto wrapper = std::find_if(frames.begin(), frames.end(), [](const greenlet::stack_frame& f) {
      return names(f, "task_traceback_test_wrapper");
    });
    ASSERT_NE(wrapper, frames.end()) << greenlet::format_stack(frames);
    EXPECT_EQ(wrapper->line, static_cast<unsigned>(body_call_line)) << greenlet::format_stack(frames);

    auto swallowed = asyncio::create_task([] { return task_traceback_test_calls(8); }, "swallowed");
    EXPECT_THROW(asyncio::await(swallowed), TestError);
    const greenlet::stack_summary inner = swallowed.get_stack();
    expect_traceback_of_the_throw(inner);
    for (const greenlet::stack_frame& f : inner) {
      EXPECT_FALSE(names(f, "task_traceback_test_swallowing_wrapper")) << greenlet::format_stack(inner);
    }
  });
  loop->close();
}

// event_loop::options::task_tracebacks = false: nothing recorded, the exception line still printed.
TEST_F(TaskTraceback, TheLoopOptionTurnsTracebacksOff) {
  asyncio::event_loop loop({.task_tracebacks = false});
  loop.run_until_complete([] {
    auto t = asyncio::create_task([] { return task_traceback_test_calls(9); }, "untraced");
    EXPECT_THROW(asyncio::await(t), TestError);
    EXPECT_TRUE(t.get_stack().empty());
    std::ostringstream out;
    t.print_stack(greenlet::no_frame_limit, out);
    EXPECT_EQ(out.str(), "No stack for " + t.repr() + "\nTestError: boom 9\n");
  });
  loop.close();
}

// Something not derived from std::exception: the exception line is its type.
TEST_F(TaskTraceback, AnyThrownTypeIsRecorded) {
  asyncio::run([] {
    auto t = asyncio::create_task([] { throw 42; }, "int");
    asyncio::wait(std::vector<asyncio::AnyTask>{asyncio::AnyTask(t)});
    std::ostringstream out;
    t.print_stack(greenlet::no_frame_limit, out);
    const std::string text = out.str();
    EXPECT_EQ(text.substr(text.size() - 5), "\nint\n") << text;
    EXPECT_THROW(asyncio::await(t), int);
  });
}

}  // namespace task_traceback_test
