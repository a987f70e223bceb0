// asyncio/executor.hpp: the bridge between the event loop and
// concurrent.futures: run_in_executor(), wrap_future(), to_thread(),
// run_coroutine_threadsafe(), set_default_executor().
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/future.hpp"
#include "greenlet/asyncio/task.hpp"
#include "greenlet/concurrent/future.hpp"
#include "greenlet/concurrent/thread_pool.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

namespace detail {

// default_executor(loop) is the loop's executor for run_in_executor(nullptr):
// set_default_executor()'s, else a ThreadPoolExecutor made on first use.
// Shared: set_default_executor() on another thread may drop the registry's
// reference while the caller still submits to it. RuntimeError if loop is
// closed.
std::shared_ptr<::greenlet::concurrent::Executor> default_executor(loop_core* loop);
// shutdown_default_executor(loop, timeout) is asyncio::shutdown_default_executor()
// for asyncio::run's end (timeout: thread_join_timeout): it runs loop (not
// running, not closed) until the default executor is shut down, or the
// timeout passes; errors and the timeout's warning go to the exception handler.
void shutdown_default_executor(loop_core* loop, std::optional<double> timeout) noexcept;
// retire_default_executor(loop) shuts it down without waiting and forgets
// it; loop_core::close() calls it last, so that a later loop at the same
// address starts without it.
void retire_default_executor(loop_core* loop) noexcept;
// on_loop_thread(loop) is true on the thread that owns the loop.
bool on_loop_thread(const loop_core* loop) noexcept;

// delivery<T> carries a concurrent future's outcome to its asyncio twin. Its
// loop side (a reference to the twin, one unit of the loop's external_work,
// and a reference to itself, so that another thread cannot free it while
// its loop still lists it) ends on the loop's thread: after delivering, or
// when the loop closes first (loop_side). A remote reference keeps the
// loop's memory for the thread that posts the outcome.
template <class T>
struct delivery : private loop_side {
  delivery(future_value<T>* f, loop_core* loop) noexcept : target(f), core(loop) {
    end = &on_loop_closed;
    retain_remote(core);  // the completing thread posts to core, maybe after the loop side ended
  }
  ~delivery() { release_remote(core); }
  delivery(const delivery&) = delete;
  delivery& operator=(const delivery&) = delete;

  // attach(self) starts the loop side; self owns this delivery. Loop thread.
  void attach(std::shared_ptr<delivery> self) noexcept {
    retain(target);
    core->external_work.fetch_add(1);
    core->attach_side(this);
    self_ = std::move(self);
  }

  // deliver(cf) runs on the loop's thread. A target that is done already
  // (its awaiting task was cancelled) drops the outcome without error.
  void deliver(const ::greenlet::concurrent::Future<T>& cf) {
    struct ends {
      delivery* d;
      ~ends() { d->end_loop_side(); }
    } guard{this};
    if (target->done()) {
      give_up_claim(cf);  // unread: a later consumer may have it
      return;
    }
    if (cf.cancelled()) {
      target->cancel("");
      return;
    }
    if (std::exception_ptr error = cf.exception(0)) {
      target->set_exception(std::move(error));
    } else if constexpr (std::is_void_v<T>) {
      target->set_result();
    } else if constexpr (std::is_copy_constructible_v<T>) {
      target->set_result(cf.result(0));
    } else {
      // A move-only result has one consumer: the wrap_future() that claimed
      // it when it was made (claimed), not the first whose callback happens
      // to post first; or, if that wrap was cancelled and gave its claim
      // back, the next one delivered. Another wrap's awaiter, as a later
      // result() on a temporary handle, sees InvalidStateError: moving out
      // of cf.result(0) handed the second a null and left cf holding one.
      if (!claimed) claimed = cf.state()->claim();
      if (!claimed) {
        target->set_exception(std::make_exception_ptr(cf.state()->taken_error()));
        return;
      }
      target->set_result(cf.state()->take_claimed());
    }
  }

  // give_up_claim(cf) hands cf's move-only value back for another consumer, if this delivery
  // claimed it. Loop thread.
  void give_up_claim(const ::greenlet::concurrent::Future<T>& cf) noexcept {
    if constexpr (!std::is_void_v<T> && !std::is_copy_constructible_v<T>) {
      if (claimed) cf.state()->release_claim();
    }
    claimed = false;
  }

