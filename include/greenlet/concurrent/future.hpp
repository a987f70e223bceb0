// concurrent/future.hpp: concurrent::Future<T>, Python's
// concurrent.futures.Future: a thread-safe result that a worker sets and any
// thread may wait for.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "greenlet/concurrent/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::concurrent {

namespace detail {

// waiter is what wait() and as_completed() block on: every future it watches
// pushes its index to `finished` when it finishes, and notes whether it
// raised. Its thread is woken only once ready(): `finished` holds wake_after
// indices, or (wake_on_raise) one of them raised. So a completion costs O(1)
// and wait() wakes when its condition holds, not to re-check every future at
// every completion (that was quadratic). Set wake_after and wake_on_raise
// before adding the waiter to any future; the other fields are under mutex.
struct waiter {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::size_t> finished;
  std::size_t wake_after = 1;
  bool wake_on_raise = false;
  bool raised = false;
  bool ready() const noexcept { return finished.size() >= wake_after || (wake_on_raise && raised); }
  // notify(index, raised) records one completion; raised: it finished with an
  // exception (not cancelled). Wakes the thread if ready().
  void notify(std::size_t index, bool raised);
};

// check_not_in_task(what) throws RuntimeError(blocking_in_loop) when called
// from inside a task of a running event loop: blocking there would stall
// every task of the loop (and deadlock if the result needs the loop).
void check_not_in_task(const char* what);

// demangle(mangled) is a type's class name as Python shows one: unqualified
// (namespaces and enclosing classes dropped) and without template arguments.
std::string demangle(const char* mangled);
// describe_error(e) is the last line of Python's traceback for e: its class
// (demangled, as demangle()) and what(), "invalid_argument: doh!"; for an
// exception not derived from std::exception, greenlet::describe_exception()'s
// placeholder. Throws only std::bad_alloc; any thread.
std::string describe_error(const std::exception_ptr& e);
// type_name<T>() is the Python-ish name repr() shows: int, float, str...
template <class T>
std::string type_name() {
  if constexpr (std::is_void_v<T>) {
    return "NoneType";
  } else if constexpr (std::is_same_v<T, bool>) {
    return "bool";
  } else if constexpr (std::is_integral_v<T>) {
    return "int";
  } else if constexpr (std::is_floating_point_v<T>) {
    return "float";
  } else if constexpr (std::is_same_v<T, std::string>) {
    return "str";
  } else {
    return demangle(typeid(T).name());
  }
}

// future_core is the type-independent state behind Future<T>: status,
// exception, done callbacks and waiters, under one mutex. Callbacks and
// waiters run after the mutex is released, in the completing thread.
class future_core : public std::enable_shared_from_this<future_core> {
 public:
  enum class status : unsigned char { pending, running, cancelled, finished };

  future_core() = default;
  virtual ~future_core() = default;
  future_core(const future_core&) = delete;
  future_core& operator=(const future_core&) = delete;

  bool cancel();
  bool cancelled() const;
  bool running() const;
  bool done() const;
  // raised() is true once the future finished with an exception: false while
  // pending or running, if it returned and if it was cancelled. Unlike
  // exception(0) it never throws (beyond std::system_error from the mutex).
  bool raised() const;
  bool set_running_or_notify_cancel();
  void set_exception(std::exception_ptr error);
  // wait_done(timeout) blocks until done; false if the timeout passed first.
  // None (or infinity) waits forever; zero or a negative one polls.
  bool wait_done(std::optional<double> timeout, const char* what);
  // wait_result(timeout) waits, then throws CancelledError, TimeoutError or
  // the stored exception.
  void wait_result(std::optional<double> timeout);
  std::exception_ptr exception(std::optional<double> timeout);
  void add_done_callback(std::function<void()> fn);
  // add_waiter(w, index) notifies w with index when this future is done: at
  // once, in this thread, if it already is.
  void add_waiter(const std::shared_ptr<waiter>& w, std::size_t index);
  void remove_waiter(const waiter* w);
  std::string repr() const;

 protected:
  // finish(lock, new_status) publishes the final state, then runs callbacks
  // and wakes waiters with the mutex released. Returns false if already done.
  bool finish(std::unique_lock<std::mutex>& lock, status new_status);
  virtual std::string result_type() const = 0;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  status state_ = status::pending;
  std::exception_ptr error_;

