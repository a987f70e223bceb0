// task_overflow_report_test.cpp: a task that overflows its stack is named in
// the report ("Task 'parser-task'"), and the advice is the loop's
// event_loop::options::task_stack, which is what sizes a task's stack (the
// report used to name a bare greenlet number and advise
// greenlet::set_default_stack_size(), which a loop's task_stack overrides).
#include <greenlet/asyncio.hpp>

#include <gtest/gtest.h>

namespace {

namespace asyncio = greenlet::asyncio;

// recurse(n) uses ~4 KiB of stack per frame.
[[maybe_unused]] __attribute__((noinline)) long recurse(long n) {
  volatile char frame[4096];
  frame[0] = static_cast<char>(n);
  if (n == 0) return frame[0];
  return recurse(n - 1) + frame[0];
}

[[maybe_unused]] void overflow_in_task(const char* name, bool guarded) {
  asyncio::event_loop::options opts;
  opts.task_stack = {.size = 64 * 1024, .guard_page = guarded};
  asyncio::run(
      [name] {
        auto t = name != nullptr ? asyncio::create_task([] { return recurse(1L << 40); }, name)
                                 : asyncio::create_task([] { return recurse(1L << 40); });
        return asyncio::await(t);
      },
      opts);
}

// A death test runs in a child process: nothing for a leak check to see.
TEST(TaskOverflowReportDeathTest, NamedTaskIsNamedWithTheLoopsTaskStackAsAdvice) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reports stack overflows itself";
#else
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(overflow_in_task("parser-task", true),
               "stack overflow in Task 'parser-task' \\(greenlet #[0-9]+\\): its stack is 65536 bytes \\(guard page "
               "hit\\)\\.\n"
               "  Give it a bigger one: asyncio::event_loop::options::task_stack = \\{.size = 262144\\}\n");
#endif
}

// An unnamed task's default name is made at the fault, in the signal handler,
// without allocating: it is not made for every task in advance.
TEST(TaskOverflowReportDeathTest, UnnamedTaskIsNamedByItsNumber) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reports stack overflows itself";
#else
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(overflow_in_task(nullptr, true),
               "stack overflow in Task 'Task-[0-9]+' \\(greenlet #[0-9]+\\).*\n"
               "  Give it a bigger one: asyncio::event_loop::options::task_stack");
#endif
}

// An unguarded task stack: the advice keeps it unguarded.
TEST(TaskOverflowReportDeathTest, UnguardedTaskStackKeepsItsGuardSetting) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reports stack overflows itself";
#else
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(overflow_in_task("unguarded", false),
               "stack overflow in Task 'unguarded' \\(greenlet #[0-9]+\\).*\n"
               "  Give it a bigger one: asyncio::event_loop::options::task_stack = \\{.size = 262144, .guard_page = "
               "false\\}");
#endif
}

}  // namespace
