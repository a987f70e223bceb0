// asyncio/queues.hpp: Queue<T>, PriorityQueue<T, Compare> and LifoQueue<T>,
// asyncio's queues for handing items between tasks (CPython's
// Lib/asyncio/queues.py).
//
//   asyncio::Queue<std::string> q(10);        // bounded: put() waits when full
//   asyncio::create_task([&] { q.put("job"); });
//   std::string job = q.get();                 // waits for an item
//   q.task_done();                             // join() returns once all are done
//   q.shutdown();                              // puts raise QueueShutDown; gets, once empty
//
// Items may be move-only. Thread rules and lifetime as locks.hpp: a queue
// belongs to its loop's thread and should outlive the tasks waiting on it.
// Destroyed while tasks wait in put(), get() or join(), it orphans them: each
// throws RuntimeError (asyncio_errc::primitive_destroyed) "Queue was
// destroyed while this task waited on it; ..." without touching the queue,
// even a getter woken by a put_nowait() just before (the item went with the
// queue). A join() that the last task_done() released returns normally.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "greenlet/asyncio/locks.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/waiters.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

namespace detail {

// queue_base is what does not depend on the item type: the getters and
// putters waiting, and the task_done()/join() count. Its public members are
// part of every queue's API; like the queues, loop thread only.
class queue_base {
 public:
  explicit queue_base(std::size_t maxsize);
  virtual ~queue_base() = default;
  queue_base(const queue_base&) = delete;
  queue_base& operator=(const queue_base&) = delete;

  // qsize() is the number of items in the queue. Throws nothing; loop thread only.
  virtual std::size_t qsize() const noexcept = 0;
  // maxsize() is the bound given at construction; 0 means unbounded. Throws nothing; loop thread
  // only.
  std::size_t maxsize() const noexcept { return maxsize_; }
  // empty() is true when the queue holds no item; full() when it holds maxsize() items (never for
  // an unbounded queue). Throw nothing; loop thread only.
  bool empty() const noexcept { return qsize() == 0; }
  bool full() const noexcept { return maxsize_ > 0 && qsize() >= maxsize_; }

  // task_done() tells the queue one item taken by get() is processed.
  // Throws ValueError if called more times than items were put. Loop thread only.
  void task_done();
  // join() waits until every item put has been taken and task_done(). Throws CancelledError if
  // cancelled while waiting, RuntimeError outside a task. A task of the loop thread only.
  void join();

  // shutdown(immediate) is asyncio's Queue.shutdown() (Python 3.13): from now on put() and
  // put_nowait() throw QueueShutDown, and get() and get_nowait() throw it once the queue is empty;
  // the tasks waiting in put() or get() wake to throw it (a getter takes an item while any is
  // left). immediate empties the queue first, counting each item it drops as task_done() (down to
  // zero), so that join() returns unless items taken are still not done. A second call may add
  // immediate; there is no way back. Throws RuntimeError (wrong_loop) from a thread other than
  // that of the tasks waiting on the queue. Loop thread only.
  void shutdown(bool immediate = false);
  // is_shutdown() is true once shutdown() was called (asyncio's private _is_shutdown). Throws
  // nothing; loop thread only.
  bool is_shutdown() const noexcept { return is_shutdown_; }

  // repr() is asyncio's repr() of the queue: "<Queue at 0x7f.. maxsize=2 _queue=[1, 2] _putters[1]
  // tasks=2>", "<Queue at 0x7f.. maxsize=0 _getters[1]>", each part after maxsize= only when it
  // applies (_getters[N], _putters[N]: tasks waiting in get(), put()), under the class's own
  // name (PriorityQueue, LifoQueue, a subclass's). Items print as Python's repr() prints the value their
  // type stands for (detail::repr_value(): 'abc', True, 2.0, (1, 'a'), [1, 2], "<value>"): at most 15
  // and about 2,000 characters of them, then "... and N more" (docs/asyncio.md, "repr() of locks
  // and queues"). Throws what an item's operator<< throws and std::bad_alloc; loop thread only.
  std::string repr() const;
  // str() is asyncio's str() of the queue, repr() without the address: "<Queue maxsize=0 tasks=2>".
  // Throws as repr(); loop thread only.
  std::string str() const;

