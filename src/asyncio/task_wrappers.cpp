// task_wrappers.cpp: the wrappers task factories put around tasks' functions
// (task_request::wrap()): where each task's wrapper waits until its first step, and how a
// wrapper's call of the task's body ends the task.
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "greenlet/asyncio/errors.hpp"
#include "greenlet/asyncio/task_body.hpp"
#include "greenlet/detail/loop_core.hpp"
#include "greenlet/detail/task_state.hpp"

namespace greenlet::asyncio {

void task_body::operator()() {
  if (called_) {
    throw RuntimeError(asyncio_errc::invalid_state,
                       "task_body: the task's function ran already; a task factory's wrapper calls its body once");
  }
  called_ = true;
  try {
    run_(argument_);
  } catch (...) {
    error_ = std::current_exception();
    throw;
  }
}

namespace detail {

void run_wrapper(const task_wrapper& wrapper, task_body& body) {
  wrapper(body);
  if (body.error_ != nullptr) std::rethrow_exception(body.error_);
  if (!body.called_) {
    throw RuntimeError(asyncio_errc::invalid_state,
                       "a task factory's wrapper returned without calling its task_body, so the task's function "
                       "never ran; the wrapper must call body() once");
  }
}

// The wrappers of a loop's tasks that have not taken their first step, by task. Not in the task:
// a field for what few tasks have would cost every task 8 bytes, which a suspended task pays in
// memory. The loop's, not a global table, so that its buckets go with the loop. Under a mutex:
// the loop's thread sets and takes them, but an unstarted task's last reference may go anywhere.
struct task_wrapper_registry {
  std::mutex mutex;
  std::unordered_map<const task_state*, std::shared_ptr<const task_wrapper>> by_task;
};

void free_task_wrappers(task_wrapper_registry* registry) noexcept { delete registry; }

void task_state::set_wrapper(std::shared_ptr<const task_wrapper> w) {
  loop_core* on = future_->loop();
  if (on->task_wrappers == nullptr) on->task_wrappers = new task_wrapper_registry();
  task_wrapper_registry& r = *on->task_wrappers;
  const std::lock_guard lock(r.mutex);
  r.by_task.insert_or_assign(this, std::move(w));
  wrapped_ = true;
}

std::shared_ptr<const task_wrapper> task_state::take_wrapper() noexcept {
  wrapped_ = false;
  task_wrapper_registry* r = future_->loop()->task_wrappers;
  const std::lock_guard lock(r->mutex);
  auto node = r->by_task.extract(this);
  return node ? std::move(node.mapped()) : nullptr;
}

void task_state::run_through_wrapper(void (*body)(void*), void* argument) {
  const std::shared_ptr<const task_wrapper> wrapper = take_wrapper();
  task_body task_function(body, argument);
  // Never null: set_wrapper() registered it, and only run() or forget_wrapper() takes it.
  run_wrapper(*wrapper, task_function);
}

}  // namespace detail
}  // namespace greenlet::asyncio
