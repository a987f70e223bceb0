// asyncio/any_task.hpp: AnyTask, current_task(), all_tasks().
//
// Task<T> carries its result type, but asyncio.current_task() and
// asyncio.all_tasks() hand out tasks whatever they return. AnyTask is that
// handle: everything a Task does except reading the result (name,
// cancellation, done/exception, await, wait/gather).
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "greenlet/asyncio/task.hpp"
#include "greenlet/detail/task_state.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// AnyTask refers to a task of any result type. Copies share the task; an
// AnyTask keeps the task's state alive like a Task does. Loop thread only.
class AnyTask {
 public:
  // value_type is void: awaiting, gather() and wait() on an AnyTask report
  // completion and exceptions, not the value (keep the Task<T> for that).
  using value_type = void;

  // AnyTask() is an empty handle (as current_task() returns outside a task): the calls below but
  // empty(), state() and == throw RuntimeError (asyncio_errc::invalid_state) on it, as does
  // await(). Throws nothing.
  AnyTask() noexcept = default;
  // AnyTask(task) refers to the same task as a Task<T> (empty if task is). Throws nothing; loop
  // thread only.
  template <class T>
  AnyTask(const Task<T>& task) noexcept  // NOLINT(google-explicit-constructor): any Task is an AnyTask
      : AnyTask(task.empty() ? nullptr : task.state()->as_task()) {}
  // Internal: AnyTask(t) takes a new reference to t's state (null: empty). Throws nothing.
  explicit AnyTask(detail::task_state* t) noexcept : task_(t) {
    if (task_ != nullptr) detail::retain(task_->future());
  }
  // AnyTask(other) is another reference to other's task. Throws nothing; loop thread only.
  AnyTask(const AnyTask& other) noexcept : AnyTask(other.task_) {}
  // AnyTask(other) takes other's reference, leaving it empty. Throws nothing.
  AnyTask(AnyTask&& other) noexcept : task_(std::exchange(other.task_, nullptr)) {}
  // operator=(other) refers to other's task instead. Throws nothing; loop thread only.
  AnyTask& operator=(AnyTask other) noexcept {
    std::swap(task_, other.task_);
    return *this;
  }
  // ~AnyTask() drops the reference. Throws nothing; loop thread only.
  ~AnyTask() {
    if (task_ != nullptr) detail::release(task_->future());
  }

  // done(), cancelled(), cancel(msg), exception() are the task's, as Task<T>'s. They throw as
  // Future's do (exception(): CancelledError for a cancelled task, InvalidStateError while
  // pending), and RuntimeError for an empty handle; loop thread only.
  bool done() const { return checked()->future()->done(); }
  // cancelled() is true once the task ended by cancellation. Throws RuntimeError for an empty handle.
  bool cancelled() const { return checked()->future()->cancelled(); }
  // cancel(message) requests cancellation as Task::cancel (false if already done). Throws nothing
  // beyond copying the message, RuntimeError for an empty handle, and (wrong_loop) off the loop's
  // thread before changing anything, as Task::cancel; loop thread only.
  bool cancel(const std::string& message = "") {
    detail::task_state* task = checked();
    task->loop->check_loop_thread();
    return task->future()->cancel(message);
  }
  // exception() is the task's exception, null if it returned. Throws CancelledError if it was
  // cancelled, InvalidStateError while it runs, RuntimeError for an empty handle.
  std::exception_ptr exception() { return checked()->future()->exception(); }
  // result() returns nothing but throws what the task's result would: its exception,
  // CancelledError, or InvalidStateError while it runs; RuntimeError for an empty handle. Loop
  // thread only.
  void result() { checked()->future()->check_result(); }

  // get_name()/set_name(), cancelling()/uncancel() as Task<T>'s. Throw nothing (set_name: beyond
  // moving the string) but RuntimeError for an empty handle; loop thread only.
  const std::string& get_name() const { return checked()->name(); }
  // set_name(name) renames the task. Throws nothing beyond moving the string, RuntimeError for an
  // empty handle.
  void set_name(std::string name) { checked()->set_name(std::move(name)); }
  // cancelling() is the number of pending cancel() requests. Throws RuntimeError for an empty
  // handle, nothing else.
  int cancelling() const { return checked()->cancelling(); }
  // uncancel() takes one cancel() request back and returns how many remain. Throws RuntimeError for
  // an empty handle, nothing else.
  int uncancel() { return checked()->uncancel(); }
  // get_context() is Task<T>::get_context(). Throws RuntimeError for an empty handle, nothing else.
  ::greenlet::context get_context() const { return checked()->context_copy(); }
  // get_stack(limit) and print_stack(limit, out) are Task<T>'s. Throw as those, and RuntimeError
  // for an empty handle.
  ::greenlet::stack_summary get_stack(std::size_t limit = ::greenlet::no_frame_limit) const {
    return checked()->stack(limit);
  }
  void print_stack(std::size_t limit = ::greenlet::no_frame_limit) const {
    detail::print_stack_report(checked()->stack_report(limit));
  }
  void print_stack(std::size_t limit, std::ostream& out) const { out << checked()->stack_report(limit); }
  // repr() describes the task as asyncio's repr does, coro=<...> aside: "<Task pending name='t'
  // wait_for=<Future pending cb=[Task.task_wakeup()]>>", "<Task finished name='t'
  // exception=ValueError('boom')>" (docs/asyncio.md, "repr()"). Throws std::bad_alloc, RuntimeError
  // for an empty handle.
  std::string repr() const { return checked()->repr(); }

