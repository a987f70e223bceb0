// asyncio/locks.hpp: asyncio's synchronization primitives: Lock, Event,
// Condition, Semaphore, BoundedSemaphore, Barrier (CPython's
// Lib/asyncio/locks.py). Waiting tasks queue FIFO, each on a future of its
// own, and are woken in order.
//
//   asyncio::Lock lock;
//   {
//     std::lock_guard guard(lock);  // awaits: lock() is acquire()
//     asyncio::sleep(0.1);          // other tasks calling lock() queue up
//   }                               // unlock() wakes the first of them
//
// Thread rules: as futures, a primitive belongs to the thread of the loop
// whose tasks use it. Waiting (acquire, wait) needs a running task; the rest
// may be called from callbacks too. Every wait throws CancelledError if the
// task is cancelled meanwhile, leaving the primitive as if the task had never
// waited.
//
// Lifetime: a primitive should outlive the tasks waiting on it. Destroying one
// while tasks wait (it went out of scope in the task that owned it, say) is a
// bug of the program, but it is reported, not undefined: the destructor
// orphans its waiters. Each wakes with RuntimeError (asyncio_errc::
// primitive_destroyed) "<Lock|Event|Condition|Semaphore|Barrier> was destroyed
// while this task waited on it; ...", and leaves without touching the
// destroyed object: no use-after-free, no wait forever. This holds as well for
// a waiter woken just before the destruction whose task had not run yet (a
// Lock handed to it, a Semaphore unit given to it: there is nothing left to
// hold), except Event::wait(), which returns true: the Event was set, and
// returning needs nothing of it. A waiter cancelled meanwhile gets its
// CancelledError. Condition::wait() orphaned does not take the lock back (it
// may be gone with the Condition): the caller's own code must not touch the
// destroyed primitive either, so a std::lock_guard on a Condition that can be
// destroyed under its waiters would release freed memory; keep such a
// Condition alive with a shared_ptr instead. The destructor runs on the
// loop's thread: from another thread it cannot reach the waiters and
// terminates, saying so.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "greenlet/asyncio/errors.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/waiters.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// Lock is asyncio.Lock: a non-reentrant mutex for tasks. lock()/unlock()
// make it a BasicLockable, so std::lock_guard and std::unique_lock work
// (their constructors await). Not thread-safe: every member is for the loop
// thread whose tasks use the lock. Lock() makes a free lock; throws nothing.
class Lock {
 public:
  Lock() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  // acquire() waits until the lock is free and takes it; returns true.
  // Fair: a free lock with queued waiters goes to the first of them.
  // Throws CancelledError if cancelled while waiting (the lock is then not
  // held, and the next waiter is woken if the lock was handed to this one),
  // RuntimeError outside a task. A task of the lock's loop thread only.
  bool acquire();
  // release() frees the lock and wakes the first waiter. Throws RuntimeError if
  // the lock is not held (any task may release it, as in asyncio), except
  // while an exception unwinds the caller's stack: a lock_guard unwinding a
  // task killed in Condition::wait() (loop closed) must not terminate.
  // Loop thread only.
  void release();
  // locked() is true while held. Throws nothing; loop thread only.
  bool locked() const noexcept { return locked_; }

  // lock() is acquire() without the result, for std::lock_guard and std::unique_lock. Throws as
  // acquire(); awaits, so only in a task of the lock's loop thread.
  void lock() { acquire(); }
  // unlock() is release(), for std::lock_guard and std::unique_lock. Throws as release(); loop
  // thread only.
  void unlock() { release(); }
  // try_lock() takes the lock if it is free and nobody queues for it; false otherwise. Throws
  // nothing; loop thread only.
  bool try_lock() noexcept;

  // waiters() is the number of tasks queued in acquire(). Throws nothing; loop thread only.
  std::size_t waiters() const noexcept { return waiters_.size(); }

  // repr() is asyncio's repr() of the lock: "<asyncio.locks.Lock object at 0x7f.. [unlocked]>",
  // "[locked]", "[locked, waiters:2]" (docs/asyncio.md, "repr() of locks and queues"). Throws
  // std::bad_alloc only; loop thread only.
  std::string repr() const;

 private:
  void wake_up_first();
  // release_contended() is release() when a task waits (or the lock is not held).
  void release_contended();
  bool locked_ = false;
  detail::waiter_list waiters_;
};

