// any_task.cpp: current_task() and all_tasks(), read from the running loop.
#include "greenlet/asyncio/any_task.hpp"

#include <algorithm>

namespace greenlet::asyncio {

AnyTask current_task() {
  detail::loop_core& loop = detail::require_running_loop();
  return AnyTask(loop.current_task);
}

std::vector<AnyTask> all_tasks() {
  detail::loop_core& loop = detail::require_running_loop();
  std::vector<AnyTask> tasks;
  tasks.reserve(loop.task_count);
  for (detail::task_state* t = loop.tasks_head; t != nullptr; t = t->next) {
    if (!t->future()->done()) tasks.emplace_back(t);
  }
  // The loop links each new task at the head of its list: newest first.
  std::reverse(tasks.begin(), tasks.end());
  return tasks;
}

}  // namespace greenlet::asyncio
