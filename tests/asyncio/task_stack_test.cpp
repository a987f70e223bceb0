// task_stack_test.cpp: asyncio's Task.get_stack() and Task.print_stack() (CPython's
// test_tasks.py test_get_stack and test_print_stack, in spirit): where a pending task waits, the
// task reading its own stack, the states without a stack, the limit, and the printed text.
#include <algorithm>
#include <sstream>
#include <string>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;

namespace task_stack_test {

using TaskStack = greenlet_test::GreenletTest;

int waiting_line = 0;

[[gnu::noinline]] int task_stack_test_waits_here(double seconds) {
  waiting_line = __LINE__ + 1;
  asyncio::sleep(seconds);
  return 7;  // not a tail call: the frame stays while it sleeps
}

bool names(const greenlet::stack_frame& f, const char* function) {
  return f.function.find(function) != std::string::npos;
}

TEST_F(TaskStack, APendingTaskShowsTheAwaitItWaitsIn) {
  asyncio::run([] {
    auto t = asyncio::create_task([] { return task_stack_test_waits_here(0.01); }, "sleeper");
    EXPECT_TRUE(t.get_stack().empty());  // not started yet
    asyncio::sleep(0);
    const greenlet::stack_summary frames = t.get_stack();
    ASSERT_FALSE(frames.empty());
    EXPECT_TRUE(names(frames.back(), "task_stack_test_waits_here")) << greenlet::format_stack(frames);
    EXPECT_EQ(frames.back().file, __FILE__);
    EXPECT_EQ(frames.back().line, static_cast<unsigned>(waiting_line));
    // The same through an AnyTask; limit 1 is the newest frame alone.
    const greenlet::stack_summary newest = asyncio::AnyTask(t).get_stack(1);
    ASSERT_EQ(newest.size(), 1u);
    EXPECT_EQ(newest[0].function, frames.back().function);
    // Read, it goes on as if it had not been.
    EXPECT_EQ(asyncio::await(t), 7);
    EXPECT_TRUE(t.get_stack().empty());  // done
  });
}

[[gnu::noinline]] greenlet::stack_summary task_stack_test_read_own() {
  greenlet::stack_summary frames = asyncio::current_task().get_stack();
  return frames;
}

TEST_F(TaskStack, TheRunningTaskReadsItsOwnStack) {
  greenlet::stack_summary frames;
  asyncio::run([&] { frames = task_stack_test_read_own(); });
  ASSERT_FALSE(frames.empty());
  EXPECT_TRUE(names(frames.back(), "task_stack_test_read_own")) << greenlet::format_stack(frames);
  // No frame of the loop or of the library: the task's function is the oldest.
  for (const greenlet::stack_frame& f : frames) {
    EXPECT_NE(f.function.rfind("greenlet::", 0), 0u) << greenlet::format_stack(frames);
  }
}

TEST_F(TaskStack, PrintStackWritesPythonsText) {
  asyncio::run([] {
    auto t = asyncio::create_task([] { return task_stack_test_waits_here(0.01); }, "sleeper");
    asyncio::sleep(0);
    std::ostringstream pending;
    t.print_stack(greenlet::no_frame_limit, pending);
    const std::string header = "Stack for " + t.repr() + " (most recent call last):\n";
    EXPECT_EQ(pending.str().rfind(header, 0), 0u) << pending.str();
    EXPECT_EQ(pending.str().substr(header.size()), greenlet::format_stack(t.get_stack()));
    EXPECT_NE(pending.str().find("  File \"" + std::string(__FILE__) + "\", line " + std::to_string(waiting_line)),
              std::string::npos)
        << pending.str();
    // To stderr without a stream.
    testing::internal::CaptureStderr();
    asyncio::AnyTask(t).print_stack(1);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(err.rfind("Stack for <Task pending name='sleeper'", 0), 0u) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 2) << err;  // the header and one frame
    asyncio::await(t);
    std::ostringstream done;
    t.print_stack(greenlet::no_frame_limit, done);
    EXPECT_EQ(done.str(), "No stack for <Task finished name='sleeper' result=7>\n");
  });
}

}  // namespace task_stack_test