// Event is asyncio.Event: a flag tasks can wait for. Not thread-safe: loop
// thread only (from another thread, post set() with call_soon_threadsafe()).
// Event() starts cleared; throws nothing.
class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // wait() returns true at once if the flag is set, else waits until set(). Throws CancelledError if
  // cancelled while waiting, RuntimeError outside a task. A task of the loop thread only.
  bool wait();
  // set() sets the flag and wakes every waiter; clear() resets it. Throws nothing but
  // std::bad_alloc; loop thread only.
  void set();
  // clear() resets the flag; later wait() calls wait again. Throws nothing; loop thread only.
  void clear() noexcept { value_ = false; }
  // is_set() is true while the flag is set. Throws nothing; loop thread only.
  bool is_set() const noexcept { return value_; }

  // repr() is asyncio's repr() of the event: "<asyncio.locks.Event object at 0x7f.. [unset]>",
  // "[set]", "[unset, waiters:2]" (docs/asyncio.md, "repr() of locks and queues"). Throws
  // std::bad_alloc only; loop thread only.
  std::string repr() const;

 private:
  bool value_ = false;
  detail::waiter_list waiters_;
};

// Condition is asyncio.Condition: waiting for a notification while holding
// an associated Lock, its own unless one is given (which must outlive it).
// It is BasicLockable through that lock. Not thread-safe: loop thread only.
class Condition {
 public:
  // Condition() uses a Lock of its own. Throws nothing.
  Condition() : lock_(&own_lock_) {}
  // Condition(lock) uses the given Lock, which must outlive the Condition, instead of its own.
  // Throws nothing; the Condition belongs to that lock's loop thread.
  explicit Condition(Lock& lock) : lock_(&lock) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  // acquire() takes the associated lock: Lock::acquire(), waiting if it is held. Throws
  // CancelledError if cancelled while waiting; a task of the loop thread only.
  bool acquire() { return lock_->acquire(); }
  // release() frees the associated lock: Lock::release(). Throws RuntimeError if it is not held;
  // loop thread only.
  void release() { lock_->release(); }
  // locked() is true while the associated lock is held. Throws nothing; loop thread only.
  bool locked() const noexcept { return lock_->locked(); }
  // lock() is acquire() without the result, for std::lock_guard and std::unique_lock. Throws as
  // acquire(); a task of the loop thread only.
  void lock() { lock_->acquire(); }
  // unlock() is release(), for std::lock_guard and std::unique_lock. Throws as release(); loop
  // thread only.
  void unlock() { lock_->release(); }

  // wait() releases the lock, waits for notify() and takes the lock back
  // before returning true, or throwing: even when cancelled it returns only
  // holding the lock. RuntimeError if the lock is not held. A cancelled
  // waiter wakes the next one (Python 3.13's rule, which never loses a
  // notify(); 3.11 wakes none, so a notification that reached a waiter
  // cancelled meanwhile was lost). Throws CancelledError if cancelled. A
  // task of the loop thread only.
  bool wait();
  // wait_for(pred) waits until pred() is truthy and returns its value. Throws as wait() and
  // whatever pred throws; a task of the loop thread only.
  template <class Predicate>
  auto wait_for(Predicate pred) {
    auto result = pred();
    while (!result) {
      wait();
      result = pred();
    }
    return result;
  }
  // notify(n) wakes up to n waiters; notify_all() wakes them all.
  // Throws RuntimeError if the lock is not held. Loop thread only.
  void notify(std::size_t n = 1);
  // notify_all() wakes every waiter: notify(waiters). Throws RuntimeError if the lock is not held;
  // loop thread only.
  void notify_all() { notify(waiters_.size()); }

  // waiters() is the number of tasks in wait() that no notify() has woken:
  // a woken task leaves the queue at once, one cancelled while waiting when
  // its task runs or a notify() passes it. Throws nothing; loop thread only.
  std::size_t waiters() const noexcept { return waiters_.size(); }

  // repr() is asyncio's repr() of the condition: "<asyncio.locks.Condition object at 0x7f..
  // [unlocked]>", "[locked, waiters:2]", locked meaning the associated lock is held (docs/asyncio.md,
  // "repr() of locks and queues"). Throws std::bad_alloc only; loop thread only.
  std::string repr() const;

 private:
  friend class Barrier;
  void notify_unlocked(std::size_t n);
  Lock own_lock_;
  Lock* lock_;
  detail::waiter_list waiters_;
};

