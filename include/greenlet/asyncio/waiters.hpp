// asyncio/waiters.hpp: the FIFO of waiting tasks behind every lock and
// queue. Internal: locks.hpp and queues.hpp use it; users never include it.
#pragma once

#include <cstddef>

#include "greenlet/asyncio/errors.hpp"
#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/future.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio::detail {

class waiter_list;

// primitive_destroyed_error(kind) is the RuntimeError (asyncio_errc::primitive_destroyed) a task
// gets when the <kind> it waits on is destroyed under it (see ~waiter_list()). Throws only
// std::bad_alloc.
RuntimeError primitive_destroyed_error(const char* kind);

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
  // owner is the list the waiter's task belongs to until it leaves, linked or not (a wake-up
  // unlinks it long before its task runs); null once it left, or once the list was destroyed
  // under it: then the task must not touch its primitive again (orphaned).
  waiter_list* owner = nullptr;
  // member_prev/member_next chain every waiter whose owner is the list, for ~waiter_list().
  waiter* member_prev = nullptr;
  waiter* member_next = nullptr;
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
  // ~waiter_list() orphans the tasks still waiting (their primitive is being destroyed): each
  // forgets the list, and one not woken yet is woken with primitive_destroyed_error(kind), so that
  // none touches the freed primitive or waits forever. Free without waiters. On the waiters'
  // loop thread only: from another thread it cannot wake them and terminates, saying so.
  ~waiter_list() {
    if (members_ != nullptr) [[unlikely]] {
      orphan_all();
    }
  }
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

  // attach(w, kind) makes w a member: its task waits on this list's <kind> until detach(w).
  void attach(waiter& w, const char* kind) noexcept {
    kind_ = kind;
    w.owner = this;
    w.member_prev = nullptr;
    w.member_next = members_;
    if (members_ != nullptr) members_->member_prev = &w;
    members_ = &w;
  }
  // detach(w) is w's task leaving for good: unlinked, no longer a member.
  void detach(waiter& w) noexcept {
    erase(w);
    (w.member_prev != nullptr ? w.member_prev->member_next : members_) = w.member_next;
    if (w.member_next != nullptr) w.member_next->member_prev = w.member_prev;
    w.member_prev = w.member_next = nullptr;
    w.owner = nullptr;
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
  // orphan_all() is ~waiter_list() with members; out of line (src/asyncio/locks.cpp).
  void orphan_all() noexcept;
  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
  std::size_t size_ = 0;
  std::size_t woken_ = 0;
  // The loop of the waiters (valid while size_ + woken_ != 0: their futures keep it alive).
  loop_core* loop_ = nullptr;
  // members_ heads the chain of every attached waiter (member_next), woken or not.
  waiter* members_ = nullptr;
  // kind_ names the primitive in primitive_destroyed_error(): the last attach()'s kind.
  const char* kind_ = "primitive";
};

// enqueued is a waiter that joins `list` with a new future of the running
// loop and leaves it when destroyed, whether the wait ended by a wake-up, a
// cancellation or an unwinding kill (asyncio's `finally: waiters.remove()`).
// kind names the primitive in the RuntimeError when the list is bound to
// another loop (waiter_list::bind()) or destroyed under the waiter.
// If the primitive is destroyed while the task waits, the waiter is
// orphaned(): its task must then leave without touching the primitive, by
// letting the await's exception through or by throw_orphaned().
class enqueued {
 public:
  enqueued(waiter_list& list, const char* kind) : kind_(kind) {
    event_loop& loop = get_running_loop();
    w_.fut = loop.create_future<void>();
    list.bind(loop.core(), kind);
    list.attach(w_, kind);
    list.push_back(w_);
  }
  ~enqueued() {
    if (w_.owner != nullptr) w_.owner->detach(w_);
  }
  enqueued(const enqueued&) = delete;
  enqueued& operator=(const enqueued&) = delete;

  Future<void>& fut() noexcept { return w_.fut; }
  // leave() unlinks it now: before waking the next waiter, which must not
  // find this one (done, cancelled) at the front. Not for an orphaned waiter (a no-op there).
  void leave() noexcept {
    if (w_.owner != nullptr) w_.owner->erase(w_);
  }
  // orphaned() is true once the primitive was destroyed while this task waited on it.
  bool orphaned() const noexcept { return w_.owner == nullptr; }
  // throw_orphaned() throws primitive_destroyed_error(kind): for a waiter woken normally just
  // before its primitive was destroyed, which can no longer take what it was given.
  [[noreturn]] void throw_orphaned() const { throw primitive_destroyed_error(kind_); }

 private:
  const char* kind_;
  waiter w_;
};

}  // namespace greenlet::asyncio::detail

#pragma GCC visibility pop
