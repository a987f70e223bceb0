// million_tasks_test.cpp: GREENLET_SCALE_TASKS tasks (default 100,000)
// suspended at once on unguarded 16 KiB stacks, far past the ~32,000
// guarded stacks vm.max_map_count allows; every one finishes with its own
// value and the loop ends clean. bench/scale_bench.cpp measures the same
// workload at 1,000,000.
#include <cstdlib>
#include <string>
#include <vector>

#include <greenlet/asyncio.hpp>

#include "asyncio/asyncio_test_support.hpp"
#include "support/process_stats.hpp"

namespace {

namespace asyncio = greenlet::asyncio;

long scale_tasks() {
  const char* env = std::getenv("GREENLET_SCALE_TASKS");
  if (env != nullptr && *env != '\0') return std::strtol(env, nullptr, 10);
  return 100000;
}

using greenlet_test::kernel_mappings;

using MillionTasks = greenlet_test::GreenletTest;

TEST_F(MillionTasks, AllSuspendedAtOnceThenAllFinish) {
  const long n = scale_tasks();
  ASSERT_GT(n, 0);
  const std::size_t live_before = greenlet::debug::live_count();
  long waiting_seen = 0, mappings_seen = 0, results_checked = 0;
  asyncio::event_loop::options opts;
  opts.task_stack = {.size = 16 * 1024, .guard_page = false};
  asyncio::run(
      [&] {
        asyncio::Event go;
        long waiting = 0;
        std::vector<asyncio::Task<long>> tasks;
        tasks.reserve(static_cast<std::size_t>(n));
        for (long i = 0; i < n; ++i) {
          tasks.push_back(asyncio::create_task([&go, &waiting, i] {
            ++waiting;
            go.wait();
            --waiting;
            return i * 3 + 1;
          }));
        }
        asyncio::sleep(0);  // every task runs to go.wait()
        waiting_seen = waiting;
        mappings_seen = kernel_mappings();
        for (const auto& t : tasks) {
          if (t.done()) {
            ADD_FAILURE() << "a task finished before the event was set";
            break;
          }
        }
        go.set();
        std::vector<long> results = asyncio::gather(tasks);
        ASSERT_EQ(results.size(), static_cast<std::size_t>(n));
        for (long i = 0; i < n; ++i) {
          ASSERT_EQ(results[static_cast<std::size_t>(i)], i * 3 + 1) << "task " << i;
          ++results_checked;
        }
        EXPECT_EQ(waiting, 0);
      },
      opts);
  EXPECT_EQ(waiting_seen, n) << "not every task was suspended at once";
  EXPECT_EQ(results_checked, n);
  // Stacks come many to a slab: the process stays far below vm.max_map_count
  // (65530 by default), where one mapping per stack could not hold 100,000.
  EXPECT_LT(mappings_seen, 5000) << "kernel mappings while " << n << " tasks were suspended";
  EXPECT_EQ(greenlet::debug::live_count(), live_before) << "tasks' greenlets left alive";
}

}  // namespace