  future_value<T>* target;
  loop_core* core;
  bool claimed = false;  // a move-only result: this delivery claimed cf's value (wrap_future)

 private:
  void end_loop_side() noexcept {
    if (!self_) return;  // ended already
    core->detach_side(this);
    core->external_work.fetch_sub(1);
    release(target);
    std::shared_ptr<delivery> last = std::move(self_);  // may free this: last thing done
  }
  static void on_loop_closed(loop_side* side) noexcept { static_cast<delivery*>(side)->end_loop_side(); }

  std::shared_ptr<delivery> self_;
};

// executor_job is one run_in_executor() call in a single object: the
// executor's work item, the call's outcome and the link to its asyncio
// future. The worker that runs it posts it to the loop (post_threadsafe),
// whose thread completes the future: no concurrent future, no callbacks.
// Two references: the executor's side (running, then the loop's queue) and
// the loop's side (the link, a loop reference and one unit of
// external_work), each dropped once; the last frees the job.
class executor_job : public ::greenlet::concurrent::detail::work_item, public threadsafe_node, private loop_side {
 public:
  explicit executor_job(loop_core* loop) noexcept;
  ~executor_job() override;
  // attach(target, link) ties the job to its future once the executor took
  // it; *link is cleared when the tie ends. Loop thread.
  void attach(future_state* target, executor_job** link) noexcept;
  // cancel_from_loop() is the future being cancelled: a call that has not
  // started never will (as Future.cancel() in Python); a running one
  // finishes and its outcome is dropped. Loop thread.
  void cancel_from_loop() noexcept;
  // detach_target() is the future being destroyed: the outcome is dropped. Loop thread.
  void detach_target() noexcept;

  void run() noexcept final;
  void cancel() noexcept final;
  void fail(std::exception_ptr error) noexcept final;

 protected:
  // invoke() runs the call in the worker and stores its result (the call is
  // destroyed either way); drop_call() destroys it unrun; deliver(target)
  // gives target the stored result on the loop's thread.
  virtual void invoke() = 0;
  virtual void drop_call() noexcept = 0;
  virtual void deliver(future_state* target) = 0;

 private:
  enum : unsigned char { pending, running, cancelled };
  bool claim(unsigned char to) noexcept;
  void post() noexcept;
  void end_loop_side() noexcept;
  void unref() noexcept;
  static void on_loop(threadsafe_node* n);
  static void on_drop(threadsafe_node* n) noexcept;
  static void on_loop_closed(loop_side* side) noexcept;

  std::atomic<unsigned char> state_{pending};
  std::atomic<int> refs_{2};
  bool pool_cancelled_ = false;  // cancel(): the future is cancelled too
  std::exception_ptr error_;     // set before post(), read after
  loop_core* loop_;
  future_state* target_ = nullptr;  // loop thread only
  executor_job** link_ = nullptr;   // loop thread only
};

template <class R, class Fn>
class executor_job_impl final : public executor_job {
 public:
  executor_job_impl(loop_core* loop, Fn&& fn) : executor_job(loop) { call_.emplace(std::move(fn)); }

 private:
  void invoke() override {
    struct destroy {
      std::optional<Fn>& call;
      ~destroy() { call.reset(); }
    } guard{call_};
    if constexpr (std::is_void_v<R>) {
      (*call_)();
    } else {
      value_.emplace((*call_)());
    }
  }
  void drop_call() noexcept override { call_.reset(); }
  void deliver(future_state* target) override {
    if constexpr (std::is_void_v<R>) {
      static_cast<future_value<R>*>(target)->set_result();
    } else {
      static_cast<future_value<R>*>(target)->set_result(std::move(*value_));
    }
  }

  struct none {};
  std::optional<Fn> call_;
  std::conditional_t<std::is_void_v<R>, none, std::optional<std::conditional_t<std::is_void_v<R>, int, R>>> value_;
};

// executor_future<R> is the asyncio future of a run_in_executor() call:
// cancelling it cancels the job directly, with no done callback.
template <class R>
class executor_future final : public future_value<R> {
 public:
  using future_value<R>::future_value;
  ~executor_future() override {
    if (job_ != nullptr) job_->detach_target();
  }
  bool cancel(const std::string& message = "") override {
    if (job_ != nullptr && !this->done()) job_->cancel_from_loop();
    return future_value<R>::cancel(message);
  }
  executor_job* job_ = nullptr;
};

}  // namespace detail

