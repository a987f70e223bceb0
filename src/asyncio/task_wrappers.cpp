// task_wrappers.cpp: the wrappers task factories put around tasks' functions
// (task_request::wrap()): where each task's wrapper waits until its first step, and how a
// wrapper's call of the task's body ends the task.
#include <memory>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>

#include "fiber/escape_trace.hpp"
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
    if (record_escape_) {
      ::greenlet::detail::call_recording_escape(run_, argument_, escape_);
    } else {
      run_(argument_);
    }
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
  task_body task_function(body, argument, loop->task_tracebacks);
  // Never null: set_wrapper() registered it, and only run() or forget_wrapper() takes it.
  struct wrapper_call {
    const task_wrapper* wrapper;
    task_body* body;
  } call{wrapper.get(), &task_function};
  auto run = [](void* p) {
    auto* c = static_cast<wrapper_call*>(p);
    run_wrapper(*c->wrapper, *c->body);
  };
  if (!loop->task_tracebacks) {
    run(&call);
    return;
  }
  // The traceback of what leaves the wrapper: from its throw, or, for the function's own exception
  // (rethrown by the wrapper or by run_wrapper()), from the function's throw, through the body's
  // call, then on through the wrapper's frames, as Python's through a wrapping coroutine. body()
  // adds the task's own part, all library frames, which printing leaves out.
  ::greenlet::detail::escape_trace through_wrapper;
  try {
    ::greenlet::detail::call_recording_escape(run, &call, through_wrapper);
  } catch (...) {
    ::greenlet::detail::escape_trace trace;
    if (std::current_exception() == task_function.error_ && !task_function.escape_.empty()) {
      trace = std::move(task_function.escape_);
      ::greenlet::detail::append_outer(trace, through_wrapper);
    } else {
      trace = std::move(through_wrapper);
    }
    // Without memory for the note, the task fails with its own exception all the same, untraced.
    future_->failure_.reset(new (std::nothrow) future_state::failure_note{"", std::move(trace)});
    throw;
  }
}

}  // namespace detail
}  // namespace greenlet::asyncio
