// concurrent/thread_pool.hpp: Executor, the base of executors that run
// closures, and ThreadPoolExecutor.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "greenlet/concurrent/future.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::concurrent {

namespace detail {

// work_item is one submitted call. An executor gives up its ownership
// (unique_ptr::release()) and calls exactly one of: run(), which runs the
// call unless it was cancelled first; cancel(), for a call that will never
// run (shutdown(cancel_futures)); fail(error), for one the executor cannot
// run (a broken pool). Each disposes of the item: deletes it, or hands it
// on (a run_in_executor() job goes to its loop). next links the pool's
// queue.
struct work_item {
  virtual ~work_item() = default;
  virtual void run() noexcept = 0;
  virtual void cancel() noexcept = 0;
  virtual void fail(std::exception_ptr error) noexcept = 0;
  work_item* next = nullptr;
};

template <class R, class Fn>
struct work_item_impl final : work_item {
  work_item_impl(std::shared_ptr<future_value<R>> f, Fn&& fn) : state(std::move(f)), call(std::move(fn)) {}
  void run() noexcept override {
    std::unique_ptr<work_item_impl> self(this);
    if (!state->set_running_or_notify_cancel()) return;
    try {
      if constexpr (std::is_void_v<R>) {
        call();
        state->set_result();
      } else {
        state->set_result(call());
      }
    } catch (...) {
      state->set_exception(std::current_exception());
    }
  }
  void cancel() noexcept override {
    std::unique_ptr<work_item_impl> self(this);
    state->cancel();
  }
  void fail(std::exception_ptr error) noexcept override {
    std::unique_ptr<work_item_impl> self(this);
    try {
      state->set_exception(std::move(error));
    } catch (const ::greenlet::asyncio::InvalidStateError&) {
      // Cancelled meanwhile: nothing to report.
    }
  }
  std::shared_ptr<future_value<R>> state;
  Fn call;
};

}  // namespace detail

// Executor is concurrent.futures.Executor: submit() schedules fn(args...)
// and returns a Future; shutdown() stops accepting work. Thread-safe.
class Executor {
 public:
  virtual ~Executor() = default;

  // submit(fn, args...) schedules fn(args...) (arguments copied or moved in)
  // and returns its Future, which holds the result by value: a fn returning
  // T& or const T& gives a Future<T> of a copy made on the worker when fn
  // returns (T&&: moved from), since the result is read later. RuntimeError
  // after shutdown(); BrokenExecutor if the pool is broken; for a
  // ThreadPoolExecutor, std::system_error if it has no worker and cannot
  // start one. Also what copying fn and args throws. A submit that throws
  // never runs fn. Thread-safe.
  template <class F, class... A>
  auto submit(F&& fn, A&&... args) {
    // By value: a function returning a reference gives a Future of a copy, made on the worker
    // when it returns (see submit()).
    using R = std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>, std::decay_t<A>...>>;
    auto state = std::make_shared<detail::future_value<R>>();
    // The call runs once: the function and its arguments are moved into it.
    auto call = [fn = std::forward<F>(fn), ... args = std::forward<A>(args)]() mutable -> R {
      return std::invoke(std::move(fn), std::move(args)...);
    };
    enqueue(std::make_unique<detail::work_item_impl<R, decltype(call)>>(state, std::move(call)));
    return Future<R>(std::move(state));
  }

  // map(fn, items, timeout) runs fn(item) for every item concurrently and
  // returns the results in the order of items (values, as submit()). Unlike Python's lazy
  // iterator it collects them all: it rethrows the first exception (in item
  // order) or TimeoutError, after cancelling what has not started. Also
  // throws what submit() and result() throw (RuntimeError inside an
  // event-loop task). Thread-safe; blocks the calling thread.
  template <class F, class Range>
  auto map(F fn, const Range& items, std::optional<double> timeout = std::nullopt) {
    using Item = std::decay_t<decltype(*std::begin(items))>;
    using R = std::remove_cvref_t<std::invoke_result_t<F&, const Item&>>;
    std::vector<Future<R>> fs;
    for (const auto& item : items) fs.push_back(submit(fn, item));
    std::vector<R> out;
    out.reserve(fs.size());
    try {
      const double start = detail_now();
      for (auto& f : fs) {
        std::optional<double> left;
        if (timeout) left = std::max(0.0, *timeout - (detail_now() - start));
        out.push_back(std::move(f.result(left)));
      }
    } catch (...) {
      for (auto& f : fs) f.cancel();
      throw;
    }
    return out;
  }