// wrap_future(cf, loop) is asyncio.wrap_future: an asyncio Future of loop
// (default: the running loop) that completes with cf's outcome; a task
// awaits it. A copyable result is copied; a move-only one is moved into the
// asyncio future of the first wrap made of cf: cf.result() afterwards, or a
// second wrap_future(cf)'s await, throws InvalidStateError. Cancelling it cancels cf, which succeeds while cf's job has
// not started. Until cf is done the loop counts external work, so deadlock
// detection does not fire while the job runs. Throws RuntimeError if loop
// is closed, std::bad_alloc. Call on the loop's thread (cf may complete on
// any thread).
template <class T>
Future<T> wrap_future(const ::greenlet::concurrent::Future<T>& cf, event_loop& loop) {
  Future<T> af = loop.create_future<T>();
  detail::loop_core* core = loop.core();
  auto carrier = std::make_shared<detail::delivery<T>>(af.state(), core);
  carrier->attach(carrier);
  if constexpr (!std::is_void_v<T> && !std::is_copy_constructible_v<T>) {
    // Claimed now, in the order the wraps are made: their callbacks may
    // post from two threads at once (the one finishing cf, and this one once
    // cf is done), so the order of delivery cannot decide the consumer.
    carrier->claimed = cf.state()->claim();
  }
  af.add_done_callback([cf, claimer = std::weak_ptr<detail::delivery<T>>(carrier)](Future<T>& f) {
    if (!f.cancelled()) return;
    // Cancelled before its delivery: the claim goes back at once, so that
    // another wrap delivered later can take the value.
    if (auto pending = claimer.lock()) pending->give_up_claim(cf);
    cf.cancel();
  });
  cf.add_done_callback([carrier = std::move(carrier)](const ::greenlet::concurrent::Future<T>& done) mutable {
    detail::loop_core* target_loop = carrier->core;
    try {
      // The lambda goes into the loop's queue by move, so the carrier is
      // destroyed on the loop thread, not here.
      target_loop->call_soon_threadsafe([carrier = std::move(carrier), done] { carrier->deliver(done); });
    } catch (const RuntimeError&) {
      // The loop is closed: nobody can await the outcome any more.
    }
  });
  return af;
}
// Overload of wrap_future(cf, loop) on get_event_loop(): the running loop, else this thread's
// current one. Throws as wrap_future(cf, loop); call on that loop's thread.
template <class T>
Future<T> wrap_future(const ::greenlet::concurrent::Future<T>& cf) {
  return wrap_future(cf, get_event_loop());
}

// run_in_executor(loop, executor, fn, args...) is loop.run_in_executor:
// submits fn(args...) to executor (nullptr: the loop's default thread pool)
// and returns the asyncio Future to await. The Future holds what fn returns
// by value: a reference is copied on the worker when fn returns (as
// create_task()). Throws RuntimeError if loop is
// closed or on another thread (wrong_loop), concurrent::RuntimeError if the
// executor is shut down (for nullptr: once shutdown_default_executor() was
// called), concurrent::BrokenExecutor if it is broken. Call on the loop's
// thread.
template <class F, class... A>
auto run_in_executor(event_loop& loop, ::greenlet::concurrent::Executor* executor, F&& fn, A&&... args) {
  if constexpr (!std::is_invocable_v<std::decay_t<F>, std::decay_t<A>...>) {
    detail::reject_uncallable_functor<std::is_invocable_v<std::decay_t<F>, std::decay_t<A>...>, F>();
    static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<A>...> || detail::has_call_operator<F>,
                  "run_in_executor(executor, fn, args...): fn must be a callable taking args, not the result of a "
                  "call: write run_in_executor(nullptr, fetch, 1), not run_in_executor(nullptr, fetch(1))");
  } else {
    using R = detail::stored_result_t<std::decay_t<F>, std::decay_t<A>...>;
    detail::loop_core* core = loop.core();
    core->check_loop_thread();
    core->check_open();
    // The default executor is held until the job is in it: set_default_executor() on another
    // thread may replace it meanwhile and drop the registry's reference.
    std::shared_ptr<::greenlet::concurrent::Executor> default_held;
    if (executor == nullptr) {
      default_held = detail::default_executor(core);
      executor = default_held.get();
    }
    // The call runs once: the function and its arguments are moved into it.
    auto call = [fn = std::forward<F>(fn), ... args = std::forward<A>(args)]() mutable -> R {
      return std::invoke(std::move(fn), std::move(args)...);
    };
    auto job = std::make_unique<detail::executor_job_impl<R, decltype(call)>>(core, std::move(call));
    auto* state = new detail::executor_future<R>(core);
    Future<R> af(state);
    detail::executor_job* raw = job.get();
    executor->detail_enqueue(std::move(job));
    // Tied only now that the executor holds it (a throwing enqueue destroys
    // it unattached). A worker may have run it already, but only this thread
    // takes it from the loop's queue, so it is still there.
    raw->attach(state, &state->job_);
    state->job_ = raw;
    return af;
  }
}

