// asyncio/tasks.hpp: waiting on several futures: gather, wait, wait_for,
// as_completed; and run(), the program's entry into the loop.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "greenlet/asyncio/errors.hpp"
#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/future.hpp"
#include "greenlet/asyncio/task.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// return_when chooses when wait() returns, as asyncio's constants. An enum: nothing to throw, any
// thread.
enum class return_when { FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED };
// FIRST_COMPLETED makes wait() return as soon as any future is done (asyncio.FIRST_COMPLETED).
// A constant: usable from any thread.
inline constexpr return_when FIRST_COMPLETED = return_when::FIRST_COMPLETED;
// FIRST_EXCEPTION makes wait() return when any future fails, or when all are done if none fails
// (asyncio.FIRST_EXCEPTION). A constant: usable from any thread.
inline constexpr return_when FIRST_EXCEPTION = return_when::FIRST_EXCEPTION;
// ALL_COMPLETED makes wait() return only when every future is done (asyncio.ALL_COMPLETED), the
// default. A constant: usable from any thread.
inline constexpr return_when ALL_COMPLETED = return_when::ALL_COMPLETED;

// outcome<T> is one child's result in gather(return_exceptions, ...): a
// value, or the exception it raised (CancelledError if it was cancelled).
// A plain value: not synchronized.
template <class T>
class outcome {
 public:
  // stored is the type held for a value: T, or std::monostate when T is void. A type alias: nothing
  // to throw, any thread.
  using stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
  // outcome(value) holds a successful result. Throws only what moving `stored` throws. An outcome
  // is a plain value: not synchronized, guard it yourself if threads share one.
  explicit outcome(stored value) : data_(std::move(value)) {}
  // outcome(error) holds the exception a child raised. Throws nothing; not synchronized.
  explicit outcome(std::exception_ptr error) : data_(std::move(error)) {}
  // has_value() is true if the child succeeded, false if it raised. Throws nothing; not synchronized.
  bool has_value() const noexcept { return data_.index() == 0; }
  // value() is the result; rethrows the exception if there is one. Not synchronized.
  stored& value() {
    if (!has_value()) std::rethrow_exception(std::get<1>(data_));
    return std::get<0>(data_);
  }
  // error() is the exception the child raised, or null if it succeeded. Throws nothing; not
  // synchronized.
  std::exception_ptr error() const noexcept { return has_value() ? nullptr : std::get<1>(data_); }

 private:
  std::variant<stored, std::exception_ptr> data_;
};

// return_exceptions is the tag that makes gather() collect exceptions as
// outcomes instead of raising the first. An empty tag: nothing to throw, any
// thread.
struct return_exceptions_t {};
// return_exceptions is the return_exceptions_t tag value to pass as gather()'s first argument.
// A constant: usable from any thread.
inline constexpr return_exceptions_t return_exceptions{};