 private:
  std::vector<std::function<void()>> callbacks_;
  std::vector<std::pair<std::shared_ptr<waiter>, std::size_t>> waiters_;
};

template <class T>
class future_value : public future_core {
 public:
  template <class... U>
  void set_result(U&&... value) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (state_ == status::cancelled || state_ == status::finished) {
      throw ::greenlet::asyncio::InvalidStateError("set_result() on a concurrent future that is already done");
    }
    if constexpr (!std::is_void_v<T>) value_.emplace(std::forward<U>(value)...);
    finish(lock, status::finished);
  }
  // result(timeout): the stored value; the state is immutable once finished
  // (but see take_result()), so the reference stays valid while a handle lives.
  std::add_lvalue_reference_t<T> result(std::optional<double> timeout) {
    wait_result(timeout);
    if constexpr (!std::is_void_v<T>) {
      if constexpr (!std::is_copy_constructible_v<T>) check_not_taken();
      return *value_;
    }
  }
  // result_value(timeout) is the result by value, for a handle about to die:
  // a copy, as other handles may read the value at the same time. A
  // move-only value cannot be copied: the first call takes it (moves it out),
  // and any later result() on any handle throws InvalidStateError, rather
  // than handing out a moved-from value.
  T result_value(std::optional<double> timeout) {
    wait_result(timeout);
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (std::is_copy_constructible_v<T>) {
      return *value_;
    } else {
      std::lock_guard<std::mutex> lock(mutex_);
      if (taken_ || claimed_) throw_taken();
      return take(lock);
    }
  }
  // claim() reserves a move-only value, done or not, for one consumer
  // (asyncio::wrap_future()) when it registers, so that the first wrap gets
  // it whichever thread's callback posts first; false if another consumer
  // claimed or took it. result() on a handle still reads it in place until
  // take_claimed() moves it out; release_claim() gives it up unread.
  bool claim() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (taken_ || claimed_) return false;
    claimed_ = true;
    return true;
  }
  void release_claim() {
    std::lock_guard<std::mutex> lock(mutex_);
    claimed_ = false;
  }
  // taken_error() is what a second consumer of a move-only value gets.
  static ::greenlet::asyncio::InvalidStateError taken_error() {
    return ::greenlet::asyncio::InvalidStateError(
        "the result cannot be copied and was already moved out (by result() on a temporary Future, or by "
        "asyncio::wrap_future()): only one consumer can have it");
  }
  // take_claimed() is the claimed value, moved out; the future must have
  // finished with a value.
  T take_claimed() {
    std::lock_guard<std::mutex> lock(mutex_);
    return take(lock);
  }

 protected:
  std::string result_type() const override { return type_name<T>(); }

 private:
  void check_not_taken() const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (taken_) throw_taken();
  }
  T take(const std::lock_guard<std::mutex>&) {
    taken_ = true;
    T out(std::move(*value_));
    value_.reset();
    return out;
  }
  [[noreturn]] static void throw_taken() { throw taken_error(); }
  bool taken_ = false;    // a move-only value was moved out; under mutex_
  bool claimed_ = false;  // a consumer claimed it (claim()); under mutex_
  struct none {};
  std::conditional_t<std::is_void_v<T>, none, std::optional<std::conditional_t<std::is_void_v<T>, int, T>>> value_;
};

}  // namespace detail

// Future<T> is concurrent.futures.Future: a handle, shared by copies, to a
// result an executor's worker sets. Every member is thread-safe. Blocking
// members (result(), exception() without a zero timeout) throw
// RuntimeError(blocking_in_loop) when called from inside an event-loop task
// on a future that is not done yet: await asyncio::wrap_future(f) instead.
template <class T = void>
class Future {
 public:
  // value_type is T, the type of the result (void: none). A type alias: nothing to throw, any
  // thread.
  using value_type = T;

  // Future() is a new pending future, for code that plays the executor's
  // part (set_running_or_notify_cancel, set_result, set_exception). Throws
  // std::bad_alloc only; the future may then be used from any thread.
  Future() : state_(std::make_shared<detail::future_value<T>>()) {}
  // Internal: Future(state) is a handle to an existing shared state, for executors. Throws nothing;
  // any thread.
  explicit Future(std::shared_ptr<detail::future_value<T>> state) noexcept : state_(std::move(state)) {}