// Semaphore is asyncio.Semaphore: a counter that acquire() decrements,
// waiting while it is zero, and release() increments. ValueError for a
// negative initial value. Not thread-safe: loop thread only.
class Semaphore {
 public:
  // Semaphore(value) starts the counter at value. Throws ValueError if value is negative. The
  // semaphore belongs to the loop thread whose tasks use it.
  explicit Semaphore(long value = 1);
  virtual ~Semaphore() = default;
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // acquire() waits until the counter is positive and nobody queues ahead,
  // then decrements it; returns true. A waiter cancelled after being woken
  // gives its unit back to the next one. Throws CancelledError if cancelled
  // while waiting, RuntimeError outside a task. A task of the loop thread only.
  bool acquire();
  // release() increments the counter and wakes the first waiter. Throws nothing (ValueError in
  // BoundedSemaphore); loop thread only.
  virtual void release();
  // locked() is true when acquire() would wait. Throws nothing; loop thread only.
  bool locked() const noexcept;
  // lock() is acquire() without the result, for std::lock_guard and std::unique_lock. Throws
  // CancelledError if cancelled while waiting; a task of the loop thread only.
  void lock() { acquire(); }
  // unlock() is release(), for std::lock_guard and std::unique_lock. Throws as release() (ValueError
  // for a BoundedSemaphore over its bound); loop thread only.
  void unlock() { release(); }
  // value() is the counter. Throws nothing; loop thread only.
  long value() const noexcept { return value_; }
  // waiters() is the number of tasks in acquire() that no release() has
  // woken: a woken task leaves the queue at once, one cancelled while
  // waiting when its task runs or a release() passes it. Throws nothing;
  // loop thread only.
  std::size_t waiters() const noexcept { return waiters_.size(); }

  // repr() is asyncio's repr() of the semaphore: "<asyncio.locks.Semaphore object at 0x7f..
  // [unlocked, value:1]>", "[locked]", "[locked, waiters:2]"; a BoundedSemaphore's says
  // asyncio.locks.BoundedSemaphore (docs/asyncio.md, "repr() of locks and queues"). Throws
  // std::bad_alloc only; loop thread only.
  std::string repr() const;

 protected:
  // value_ is the counter, for subclasses such as BoundedSemaphore; read it through value().
  long value_;

 private:
  bool wake_up_next();
  detail::waiter_list waiters_;
};

// BoundedSemaphore is a Semaphore whose release() throws ValueError when it
// would raise the counter above its initial value. Loop thread only.
class BoundedSemaphore : public Semaphore {
 public:
  // BoundedSemaphore(value) starts the counter at value, which is also its bound. Throws ValueError
  // if value is negative. Belongs to the loop thread whose tasks use it.
  explicit BoundedSemaphore(long value = 1) : Semaphore(value), bound_(value) {}
  // release() increments the counter and wakes the first waiter. Throws ValueError if the counter
  // is already at its initial value; loop thread only.
  void release() override;

 private:
  long bound_;
};

// Barrier is asyncio.Barrier: parties tasks wait() until all have
// arrived, then all go on. ValueError unless parties >= 1. Not thread-safe:
// loop thread only.
class Barrier {
 public:
  // Barrier(parties) makes a barrier for parties tasks. Throws ValueError if parties is 0. Belongs
  // to the loop thread whose tasks use it.
  explicit Barrier(std::size_t parties);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  // wait() returns the caller's arrival index, 0 to parties - 1, once every
  // party has arrived. Throws BrokenBarrierError if the barrier is (or gets)
  // aborted, or is reset while waiting; CancelledError if cancelled,
  // RuntimeError outside a task. A task of the loop thread only.
  std::size_t wait();
  // reset() returns the barrier to its empty state; tasks waiting in it get
  // BrokenBarrierError. Awaits the barrier's lock, so throws CancelledError
  // if cancelled meanwhile. A task of the loop thread only.
  void reset();
  // abort() breaks the barrier: current and future wait() calls throw
  // BrokenBarrierError until reset(). Awaits the barrier's lock, so throws
  // CancelledError if cancelled meanwhile. A task of the loop thread only.
  void abort();

  // parties() is the number of tasks that must wait() to pass the barrier. Throws nothing; loop
  // thread only.
  std::size_t parties() const noexcept { return parties_; }
  // n_waiting() is how many tasks wait in the filling barrier. Throws nothing; loop thread only.
  std::size_t n_waiting() const noexcept { return state_ == state::filling ? count_ : 0; }
  // broken() is true after abort() until reset(). Throws nothing; loop thread only.
  bool broken() const noexcept { return state_ == state::broken; }

  // repr() is asyncio's repr() of the barrier: "<asyncio.locks.Barrier object at 0x7f.. [filling,
  // waiters:2/3]>", the state (filling, draining, resetting, broken) and, unless broken,
  // n_waiting()/parties() (docs/asyncio.md, "repr() of locks and queues"). Throws std::bad_alloc
  // only; loop thread only.
  std::string repr() const;

 private:
  enum class state { filling, draining, resetting, broken };
  // lock_for_change() is reset()'s and abort()'s acquire of cond_, reporting a Barrier destroyed
  // meanwhile as the Barrier.
  void lock_for_change();
  void block();
  void wait_filled();
  void exit();
  Condition cond_;
  std::size_t parties_;
  state state_ = state::filling;
  std::size_t count_ = 0;
};

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