namespace detail {

// gather_wait() waits until every child is done or, unless collecting,
// until the first fails (its exception is then raised). A cancel of the
// waiting task cancels the children with its message; it wakes as their
// callbacks decide (see gather()).
void gather_wait(const std::vector<future_state*>& children, bool collect);
// wait_until() waits until `when` holds or the timeout passes (none if
// empty); it cancels nothing. It suspends at least once, as asyncio's _wait().
void wait_until(const std::vector<future_state*>& children, std::optional<double> timeout, return_when when);
// drop_repeats(states) removes the futures that appear again later in
// states (the first appearance stays, in order) and returns a flag per input
// index that is true for those it removed; empty (no allocation) when there
// are none. Throws only std::bad_alloc.
std::vector<bool> drop_repeats(std::vector<future_state*>& states);
// cancel_and_wait(f, msg) cancels f with msg and waits until it is done. A
// cancel of the waiting task meanwhile is passed on to f (with its message)
// and the waiting goes on; the last such CancelledError is returned (null if
// none), for the caller to raise once f is done.
std::exception_ptr cancel_and_wait(future_state* f, std::string message);

// completion_queue hands out the futures it was given in the order they
// finish (as_completed); each next() awaits. Duplicates are the caller's
// to remove.
class completion_queue {
 public:
  explicit completion_queue(const std::vector<future_state*>& futures);
  ~completion_queue();
  completion_queue(const completion_queue&) = delete;
  completion_queue& operator=(const completion_queue&) = delete;
  // next() is the index of the next future to finish; TimeoutError once
  // the deadline (loop time) passes first.
  std::size_t next(std::optional<double> deadline);
  bool empty() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// as_future_on(loop, x) is x if a future, else a task of loop running x (run_until_complete()).
template <class X>
auto as_future_on(event_loop& loop, X&& x) {
  if constexpr (is_future<std::decay_t<X>>::value) {
    return std::decay_t<X>(std::forward<X>(x));
  } else if constexpr (!task_function<X>) {
    reject_uncallable_functor<task_function<X>, X>();
    static_assert(task_function<X> || has_call_operator<X>,
                  "run_until_complete(x): x must be a future, a task or a callable taking no arguments, not the "
                  "result of a call: write loop.run_until_complete([=] { return fetch(1); })");
  } else {
    return loop.create_task(std::forward<X>(x));
  }
}

// as_future(x) is x if a future, else a task of the running loop running x (gather(), wait_for()).
template <class X>
auto as_future(X&& x) {
  if constexpr (is_future<std::decay_t<X>>::value) {
    return std::decay_t<X>(std::forward<X>(x));
  } else if constexpr (!task_function<X>) {
    reject_uncallable_functor<task_function<X>, X>();
    static_assert(task_function<X> || has_call_operator<X>,
                  "gather(x, ...) / wait_for(x, timeout): x must be a future, a task or a callable taking no "
                  "arguments, not the result of a call: write gather([=] { return fetch(1); }, ...), not "
                  "gather(fetch(1), ...)");
  } else {
    return create_task(std::forward<X>(x));
  }
}

template <class X>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};
template <class... Xs>
inline constexpr bool no_vectors = (!is_vector<std::decay_t<Xs>>::value && ...);

template <class F>
auto take_result(F& f) {
  using T = typename std::decay_t<F>::value_type;
  if constexpr (std::is_void_v<T>) {
    f.result();
    return std::monostate{};
  } else if constexpr (std::is_copy_constructible_v<T>) {
    return T(f.result());
  } else {
    return T(std::move(f.result()));
  }
}

template <class F>
auto take_outcome(F& f) {
  using T = typename std::decay_t<F>::value_type;
  try {
    return outcome<T>(take_result(f));
  } catch (...) {
    return outcome<T>(std::current_exception());
  }
}

}  // namespace detail

// gather(a, b, ...) runs futures, tasks or functions (made into tasks)
// concurrently and returns their results as a tuple, in argument order (void
// results as std::monostate). The first exception is raised at once; the
// other children keep running. Cancelling the waiting task cancels every
// child with the same message (as asyncio's _GatheringFuture.cancel) and
// raises nothing by itself: gather() then raises when the children say so,
// the first cancelled or failed child's exception (CancelledError(msg) for a
// child that took the cancel), or CancelledError(msg) once all are done if
// none failed. A second cancel meanwhile goes on to the children too.
// Unless there are no children, it suspends at least once, as asyncio's
// (children already done report on a later turn). RuntimeError outside a task
// or for a future of another loop. A task of the loop thread only.
template <class... Xs>
requires detail::no_vectors<Xs...>
auto gather(Xs&&... xs) {
  // Braces: the children are made (and so started) left to right, as
  // asyncio's; make_tuple's arguments are evaluated in an unspecified order
  // (g++: right to left).
  std::tuple<decltype(detail::as_future(std::forward<Xs>(xs)))...> futures{detail::as_future(std::forward<Xs>(xs))...};
  std::apply([](auto&... f) { detail::gather_wait({f.state()...}, false); }, futures);
  return std::apply(
      [](auto&... f) { return std::tuple<decltype(detail::take_result(f))...>{detail::take_result(f)...}; }, futures);
}
// gather(return_exceptions, a, b, ...) waits for all and returns an outcome
// per child: its value or its exception. Throws RuntimeError outside a task
// or for a future of another loop. Cancelling the waiting task cancels the
// children with its message; once every child is done, CancelledError (with
// the last cancel's message) comes out whatever they returned, as asyncio.
// A task of the loop thread only.
template <class... Xs>
requires detail::no_vectors<Xs...>
auto gather(return_exceptions_t, Xs&&... xs) {
  std::tuple<decltype(detail::as_future(std::forward<Xs>(xs)))...> futures{
      detail::as_future(std::forward<Xs>(xs))...};  // left to right: see gather(xs...)
  std::apply([](auto&... f) { detail::gather_wait({f.state()...}, true); }, futures);
  return std::apply(
      [](auto&... f) { return std::tuple<decltype(detail::take_outcome(f))...>{detail::take_outcome(f)...}; }, futures);
}
// gather(futures) is gather over a vector, returning a vector of results. Throws as
// gather(a, b, ...); a task of the loop thread only.
template <class F>
auto gather(const std::vector<F>& futures) {
  std::vector<detail::future_state*> states;
  for (const F& f : futures) states.push_back(f.state());
  detail::gather_wait(states, false);
  std::vector<decltype(detail::take_result(std::declval<F&>()))> results;
  for (F f : futures) results.push_back(detail::take_result(f));
  return results;
}
// Overload of gather(return_exceptions, a, b, ...) over a vector: waits for all of them and returns
// a vector of outcome, one per future in input order, without raising their exceptions. Call it
// from a task on the loop's own thread; raises RuntimeError outside a task or if a future belongs
// to another loop, and CancelledError if the waiting task is cancelled (after the children, cancelled
// with its message, are all done).
template <class F>
auto gather(return_exceptions_t, const std::vector<F>& futures) {
  std::vector<detail::future_state*> states;
  for (const F& f : futures) states.push_back(f.state());
  detail::gather_wait(states, true);
  std::vector<decltype(detail::take_outcome(std::declval<F&>()))> results;
  for (F f : futures) results.push_back(detail::take_outcome(f));
  return results;
}