 protected:
  // drop_all_items() empties the storage for shutdown(true) and returns how many items it dropped.
  // Throws what moving an item out (or Compare) throws.
  virtual std::size_t drop_all_items() = 0;
  // throw_if_shut_down() is put_nowait()'s first check.
  void throw_if_shut_down() const {
    if (is_shutdown_) [[unlikely]] {
      throw QueueShutDown();
    }
  }
  // item_repr(i) is the repr of the i-th item in the order asyncio's repr lists them (its
  // list(self._queue)), for repr() and str().
  virtual std::string item_repr(std::size_t i) const = 0;
  // wait_for_room()/wait_for_item() are put()'s and get()'s waiting loops.
  void wait_for_room();
  void wait_for_item();
  // item_added()/item_removed() are the bookkeeping of put_nowait() and
  // get_nowait() after the storage changed.
  void item_added();
  void item_removed();
  // check_caller() is for put_nowait()/get_nowait() before they change anything: RuntimeError
  // (wrong_loop) if tasks of a loop of another thread wait on the queue (waiter_list::check_waker()).
  // Inline: without waiters it is two compares.
  void check_caller() const {
    getters_.check_waker("Queue");
    putters_.check_waker("Queue");
  }

 private:
  static void wake_up_next(waiter_list& waiters);
  static void wake_up_all(waiter_list& waiters);
  // format() is what repr() and str() show after the name: "maxsize=0 _queue=[1] tasks=1".
  std::string format() const;
  std::size_t maxsize_;
  waiter_list getters_;
  waiter_list putters_;
  std::size_t unfinished_tasks_ = 0;
  Event finished_;
  bool is_shutdown_ = false;
};

// The storage policies: how items are kept and which comes out first.
template <class T>
class fifo_storage {
 public:
  std::size_t size() const noexcept { return items_.size(); }
  // operator[](i): the i-th item, the next to come out first, as asyncio's deque lists them.
  const T& operator[](std::size_t i) const noexcept { return items_[i]; }
  void push(T item) { items_.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

 private:
  std::deque<T> items_;
};

template <class T>
class lifo_storage {
 public:
  std::size_t size() const noexcept { return items_.size(); }
  // operator[](i): the i-th item, the oldest first, as asyncio's list (the next out is the last).
  const T& operator[](std::size_t i) const noexcept { return items_[i]; }
  void push(T item) { items_.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items_.back());
    items_.pop_back();
    return item;
  }

 private:
  std::vector<T> items_;
};

// heap_storage pops the smallest item under Compare first, as heapq does
// (std::priority_queue would pop the largest).
template <class T, class Compare>
class heap_storage {
 public:
  std::size_t size() const noexcept { return items_.size(); }
  // operator[](i): the i-th item in heap order, as asyncio's heapq list.
  const T& operator[](std::size_t i) const noexcept { return items_[i]; }
  void push(T item) {
    items_.push_back(std::move(item));
    std::push_heap(items_.begin(), items_.end(), after{compare_});
  }
  T pop() {
    std::pop_heap(items_.begin(), items_.end(), after{compare_});
    T item = std::move(items_.back());
    items_.pop_back();
    return item;
  }

 private:
  struct after {
    Compare& compare;
    bool operator()(const T& a, const T& b) const { return compare(b, a); }
  };
  std::vector<T> items_;
  Compare compare_;
};

}  // namespace detail

