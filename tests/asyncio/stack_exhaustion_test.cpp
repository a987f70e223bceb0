// stack_exhaustion_test.cpp: more tasks than guarded stacks the kernel
// allows (vm.max_map_count), with the default guarded stacks. The tasks that
// got a stack run and finish; each of the others fails at its start with
// greenlet::errc::stack_exhausted naming the limit and the fixes; the loop
// ends clean, and promptly: every failure used to read /proc/self/maps
// (milliseconds with 65,000 mappings), so 60,000 tasks took minutes to fail.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <greenlet/asyncio.hpp>

#include "asyncio/asyncio_test_support.hpp"
#include "support/process_stats.hpp"

namespace {

namespace asyncio = greenlet::asyncio;

using greenlet_test::max_map_count;

// More than the ~32,000 guarded stacks (two mappings each) of the default
// limit, and enough failures that a per-failure read of /proc/self/maps
// (~4 ms each here) would pass the alarm below.
constexpr int tasks_started = 60000;

// start_too_many_tasks() is the child's work: it prints what happened and
// exits 0 if every task either finished or failed for want of a stack.
[[noreturn, maybe_unused]] void start_too_many_tasks() {
  auto fail = [](const std::string& why) {
    std::fprintf(stderr, "%s\n", why.c_str());
    std::_Exit(1);
  };
  // Minutes, not seconds, mean the failures cost something per task that
  // grows with the number of mappings.
  ::alarm(60);
  int finished = 0, exhausted = 0;
  std::string message;
  asyncio::run([&] {
    asyncio::Event go;
    std::vector<asyncio::Task<int>> tasks;
    tasks.reserve(tasks_started);
    for (int i = 0; i < tasks_started; ++i) {
      tasks.push_back(asyncio::create_task([&go, i] {
        go.wait();
        return i;
      }));
    }
    asyncio::sleep(0);  // every task tries to start; those with a stack wait
    go.set();
    // Awaited one by one: the process has no mapping left for a large
    // allocation (gather()'s arrays) until the tasks give their stacks back.
    for (int i = 0; i < tasks_started; ++i) {
      try {
        const int value = asyncio::await(tasks[static_cast<std::size_t>(i)]);
        if (value != i) fail("task " + std::to_string(i) + " returned " + std::to_string(value));
        ++finished;
      } catch (const greenlet::error& e) {
        if (e.code() != greenlet::errc::stack_exhausted) fail(std::string("wrong error: ") + e.what());
        if (message.empty()) message = e.what();
        ++exhausted;
      } catch (const std::exception& e) {
        fail(std::string("unexpected exception: ") + e.what());
      }
    }
  });
  if (finished + exhausted != tasks_started) fail("tasks neither finished nor failed");
  std::fprintf(stderr, "FINISHED %d EXHAUSTED %d\n%s\n", finished > 20000 ? 1 : 0, exhausted > 0 ? 1 : 0,
               message.c_str());
  std::_Exit(0);
}

TEST(StackExhaustionDeathTest, TasksPastTheMappingLimitFailPromptlyWithTheFixes) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer needs the mappings this test uses up";
#else
  if (max_map_count() > 200000) GTEST_SKIP() << "vm.max_map_count is raised on this machine";
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(start_too_many_tasks(), ::testing::ExitedWithCode(0),
              "FINISHED 1 EXHAUSTED 1\ngreenlet: cannot map a [0-9]+-byte guarded fiber stack .*"
              "vm.max_map_count is [0-9]+.*event_loop::options::task_stack.*sysctl -w vm.max_map_count");
#endif
}

}  // namespace