// wait_result holds wait()'s (done, pending), each in the input order. A plain struct: not
// synchronized.
template <class F>
struct wait_result {
  // done holds the futures that were done when wait() returned.
  std::vector<F> done;
  // pending holds the futures still pending when wait() returned.
  std::vector<F> pending;
};

// wait(fs, timeout, when) waits for the futures until `when` holds or the
// timeout (seconds; none if empty) passes, and returns (done, pending). A
// future given twice is listed once, where it first appears (asyncio.wait
// makes a set of them). It cancels nothing, as asyncio.wait. As asyncio's, it
// suspends at least once, even when the answer is known (all done, or a
// timeout of zero or less), so the other ready tasks run meanwhile and a
// polling loop `while (...) wait(fs, 0.0)` lets the futures progress. Throws
// ValueError if `futures` is empty (asyncio's "Set of Tasks/Futures is
// empty.") or if `when` is none of the three constants ("Invalid return_when
// value: N"), RuntimeError outside a task or for a future of another loop,
// CancelledError if the waiting task is cancelled. A task of the loop thread
// only.
template <class F>
wait_result<F> wait(const std::vector<F>& futures, std::optional<double> timeout = std::nullopt,
                    return_when when = ALL_COMPLETED) {
  std::vector<detail::future_state*> states;
  states.reserve(futures.size());
  for (const F& f : futures) states.push_back(f.state());
  const std::vector<bool> repeated = detail::drop_repeats(states);
  detail::wait_until(states, timeout, when);
  wait_result<F> result;
  for (std::size_t i = 0; i < futures.size(); ++i) {
    if (!repeated.empty() && repeated[i]) continue;
    (futures[i].done() ? result.done : result.pending).push_back(futures[i]);
  }
  return result;
}

namespace detail {
// wait_for_result(f) is what wait_for() returns of a done f: its result by value (moved out if it
// cannot be copied, as take_result()), or its exception rethrown.
template <class F>
typename F::value_type wait_for_result(F& f) {
  if constexpr (std::is_void_v<typename F::value_type>) {
    f.result();
  } else {
    return take_result(f);
  }
}
}  // namespace detail