// basic_queue<T, Storage> is the queue over one storage policy; use Queue,
// PriorityQueue or LifoQueue. Besides the members below every queue has
// maxsize(), empty(), full(), task_done() and join() (see queue_base above).
// Not thread-safe: a queue belongs to the loop thread whose tasks use it; feed
// it from other threads through call_soon_threadsafe().
template <class T, class Storage>
class basic_queue : public detail::queue_base {
 public:
  // value_type is T, the type of the items. A type alias: nothing to throw, any thread.
  using value_type = T;

  // basic_queue(maxsize) holds at most maxsize items; 0 means unbounded. Throws only
  // std::bad_alloc; the queue belongs to the loop thread whose tasks use it.
  explicit basic_queue(std::size_t maxsize = 0) : queue_base(maxsize) {}

  // qsize() is the number of items in the queue. Throws nothing; loop thread only.
  std::size_t qsize() const noexcept override { return storage_.size(); }

  // put(item) waits while the queue is full, then adds item. Throws
  // CancelledError if cancelled while waiting (item is dropped), QueueShutDown
  // once shutdown() was called, before or while it waits (item is dropped),
  // RuntimeError outside a task when it would wait. A task of the loop thread only.
  void put(T item) {
    wait_for_room();
    put_nowait(std::move(item));
  }
  // put_nowait(item) adds item without waiting. Throws QueueShutDown once shutdown() was called,
  // QueueFull if full, std::bad_alloc. Loop thread only.
  void put_nowait(T item) {
    check_caller();
    throw_if_shut_down();
    if (full()) throw QueueFull();
    storage_.push(std::move(item));
    item_added();
  }
  // get() waits while the queue is empty, then removes and returns an item.
  // Throws CancelledError if cancelled while waiting; no item is lost then:
  // one handed to this getter goes to the next. QueueShutDown when the queue
  // is empty and shut down, or shut down while it waits. RuntimeError outside a
  // task when it would wait. A task of the loop thread only.
  T get() {
    wait_for_item();
    return get_nowait();
  }
  // get_nowait() returns an item if one is there. Throws QueueEmpty if not, QueueShutDown if not
  // and the queue was shut down. Loop thread only.
  T get_nowait() {
    check_caller();
    if (empty()) {
      throw_if_shut_down();
      throw QueueEmpty();
    }
    T item = storage_.pop();
    item_removed();
    return item;
  }

 private:
  std::string item_repr(std::size_t i) const override { return detail::repr_value(storage_[i]); }
  std::size_t drop_all_items() override {
    std::size_t dropped = 0;
    for (; storage_.size() != 0; ++dropped) storage_.pop();
    return dropped;
  }
  Storage storage_;
};

// Queue<T> is asyncio.Queue: first in, first out. Members and their rules
// are basic_queue's: loop thread only.
template <class T>
class Queue : public basic_queue<T, detail::fifo_storage<T>> {
 public:
  // Queue(maxsize): see basic_queue(maxsize). Throws only std::bad_alloc.
  using basic_queue<T, detail::fifo_storage<T>>::basic_queue;
};

// PriorityQueue<T, Compare> is asyncio.PriorityQueue: the smallest item
// under Compare comes out first (entries are often pairs (priority, data)).
// Members are basic_queue's (put and get also throw what Compare throws):
// loop thread only.
template <class T, class Compare = std::less<T>>
class PriorityQueue : public basic_queue<T, detail::heap_storage<T, Compare>> {
 public:
  // PriorityQueue(maxsize): see basic_queue(maxsize). Throws only std::bad_alloc.
  using basic_queue<T, detail::heap_storage<T, Compare>>::basic_queue;
};

// LifoQueue<T> is asyncio.LifoQueue: last in, first out. Members are
// basic_queue's: loop thread only.
template <class T>
class LifoQueue : public basic_queue<T, detail::lifo_storage<T>> {
 public:
  // LifoQueue(maxsize): see basic_queue(maxsize). Throws only std::bad_alloc.
  using basic_queue<T, detail::lifo_storage<T>>::basic_queue;
};

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