  // add_done_callback(fn) schedules fn(task) once the task is done, as Task<T>::add_done_callback
  // (fn gets an AnyTask): with call_soon, in a copy of the context current now, at once through
  // call_soon if the task is done already. Returns an id for remove_done_callback(). Throws
  // RuntimeError for an empty handle, if the task is done and its loop closed, or (wrong_loop) off
  // the loop's thread; std::bad_alloc. Loop thread only.
  std::uint64_t add_done_callback(std::function<void(AnyTask&)> fn) {
    return add_done_callback_in(std::move(fn), ::greenlet::detail::captured_context());
  }
  // add_done_callback(fn, ctx) is add_done_callback(fn) run in a copy of ctx (asyncio's context=).
  // Same rules.
  std::uint64_t add_done_callback(std::function<void(AnyTask&)> fn, const ::greenlet::context& ctx) {
    return add_done_callback_in(std::move(fn), ctx.data());
  }
  // remove_done_callback(id) unschedules it; returns how many were removed. Throws RuntimeError for
  // an empty handle, and (wrong_loop) off the loop's thread; loop thread only.
  std::size_t remove_done_callback(std::uint64_t id) { return owned()->remove_done_callback(id); }

  // empty() is true for a handle that refers to no task. Throws nothing.
  bool empty() const noexcept { return task_ == nullptr; }
  // Internal: state() is the task's future state (for await, wait and gather). Throws nothing.
  detail::future_state* state() const noexcept { return task_ == nullptr ? nullptr : task_->future(); }
  // Two handles are equal when they refer to the same task (a Task<T> converts). Throws nothing.
  friend bool operator==(const AnyTask& a, const AnyTask& b) noexcept { return a.task_ == b.task_; }

 private:
  // checked() is task_, or throws RuntimeError (invalid_state) for an empty handle.
  detail::task_state* checked() const {
    if (task_ == nullptr) [[unlikely]] {
      detail::throw_empty_handle("AnyTask");
    }
    return task_;
  }
  // owned() is the task's future state, checked as Future's: a task, on its loop's thread.
  detail::future_state* owned() const {
    detail::future_state* s = checked()->future();
    s->loop()->check_loop_thread();
    return s;
  }
  std::uint64_t add_done_callback_in(std::function<void(AnyTask&)> fn, ::greenlet::detail::context_ptr context) {
    return owned()->add_done_callback(
        [fn = std::move(fn)](detail::future_state& s) {
          AnyTask task(s.as_task());
          fn(task);
        },
        std::move(context));
  }
  detail::task_state* task_ = nullptr;
};

// current_task() is the task running the caller, as asyncio.current_task():
// empty when the caller runs in a plain callback or the loop's own greenlet.
// In an async_generator's body it is the task whose anext(), asend(),
// athrow() or aclose() runs the step, as in Python, where the body runs in
// that task (see async_generator.hpp). Throws RuntimeError if no loop runs on
// this thread.
AnyTask current_task();

// all_tasks() is every unfinished task of the running loop, as
// asyncio.all_tasks(), oldest first. The tasks that run async_generator
// bodies are not listed: in Python those bodies run in their consumers'
// tasks. Throws RuntimeError if no loop runs on this thread, std::bad_alloc.
std::vector<AnyTask> all_tasks();

// await(t) suspends the calling task until t is done, then rethrows its
// exception (CancelledError if it was cancelled). Throws RuntimeError outside
// a task, CancelledError if the caller is cancelled meanwhile. A task of the
// loop thread only.
inline void await(const AnyTask& t) {
  detail::await_inline(t.state());  // RuntimeError for an empty handle
  t.state()->check_result();
}

namespace detail {
// An AnyTask is a future to gather(a, b, ...), wait_for() and ensure_future(),
// as a Task<T> is (its result is void).
template <>
struct is_future<AnyTask> : std::true_type {};
}  // namespace detail

}  // namespace greenlet::asyncio

// std::hash<AnyTask> lets AnyTask key unordered containers (asyncio code keeps sets of tasks).
template <>
struct std::hash<greenlet::asyncio::AnyTask> {
  // operator()(t) hashes the task t refers to. Throws nothing.
  std::size_t operator()(const greenlet::asyncio::AnyTask& t) const noexcept {
    return std::hash<const void*>()(t.state());
  }
};

#pragma GCC visibility pop
