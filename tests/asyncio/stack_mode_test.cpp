// stack_mode_test.cpp: tasks and stack copying. The loop and its futures,
// locks and queues refer to objects on suspended tasks' stacks, so tasks
// always run on separate stacks: a thread whose default is stack_mode::shared
// still runs asyncio code correctly, and asking for shared task stacks is a
// clear error.
#include <mutex>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using TaskStackMode = greenlet_test::GreenletTest;

// Restores the thread's stack mode when a test ends.
struct thread_mode_scope {
  explicit thread_mode_scope(greenlet::stack_mode mode) { greenlet::set_thread_stack_mode(mode); }
  ~thread_mode_scope() { greenlet::set_thread_stack_mode(greenlet::stack_mode::inherit); }
};

TEST_F(TaskStackMode, TasksOnASharedModeThreadStillWork) {
  thread_mode_scope shared(greenlet::stack_mode::shared);
  std::vector<std::string> log;
  const int total = asyncio::run([&] {
    asyncio::Lock lock;
    asyncio::Queue<int> queue;
    auto worker = [&](std::string name) {
      for (int i = 0; i < 3; ++i) {
        std::lock_guard held(lock);  // the tasks take the lock in turn (FIFO)
        log.push_back(name + std::to_string(i));
        asyncio::sleep(0);
      }
      queue.put_nowait(static_cast<int>(name.size()));
    };
    auto a = asyncio::create_task([&] { worker("a"); });
    auto b = asyncio::create_task([&] { worker("bb"); });
    asyncio::await(a);
    asyncio::await(b);
    return queue.get() + queue.get();
  });
  EXPECT_EQ(total, 3);
  EXPECT_EQ(log, (std::vector<std::string>{"a0", "bb0", "a1", "bb1", "a2", "bb2"}));
  // Plain greenlets made on this thread still get the shared stack.
  greenlet::greenlet g([] { return greenlet::getcurrent().stack_size(); });
  EXPECT_GE(g.switch_().get<std::size_t>(), std::size_t{8} << 20);
}

TEST_F(TaskStackMode, SharedTaskStacksAreRefused) {
  try {
    asyncio::event_loop loop(asyncio::event_loop::options{.task_stack = {.mode = greenlet::stack_mode::shared}});
    FAIL() << "expected ValueError";
  } catch (const asyncio::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("stack_mode::shared"), std::string::npos) << e.what();
  }
}

}  // namespace
