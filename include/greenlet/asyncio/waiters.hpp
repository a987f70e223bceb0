// asyncio/waiters.hpp: the FIFO of waiting tasks behind every lock and
// queue. Internal: locks.hpp and queues.hpp use it; users never include it.
#pragma once

#include <cstddef>

#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/future.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio::detail {

// waiter is one task waiting on a primitive: the future it awaits, linked
// into the primitive's waiter_list. It lives on the waiting task's stack,
// so joining the queue allocates nothing but the future, and leaving it is
// O(1) (asyncio's deque.remove() is O(n)).
struct waiter {
  Future<void> fut;
  waiter* prev = nullptr;
  waiter* next = nullptr;
  bool linked = false;
  // woken: wake_next() took it off the list and set its future; its task
  // has not left yet. The list counts these (woken()).
  bool woken = false;
};

// waiter_list is an intrusive doubly linked FIFO of waiters, asyncio's
// `self._waiters` deque. It also binds its primitive to one loop, as
// asyncio's _LoopBoundMixin: to the loop of its waiters, while it has any
// (asyncio binds it to the first loop that waits, for good; a C++ loop is
// gone once closed, so a primitive outliving it is free again once no task
// waits). A task of another loop that would wait, or a thread other than the
// waiters' loop's that would wake them, gets RuntimeError: it used to
// complete that loop's futures from the wrong thread.
class waiter_list {
 public:
  waiter_list() = default;
  waiter_list(const waiter_list&) = delete;
  waiter_list& operator=(const waiter_list&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  // size() counts the linked waiters: not those wake_next() took off.
  std::size_t size() const noexcept { return size_; }
  // woken() counts the waiters wake_next() woke whose tasks have not left
  // yet: asyncio keeps those in its deque, and Semaphore::locked() sees them.
  std::size_t woken() const noexcept { return woken_; }
  waiter* front() const noexcept { return head_; }

  // bind(loop, kind) is for a task of `loop` about to wait: throws RuntimeError (wrong_loop) "<kind>
  // is bound to a different event loop" if tasks of another loop wait already, else binds the list
  // to loop.
  void bind(loop_core* loop, const char* kind) {
    if (size_ + woken_ != 0 && loop != loop_) [[unlikely]] {
      throw_bound_elsewhere(kind, "tasks of another event loop wait on it");
    }
    loop_ = loop;
  }
  // check_waker(kind) is for a call about to wake waiters (release, set, notify, put...), before it
  // changes anything: throws RuntimeError (wrong_loop) if the waiters' loop belongs to another
  // thread. Nothing to check without waiters, and one compare with them: the uncontended path
  // pays a load.
  void check_waker(const char* kind) const {
    if (size_ != 0 && tls_loop_thread_number != loop_->owner_number) [[unlikely]] {
      throw_bound_elsewhere(kind, "its waiting tasks belong to an event loop of another thread");
    }
  }

  void push_back(waiter& w) noexcept {
    w.prev = tail_;
    w.next = nullptr;
    (tail_ != nullptr ? tail_->next : head_) = &w;
    tail_ = &w;
    w.linked = true;
    ++size_;
  }
  // erase(w) unlinks w if it is still linked (a wake-up may have popped it),
  // and stops counting it as woken.
  void erase(waiter& w) noexcept {
    if (w.woken) {
      w.woken = false;
      --woken_;
    }
    if (!w.linked) return;
    (w.prev != nullptr ? w.prev->next : head_) = w.next;
    (w.next != nullptr ? w.next->prev : tail_) = w.prev;
    w.prev = w.next = nullptr;
    w.linked = false;
    --size_;
  }
  waiter* pop_front() noexcept {
    waiter* w = head_;
    if (w != nullptr) erase(*w);
    return w;
  }
  // wake_next() wakes the first waiter whose future is not done (one
  // cancelled meanwhile is) and returns it, or null if there is none. It
  // unlinks the woken one and every done one it passes: left linked until
  // their tasks run, each later wake-up would walk past them again, and a
  // burst of N wake-ups or cancellations would cost O(N^2).
  waiter* wake_next() {
    while (waiter* w = pop_front()) {
      if (w->fut.done()) continue;
      w->woken = true;
      ++woken_;
      w->fut.set_result();
      return w;
    }
    return nullptr;
  }

 private:
  // throw_bound_elsewhere() throws the RuntimeError; out of line (src/asyncio/locks.cpp), so that
  // the checks above cost the uncontended path no stack frame.
  [[noreturn]] static void throw_bound_elsewhere(const char* kind, const char* why);
  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
  std::size_t size_ = 0;
  std::size_t woken_ = 0;
  // The loop of the waiters (valid while size_ + woken_ != 0: their futures keep it alive).
  loop_core* loop_ = nullptr;
};

// enqueued is a waiter that joins `list` with a new future of the running
// loop and leaves it when destroyed, whether the wait ended by a wake-up, a
// cancellation or an unwinding kill (asyncio's `finally: waiters.remove()`).
// The primitive must outlive the tasks waiting on it. kind names it in the
// RuntimeError when the list is bound to another loop (waiter_list::bind()).
class enqueued {
 public:
  enqueued(waiter_list& list, const char* kind) : list_(list) {
    event_loop& loop = get_running_loop();
    w_.fut = loop.create_future<void>();
    list_.bind(loop.core(), kind);
    list_.push_back(w_);
  }
  ~enqueued() { list_.erase(w_); }
  enqueued(const enqueued&) = delete;
  enqueued& operator=(const enqueued&) = delete;

  Future<void>& fut() noexcept { return w_.fut; }
  // leave() unlinks it now: before waking the next waiter, which must not
  // find this one (done, cancelled) at the front.
  void leave() noexcept { list_.erase(w_); }

 private:
  waiter_list& list_;
  waiter w_;
};

}  // namespace greenlet::asyncio::detail

#pragma GCC visibility pop