// wait_for(x, timeout) awaits x (a future, task or function); at the
// timeout it cancels x, waits for the cancellation to finish and raises
// TimeoutError. A timeout of std::nullopt (Python's timeout=None) waits
// without one: wait_for(x, std::nullopt) is await(x) by value, cancellation
// included. If the waiting task is cancelled, x is cancelled with the same
// message and wait_for() waits until x is done before raising CancelledError,
// so x never runs on after wait_for() returned (asyncio's bpo-32751); further
// cancels meanwhile are passed on to x too. If x swallows that cancel and
// returns a value, CancelledError is still raised, as Python 3.11 does
// (3.12+, built on timeout(), returns the value and leaves the request
// counted in cancelling()); an exception of x then is left unretrieved.
// x's own exception otherwise comes out as await() gives it. With a timeout
// above zero it suspends at least once, even for an x already done (as
// Python 3.11's); with zero or less, an x already done is taken at once.
// The timeout is in seconds: a double, an integer, or an optional of them.
// RuntimeError outside a task. A task of the loop thread only.
template <class X>
auto wait_for(X&& x, std::optional<double> timeout) {
  auto f = detail::as_future(std::forward<X>(x));
  if (!timeout) {
    // Python's wait_for(x, None) is `return await x`.
    detail::await_inline(f.state());
    return detail::wait_for_result(f);
  }
  std::exception_ptr cancelled;  // the waiting task's own
  std::string message;
  try {
    // A timeout of zero or less (not NaN) takes x as it is, without suspending, as
    // Python 3.11's wait_for; any other waits at least one loop turn (see wait()).
    if (!(*timeout <= 0)) detail::wait_until({f.state()}, timeout, FIRST_COMPLETED);
  } catch (const CancelledError& e) {
    // Waiting goes on out of the handler: a task must not suspend inside one.
    cancelled = std::current_exception();
    message = e.message();
  }
  if (cancelled) {
    if (std::exception_ptr again = detail::cancel_and_wait(f.state(), message)) cancelled = again;
    std::rethrow_exception(cancelled);
  }
  if (!f.done()) {
    // At the deadline (at once for a timeout of zero or less, before a
    // function given here even starts): cancel, let it unwind, time out.
    if (std::exception_ptr own = detail::cancel_and_wait(f.state(), "")) std::rethrow_exception(own);
    if (f.cancelled() || !f.done()) throw TimeoutError("wait_for() timed out");
  }
  return detail::wait_for_result(f);
}

// as_completed(fs, timeout) yields the futures in the order they finish:
// `for (auto f : as_completed(tasks)) use(await(f));`. Each step awaits
// (futures already done are handed out from the next turn on, as asyncio's);
// TimeoutError if the timeout (seconds, for the whole run) passes first.
// Loop thread only: iterate it in a task of the futures' loop.
template <class F>
class as_completed {
 public:
  // as_completed(futures, timeout) takes the futures to watch (one given twice is yielded once) and,
  // with a timeout in seconds, sets the deadline on the running loop's clock. Raises RuntimeError if
  // a timeout is given with no running loop. Loop thread only: use it from a task of that loop.
  explicit as_completed(std::vector<F> futures, std::optional<double> timeout = std::nullopt)
      : futures_(unique(std::move(futures))), queue_(states(futures_)) {
    if (timeout) deadline_ = get_running_loop().time() + *timeout;
  }

  // next() awaits and returns the next future to finish. Several tasks may wait in next() at once
  // (as asyncio's wrappers may be awaited together): each finished future goes to one of them, the
  // longest waiting first, and at the deadline all raise. Throws TimeoutError at the deadline,
  // CancelledError if the waiting task is cancelled, RuntimeError outside a task. A task of the loop
  // thread only.
  F next() { return futures_[queue_.next(deadline_)]; }
  // empty() is true once every future has been handed out by next(). Throws nothing; loop thread
  // only, like the rest of as_completed.
  bool empty() const noexcept { return queue_.empty(); }

  // iterator is as_completed's input iterator for range-for: each ++ awaits the next future to
  // finish (see next()). Loop thread only; it throws what next() throws.
  class iterator {
   public:
    // iterator(owner) starts iterating owner and awaits the first future to finish. Throws what
    // as_completed::next() throws; loop thread only.
    explicit iterator(as_completed* owner) : owner_(owner) { advance(); }
    iterator() = default;
    // operator*() is the future the last step handed out. Throws only what copying F throws.
    F operator*() const { return current_; }
    // operator++() awaits the next future to finish. Throws TimeoutError at the deadline and what
    // as_completed::next() throws otherwise; loop thread only.
    iterator& operator++() {
      advance();
      return *this;
    }
    // operator!=() compares two iterators; only the end is meaningful to compare with. Throws nothing.
    bool operator!=(const iterator& other) const { return owner_ != other.owner_; }