  // cancel() cancels a future that has not started running; false if it
  // runs or is done. Callbacks run at once, in this thread. Throws only what
  // the mutex throws (std::system_error); thread-safe.
  bool cancel() const { return state_->cancel(); }
  // cancelled() is true once the future was cancelled. Throws nothing beyond std::system_error from
  // the mutex; thread-safe.
  bool cancelled() const { return state_->cancelled(); }
  // running() is true while a worker runs it (after set_running_or_notify_cancel(), before it
  // finishes). Thread-safe; throws nothing beyond std::system_error from the mutex.
  bool running() const { return state_->running(); }
  // done() is true once the future finished or was cancelled. Thread-safe; throws nothing beyond
  // std::system_error from the mutex.
  bool done() const { return state_->done(); }

  // result(timeout) waits up to timeout seconds (forever without one) and
  // returns the result: a reference into the shared state, valid while a
  // handle to the future lives. Throws TimeoutError, CancelledError, the
  // function's exception, or RuntimeError inside an event-loop task; for a
  // move-only T, InvalidStateError once the value was taken (see below).
  // Thread-safe.
  std::add_lvalue_reference_t<T> result(std::optional<double> timeout = std::nullopt) const& {
    return state_->result(timeout);
  }
  // Overload of result(timeout) for a temporary handle, as in
  //   for (int x : pool.submit(f).result()) ...   or   auto v = pool.submit(f).result();
  // returns the result by value (a reference would dangle once the temporary,
  // perhaps the last handle, is gone). A copy, since other handles may share
  // the future; a move-only result is moved out instead, once: a later
  // result() on any handle throws InvalidStateError. Throws as result(); thread-safe.
  T result(std::optional<double> timeout = std::nullopt) const&& { return state_->result_value(timeout); }
  // exception(timeout) is the stored exception, null if it succeeded. Throws TimeoutError,
  // CancelledError, or RuntimeError inside an event-loop task (as result()). Thread-safe.
  std::exception_ptr exception(std::optional<double> timeout = std::nullopt) const {
    return state_->exception(timeout);
  }

  // add_done_callback(fn) calls fn(future) when it is done, in the thread
  // that completes or cancels it; at once in this thread if already done.
  // Exceptions fn throws are printed to stderr and dropped, as Python logs
  // them: "exception calling callback for <Future ...>" and a line with the
  // exception's class and what(), "invalid_argument: doh!".
  // Throws only std::bad_alloc; thread-safe.
  void add_done_callback(std::function<void(const Future&)> fn) const {
    detail::future_value<T>* raw = state_.get();
    state_->add_done_callback([raw, fn = std::move(fn)] {
      Future self(std::static_pointer_cast<detail::future_value<T>>(raw->shared_from_this()));
      fn(self);
    });
  }

  // For executors: set_running_or_notify_cancel() is false if cancelled
  // (and marks it running otherwise); set_result()/set_exception() finish
  // it, InvalidStateError if already done. set_running_or_notify_cancel()
  // throws RuntimeError (concurrent_errc::unexpected_state, Python's
  // "Future in unexpected state") unless the future is pending or cancelled.
  // Thread-safe.
  bool set_running_or_notify_cancel() const { return state_->set_running_or_notify_cancel(); }
  // set_result(value) finishes the future with value (none for T = void), then runs the done
  // callbacks and wakes waiters in this thread. Throws InvalidStateError if it is already done;
  // thread-safe.
  template <class... U>
  void set_result(U&&... value) const {
    state_->set_result(std::forward<U>(value)...);
  }
  // set_exception(e) finishes the future with exception e, then runs callbacks and wakes waiters
  // in this thread. Throws InvalidStateError if it is already done; thread-safe.
  void set_exception(std::exception_ptr error) const { state_->set_exception(std::move(error)); }

  // repr() is Python's: <Future at 0x7f.. state=pending|running|cancelled|
  // finished returned int|finished raised ValueError>. Throws only
  // std::bad_alloc; thread-safe.
  std::string repr() const { return state_->repr(); }
  // operator<<(out, f) writes f.repr() to out. Thread-safe with respect to f; throws what the stream
  // throws.
  friend std::ostream& operator<<(std::ostream& out, const Future& f) { return out << f.repr(); }

  // Internal: state() is the shared state, for executors and wait(). Throws nothing; any thread.
  const std::shared_ptr<detail::future_value<T>>& state() const noexcept { return state_; }
  // operator==(a, b) is true when both handles share the same future. Throws nothing; any thread.
  friend bool operator==(const Future& a, const Future& b) noexcept { return a.state_ == b.state_; }

 private:
  std::shared_ptr<detail::future_value<T>> state_;
};

}  // namespace greenlet::concurrent

#pragma GCC visibility pop
