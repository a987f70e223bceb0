// locks.cpp: Lock, Event, Condition, Semaphore, BoundedSemaphore and
// Barrier, following CPython 3.13's Lib/asyncio/locks.py step by step; the
// comments note where and why C++ orders things differently.
#include "greenlet/asyncio/locks.hpp"

#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <typeinfo>

#include "greenlet/asyncio/task.hpp"
#include "greenlet/concurrent/future.hpp"

namespace greenlet::asyncio {

void detail::waiter_list::throw_bound_elsewhere(const char* kind, const char* why) {
  throw RuntimeError(asyncio_errc::wrong_loop,
                     std::string(kind) + " is bound to a different event loop: " + why +
                         "; a primitive belongs to one loop at a time: use one per loop, and reach another "
                         "thread's loop with call_soon_threadsafe()");
}

RuntimeError detail::primitive_destroyed_error(const char* kind) {
  return RuntimeError(asyncio_errc::primitive_destroyed,
                      std::string(kind) +
                          " was destroyed while this task waited on it; a primitive must outlive the tasks "
                          "waiting on it: keep it where it lives longer than they do (a shared_ptr they hold, "
                          "or the scope that awaits them), or cancel and await them before it goes");
}

void detail::waiter_list::orphan_all() noexcept {
  // Every member forgets the list first: nothing below may reach a waiter through it again.
  waiter* members = members_;
  members_ = nullptr;
  for (waiter* w = members; w != nullptr; w = w->member_next) w->owner = nullptr;
  head_ = tail_ = nullptr;
  size_ = woken_ = 0;
  // Then the ones not woken yet are woken with the error; one shared exception object, read-only.
  // A woken or cancelled one (future done) finds itself orphaned when its task runs.
  std::exception_ptr error;
  for (waiter* w = members; w != nullptr;) {
    waiter* next = w->member_next;
    w->prev = w->next = w->member_prev = w->member_next = nullptr;
    w->linked = w->woken = false;
    if (!w->fut.done()) {
      try {
        if (!error) error = std::make_exception_ptr(primitive_destroyed_error(kind_));
        w->fut.set_exception(error);
      } catch (const std::exception& e) {
        // Off the waiters' loop thread (or out of memory): the task can be neither woken nor left
        // to wait for a primitive that no longer exists.
        std::fprintf(stderr,
                     "greenlet::asyncio: a %s was destroyed while tasks waited on it, and its waiters "
                     "could not be told (%s); destroy it on its loop's thread, after its waiters\n",
                     kind_, e.what());
        std::terminate();
      }
    }
    w = next;
  }
}

namespace {

bool all_cancelled(const detail::waiter_list& waiters) noexcept {
  for (detail::waiter* w = waiters.front(); w != nullptr; w = w->next) {
    if (!w->fut.cancelled()) return false;
  }
  return true;
}

// lock_repr(name, self, extra, waiters) is the repr of asyncio's primitives: object.__repr__'s
// "<asyncio.locks.Lock object at 0x..>" with " [extra]" before the ">", and ", waiters:N" in it when
// waiters is not 0. waiters is the length of asyncio's deque: the tasks queued, woken ones whose
// tasks have not run yet included (waiters() leaves those out; Semaphore's and Condition's
// wake-ups unlink them and count them in woken()).
std::string lock_repr(std::string_view name, const void* self, std::string extra, const detail::waiter_list& waiters) {
  if (const std::size_t n = waiters.size() + waiters.woken(); n != 0) extra += ", waiters:" + std::to_string(n);
  std::string out = "<";
  out += name;
  return out + " object at " + detail::address_repr(self) + " [" + extra + "]>";
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
    if (w.orphaned()) throw;  // the lock is gone: nobody to hand it on to
    // Leave the queue first: wake_up_first() looks only at the front, and
    // this waiter there (done) would make it wake nobody. Then, if the lock
    // was handed to us but we will not take it, hand it to the next.
    w.leave();
    if (!locked_) wake_up_first();
    throw;
  }
  // Handed the lock just before it was destroyed: there is no lock to hold.
  if (w.orphaned()) w.throw_orphaned();
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

std::string Lock::repr() const {
  return lock_repr("asyncio.locks.Lock", this, locked_ ? "locked" : "unlocked", waiters_);
}

// ---- Event ----

bool Event::wait() {
  if (value_) return true;
  detail::enqueued w(waiters_, "Event");
  // Woken by set() before the Event was destroyed: the wait succeeded, and returning touches
  // nothing of the Event. Destroyed while still unset: await() throws primitive_destroyed_error.
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

std::string Event::repr() const { return lock_repr("asyncio.locks.Event", this, value_ ? "set" : "unset", waiters_); }

// ---- Condition ----

bool Condition::wait() {
  if (!locked()) throw RuntimeError(asyncio_errc::invalid_state, "cannot wait on un-acquired lock");
  // Refused (another loop's tasks wait here) before the lock is let go, not in enqueued below.
  waiters_.bind(&detail::require_running_loop(), "Condition");
  std::exception_ptr error;
  bool destroyed = false;
  release();
  {
    detail::enqueued w(waiters_, "Condition");
    try {
      await(w.fut());
    } catch (const CancelledError&) {
      error = std::current_exception();
    } catch (...) {
      if (!w.orphaned()) throw;  // a kill (GreenletExit, loop closed) unwinds at once
      error = std::current_exception();
    }
    destroyed = w.orphaned();
  }
  if (destroyed) {
    // The Condition is gone, and maybe its lock with it (its own, or one declared beside it): take
    // nothing back, touch nothing. Cancelled meanwhile: still CancelledError.
    if (!error) error = std::make_exception_ptr(detail::primitive_destroyed_error("Condition"));
    std::rethrow_exception(error);
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

std::string Condition::repr() const {
  return lock_repr("asyncio.locks.Condition", this, locked() ? "locked" : "unlocked", waiters_);
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
    if (w.orphaned()) throw;  // the semaphore is gone: no unit to give back
    w.leave();
    // Woken by wake_up_next() (which took a unit for us) but not going to
    // acquire: give the unit back.
    if (w.fut().done() && !w.fut().cancelled()) ++value_;
    wake_more();
    throw;
  }
  // Given a unit just before the semaphore was destroyed: there is nothing left to hold.
  if (w.orphaned()) w.throw_orphaned();
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

std::string Semaphore::repr() const {
  // Python names the object's own class: type(self).__module__ and __qualname__.
  const std::type_info& type = typeid(*this);
  std::string name;
  if (type == typeid(Semaphore)) {
    name = "asyncio.locks.Semaphore";
  } else if (type == typeid(BoundedSemaphore)) {
    name = "asyncio.locks.BoundedSemaphore";
  } else {
    name = ::greenlet::concurrent::detail::demangle(type.name());  // a subclass of the program's
  }
  return lock_repr(name, dynamic_cast<const void*>(this),
                   locked() ? "locked" : "unlocked, value:" + std::to_string(value_), waiters_);
}

void BoundedSemaphore::release() {
  if (value_ >= bound_) throw ValueError("BoundedSemaphore released too many times");
  Semaphore::release();
}

// ---- Barrier ----

Barrier::Barrier(std::size_t parties) : parties_(parties) {
  if (parties < 1) throw ValueError("parties must be >= 1");
}

namespace {

// barrier_destroyed(e) is true when e reports the Barrier's own Condition or Lock destroyed under
// the task: the Barrier itself is going, and the task must touch nothing of it on its way out.
bool barrier_destroyed(const RuntimeError& e) noexcept { return e.condition() == asyncio_errc::primitive_destroyed; }

}  // namespace

std::size_t Barrier::wait() {
  try {
    cond_.acquire();
  } catch (const RuntimeError& e) {
    if (barrier_destroyed(e)) throw detail::primitive_destroyed_error("Barrier");
    throw;
  }
  // held is the lock_guard and the `finally` of asyncio's wait() in one, dismissed (barrier = null)
  // when the Barrier was destroyed under the task.
  struct held {
    Barrier* barrier;
    bool counted = false;
    ~held() {
      if (barrier == nullptr) return;
      if (counted) {
        --barrier->count_;
        barrier->exit();
      }
      barrier->cond_.release();
    }
  } h{this};
  try {
    block();
    const std::size_t index = count_++;
    h.counted = true;
    if (index + 1 == parties_) {
      // The last to arrive releases the others; newcomers wait until they
      // have all left (draining).
      state_ = state::draining;
      cond_.notify_all();
    } else {
      wait_filled();
    }
    return index;
  } catch (const RuntimeError& e) {
    if (!barrier_destroyed(e)) throw;
    h.barrier = nullptr;
    throw detail::primitive_destroyed_error("Barrier");
  }
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

void Barrier::lock_for_change() {
  try {
    cond_.acquire();
  } catch (const RuntimeError& e) {
    if (barrier_destroyed(e)) throw detail::primitive_destroyed_error("Barrier");
    throw;
  }
}

void Barrier::reset() {
  lock_for_change();
  std::lock_guard guard(cond_, std::adopt_lock);
  if (count_ > 0) {
    state_ = state::resetting;
  } else {
    state_ = state::filling;
  }
  cond_.notify_all();
}

void Barrier::abort() {
  lock_for_change();
  std::lock_guard guard(cond_, std::adopt_lock);
  state_ = state::broken;
  cond_.notify_all();
}

std::string Barrier::repr() const {
  std::string extra;
  switch (state_) {
    case state::filling: extra = "filling"; break;
    case state::draining: extra = "draining"; break;
    case state::resetting: extra = "resetting"; break;
    case state::broken: extra = "broken"; break;
  }
  if (state_ != state::broken) extra += ", waiters:" + std::to_string(n_waiting()) + "/" + std::to_string(parties_);
  // Not lock_repr(): asyncio's Barrier shows its own count, not the waiters of its Condition.
  return "<asyncio.locks.Barrier object at " + detail::address_repr(this) + " [" + extra + "]>";
}

}  // namespace greenlet::asyncio
