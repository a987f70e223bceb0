// queues.cpp: the item-type-independent half of the queues, following
// CPython's Lib/asyncio/queues.py (Queue.put/get/_wakeup_next/task_done).
#include "greenlet/asyncio/queues.hpp"

#include <algorithm>
#include <string>
#include <typeinfo>

#include "greenlet/asyncio/task.hpp"
#include "greenlet/concurrent/future.hpp"

#include "asyncio/member_list.hpp"

namespace greenlet::asyncio::detail {

queue_base::queue_base(std::size_t maxsize) : maxsize_(maxsize) { finished_.set(); }

void queue_base::wake_up_next(waiter_list& waiters) {
  // Pops as it goes, unlike Lock's waiters: a woken putter or getter that
  // finds the queue full or empty again (someone came first) re-queues at
  // the back, as asyncio's `while self.full()` loop does.
  while (waiter* w = waiters.pop_front()) {
    if (!w->fut.done()) {
      w->fut.set_result();
      return;
    }
  }
}

void queue_base::wake_up_all(waiter_list& waiters) {
  while (waiter* w = waiters.pop_front()) {
    if (!w->fut.done()) w->fut.set_result();
  }
}

void queue_base::wait_for_room() {
  while (full()) {
    throw_if_shut_down();
    enqueued putter(putters_, "Queue");
    try {
      await(putter.fut());
    } catch (const CancelledError&) {
      if (putter.orphaned()) throw;  // the queue is gone: no slot to pass on
      putter.fut().cancel();         // in case it is not done yet
      putter.leave();
      // Woken by get_nowait() but cancelled before putting: the free slot
      // goes to the next putter.
      if (!full() && !putter.fut().cancelled()) wake_up_next(putters_);
      throw;
    }
    // Woken by get_nowait() just before the queue was destroyed: there is no queue to put into.
    if (putter.orphaned()) putter.throw_orphaned();
  }
}

void queue_base::wait_for_item() {
  while (empty()) {
    throw_if_shut_down();
    enqueued getter(getters_, "Queue");
    try {
      await(getter.fut());
    } catch (const CancelledError&) {
      if (getter.orphaned()) throw;  // the queue is gone, and its items with it
      getter.fut().cancel();
      getter.leave();
      // Woken by put_nowait() but cancelled before taking the item: wake the
      // next getter so the item is not stranded.
      if (!empty() && !getter.fut().cancelled()) wake_up_next(getters_);
      throw;
    }
    // Woken by put_nowait() just before the queue was destroyed: the item went with the queue.
    if (getter.orphaned()) getter.throw_orphaned();
  }
}

void queue_base::item_added() {
  ++unfinished_tasks_;
  finished_.clear();
  wake_up_next(getters_);
}

void queue_base::item_removed() { wake_up_next(putters_); }

void queue_base::task_done() {
  if (unfinished_tasks_ == 0) throw ValueError("task_done() called too many times");
  // set() first: it refuses a thread other than its joiners' loop's before the count changes.
  if (unfinished_tasks_ == 1) finished_.set();
  --unfinished_tasks_;
}

void queue_base::shutdown(bool immediate) {
  check_caller();
  is_shutdown_ = true;
  if (immediate) {
    const std::size_t dropped = drop_all_items();
    unfinished_tasks_ -= std::min(dropped, unfinished_tasks_);
    if (unfinished_tasks_ == 0) finished_.set();
  }
  // Every waiter wakes to look again: a getter finds the queue empty (or not yet: it takes an
  // item) and a putter finds it shut down.
  wake_up_all(getters_);
  wake_up_all(putters_);
}

void queue_base::join() {
  if (unfinished_tasks_ == 0) return;
  try {
    finished_.wait();
  } catch (const RuntimeError& e) {
    // finished_ was destroyed with its queue: say so of the queue, the object the caller knows.
    if (e.condition() == asyncio_errc::primitive_destroyed) throw primitive_destroyed_error("Queue");
    throw;
  }
}

// ---- repr() and str(): Queue.__repr__, __str__ and _format ----

std::string queue_base::format() const {
  std::string out = "maxsize=" + std::to_string(maxsize_);
  if (const std::size_t n = qsize(); n != 0) {
    // Bounded as an ExceptionGroup's members: a log line of a queue of a million items would be
    // megabytes (asyncio lists them all).
    const auto item = [this](std::size_t i) { return item_repr(i); };
    out += " _queue=[" + bounded_member_list(indices{n}, ", ", item, [](std::size_t) { return ""; }) + "]";
  }
  // asyncio's deques of getters and putters: a woken one has left already (popped), a cancelled
  // one stays until its task runs; so do ours.
  if (getters_.size() != 0) out += " _getters[" + std::to_string(getters_.size()) + "]";
  if (putters_.size() != 0) out += " _putters[" + std::to_string(putters_.size()) + "]";
  if (unfinished_tasks_ != 0) out += " tasks=" + std::to_string(unfinished_tasks_);
  if (is_shutdown_) out += " shutdown";
  return out;
}

namespace {

// class_name(q) is Python's type(q).__name__: Queue, PriorityQueue, LifoQueue, or a subclass's name,
// without namespaces or template arguments.
std::string class_name(const queue_base& q) { return ::greenlet::concurrent::detail::demangle(typeid(q).name()); }

}  // namespace

// Both are built by appending, not as "<" + name + ...: g++ 12 at -O3 warns (-Wrestrict, a false
// positive) about the inlined operator+(const char*, std::string&&).
std::string queue_base::repr() const {
  std::string out = "<";
  out += class_name(*this);
  // The whole object's address, as Python's id(): a subclass may put another base first.
  out += " at ";
  out += address_repr(dynamic_cast<const void*>(this));
  out += ' ';
  out += format();
  out += '>';
  return out;
}

std::string queue_base::str() const {
  std::string out = "<";
  out += class_name(*this);
  out += ' ';
  out += format();
  out += '>';
  return out;
}

}  // namespace greenlet::asyncio::detail