   private:
    void advance() {
      if (owner_ == nullptr) return;
      if (owner_->empty()) {
        owner_ = nullptr;
        return;
      }
      current_ = owner_->next();
    }
    as_completed* owner_ = nullptr;
    F current_;
  };
  // begin() awaits the first future to finish and returns an iterator at it. Throws as next(); loop
  // thread only.
  iterator begin() { return iterator(this); }
  // end() is the past-the-end iterator. Throws nothing.
  iterator end() { return iterator(); }

 private:
  // A future given twice is yielded once, as asyncio does: the first appearance is kept, in the
  // order given. detail::drop_repeats() finds the repeats by state in O(N), as wait() does
  // (comparing every pair made the constructor O(N^2), about 20 s for 300,000 done futures).
  static std::vector<F> unique(std::vector<F> futures) {
    std::vector<detail::future_state*> kept = states(futures);
    const std::vector<bool> repeated = detail::drop_repeats(kept);
    if (repeated.empty()) return futures;
    std::vector<F> out;
    out.reserve(kept.size());
    for (std::size_t i = 0; i < futures.size(); ++i) {
      if (!repeated[i]) out.push_back(std::move(futures[i]));
    }
    return out;
  }
  static std::vector<detail::future_state*> states(const std::vector<F>& futures) {
    std::vector<detail::future_state*> out;
    for (const F& f : futures) out.push_back(f.state());
    return out;
  }

  std::vector<F> futures_;
  detail::completion_queue queue_;
  std::optional<double> deadline_;
};

template <class X>
decltype(auto) event_loop::run_until_complete(X&& x) {
  // Refuse before x becomes a task: a task made here would run later though the call was refused
  // (and, on a loop that never runs, be reported destroyed while pending at close()). A future too
  // is checked first, as asyncio checks before ensure_future(): refused on a closed loop or while a
  // loop runs even when already done, and a refusal comes before a wrong-loop error.
  core()->check_can_run();
  auto f = detail::as_future_on(*this, std::forward<X>(x));
  detail::run_until_done(core(), f.state());
  using T = typename decltype(f)::value_type;
  if constexpr (std::is_void_v<T>) {
    f.result();
  } else {
    return detail::take_result(f);
  }
}

namespace detail {
// finish_run() is asyncio.run's epilogue: cancel the tasks still pending,
// let them unwind, close the async generators still parked at a yield
// (shutdown_asyncgens), run the callbacks left ready (two turns, as the loop
// runs while shutdown_asyncgens() does), close the loop.
void finish_run(event_loop& loop) noexcept;
}  // namespace detail

// run(main) is asyncio.run: a new event loop runs main (a function, run as
// a task) to completion and returns its result; tasks still pending then
// are cancelled and unwound, async generators still suspended at a yield
// are closed (GeneratorExit there, as loop.shutdown_asyncgens()), the
// callbacks left ready run, and the loop is closed. Throws main's own
// exception, RuntimeError if a loop already runs on this thread, and what
// new_event_loop() throws. Runs on, and blocks, the calling thread.
template <class F>
auto run(F&& main, event_loop::options opts = {}) {
  if constexpr (!detail::task_function<F>) {
    detail::reject_uncallable_functor<detail::task_function<F>, F>();
    static_assert(detail::task_function<F> || detail::has_call_operator<F>,
                  "asyncio::run(main): main must be a callable taking no arguments, not the result of a call: "
                  "write asyncio::run([] { return amain(); }), not asyncio::run(amain())");
  } else {
    if (detail::running_loop() != nullptr) {
      throw RuntimeError(asyncio_errc::loop_running,
                         "asyncio::run() cannot be called from a running event loop: await instead");
    }
    auto loop = new_event_loop(opts);
    set_event_loop(loop);
    struct epilogue {
      event_loop& loop;
      ~epilogue() { detail::finish_run(loop); }
    } guard{*loop};
    return loop->run_until_complete(std::forward<F>(main));
  }
}

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
