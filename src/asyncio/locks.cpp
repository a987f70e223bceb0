// locks.cpp: Lock, Event, Condition, Semaphore, BoundedSemaphore and
// Barrier, following CPython 3.13's Lib/asyncio/locks.py step by step; the
// comments note where and why C++ orders things differently.
#include "greenlet/asyncio/locks.hpp"

#include <exception>
#include <mutex>
#include <string>

#include "greenlet/asyncio/task.hpp"

namespace greenlet::asyncio {

void detail::waiter_list::throw_bound_elsewhere(const char* kind, const char* why) {
  throw RuntimeError(asyncio_errc::wrong_loop,
                     std::string(kind) + " is bound to a different event loop: " + why +
                         "; a primitive belongs to one loop at a time: use one per loop, and reach another "
                         "thread's loop with call_soon_threadsafe()");
}

namespace {

bool all_cancelled(const detail::waiter_list& waiters) noexcept {
  for (detail::waiter* w = waiters.front(); w != nullptr; w = w->next) {
    if (!w->fut.cancelled()) return false;
  }
  return true;
}

}  // namespace

// ---- Lock ----

bool Lock::try_lock() noexcept {
  // A lock that is free but was just handed to a woken waiter (its future is
  // done, not cancelled) is not free for newcomers: FIFO fairness.
  if (locked_ || !all_cancelled(waiters_)) return false;
  locked_ = true;
  return true;
}

bool Lock::acquire() {
  if (try_lock()) return true;
  detail::enqueued w(waiters_, "Lock");
  try {
    await(w.fut());
  } catch (const CancelledError&) {
    // Leave the queue first: wake_up_first() looks only at the front, and
    // this waiter there (done) would make it wake nobody. Then, if the lock
    // was handed to us but we will not take it, hand it to the next.
    w.leave();
    if (!locked_) wake_up_first();
    throw;
  }
  w.leave();
  locked_ = true;
  return true;
}

void Lock::release() {
  // Uncontended: nobody to wake, so no thread to check; the rest costs this path nothing (not
  // even a stack frame) out of line.
  if (locked_ && waiters_.empty()) [[likely]] {
    locked_ = false;
    return;
  }
  release_contended();
}

void Lock::release_contended() {
  if (!locked_) {
    if (std::uncaught_exceptions() > 0) return;
    throw RuntimeError(asyncio_errc::invalid_state, "Lock is not acquired: release() without acquire()");
  }
  waiters_.check_waker("Lock");
  locked_ = false;
  wake_up_first();
}

void Lock::wake_up_first() {
  // Only the first: if its task was cancelled meanwhile (future done), that
  // task's acquire() passes the lock on when it runs.
  detail::waiter* first = waiters_.front();
  if (first != nullptr && !first->fut.done()) first->fut.set_result();
}

// ---- Event ----

bool Event::wait() {
  if (value_) return true;
  detail::enqueued w(waiters_, "Event");
  await(w.fut());
  return true;
}

void Event::set() {
  if (value_) return;
  waiters_.check_waker("Event");
  value_ = true;
  for (detail::waiter* w = waiters_.front(); w != nullptr; w = w->next) {
    if (!w->fut.done()) w->fut.set_result();
  }
}

// ---- Condition ----

bool Condition::wait() {
  if (!locked()) throw RuntimeError(asyncio_errc::invalid_state, "cannot wait on un-acquired lock");
  // Refused (another loop's tasks wait here) before the lock is let go, not in enqueued below.
  waiters_.bind(&detail::require_running_loop(), "Condition");
  std::exception_ptr error;
  release();
  try {
    detail::enqueued w(waiters_, "Condition");
    await(w.fut());
  } catch (const CancelledError&) {
    error = std::current_exception();
  }
  // The lock must be held again on the way out, even when cancelled: the
  // caller's lock_guard will release it. Only CancelledError is retried, as
  // asyncio does; a kill (GreenletExit, loop closed) unwinds at once.
  for (;;) {
    try {
      lock_->acquire();
      break;
    } catch (const CancelledError&) {
      error = std::current_exception();
    }
  }
  if (error) {
    // We may have been notified before the cancellation arrived: pass the
    // notification on (a spurious wake-up is allowed), as 3.13 does.
    notify_unlocked(1);
    std::rethrow_exception(error);
  }
  return true;
}

void Condition::notify(std::size_t n) {
  if (!locked()) throw RuntimeError(asyncio_errc::invalid_state, "cannot notify on un-acquired lock");
  waiters_.check_waker("Condition");
  notify_unlocked(n);
}

void Condition::notify_unlocked(std::size_t n) {
  // wake_next() unlinks each waiter it wakes or skips, so a burst costs O(1)
  // per waiter. asyncio keeps woken futures in its deque until their tasks
  // run, so its notify_all() asks for more wake-ups than our size(); those
  // futures are done and it skips them, so the same waiters wake.
  for (; n > 0 && waiters_.wake_next() != nullptr; --n) {
  }
}

// ---- Semaphore, BoundedSemaphore ----

Semaphore::Semaphore(long value) : value_(value) {
  if (value < 0) throw ValueError("Semaphore initial value must be >= 0");
}

bool Semaphore::locked() const noexcept {
  if (value_ == 0) return true;
  // asyncio: any waiter not cancelled, woken ones included (they are still
  // in its deque); wake_up_next() unlinked ours, woken() counts them.
  return waiters_.woken() > 0 || !all_cancelled(waiters_);
}

bool Semaphore::acquire() {
  if (!locked()) {
    --value_;
    return true;
  }
  detail::enqueued w(waiters_, "Semaphore");
  // Waiters that came while we queued had to wait behind us (FIFO); wake as
  // many as the counter now allows.
  auto wake_more = [this] {
    while (value_ > 0 && wake_up_next()) {
    }
  };
  try {
    await(w.fut());
  } catch (const CancelledError&) {
    w.leave();
    // Woken by wake_up_next() (which took a unit for us) but not going to
    // acquire: give the unit back.
    if (w.fut().done() && !w.fut().cancelled()) ++value_;
    wake_more();
    throw;
  }
  w.leave();
  wake_more();
  return true;
}

void Semaphore::release() {
  waiters_.check_waker("Semaphore");
  ++value_;
  wake_up_next();
}

bool Semaphore::wake_up_next() {
  if (waiters_.wake_next() == nullptr) return false;
  --value_;  // the woken waiter's unit (it gives it back if cancelled)
  return true;
}

void BoundedSemaphore::release() {
  if (value_ >= bound_) throw ValueError("BoundedSemaphore released too many times");
  Semaphore::release();
}

// ---- Barrier ----

Barrier::Barrier(std::size_t parties) : parties_(parties) {
  if (parties < 1) throw ValueError("parties must be >= 1");
}

std::size_t Barrier::wait() {
  std::lock_guard guard(cond_);
  block();
  const std::size_t index = count_++;
  struct finally {
    Barrier& b;
    ~finally() {
      --b.count_;
      b.exit();
    }
  } leave{*this};
  if (index + 1 == parties_) {
    // The last to arrive releases the others; newcomers wait until they
    // have all left (draining).
    state_ = state::draining;
    cond_.notify_all();
  } else {
    wait_filled();
  }
  return index;
}

void Barrier::block() {
  cond_.wait_for([this] { return state_ != state::draining && state_ != state::resetting; });
  if (state_ == state::broken) throw BrokenBarrierError("Barrier aborted");
}

void Barrier::wait_filled() {
  cond_.wait_for([this] { return state_ != state::filling; });
  if (state_ == state::broken || state_ == state::resetting) {
    throw BrokenBarrierError("Abort or reset of barrier");
  }
}

void Barrier::exit() {
  if (count_ != 0) return;
  if (state_ == state::resetting || state_ == state::draining) state_ = state::filling;
  // notify_unlocked: this runs in a destructor, also while a kill unwinds
  // the task without the lock; notify() would throw there.
  cond_.notify_unlocked(cond_.waiters_.size());
}

void Barrier::reset() {
  std::lock_guard guard(cond_);
  if (count_ > 0) {
    state_ = state::resetting;
  } else {
    state_ = state::filling;
  }
  cond_.notify_all();
}

void Barrier::abort() {
  std::lock_guard guard(cond_);
  state_ = state::broken;
  cond_.notify_all();
}

}  // namespace greenlet::asyncio
