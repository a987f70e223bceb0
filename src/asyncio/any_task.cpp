// any_task.cpp: current_task() and all_tasks(), read from the running loop.
#include "greenlet/asyncio/any_task.hpp"

#include <algorithm>

namespace greenlet::asyncio {

AnyTask current_task() {
  detail::loop_core& loop = detail::require_running_loop();
  detail::task_state* task = loop.current_task;
  // An async generator's body runs in a task of its own, but in Python it
  // runs in the task stepping it: while a step is under way, that is the
  // current task (followed on when that one is itself a generator's body).
  // Between steps (closed by its destructor or at asyncio::run()'s end,
  // where Python makes a task to run aclose()) the body's own task is.
  while (task != nullptr && task->async_generator != nullptr && task->async_generator->consumer != nullptr) {
    task = task->async_generator->consumer;
  }
  return AnyTask(task);
}

std::vector<AnyTask> all_tasks() {
  detail::loop_core& loop = detail::require_running_loop();
  std::vector<AnyTask> tasks;
  tasks.reserve(loop.task_count);
  for (detail::task_state* t = loop.tasks_head; t != nullptr; t = t->next) {
    // An async generator's body runs in a task of its own, but as a part of
    // its consumer's: Python's all_tasks() has no task for it.
    if (!t->future()->done() && t->async_generator == nullptr) tasks.emplace_back(t);
  }
  // The loop links each new task at the head of its list: newest first.
  std::reverse(tasks.begin(), tasks.end());
  return tasks;
}

}  // namespace greenlet::asyncio
