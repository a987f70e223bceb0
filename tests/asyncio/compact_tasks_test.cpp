// compact_tasks_test.cpp: event_loop::options::compact_tasks keeps each task's
// state and its greenlet's object in the top page of the task's stack. What
// must hold: the task is there (where the sanitizers allow it); its outcome
// outlives its greenlet, its loop and asyncio::run(); its stack goes back to
// the pool only when its last handle goes; unset, the environment decides.
// The whole event-loop suite also runs with it on (tests/CMakeLists.txt).
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"
#include "greenlet/detail/sanitizers.hpp"

namespace compact_tasks_test {

namespace asyncio = greenlet::asyncio;
using CompactTasks = greenlet_test::GreenletTest;

asyncio::event_loop::options compact(bool on = true) {
  asyncio::event_loop::options opts;
  opts.compact_tasks = on;
  opts.task_stack = {.size = 64 * 1024, .guard_page = false};
  return opts;
}

// host_of(task) is the stack host the task was made in, null for a heap task.
template <class T>
greenlet::detail::stack_host* host_of(const asyncio::Task<T>& task) {
  return task.state()->as_task()->host;
}

#if defined(GREENLET_ASAN)
constexpr bool hosting_on = false;  // the sanitizers need the tasks on the heap
#else
constexpr bool hosting_on = true;
#endif

TEST_F(CompactTasks, ATaskLivesInTheTopPageOfItsStackBesideItsGreenlet) {
  asyncio::run(
      [] {
        auto task = asyncio::create_task([] {
          auto* self = asyncio::detail::awaiting_task().glet.impl();
          asyncio::sleep(0);
          return self->stack_base;
        });
        void* stack_base = asyncio::await(task);
        if (!hosting_on) {
          EXPECT_EQ(host_of(task), nullptr);
          return;
        }
        ASSERT_NE(host_of(task), nullptr);
        const char* state = reinterpret_cast<const char*>(task.state()->as_task());
        const char* base = static_cast<const char*>(stack_base);
        EXPECT_GE(state, base) << "the task's state lies above its greenlet's stack";
        EXPECT_LT(state, base + 4096) << "in the same page as the top of its frames";
      },
      compact());
}

TEST_F(CompactTasks, OutcomesOutliveTheGreenletTheLoopAndRun) {
  std::vector<asyncio::Task<std::string>> kept;
  asyncio::Task<> cancelled, failed;
  asyncio::run(
      [&] {
        auto gate = asyncio::get_running_loop().create_future<>();
        for (int i = 0; i < 50; ++i) {
          kept.push_back(asyncio::create_task([i, gate]() mutable {
            asyncio::await(gate);
            return std::string(100, static_cast<char>('a' + i % 26)) + std::to_string(i);
          }));
        }
        failed = asyncio::create_task([] {
          asyncio::sleep(0);
          throw std::runtime_error("failed in a compact task");
        });
        cancelled = asyncio::create_task([] { asyncio::sleep(3600); });
        asyncio::sleep(0);
        gate.set_result();
        asyncio::wait(kept);
        try {
          asyncio::await(failed);
        } catch (const std::runtime_error&) {
        }
        cancelled.cancel("no longer wanted");
        asyncio::sleep(0);
      },
      compact());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(kept[i].done());
    EXPECT_EQ(kept[i].result(), std::string(100, static_cast<char>('a' + i % 26)) + std::to_string(i));
  }
  EXPECT_EQ(asyncio_test::what_of(failed.exception()), "failed in a compact task");
  EXPECT_TRUE(cancelled.cancelled());
}

TEST_F(CompactTasks, PendingTasksAtTheEndOfRunAreCancelledAndTheirHandlesStayUsable) {
  std::vector<asyncio::Task<int>> waiting;
  int unwound = 0;
  asyncio::run(
      [&] {
        for (int i = 0; i < 20; ++i) {
          waiting.push_back(asyncio::create_task([&unwound] {
            struct counts {
              int* n;
              ~counts() { ++*n; }
            } guard{&unwound};
            asyncio::sleep(3600);
            return 1;
          }));
        }
        asyncio::sleep(0);
      },
      compact());
  EXPECT_EQ(unwound, 20);
  for (auto& t : waiting) EXPECT_TRUE(t.cancelled());
}

TEST_F(CompactTasks, AFinishedTasksStackIsReusedOnlyOnceItsLastHandleGoes) {
  asyncio::run(
      [] {
        auto first = asyncio::create_task([] { return 1; });
        EXPECT_EQ(asyncio::await(first), 1);
        greenlet::detail::stack_host* first_host = host_of(first);
        if (!hosting_on) {  // not GTEST_SKIP(): its message would count as an allocation the test left
          EXPECT_EQ(first_host, nullptr);
          return;
        }
        auto second = asyncio::create_task([] { return 2; });
        EXPECT_EQ(asyncio::await(second), 2);
        EXPECT_NE(host_of(second), first_host) << "first's handle still holds its stack";
        second = asyncio::Task<int>();
        first = asyncio::Task<int>();
        auto third = asyncio::create_task([] { return 3; });
        EXPECT_EQ(host_of(third), first_host) << "the stack let go of last comes back first";
        EXPECT_EQ(asyncio::await(third), 3);
      },
      compact());
}

TEST_F(CompactTasks, UnsetTheEnvironmentDecidesAndAnExplicitChoiceWins) {
  const char* before = std::getenv("GREENLET_ASYNCIO_COMPACT_TASKS");
  const std::string saved = before != nullptr ? before : "";
  auto host_in = [](asyncio::event_loop::options opts) {
    return asyncio::run([] { return host_of(asyncio::create_task([] {})) != nullptr; }, opts);
  };
  auto unset = compact();
  unset.compact_tasks.reset();
  ::setenv("GREENLET_ASYNCIO_COMPACT_TASKS", "1", 1);
  EXPECT_EQ(host_in(unset), hosting_on);
  EXPECT_FALSE(host_in(compact(false)));
  ::setenv("GREENLET_ASYNCIO_COMPACT_TASKS", "0", 1);
  EXPECT_FALSE(host_in(unset));
  EXPECT_EQ(host_in(compact(true)), hosting_on);
  if (before != nullptr) {
    ::setenv("GREENLET_ASYNCIO_COMPACT_TASKS", saved.c_str(), 1);
  } else {
    ::unsetenv("GREENLET_ASYNCIO_COMPACT_TASKS");
  }
}

}  // namespace compact_tasks_test
