// executor.cpp: the default executor of each loop, for run_in_executor(nullptr).
// The registry is keyed by loop and guarded by a mutex: loops on several
// threads make and retire their executors concurrently. An entry goes when
// its loop closes at the latest (retire_default_executor()): the key is the
// loop's address, which a later loop may get.
#include "greenlet/asyncio/executor.hpp"

#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "greenlet/asyncio/sync_errors.hpp"
#include "io/blocked_signals.hpp"

namespace greenlet::asyncio::detail {

namespace {

// A loop's entry: its default executor, and whether shutdown_default_executor()
// was called (asyncio's _executor_shutdown_called): from then on
// run_in_executor(nullptr) is refused, even with an executor set later.
struct entry {
  std::shared_ptr<::greenlet::concurrent::Executor> executor;
  bool shutdown_called = false;
};

struct registry {
  std::mutex mutex;
  // A std::map holds no memory while empty: no allocation outlives the
  // loops that use it.
  std::map<const loop_core*, entry> executors;
};

registry& executors() {
  // Never destroyed: close() reaches it, and a loop with static storage
  // duration may close after it would have been destroyed. Built in static
  // storage, so it holds no heap memory while empty.
  alignas(registry) static unsigned char storage[sizeof(registry)];
  static registry* instance = new (storage) registry();
  return *instance;
}

// forget(loop) takes loop's entry out of the registry and returns its executor (null if none).
std::shared_ptr<::greenlet::concurrent::Executor> forget(const loop_core* loop) {
  registry& r = executors();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.executors.find(loop);
  if (it == r.executors.end()) return nullptr;
  auto executor = std::move(it->second.executor);
  r.executors.erase(it);
  return executor;
}

// begin_shutdown(loop, was_called) marks loop's default executor as shut down and returns it
// (null if it has none: nothing to wait for); was_called gets the mark's old value. The entry
// keeps the executor until a shutdown has waited for it (forget_shut_down()): a call whose wait
// is cancelled leaves it to the next one (asyncio::run's end), as asyncio's loop keeps its
// _default_executor and a second shutdown_default_executor() joins it again. A loop closed
// meanwhile gets no entry (close() has retired its executor and would not erase one made now).
std::shared_ptr<::greenlet::concurrent::Executor> begin_shutdown(const loop_core* loop, bool& was_called) {
  registry& r = executors();
  std::lock_guard<std::mutex> lock(r.mutex);
  was_called = false;
  if (loop->threadsafe_closed()) return nullptr;
  entry& e = r.executors[loop];
  was_called = e.shutdown_called;
  e.shutdown_called = true;
  return e.executor;
}

// undo_shutdown(loop, was_called) puts back the mark begin_shutdown() changed, when the shutdown
// could not start: loop is as it was before.
void undo_shutdown(const loop_core* loop, bool was_called) noexcept {
  registry& r = executors();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.executors.find(loop);
  if (it != r.executors.end()) it->second.shutdown_called = was_called;
}

// forget_shut_down(loop, executor) drops the entry's executor once a shutdown has waited for it
// (or gave up at its timeout): later calls have nothing to wait for. One set meanwhile stays.
void forget_shut_down(const loop_core* loop, const ::greenlet::concurrent::Executor* executor) noexcept {
  std::shared_ptr<::greenlet::concurrent::Executor> dropped;  // after the lock
  registry& r = executors();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.executors.find(loop);
  if (it != r.executors.end() && it->second.executor.get() == executor) dropped = std::move(it->second.executor);
}

}  // namespace

bool on_loop_thread(const loop_core* loop) noexcept { return loop->on_owner_thread(); }

executor_job::executor_job(loop_core* loop) noexcept : loop_(loop) {
  run_fn = &on_loop;
  drop_fn = &on_drop;
  end = &on_loop_closed;
  // The worker posts to the loop after the loop side may have ended
  // (the loop closed meanwhile): its memory must last until then.
  retain_remote(loop_);
}

executor_job::~executor_job() { release_remote(loop_); }

void executor_job::attach(future_state* target, executor_job** link) noexcept {
  target_ = target;
  link_ = link;
  retain(loop_);
  loop_->external_work.fetch_add(1);
  loop_->attach_side(this);
}

bool executor_job::claim(unsigned char to) noexcept {
  unsigned char expected = pending;
  return state_.compare_exchange_strong(expected, to, std::memory_order_acq_rel);
}

void executor_job::run() noexcept {
  if (!claim(running)) {  // its future was cancelled first
    drop_call();
    unref();
    return;
  }
  try {
    invoke();
  } catch (...) {
    error_ = std::current_exception();
  }
  post();
}

void executor_job::cancel() noexcept {
  drop_call();
  if (!claim(cancelled)) {
    unref();
    return;
  }
  pool_cancelled_ = true;
  post();
}

void executor_job::fail(std::exception_ptr error) noexcept {
  drop_call();
  if (!claim(running)) {
    unref();
    return;
  }
  error_ = std::move(error);
  post();
}

void executor_job::post() noexcept {
  // A closed loop can no longer take it: its close() ended the loop side
  // (on_loop_closed), and this side goes now.
  if (!loop_->post_threadsafe(this)) unref();
}

void executor_job::on_loop_closed(loop_side* side) noexcept {
  // The call runs on (asyncio does not cancel executor work at close); its
  // outcome has nowhere to go.
  static_cast<executor_job*>(side)->end_loop_side();
}

void executor_job::cancel_from_loop() noexcept {
  // Only a job no worker has claimed: the worker that pops it sees the
  // cancellation and just drops its reference.
  if (claim(cancelled)) end_loop_side();
}

void executor_job::detach_target() noexcept {
  target_ = nullptr;
  link_ = nullptr;
}

void executor_job::end_loop_side() noexcept {
  loop_->detach_side(this);
  if (link_ != nullptr) *link_ = nullptr;
  target_ = nullptr;
  link_ = nullptr;
  loop_->external_work.fetch_sub(1);
  release(loop_);
  unref();
}

void executor_job::unref() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void executor_job::on_loop(threadsafe_node* n) {
  auto* job = static_cast<executor_job*>(n);
  future_state* target = job->target_;
  // Both sides end here, whatever delivering throws (std::bad_alloc while
  // scheduling the future's callbacks).
  struct finish {
    executor_job* job;
    ~finish() {
      job->unref();  // the executor's side, which the queue carried
      job->end_loop_side();
    }
  } guard{job};
  if (job->link_ != nullptr) *job->link_ = nullptr;  // target->cancel() below is the plain one
  job->link_ = nullptr;
  // A target that is done already (its awaiting task was cancelled while
  // the job ran) drops the outcome without error, as asyncio does.
  if (target == nullptr || target->done()) return;
  if (job->pool_cancelled_) {
    target->cancel("");
  } else if (job->error_) {
    target->set_exception(job->error_);
  } else {
    job->deliver(target);
  }
}

void executor_job::on_drop(threadsafe_node* n) noexcept {
  auto* job = static_cast<executor_job*>(n);
  job->unref();
  job->end_loop_side();
}

void threadsafe_link::settle() noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex);
    live = false;
  }
  // Outside the lock: cf's done callbacks (its own among them) take it.
  if (auto cf = outcome.lock()) cf->cancel();
}