template <class F, class... A>
auto event_loop::run_in_executor(::greenlet::concurrent::Executor* executor, F&& fn, A&&... args) {
  return ::greenlet::asyncio::run_in_executor(*this, executor, std::forward<F>(fn), std::forward<A>(args)...);
}

// set_default_executor(loop, executor) makes executor the one
// run_in_executor(nullptr) uses; asyncio::run shuts it down at its end,
// waiting for its jobs, and loop.close() without waiting (asyncio's
// close(): shutdown(wait=false)), then forgets it. The previous one is
// dropped, not shut down (a run_in_executor(nullptr) call under way on the
// loop's thread keeps it until its job is in); one given to a closed loop
// is dropped too. Throws only std::bad_alloc; thread-safe (a locked
// registry), though normally called on the loop's thread.
void set_default_executor(event_loop& loop, std::shared_ptr<::greenlet::concurrent::Executor> executor);
// shutdown_default_executor(loop) is asyncio's loop.shutdown_default_executor():
// run_in_executor(nullptr) and to_thread() on loop are refused from then on
// (concurrent::RuntimeError "Executor shutdown has been called", even with
// an executor set later), and the default executor is shut down, waiting
// for its jobs, on a helper thread while the loop keeps running: a job
// that still needs the loop (run_coroutine_threadsafe(...).result(),
// call_soon_threadsafe()) gets it. In a task of loop it suspends the task
// until then (asyncio's `await loop.shutdown_default_executor()`); outside
// (loop not running, on its thread) it runs the loop until then, as
// run_until_complete() would. asyncio::run does it at its end; a loop run
// by hand calls it before close(), which does not wait for those jobs. A
// call after one that waited (or timed out), or on a closed loop, does
// nothing; after one whose wait was cancelled, it waits for the jobs again
// (asyncio::run's end does), as asyncio's. Throws RuntimeError
// in a plain callback of the running loop (it cannot wait there) and what
// run_until_complete() refuses (another loop running on this thread, the
// wrong thread); CancelledError if the waiting task is cancelled (the
// shutdown goes on); what the executor's shutdown() throws;
// std::system_error if the helper thread cannot start (nothing changed).
// With a timeout (seconds), as asyncio 3.12's shutdown_default_executor(timeout):
// once it passes with jobs still running, the loop's exception handler gets
// "The executor did not finishing joining its threads within <timeout>
// seconds." (asyncio's RuntimeWarning) and the call returns; the executor
// finishes its jobs on its own and is dropped by the helper thread. No timeout
// (the default, as asyncio's None) waits for ever; asyncio::run's end waits
// thread_join_timeout. asyncio::ValueError for a NaN timeout.
void shutdown_default_executor(event_loop& loop, std::optional<double> timeout = std::nullopt);

// thread_join_timeout is how long asyncio::run's end waits for the default
// executor's jobs (asyncio's constants.THREAD_JOIN_TIMEOUT, 300 seconds).
inline constexpr double thread_join_timeout = 300.0;

