// asyncio/future.hpp: Future<T>, asyncio.Future for one event loop.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#include "greenlet/asyncio/errors.hpp"
#include "greenlet/detail/exception_object_arg.hpp"
#include "greenlet/detail/future_state.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

class event_loop;

// Future<T> is a handle to an asyncio-style future: a result (or exception,
// or cancellation) that arrives later on its loop. Copies share the future.
// Futures belong to their loop's thread and are not thread-safe; hand
// results across threads with call_soon_threadsafe().
template <class T = void>
class Future {
 public:
  // value_type is T, the type of the result (void: none). A type alias: nothing to throw, any
  // thread.
  using value_type = T;

  // An empty handle: every call on it but empty(), state(), ==, copying,
  // moving and assigning throws RuntimeError (asyncio_errc::invalid_state),
  // as do await() and the waits given it; moving from a handle leaves it
  // empty too. Get futures from event_loop::create_future() or
  // create_task(). Throws nothing.
  Future() noexcept = default;
  // Internal: adopts one reference. Throws nothing; loop thread only.
  explicit Future(detail::future_value<T>* adopted) noexcept : state_(adopted) {}
  // Future(other) is another handle to other's future. Throws nothing; loop thread only (the
  // reference count is not atomic).
  Future(const Future& other) noexcept : state_(other.state_) {
    if (state_ != nullptr) detail::retain(state_);
  }
  // Future(other) takes over other's reference, leaving other empty. Throws nothing; loop thread
  // only.
  Future(Future&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  // operator=(other) makes this a handle to other's future, dropping the previous reference. Throws
  // nothing; loop thread only.
  Future& operator=(Future other) noexcept {
    std::swap(state_, other.state_);
    return *this;
  }
  ~Future() {
    if (state_ != nullptr) detail::release(state_);
  }

  // done() is true once finished or cancelled; cancelled() only for the latter. Throws
  // RuntimeError for an empty handle, nothing else; loop thread only.
  bool done() const { return checked()->done(); }
  // cancelled() is true once the future was cancelled. Throws RuntimeError for an empty handle,
  // nothing else; loop thread only.
  bool cancelled() const { return checked()->cancelled(); }

  // cancel(msg) cancels a pending future and schedules its callbacks;
  // returns false if it was already done. A task's cancel() goes on to what
  // it awaits; for tasks awaiting each other in a cycle it throws
  // RuntimeError (asyncio_errc::deadlock) naming them. Throws RuntimeError
  // (wrong_loop) off the loop's thread, before changing anything (post it
  // with call_soon_threadsafe()); otherwise only std::bad_alloc (scheduling
  // callbacks). Loop thread only.
  bool cancel(const std::string& message = "") { return owned()->cancel(message); }

  // result() is the result, a reference into the shared state (valid while a handle lives);
  // rethrows the future's exception, throws CancelledError if cancelled and InvalidStateError if
  // still pending. Loop thread only.
  decltype(auto) result() & { return checked()->result(); }
  // Overload of result() for a temporary handle (`for (int x : make_done_future().result())`):
  // returns the result by value, as a reference would dangle once the temporary, perhaps the last
  // handle, is gone. Moved out when no other handle shares the future, else copied; a move-only
  // result is moved out either way, as await() on a temporary does. Throws as result(); loop
  // thread only.
  T result() && {
    detail::future_value<T>* s = checked();
    if constexpr (std::is_void_v<T>) {
      s->result();
    } else if constexpr (!std::is_copy_constructible_v<T>) {
      return std::move(s->result());
    } else {
      if (s->refs == 1) return std::move(s->result());  // exact: the count is only touched on this thread
      return s->result();
    }
  }

  // exception() is the stored exception (null if it finished normally);
  // throws CancelledError if cancelled, InvalidStateError if pending. Loop
  // thread only.
  std::exception_ptr exception() { return checked()->exception(); }

  // set_result(v) finishes the future and schedules its callbacks. Throws InvalidStateError if
  // already done, what T's constructor throws, RuntimeError (invalid_state) if this is a task's
  // future (asyncio: "Task does not support set_result operation"; Task<T> does not even have
  // it). Loop thread only: from another thread RuntimeError (wrong_loop), before anything changes
  // (post it with call_soon_threadsafe()).
  template <class... U>
  void set_result(U&&... value) {
    settable("set_result")->set_result(std::forward<U>(value)...);
  }
  // set_exception(e) finishes it with an exception. Throws InvalidStateError if already done or if
  // e is null, RuntimeError if this is a task's future or off the loop's thread (see set_result()).
  // Loop thread only.
  void set_exception(std::exception_ptr error) { settable("set_exception")->set_exception(std::move(error)); }
  // Overload of set_exception(std::exception_ptr): set_exception(e) finishes the future with a copy
  // of exception object e. Throws InvalidStateError if the future is already done, RuntimeError if
  // it is a task's; loop thread only.
  template <::greenlet::detail::exception_object_arg E>
  void set_exception(E&& error) {
    settable("set_exception")->set_exception(std::make_exception_ptr(std::forward<E>(error)));
  }

  // add_done_callback(fn) schedules fn(future) with call_soon once the
  // future is done (at once, through call_soon, if it already is). fn runs
  // in a copy of the context current now (asyncio's), or of ctx: see
  // event_loop::call_soon(). Returns an id for remove_done_callback().
  // Throws RuntimeError if the future is done and its loop closed, or
  // (wrong_loop) off the loop's thread, std::bad_alloc. Loop thread only.
  std::uint64_t add_done_callback(std::function<void(Future&)> fn) {
    return add_done_callback_in(std::move(fn), ::greenlet::detail::captured_context());
  }
  // add_done_callback(fn, ctx) is add_done_callback(fn) run in a copy of ctx (asyncio's context=).
  // Same rules.
  std::uint64_t add_done_callback(std::function<void(Future&)> fn, const ::greenlet::context& ctx) {
    return add_done_callback_in(std::move(fn), ctx.data());
  }
  // remove_done_callback(id) unschedules it; returns how many were removed. Throws RuntimeError
  // (wrong_loop) off the loop's thread; loop thread only.
  std::size_t remove_done_callback(std::uint64_t id) { return owned()->remove_done_callback(id); }

  // repr() is asyncio's (3.11): "<Future pending cb=[Task.task_wakeup()]>", "<Future finished
  // result='x'>", "<Future finished exception=ValueError('boom')>" (docs/asyncio.md, "repr()").
  // Throws only std::bad_alloc; loop thread only.
  std::string repr() const { return checked()->repr(); }

  // get_loop() is the event loop the future belongs to (asyncio's Future.get_loop()): the loop that
  // made it, or the running loop standing in for it (see ~event_loop()). Throws RuntimeError
  // (invalid_state) for an empty handle, RuntimeError (loop_closed) once the event_loop object is
  // gone (a future outliving its loop). Loop thread only.
  event_loop& get_loop() const {
    detail::loop_core* core = checked()->loop();
    if (core->facade == nullptr) [[unlikely]] {
      detail::throw_loop_gone();
    }
    return *core->facade;
  }

  // empty() is true for a handle that refers to no future (default-made or moved from). Throws
  // nothing; loop thread only.
  bool empty() const noexcept { return state_ == nullptr; }
  // Internal: state() is the shared future state, null for an empty handle. Throws nothing; loop
  // thread only.
  detail::future_value<T>* state() const noexcept { return state_; }
  // operator==(a, b) is true when both handles refer to the same future (or both are empty). Throws
  // nothing; loop thread only.
  friend bool operator==(const Future& a, const Future& b) noexcept { return a.state_ == b.state_; }

 protected:
  // checked() is state_, or throws RuntimeError (invalid_state) for an empty handle: a null
  // state_ was a segmentation fault.
  detail::future_value<T>* checked() const {
    if (state_ == nullptr) [[unlikely]] {
      detail::throw_empty_handle("Future/Task");
    }
    return state_;
  }
  // owned() is checked(), refusing a thread other than the loop's (RuntimeError, wrong_loop) before
  // a call changes anything: the future, its callbacks and the loop's queues are the loop thread's
  // alone. Off that thread, cancel() raced with the loop (its node pool) and could be half applied.
  // One compare of the thread's number, as call_soon()'s.
  detail::future_value<T>* owned() const {
    detail::future_value<T>* s = checked();
    s->loop()->check_loop_thread();
    return s;
  }
  // settable(operation) is owned(), refusing a task's state: a task's result is what its function
  // returns; set from outside, the function ran on and its result was lost.
  detail::future_value<T>* settable(const char* operation) const {
    detail::future_value<T>* s = owned();
    if (s->is_task()) [[unlikely]] {
      detail::throw_task_not_settable(operation);
    }
    return s;
  }
  // state_ is the shared state this handle holds one reference to (null: empty); for Task<T>.
  detail::future_value<T>* state_ = nullptr;

 private:
  std::uint64_t add_done_callback_in(std::function<void(Future&)> fn, ::greenlet::detail::context_ptr context) {
    return owned()->add_done_callback(
        [fn = std::move(fn)](detail::future_state& s) {
          detail::retain(&s);
          Future f(static_cast<detail::future_value<T>*>(&s));
          fn(f);
        },
        std::move(context));
  }
};

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