void threadsafe_link::attach(future_state* t, std::shared_ptr<threadsafe_link> self) noexcept {
  retain(t);
  task = t;
  self_hold = std::move(self);
  core->attach_side(this);
}

void threadsafe_link::detach() noexcept {
  settle();
  core->detach_side(this);
  // Released last: the task's done callback, or self_hold, may hold the
  // link's last reference.
  std::shared_ptr<threadsafe_link> self = std::move(self_hold);
  if (future_state* t = std::exchange(task, nullptr)) release(t);
}

void threadsafe_link::on_loop_closed(loop_side* self) noexcept { static_cast<threadsafe_link*>(self)->detach(); }

std::shared_ptr<::greenlet::concurrent::Executor> default_executor(loop_core* loop) {
  // A closed loop has retired its executor (close()): one made now would
  // never be shut down.
  loop->check_open();
  registry& r = executors();
  std::lock_guard<std::mutex> lock(r.mutex);
  entry& e = r.executors[loop];
  if (e.shutdown_called) {
    throw ::greenlet::concurrent::RuntimeError(
        ::greenlet::concurrent::concurrent_errc::shutdown,
        "Executor shutdown has been called: shutdown_default_executor() (or asyncio::run's end) shut down "
        "this loop's default executor; run_in_executor(nullptr) and to_thread() cannot use it any more, "
        "pass an executor of your own or use a new loop");
  }
  if (!e.executor) e.executor = std::make_shared<::greenlet::concurrent::ThreadPoolExecutor>(0, "asyncio");
  return e.executor;  // a reference of the caller's own: the entry may be replaced once the lock is released
}