// to_thread(fn, args...) is asyncio.to_thread: fn(args...) on the default
// executor of the running loop; await the returned future:
//   auto data = asyncio::await(asyncio::to_thread(read_file, path));
// fn runs in a copy of the caller's context (asyncio's copy_context()): it
// sees the caller's context variables, and what it sets stays in that copy.
// run_in_executor() copies nothing: there fn sees the worker thread's own
// context, as in asyncio. A reference fn returns is copied into the future,
// as run_in_executor() does. Throws RuntimeError with no running loop, and
// what run_in_executor() throws. Loop thread only; fn itself runs on a pool
// thread.
template <class F, class... A>
[[nodiscard(
    "asyncio::to_thread() returns the future of fn's result: await it (asyncio::await(...)), as a Python "
    "to_thread() coroutine must be awaited")]] auto
to_thread(F&& fn, A&&... args) {
  if constexpr (!std::is_invocable_v<std::decay_t<F>, std::decay_t<A>...>) {
    detail::reject_uncallable_functor<std::is_invocable_v<std::decay_t<F>, std::decay_t<A>...>, F>();
    static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<A>...> || detail::has_call_operator<F>,
                  "asyncio::to_thread(fn, args...): fn must be a callable taking args, not the result of a call: "
                  "write to_thread(fetch, 1), not to_thread(fetch(1))");
  } else {
    using R = detail::stored_result_t<std::decay_t<F>, std::decay_t<A>...>;
    auto call = [fn = std::forward<F>(fn), ... args = std::forward<A>(args)]() mutable -> R {
      return std::invoke(std::move(fn), std::move(args)...);
    };
    return run_in_executor(
        get_running_loop(), nullptr,
        [context = ::greenlet::copy_context(), call = std::move(call)]() mutable -> R { return context.run(call); });
  }
}

namespace detail {

// threadsafe_link ties a run_coroutine_threadsafe() request to its
// concurrent future (`outcome`). `live` (under mutex) says the loop may
// still take a cancellation: the request has not ended. Its loop side,
// attached while the request's task runs, holds a reference to the task,
// dropped when the task is done, or by close() when the loop closes first
// (a closed loop runs no done callbacks): the task's body holds the link,
// so that reference would otherwise keep the task, the link and the loop
// (its epoll and eventfd descriptors) alive forever.
struct threadsafe_link : private loop_side {
  threadsafe_link() noexcept { end = &on_loop_closed; }
  threadsafe_link(const threadsafe_link&) = delete;
  threadsafe_link& operator=(const threadsafe_link&) = delete;

  // settle() ends the request: no cancellation goes to the loop any more,
  // and the concurrent future is cancelled unless it has its outcome. Loop
  // thread.
  void settle() noexcept;
  // attach(t, self) holds task t, and the link itself (self is its own
  // shared_ptr), until detach() or the loop's close(): the task's function
  // holds the link too, but only until it ends (or the loop drops it
  // unstarted), while the loop still lists the link. Loop thread.
  void attach(future_state* t, std::shared_ptr<threadsafe_link> self) noexcept;
  // detach() settles the request (a task cancelled or killed before its
  // first step never runs its body's guard) and drops the task; the link
  // may be freed with it. Loop thread.
  void detach() noexcept;

  std::mutex mutex;
  bool live = true;
  loop_core* core = nullptr;
  future_state* task = nullptr;                // loop thread: held while attached
  std::shared_ptr<threadsafe_link> self_hold;  // loop thread: set while attached
  std::weak_ptr<::greenlet::concurrent::detail::future_core> outcome;

 private:
  static void on_loop_closed(loop_side* self) noexcept;
};

// threadsafe_request<R, F> is run_coroutine_threadsafe()'s post to the
// loop: run, it starts fn as a task; dropped unrun (the loop closed first),
// it settles the link, which cancels the concurrent future.
template <class R, class F>
struct threadsafe_request final : threadsafe_node {
  template <class G>
  threadsafe_request(G&& g, ::greenlet::concurrent::Future<R> f, std::shared_ptr<threadsafe_link> l)
      : fn(std::forward<G>(g)), cf(std::move(f)), link(std::move(l)) {
    run_fn = &run;
    drop_fn = &drop;
  }

  static void run(threadsafe_node* n);
  static void drop(threadsafe_node* n) noexcept {
    std::unique_ptr<threadsafe_request> own(static_cast<threadsafe_request*>(n));
    own->link->settle();
  }

