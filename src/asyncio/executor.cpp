// executor.cpp: the default executor of each loop, for run_in_executor(nullptr).
// The registry is keyed by loop and guarded by a mutex: loops on several
// threads make and retire their executors concurrently. An entry goes when
// its loop closes at the latest (retire_default_executor()): the key is the
// loop's address, which a later loop may get.
#include "greenlet/asyncio/executor.hpp"

#include <functional>
#include <map>
#include <new>
#include <thread>
#include <utility>

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

// begin_shutdown(loop) marks loop's default executor as shut down and takes it out (null if it
// has none, or if shutdown was called before: nothing to wait for). A loop closed meanwhile gets
// no entry (close() has retired its executor and would not erase one made now).
std::shared_ptr<::greenlet::concurrent::Executor> begin_shutdown(const loop_core* loop) {
  registry& r = executors();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (loop->threadsafe_closed()) return nullptr;
  entry& e = r.executors[loop];
  if (e.shutdown_called) return nullptr;
  e.shutdown_called = true;
  return std::move(e.executor);
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

void shutdown_default_executor(loop_core* loop) noexcept {
  auto executor = begin_shutdown(loop);
  if (!executor) return;
  try {
    executor->shutdown(true);
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

void shutdown_default_executor(event_loop& loop) {
  auto executor = detail::begin_shutdown(loop.core());
  if (executor) executor->shutdown(true);
}

}  // namespace greenlet::asyncio