namespace {

// executor_shutdown is loop.shutdown_default_executor()'s machinery: the
// default executor's shutdown(wait=true) runs on a helper thread, whose end
// completes `done` (an asyncio future of the loop, through wrap_future(),
// which counts as outside work meanwhile), so the loop keeps running while
// the executor's jobs finish: a job may still need it
// (run_coroutine_threadsafe(...).result(), call_soon_threadsafe()). Loop
// thread.
class executor_shutdown {
 public:
  // Takes the loop's default executor and starts the helper; nothing to
  // wait for (pending() false) if there is none or it was shut down before.
  // std::system_error if the thread cannot start: the loop's default
  // executor is then as it was.
  explicit executor_shutdown(event_loop& loop) : core_(loop.core()) {
    bool was_called = false;
    auto executor = begin_shutdown(core_, was_called);
    if (!executor) return;
    executor_ = executor.get();
    ::greenlet::concurrent::Future<void> finished;
    try {
      // A library thread takes no process-directed signal (io/blocked_signals.hpp): it inherits this.
      const ::greenlet::detail::async_signals_blocked masked;
      // Copies: a thread that fails to start destroys what it was given.
      helper_ = std::thread([executor, finished]() mutable { shut_down(std::move(executor), std::move(finished)); });
    } catch (...) {
      undo_shutdown(core_, was_called);
      throw;
    }
    executor.reset();  // the helper's copy, and the loop's entry until the wait ends (forget_shut_down())
    done_ = wrap_future(finished, loop);
  }
  executor_shutdown(const executor_shutdown&) = delete;
  executor_shutdown& operator=(const executor_shutdown&) = delete;
  // Joins the helper once it has completed `done` (it is ending then), and
  // the loop forgets the executor: it has been waited for. Otherwise (the
  // wait was cancelled or interrupted) lets the helper finish alone, and the
  // loop keeps the executor for the next shutdown to wait for.
  ~executor_shutdown() {
    if (!helper_.joinable()) return;
    if (!done_.empty() && done_.done() && !done_.cancelled()) {
      helper_.join();
      forget_shut_down(core_, executor_);
    } else {
      helper_.detach();
    }
  }

  bool pending() const noexcept { return !done_.empty(); }
  Future<void>& done() noexcept { return done_; }

  // wait_target(loop, timeout) is what to wait for: done(), or with a timeout
  // a future of loop finished by done() or by a timer, whichever comes first
  // (asyncio's `async with timeouts.timeout(timeout): await future`).
  Future<void> wait_target(event_loop& loop, std::optional<double> timeout) {
    if (!timeout) return done_;
    Future<void> bounded = loop.create_future<void>();
    auto finish = [bounded]() mutable {
      if (!bounded.done()) bounded.set_result();
    };
    done_.add_done_callback([finish](Future<void>&) mutable { finish(); });
    timer_ = loop.call_later(*timeout, finish);
    return bounded;
  }

  // timed_out(loop, timeout) is called once the wait_target() is done: false
  // if the executor finished. Otherwise the wait is given up, as asyncio's
  // shutdown_default_executor(timeout) does: the loop's exception handler gets
  // asyncio's RuntimeWarning text, and the helper is left to finish alone (it
  // no longer reports to the loop). The executor is shut down already (its
  // shutdown flag is set): asyncio's extra shutdown(wait=False) has nothing
  // left to do.
  bool timed_out(loop_core* loop, double timeout) {
    timer_.cancel();
    if (done_.done()) return false;
    done_.cancel();
    forget_shut_down(core_, executor_);  // given up, as asyncio's: later calls do not wait again
    char number[32];
    auto end = std::to_chars(number, number + sizeof number, timeout).ptr;
    loop->report({"The executor did not finishing joining its threads within " + std::string(number, end) + " seconds.",
                  nullptr, ""});
    return true;
  }

 private:
  // shut_down() is the helper thread: it shuts the executor down, waiting,
  // and drops it there (if its last reference, the destructor's wait is
  // not the loop's), then reports to the loop, unless the waiter gave up.
  static void shut_down(std::shared_ptr<::greenlet::concurrent::Executor> executor,
                        ::greenlet::concurrent::Future<void> finished) noexcept {
    std::exception_ptr error;
    try {
      executor->shutdown(true);
    } catch (...) {
      error = std::current_exception();
    }
    executor.reset();
    try {
      if (!finished.set_running_or_notify_cancel()) return;  // cancelled: nobody waits
      if (error) {
        finished.set_exception(error);
      } else {
        finished.set_result();
      }
    } catch (...) {
      // std::bad_alloc scheduling the delivery: the waiter is cancelled when the loop closes.
    }
  }

