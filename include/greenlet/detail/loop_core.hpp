// loop_core.hpp: the event loop's state, shared by the loop facade, futures
// and tasks. Internal: the asyncio templates need it; users never include it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "greenlet/fiber/greenlet.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {
class event_loop;
}

namespace greenlet::asyncio::detail {

class future_state;
class task_state;
class poller;
struct loop_core;

// callback_node is one scheduled callback: an entry of the ready queue or
// the timer heap, and the state behind a Handle. A callback is either a plain
// function pointer with two arguments (the hot path: waking a task) or a
// std::function. Nodes are recycled through the loop's free list.
struct callback_node {
  void (*fast)(void* a, void* b) = nullptr;
  void (*drop)(void* a, void* b) = nullptr;  // fast only: frees a/b if never run
  void* a = nullptr;
  void* b = nullptr;
  std::function<void()> general;
  callback_node* next = nullptr;
  loop_core* loop = nullptr;
  double when = 0;        // timers: deadline on loop time
  std::uint64_t seq = 0;  // timers: tie-break, scheduling order
  int refs = 0;           // queue/heap entry + Handle objects
  bool cancelled = false;
  bool is_timer = false;
  bool in_heap = false;
};

// exception_context is what the loop's exception handler receives, like
// asyncio's context dict.
struct exception_context {
  std::string message;
  std::exception_ptr exception;
  std::string source;  // repr of the task, future or callback involved
};

using exception_handler = std::function<void(event_loop* loop, const exception_context& context)>;

struct loop_core {
  loop_core();
  ~loop_core();
  loop_core(const loop_core&) = delete;
  loop_core& operator=(const loop_core&) = delete;

  // Ready queue (FIFO), timers (min-heap on (when, seq)).
  callback_node* ready_head = nullptr;
  callback_node* ready_tail = nullptr;
  std::size_t ready_count = 0;
  std::vector<callback_node*> timers;
  std::size_t cancelled_timers = 0;
  std::uint64_t timer_seq = 0;
  callback_node* free_nodes = nullptr;

  // Running state.
  bool running = false;
  bool stopping = false;
  bool closed = false;
  bool virtual_time = false;
  double virtual_now = 0;
  stack_options task_stack;            // for every task's greenlet
  ::greenlet::greenlet loop_greenlet;  // the greenlet running run_forever()
  task_state* current_task = nullptr;
  future_state* target = nullptr;  // what run_until_complete() waits for
  event_loop* facade = nullptr;
  std::uint64_t owner_thread_id = 0;

  // Unfinished tasks (each holds a reference from here until it is done).
  task_state* tasks_head = nullptr;
  std::size_t task_count = 0;
  std::uint64_t next_task_number = 1;

  // Work other threads may still deliver (executor jobs, threadsafe
  // callers holding a guard); a loop with none cannot be woken from outside.
  std::atomic<long> external_work{0};

  // call_soon_threadsafe() queue; the poller's wake-up ends a sleeping wait.
  std::mutex threadsafe_mutex;
  std::vector<std::function<void()>> threadsafe_queue;
  bool threadsafe_closed = false;  // close() seen by posters (under the mutex)
  std::atomic<bool> threadsafe_pending{false};
  std::unique_ptr<poller> io;

  exception_handler handler;
  long refs = 1;  // the facade's + one per future

  // Close hooks: cleanups of the I/O layer (signal handlers) that close()
  // runs once, newest first, after killing the tasks and before dropping
  // the I/O registrations. add_close_hook() returns the id to pass to
  // remove_close_hook() when the resource goes away earlier.
  std::vector<std::pair<std::uint64_t, std::function<void()>>> close_hooks;
  std::uint64_t next_close_hook = 1;
  std::uint64_t add_close_hook(std::function<void()> fn);
  void remove_close_hook(std::uint64_t id) noexcept;

  double time() const;
  callback_node* new_node();
  void recycle(callback_node* n) noexcept;
  void push_ready(callback_node* n) noexcept;
  callback_node* call_soon(std::function<void()> fn);
  void call_soon_fast(void (*fn)(void*, void*), void* a, void* b, void (*drop)(void*, void*) = nullptr);
  callback_node* call_at(double when, std::function<void()> fn);
  callback_node* call_at_fast(double when, void (*fn)(void*, void*), void* a, void* b);
  void call_soon_threadsafe(std::function<void()> fn);
  void cancel_node(callback_node* n) noexcept;

  void run_forever();
  void run_once();
  void stop() noexcept { stopping = true; }
  void close();
  void check_open() const;
  void check_thread() const;
  void report(const exception_context& context) noexcept;
  bool can_make_progress() const;
  void push_timer(callback_node* n);
  void drop_node(callback_node* n) noexcept;
  void drain_threadsafe();
  void run_ready_node(callback_node* n);
  std::string deadlock_report() const;
  void link_task(task_state* t) noexcept;
  void unlink_task(task_state* t) noexcept;
};

inline void retain(loop_core* loop) noexcept { ++loop->refs; }
void release(loop_core* loop) noexcept;
inline void retain(callback_node* n) noexcept { ++n->refs; }
void release(callback_node* n) noexcept;

// The loop running on this thread, or null.
loop_core* running_loop() noexcept;
void set_running_loop(loop_core* loop) noexcept;
// running_loop() or throws RuntimeError("no running event loop").
loop_core& require_running_loop();

}  // namespace greenlet::asyncio::detail

#pragma GCC visibility pop