  // shutdown(wait, cancel_futures) stops accepting work. Work already
  // accepted still runs, unless cancel_futures cancels what has not started;
  // wait=true blocks until the workers are done (RuntimeError inside an
  // event-loop task, or from one of this pool's own threads). It may be
  // called again and from several threads at once: each call with wait=true
  // returns only once the work is done and the threads are joined. Called
  // from a pool thread, wait=true throws after the shutdown took effect: the
  // accepted work still runs. Thread-safe.
  virtual void shutdown(bool wait = true, bool cancel_futures = false) = 0;

  // Internal: detail_enqueue(item) is enqueue() for run_in_executor(),
  // which makes its own work items. Throws what enqueue() throws (the item
  // is then destroyed unrun). Thread-safe.
  void detail_enqueue(std::unique_ptr<detail::work_item> item) { enqueue(std::move(item)); }

 protected:
  // enqueue(item) accepts one call or throws (shutdown, broken).
  virtual void enqueue(std::unique_ptr<detail::work_item> item) = 0;
  // Internal: detail_now() is the steady clock in seconds, for map()'s timeout. Throws nothing;
  // any thread.
  static double detail_now();
};

namespace detail {
class thread_pool;
}

// ThreadPoolExecutor is concurrent.futures.ThreadPoolExecutor: up to
// max_workers threads (default min(32, cores + 4)), started on demand when
// no worker is idle, named "<thread_name_prefix>_<n>". A thread that cannot
// be started (out of threads or memory) fails submit() with
// std::system_error only while the pool has no worker; with some, the call
// waits for one of them, as when max_workers are running (Python's submit()
// raises there, yet runs the call later). initializer() runs
// first in each; if it throws, the pool is broken: the exception is printed
// to stderr ("Exception in initializer:" and its class and what(), as Python
// logs it), pending futures fail with BrokenThreadPool, whose message ends
// with that exception, and submit() throws it. The destructor is
// shutdown(wait=true); run on one of the pool's workers (the last handle
// dropped in a job) it cannot wait: the workers finish the queued work and
// the last of them frees the pool. Every member is thread-safe.
class ThreadPoolExecutor : public Executor {
 public:
  // ThreadPoolExecutor(max_workers, thread_name_prefix, initializer) makes a pool of up to
  // max_workers threads (0: min(32, cores + 4)), named after the prefix ("ThreadPoolExecutor-N" if
  // empty); no thread starts before the first submit(). Throws std::bad_alloc only. Thread-safe
  // once made.
  explicit ThreadPoolExecutor(std::size_t max_workers = 0, std::string thread_name_prefix = "",
                              std::function<void()> initializer = {});
  ~ThreadPoolExecutor() override;
  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

  // shutdown(wait, cancel_futures): see Executor::shutdown(). Throws RuntimeError for wait=true
  // inside an event-loop task or from one of this pool's workers (the shutdown still takes
  // effect). Any number of calls, from any threads: each with wait=true returns once every
  // worker has finished. Thread-safe.
  void shutdown(bool wait = true, bool cancel_futures = false) override;
  // max_workers() is the most worker threads the pool will start. Throws nothing; thread-safe.
  std::size_t max_workers() const noexcept;

 protected:
  void enqueue(std::unique_ptr<detail::work_item> item) override;

 private:
  std::shared_ptr<detail::thread_pool> impl_;
};

}  // namespace greenlet::concurrent

#pragma GCC visibility pop