  loop_core* core_;
  const ::greenlet::concurrent::Executor* executor_ = nullptr;  // the one shut down, to forget once waited for
  std::thread helper_;
  Future<void> done_;
  Handle timer_;  // wait_target()'s with a timeout
};

// check_timeout(timeout) refuses a NaN timeout before anything changes: it
// would be neither a bound nor none.
void check_timeout(std::optional<double> timeout) {
  if (timeout && std::isnan(*timeout)) {
    throw ValueError(
        "shutdown_default_executor(): the timeout is NaN; pass a number of seconds, or std::nullopt to wait "
        "without a bound");
  }
}

// forget_default_executor() takes loop's default executor out of the
// registry and shuts it down, waiting for its work or not; errors go to the
// loop's exception handler.
void forget_default_executor(loop_core* loop, bool wait) noexcept {
  auto executor = forget(loop);
  if (!executor) return;
  try {
    executor->shutdown(wait);
  } catch (...) {
    loop->report({"error while shutting down the default executor", std::current_exception(), ""});
  }
}

}  // namespace

void shutdown_default_executor(loop_core* loop, std::optional<double> timeout) noexcept {
  if (loop->closed) return;  // close() retired it
  try {
    std::optional<executor_shutdown> shutdown;
    try {
      shutdown.emplace(*loop->facade);
    } catch (const std::system_error&) {
      // No helper thread: wait here, with the loop stopped (a job that
      // needs the loop then waits for ever, as before helpers).
      forget_default_executor(loop, true);
      return;
    }
    if (!shutdown->pending()) return;
    Future<void> target = shutdown->wait_target(*loop->facade, timeout);
    run_until_done(loop, target.state());
    if (timeout && shutdown->timed_out(loop, *timeout)) return;
    shutdown->done().result();
  } catch (...) {
    loop->report({"error while shutting down the default executor", std::current_exception(), ""});
  }
}

void retire_default_executor(loop_core* loop) noexcept {
  forget_default_executor(loop, false);
  // Dropped there. If this was its last reference (the pool that
  // run_in_executor(nullptr) made), its destructor waits for the calls it
  // still runs, as every ThreadPoolExecutor's does; their outcomes have
  // nowhere to go (close() ended their loop sides).
}

}  // namespace greenlet::asyncio::detail

namespace greenlet::asyncio {

void set_default_executor(event_loop& loop, std::shared_ptr<::greenlet::concurrent::Executor> executor) {
  std::shared_ptr<::greenlet::concurrent::Executor> dropped;  // after the lock
  {
    detail::registry& r = detail::executors();
    std::lock_guard<std::mutex> lock(r.mutex);
    // close() retires the default executor after it refuses thread-safe
    // posts, under this lock: one given to a closed loop would never be
    // shut down or forgotten, and is dropped instead.
    if (loop.core()->threadsafe_closed()) {
      dropped = std::move(executor);
    } else {
      // Python drops the old one without shutting it down; its owner may still use it.
      dropped = std::exchange(r.executors[loop.core()].executor, std::move(executor));
    }
  }
}

void shutdown_default_executor(event_loop& loop, std::optional<double> timeout) {
  detail::loop_core* core = loop.core();
  core->check_thread();
  detail::check_timeout(timeout);
  if (core->closed) return;  // close() retired it
  // Waits in a task of loop (asyncio's await loop.shutdown_default_executor()), or runs the loop
  // (asyncio's run_until_complete() of it): refused before anything changes.
  if (core->running) {
    detail::awaiting_task();
  } else {
    core->check_can_run();
  }
  detail::executor_shutdown shutdown(loop);
  if (!shutdown.pending()) return;
  Future<void> target = shutdown.wait_target(loop, timeout);
  if (core->running) {
    detail::await_state(target.state());
  } else {
    detail::run_until_done(core, target.state());
  }
  if (timeout && shutdown.timed_out(core, *timeout)) return;
  shutdown.done().result();  // what the executor's shutdown() threw
}

}  // namespace greenlet::asyncio
