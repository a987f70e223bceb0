// loop_stack_hold_test.cpp: a running loop holds the pages of its finished
// tasks' stacks through a burst (past the pool's warm budget), so the next
// burst reuses them without page faults, and lets them go as soon as it
// waits: when idle, or when it stops. It reads this thread's stack pool
// through greenlet::debug::pooled_stacks().
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using LoopStackHold = greenlet_test::GreenletTest;

// Small unguarded stacks, on virtual time: a timer is always ahead when the loop looks, so the turn
// before it waits (on a loaded machine a real millisecond could pass first, and that turn would not).
const asyncio::event_loop::options small_unguarded_virtual{.virtual_time = true,
                                                           .task_stack = {.size = 16 * 1024, .guard_page = false}};

std::size_t pooled_warm() { return greenlet::debug::pooled_stacks().warm; }
std::size_t warm_budget() {
  (void)greenlet::getcurrent();  // the thread's pool exists from its first greenlet on
  return greenlet::debug::pooled_stacks().warm_budget;
}

void burst(std::size_t tasks) {
  std::vector<asyncio::Task<>> all;
  for (std::size_t i = 0; i < tasks; ++i) all.push_back(asyncio::create_task([] { asyncio::sleep(0); }));
  asyncio::gather(all);
}

// other_sizes is what the pool keeps warm before a test: stacks of other sizes left by earlier tests
// (QueueStressTests leaves 1,024 of 64 KiB). The budget is per stack size and pooled_warm() counts
// every size, so each bound below allows for them.
TEST_F(LoopStackHold, FinishedStacksStayWarmWhileBusyAndGoWhenTheLoopWaits) {
  const std::size_t tasks = warm_budget() + 2000;
  const std::size_t other_sizes = pooled_warm();
  std::size_t held = 0, after_wait = 0, second_burst = 0;
  asyncio::run(
      [&] {
        burst(tasks);
        held = pooled_warm();  // no wait since: the loop has been busy
        burst(tasks);          // reuses them
        second_burst = pooled_warm();
        asyncio::sleep(0.001);  // the loop waits for this timer
        after_wait = pooled_warm();
      },
      small_unguarded_virtual);
  EXPECT_GE(held, tasks);
  EXPECT_GE(second_burst, tasks);
  EXPECT_LE(after_wait, warm_budget() + other_sizes);
  EXPECT_LE(pooled_warm(), warm_budget() + other_sizes) << "a stopped loop holds nothing";
}

// Outside a running loop the budget applies at once, as before.
TEST_F(LoopStackHold, WithoutALoopReleasesFollowTheBudget) {
  const std::size_t count = warm_budget() + 100;
  const std::size_t other_sizes = pooled_warm();  // see the test above
  std::vector<greenlet::greenlet> all;
  for (std::size_t i = 0; i < count; ++i) {
    all.emplace_back([] { greenlet::getcurrent().parent().switch_(); },
                     greenlet::stack_options{.size = 16 * 1024, .guard_page = false});
    all.back().switch_();
  }
  for (auto& g : all) g.switch_();  // each finishes and releases its stack
  all.clear();
  EXPECT_LE(pooled_warm(), warm_budget() + other_sizes);
}

}  // namespace