  F fn;
  ::greenlet::concurrent::Future<R> cf;
  std::shared_ptr<threadsafe_link> link;
};

template <class R, class F>
void threadsafe_request<R, F>::run(threadsafe_node* n) {
  std::unique_ptr<threadsafe_request> own(static_cast<threadsafe_request*>(n));
  std::shared_ptr<threadsafe_link> link = own->link;
  // A request that starts no task (cancelled first, or create_task threw)
  // ends here.
  struct unstarted {
    threadsafe_link* link;
    ~unstarted() {
      if (link != nullptr) link->settle();
    }
  } guard{link.get()};
  if (own->cf.cancelled()) return;
  event_loop& target = *link->core->facade;
  auto start = [&] {
    return target.create_task([fn = std::move(own->fn), cf = own->cf, link]() mutable {
      // settle: whatever way the body ends (result, exception, cancellation,
      // the loop killing it on close), cf ends too and the link goes dead.
      struct finish {
        threadsafe_link& link;
        ~finish() { link.settle(); }  // cancelling cf is a no-op once it has its outcome
      } ends{*link};
      // claim(): cf is still to be settled here. Done already if a task factory made this task and
      // then threw, which cf got (below); set_running_or_notify_cancel() would throw then.
      auto claim = [&cf] { return !cf.done() && cf.set_running_or_notify_cancel(); };
      try {
        if constexpr (std::is_void_v<R>) {
          fn();
          if (claim()) cf.set_result();
        } else {
          R value = fn();
          if (claim()) cf.set_result(std::move(value));
        }
      } catch (const CancelledError&) {
        throw;  // the task ends cancelled; finish cancels cf
      } catch (const ::greenlet::GreenletExit&) {
        throw;
      } catch (...) {
        if (claim()) cf.set_exception(std::current_exception());
      }
    });
  };
  decltype(start()) task;
  try {
    task = start();
  } catch (...) {
    // As asyncio: the future gets what create_task() threw (a custom task factory's exception, the
    // loop closing), and so does the loop's exception handler, as from any callback.
    if (own->cf.set_running_or_notify_cancel()) own->cf.set_exception(std::current_exception());
    throw;
  }
  guard.link = nullptr;
  link->attach(task.state(), link);
  task.add_done_callback([link](Future<void>&) { link->detach(); });
}

}  // namespace detail

// run_coroutine_threadsafe(fn, loop) is asyncio.run_coroutine_threadsafe,
// called from a thread other than loop's: fn() runs as a task of loop, and
// the returned concurrent::Future gets its outcome (a reference fn returns
// is copied, as create_task()). Cancelling that future
// cancels the task (via call_soon_threadsafe). RuntimeError if loop is
// closed. If loop closes before the task is done (close() kills it), or
// before it has even started it (the request is dropped unrun, as when
// asyncio::run on loop ends just after the post), the future is cancelled:
// a caller waiting in result() or on wrap_future() gets CancelledError.
// Thread-safe: meant for threads other than loop's (called on loop's own
// thread, a blocking result() would deadlock).
template <class F>
auto run_coroutine_threadsafe(F&& fn, event_loop& loop) {
  using R = detail::stored_result_t<std::decay_t<F>&>;
  ::greenlet::concurrent::Future<R> cf;
  auto link = std::make_shared<detail::threadsafe_link>();
  link->core = loop.core();
  link->outcome = cf.state();
  cf.add_done_callback([link](const ::greenlet::concurrent::Future<R>& done) {
    if (!done.cancelled()) return;
    std::lock_guard<std::mutex> lock(link->mutex);
    if (!link->live) return;
    try {
      link->core->call_soon_threadsafe([link] {
        if (link->task != nullptr) link->task->cancel("");
      });
    } catch (const RuntimeError&) {
      // The loop closed meanwhile; its tasks are gone.
    }
  });
  auto request = std::make_unique<detail::threadsafe_request<R, std::decay_t<F>>>(std::forward<F>(fn), cf, link);
  if (!link->core->post_threadsafe(request.get())) {
    throw RuntimeError(asyncio_errc::loop_closed, "Event loop is closed");
  }
  request.release();
  return cf;
}

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
