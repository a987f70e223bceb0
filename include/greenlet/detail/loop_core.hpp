// loop_core.hpp: the event loop's state, shared by the loop facade, futures
// and tasks. Internal: the asyncio templates need it; users never include it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "greenlet/detail/callback_context.hpp"
#include "greenlet/fiber/greenlet.hpp"
#include "greenlet/fiber/stack_trace.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {
class event_loop;
class task_request;
// custom_task_factory is what event_loop::set_task_factory(fn) keeps (event_loop.hpp).
using custom_task_factory = std::function<void(event_loop& loop, task_request& request)>;
}  // namespace greenlet::asyncio

namespace greenlet::asyncio::detail {

class future_state;
class task_state;
class poller;
struct loop_core;
struct loop_thread;
// task_wrapper_registry holds the wrappers task factories gave tasks not started yet
// (task_request::wrap(); src/asyncio/task_wrappers.cpp).
struct task_wrapper_registry;
void free_task_wrappers(task_wrapper_registry* registry) noexcept;
// awaited_by_links holds what future_add_to_awaited_by() recorded (src/asyncio/call_graph.cpp);
// free_awaited_by_links(loop) lets go of it, and of the waiters it holds, as the loop closes;
// forget_awaited_by_links(f) erases f's records as f goes. Throw nothing.
struct awaited_by_links;
void free_awaited_by_links(loop_core* loop) noexcept;
void forget_awaited_by_links(future_state* f) noexcept;

// fast_args are a fast callback's two arguments.
struct fast_args {
  void* a = nullptr;
  void* b = nullptr;
};

// callback_node is one scheduled callback: an entry of the ready queue or
// the timer heap, and the state behind a Handle. A callback is either a plain
// function pointer with two arguments (the hot path: waking a task) or a
// std::function, which runs in a new context holding the values captured
// when it was scheduled (none: an empty one). Nodes are recycled through the
// loop's free list.
struct callback_node {
  callback_node() noexcept {}
  ~callback_node() {
    if (context_live) std::destroy_at(&context);
  }
  callback_node(const callback_node&) = delete;
  callback_node& operator=(const callback_node&) = delete;

  void (*fast)(void* a, void* b) = nullptr;
  void (*drop)(void* a, void* b) = nullptr;  // fast only: frees a/b if never run
  // A fast callback's arguments, or a general one's captured context values
  // (context_live: set by give_context(), ended by take_context() or
  // drop_context()). One or the other, never both: sharing the space keeps
  // the node in its malloc size class (a separate member made task steps ~3%
  // slower at 100,000 tasks).
  union {
    fast_args args{};
    ::greenlet::detail::context_ptr context;
  };
  std::function<void()> general;
  callback_node* next = nullptr;
  loop_core* loop = nullptr;
  double when = 0;        // timers: deadline on loop time
  std::uint64_t seq = 0;  // timers: tie-break, scheduling order
  int refs = 0;           // queue/heap entry + Handle objects
  bool cancelled = false;
  // A timer or a call_soon() node. A NaN deadline is kept as -infinity (see push_timer()); the kind
  // remembers it for when() and repr(). An enum, not one more bool, keeps the node in its malloc
  // size class.
  enum class kind_t : std::uint8_t { soon, timer, nan_timer } kind = kind_t::soon;
  bool in_heap = false;
  bool context_live = false;  // `context` holds captured values (never null then)

  // public_when() is the deadline as the user gave it: NaN for a NaN one, 0 for no timer.
  double public_when() const noexcept {
    if (kind == kind_t::soon) return 0;
    return kind == kind_t::nan_timer ? std::numeric_limits<double>::quiet_NaN() : when;
  }
};

// give_context(n, vars) makes the general node n run in a copy of vars (not null); n has none yet.
// take_context(n) moves them out (null if none); drop_context(n) frees them. Throw nothing.
inline void give_context(callback_node* n, ::greenlet::detail::context_ptr vars) noexcept {
  new (&n->context)::greenlet::detail::context_ptr(std::move(vars));
  n->context_live = true;
}
inline ::greenlet::detail::context_ptr take_context(callback_node* n) noexcept {
  if (!n->context_live) return nullptr;
  ::greenlet::detail::context_ptr vars = std::move(n->context);
  std::destroy_at(&n->context);
  new (&n->args) fast_args();
  n->context_live = false;
  return vars;
}
inline void drop_context(callback_node* n) noexcept { take_context(n); }

// callable_name(fn) names what fn holds, for a handle's repr: the demangled type of a lambda or
// function object ("f()::{lambda()#1}", anonymous namespaces dropped), "<function pointer>" for a
// plain function. Throws only std::bad_alloc.
std::string callable_name(const std::function<void()>& fn);
// callable_type_name(target) is callable_name() of a std::function whose target_type() is target:
// for a name wanted after the function was moved away. Throws only std::bad_alloc.
std::string callable_type_name(const std::type_info& target);
// handle_repr(n, callable) is asyncio's repr() of the Handle of node n: "<Handle name()>", or
// "<TimerHandle when=12.5 name()>" for a timer ("cancelled" after the class name once cancelled),
// where name is `callable` (callable_name() of its function), "<callback>" if empty. Throws only
// std::bad_alloc.
std::string handle_repr(const callback_node& n, const std::string& callable);

// threadsafe_node is one item another thread hands to the loop with
// post_threadsafe(): run_fn(n) runs it on the loop's thread, drop_fn(n)
// frees it unrun when the loop closes first. Either one disposes of the node.
struct threadsafe_node {
  threadsafe_node* next = nullptr;
  void (*run_fn)(threadsafe_node* n) = nullptr;
  void (*drop_fn)(threadsafe_node* n) noexcept = nullptr;
};

// loop_side is the part of a cross-thread job (an executor job, a
// wrap_future() delivery) that lives on its loop: references only the
// loop's thread may drop. Attached, it is listed on its loop; end(self)
// drops those references and unlists it. The job's other thread can never
// hand it back once the loop is closed, so close() ends every one still
// attached: they would otherwise keep the loop (its epoll and eventfd
// descriptors) alive forever. Loop thread only.
struct loop_side {
  loop_side* prev = nullptr;
  loop_side* next = nullptr;
  void (*end)(loop_side* self) noexcept = nullptr;
};

// exception_context is what the loop's exception handler receives, like
// asyncio's context dict.
struct exception_context {
  std::string message;
  std::exception_ptr exception;
  std::string source;  // repr of the task, future or callback involved
  // For a task's failure: the frames its exception left the task's function from, oldest first
  // (Python's exception.__traceback__); empty otherwise, or where none was recorded.
  ::greenlet::stack_summary stack{};
};

using exception_handler = std::function<void(event_loop* loop, const exception_context& context)>;

struct loop_core {
  loop_core();
  ~loop_core();
  loop_core(const loop_core&) = delete;
  loop_core& operator=(const loop_core&) = delete;

  // Ready queue (FIFO), timers (min-heap on (when, seq)).
  // The ready queue is a ring (its size a power of two, grown when full) of
  // ready_count nodes starting at index ready_first: a ring, not a list, so
  // that run_once() can look steps ahead without chasing pointers.
  std::vector<callback_node*> ready_ring;
  std::size_t ready_first = 0;
  std::size_t ready_count = 0;
  // The turn run_once() is running: how many of the callbacks that were
  // ready when it began are still to run (a suspending task may run the next
  // one itself, see take_handoff_step()), and the look-ahead's state
  // (src/asyncio/lookahead.hpp).
  std::size_t turn_remaining = 0;
  enum class lookahead_mode : unsigned char { off, pipeline, bursts };
  lookahead_mode turn_lookahead = lookahead_mode::off;
  std::size_t lookahead_countdown = 0;
  std::vector<callback_node*> timers;
  std::size_t cancelled_timers = 0;
  // The longest the loop waits at once for a timer (asyncio's
  // MAXIMUM_SELECT_TIMEOUT): it then looks again, still early.
  static constexpr double max_wait_seconds = 24 * 3600;
  std::uint64_t timer_seq = 0;
  // Finished nodes kept for reuse. While the loop is busy it keeps them
  // all (a burst of a million task steps is often followed by another:
  // freeing and allocating them again doubled the time to start a million
  // tasks); when it is about to wait for I/O or timers it frees all but
  // max_free_nodes, so a burst does not stay allocated after it.
  static constexpr std::size_t max_free_nodes = 4096;
  callback_node* free_nodes = nullptr;
  std::size_t free_node_count = 0;

  // Running state.
  bool running = false;
  bool stopping = false;
  bool closed = false;
  bool virtual_time = false;
  double virtual_now = 0;
  stack_options task_stack;            // for every task's greenlet
  bool compact_tasks = false;          // event_loop::options::compact_tasks
  bool task_tracebacks = true;         // event_loop::options::task_tracebacks
  ::greenlet::greenlet loop_greenlet;  // the greenlet running run_forever()
  // Where a suspending task switches when it hands the turn to no other task: the loop's greenlet
  // (set by run_forever()), or the creator of a task taking its eager first step (eager_step()).
  ::greenlet::detail::greenlet_impl* suspend_target = nullptr;
  // loop_greenlet's context slot while run_forever() runs. Its own context is set aside meanwhile
  // and given back at the end: each callback runs in a context of its own there
  // (enter_callback_context()), and none of them changes the context of the code running the loop.
  ::greenlet::detail::context_slot* callback_slot = nullptr;
  task_state* current_task = nullptr;
  // set_task_factory(eager_task_factory): a task made while the loop runs takes its first step in
  // create_task() itself, before it returns (task_state::start()).
  bool eager_tasks = false;
  future_state* target = nullptr;  // what run_until_complete() waits for
  event_loop* facade = nullptr;
  // The facade made when the user's event_loop was destroyed while the loop ran (~event_loop):
  // run_forever() deletes it as it returns, which closes the loop and may free it.
  event_loop* stand_in = nullptr;
  // Room for the stand-in, taken when the loop is made: making the stand-in cannot fail, so a running
  // loop always has a facade (get_running_loop(), TaskGroup's and the executor's futures use it).
  void* stand_in_room = nullptr;
  // The thread that made the loop, for good (src/asyncio/loop_thread.cpp),
  // and its number, for check_loop_thread()'s one compare.
  std::shared_ptr<loop_thread> owner;
  std::uint64_t owner_number = 0;

  // Unfinished tasks (each holds a reference from here until it is done).
  task_state* tasks_head = nullptr;
  std::size_t task_count = 0;
  std::uint64_t next_task_number = 1;

  // Work other threads may still deliver (executor jobs, threadsafe
  // callers holding a guard); a loop with none cannot be woken from outside.
  std::atomic<long> external_work{0};
  // The loop sides attached (see loop_side).
  loop_side* loop_sides = nullptr;
  void attach_side(loop_side* side) noexcept;
  void detach_side(loop_side* side) noexcept;

  // Nodes posted from other threads (call_soon_threadsafe(), executor
  // completions): a lock-free stack, newest first, that drain_threadsafe()
  // takes whole; a sentinel once closed. threadsafe_posters counts posters
  // between their push and their wake-up, for close_threadsafe() to wait
  // out. The poller's wake-up ends a sleeping wait.
  std::atomic<threadsafe_node*> threadsafe_head{nullptr};
  std::atomic<int> threadsafe_posters{0};
  std::atomic<bool> threadsafe_pending{false};
  std::unique_ptr<poller> io;

  // The exception handler, shared so that report() can hold it for the call: a handler that
  // replaces itself (set_exception_handler() from inside it) must not free the closure running.
  std::shared_ptr<const exception_handler> handler;
  long refs = 1;  // the facade's + one per future
  // References from objects another thread may drop last (executor jobs,
  // wrap_future() deliveries: a worker still posts to a loop closed
  // meanwhile), plus one for all of `refs` together: the loop is deleted
  // when both are gone, on whichever thread lets go last.
  std::atomic<long> remote_refs{1};

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
  void trim_free_nodes() noexcept;
  // trim_ready_ring() shrinks an empty ready ring that a burst grew past max_free_nodes slots
  // back to that many (a ring of 100,000 tasks' steps held 1 MiB, ~10 bytes per task, after they
  // were all waiting). Keeps it if the smaller one cannot be allocated. Throws nothing.
  void trim_ready_ring() noexcept;
  // reserve_ready_slot() makes room for one more ready node (may throw
  // std::bad_alloc); push_ready() then cannot fail.
  void reserve_ready_slot();
  void push_ready(callback_node* n) noexcept;
  callback_node* pop_ready() noexcept;
  // take_handoff_step(self) is for task `self` about to suspend: if the next
  // callback of this turn is a plain step (or wake-up) of another task that
  // is started, unfinished and suspended, it is taken off the queue, as
  // run_once() would, and that task returned, for `self` to switch to it
  // directly (one switch instead of two, and no trip through the loop).
  // Null otherwise: `self` then switches to the loop's greenlet.
  task_state* take_handoff_step(const task_state* self) noexcept;
  // ready_at(i): the i-th queued node, 0 being the next to run (i < ready_count).
  callback_node* ready_at(std::size_t i) const noexcept {
    return ready_ring[(ready_first + i) & (ready_ring.size() - 1)];
  }
  // call_soon(fn, context), call_at(when, fn, context) and call_soon_threadsafe(fn, context) run
  // fn in a new context holding `context`'s values (enter_callback_context()); without one (the
  // loop's own callbacks, or a caller that fills the node's context itself) fn runs in an empty
  // one. The _fast forms run in the loop greenlet's context: they are the loop's wake-ups and task
  // steps, which capture nothing.
  callback_node* call_soon(std::function<void()> fn);
  callback_node* call_soon(std::function<void()> fn, ::greenlet::detail::context_ptr context);
  void call_soon_fast(void (*fn)(void*, void*), void* a, void* b, void (*drop)(void*, void*) = nullptr);
  callback_node* call_at(double when, std::function<void()> fn);
  callback_node* call_at(double when, std::function<void()> fn, ::greenlet::detail::context_ptr context);
  callback_node* call_at_fast(double when, void (*fn)(void*, void*), void* a, void* b);
  void call_soon_threadsafe(std::function<void()> fn, ::greenlet::detail::context_ptr context = {});
  // post_threadsafe(n) queues n for the loop's thread and wakes the loop;
  // false (n not taken) once the loop is closed. Any thread; the caller
  // keeps the loop alive through the call.
  bool post_threadsafe(threadsafe_node* n) noexcept;
  // close_threadsafe() refuses further posts, waits out posters still
  // waking the loop and drops what was queued. Loop thread, from close().
  void close_threadsafe() noexcept;
  // threadsafe_closed() is true once close_threadsafe() has run: posts are
  // refused from then on. Any thread.
  bool threadsafe_closed() const noexcept;
  void cancel_node(callback_node* n) noexcept;

  // check_can_run() throws run_forever()'s refusals (closed, already running, another loop running
  // on this thread, wrong thread) without running anything: run_until_complete() calls it before
  // it makes its argument a task, so a refused function never runs (asyncio's _check_closed() and
  // _check_running() also come before ensure_future()).
  void check_can_run() const;
  void run_forever();
  void run_once();
  void stop() noexcept { stopping = true; }
  // close() kills the tasks and drops everything pending. Loop thread, or
  // any thread once owner_exited(); the caller checks (check_close_thread()).
  void close();
  void check_open() const;
  // check_thread() throws RuntimeError(wrong_loop) off the owner thread.
  void check_thread() const;
  // check_loop_thread() is check_thread() for the loop-thread-only calls
  // (call_soon, call_at, create_task, create_future...): called from another
  // thread they corrupted the loop. Inline, one compare with a thread-local:
  // call_soon() is a hot path.
  inline void check_loop_thread() const;
  // check_close_thread() throws RuntimeError(wrong_loop) unless close() may
  // run here: on the owner thread, or anywhere once that thread has exited.
  void check_close_thread() const;
  // on_owner_thread() is true on the thread that made the loop; a thread
  // that exited is never mistaken for a later one. Any thread.
  bool on_owner_thread() const noexcept;
  // owner_exited() is true once the owner thread has exited and killed its
  // greenlets (the tasks' too). Any thread.
  bool owner_exited() const noexcept;
  void report(const exception_context& context) noexcept;
  // report_callback_error(n) reports the exception being handled, which callback n threw:
  // "Exception in callback", its source n's handle repr. Throws nothing.
  void report_callback_error(const callback_node* n) noexcept;
  // The name of the function the failing callback ran (callable_name()), noted where the function
  // is at hand (run_general_node(), a call_soon_threadsafe() node) for report_callback_error().
  std::string failed_callback;
  // can_make_progress(count_timers) is true if anything can still run or wake the loop: ready
  // callbacks, I/O, other threads' work, and timers unless count_timers is false (a virtual clock
  // with only timers at infinity).
  bool can_make_progress(bool count_timers = true) const;
  void push_timer(callback_node* n);
  void drop_node(callback_node* n) noexcept;
  void drain_threadsafe();
  void run_ready_node(callback_node* n);
  [[gnu::noinline]] void run_general_node(callback_node* n);
  std::string deadlock_report() const;
  void link_task(task_state* t) noexcept;
  void unlink_task(task_state* t) noexcept;

  // Debug mode (event_loop::set_debug(), asyncio's loop.set_debug()): each ready callback and task
  // step is timed with the real monotonic clock (not the virtual one), and one that took
  // slow_callback_duration seconds or more is reported to debug_log ("Executing <what> took 0.150
  // seconds"; stderr when it is empty). Off, it costs one branch per callback in run_once() and one
  // per hand-off in take_handoff_step(); on, there is no hand-off, so that each task step is a
  // callback of its own, measured alone.
  bool debug = false;
  double slow_callback_duration = 0.1;
  std::function<void(std::string_view line)> debug_log;
  // run_ready_node_timed(n) is run_ready_node(n) in debug mode, timed and reported if slow.
  [[gnu::noinline]] void run_ready_node_timed(callback_node* n);
  // report_slow_callback(what, seconds) sends asyncio's "Executing ... took ... seconds" line to
  // debug_log (or stderr). Throws nothing: a log function's exception goes to report().
  void report_slow_callback(const std::string& what, double seconds) noexcept;

  // set_task_factory(fn): every create_task() of the loop goes through fn (task_factory.cpp). Last,
  // so that the fields the loop uses on every step keep their places (and cache lines).
  std::shared_ptr<const ::greenlet::asyncio::custom_task_factory> task_factory_fn;
  // The wrappers factories gave this loop's tasks until they start: made by the first wrap(),
  // freed with the loop.
  task_wrapper_registry* task_wrappers = nullptr;
  // What future_add_to_awaited_by() recorded on this loop's futures: made on first use, let go
  // of when the loop closes.
  awaited_by_links* awaited_by = nullptr;
};

inline void retain(loop_core* loop) noexcept { ++loop->refs; }
void release(loop_core* loop) noexcept;
// retain_remote()/release_remote(): a remote reference (see remote_refs).
// Retain on the loop's thread (or under another remote reference); release
// on any thread.
inline void retain_remote(loop_core* loop) noexcept { loop->remote_refs.fetch_add(1, std::memory_order_relaxed); }
void release_remote(loop_core* loop) noexcept;
// this_loop_thread() is the calling thread, as loops record their owner.
// Throws std::bad_alloc.
std::shared_ptr<loop_thread> this_loop_thread();
// drop_elsewhere(loop) is ~event_loop off the owner thread, while that
// thread lives: a loop nothing of that thread can touch is closed and freed
// here; else the owner thread closes it at its exit (reported: its
// tasks stay suspended until then). Consumes the facade's reference.
void drop_elsewhere(loop_core* loop) noexcept;
inline void retain(callback_node* n) noexcept { ++n->refs; }
void release(callback_node* n) noexcept;

// The loop running on this thread, or null.
// The loop running on this thread, or null. constinit and initial-exec, as
// tls_switch_state: every await reads it, and a TLS wrapper call would cost
// more than the read.
extern constinit thread_local loop_core* tls_running_loop __attribute__((tls_model("initial-exec")));
inline loop_core* running_loop() noexcept { return tls_running_loop; }
void set_running_loop(loop_core* loop) noexcept;
// running_loop() or throws RuntimeError("no running event loop").
loop_core& require_running_loop();

// The calling thread's number, as loops record their owner (loop_core::owner_number); 0 until
// this_thread_number() first runs on the thread, which no loop's owner has.
extern constinit thread_local std::uint64_t tls_loop_thread_number __attribute__((tls_model("initial-exec")));
// this_thread_number() is the calling thread's number, drawn on first use. Throws nothing.
std::uint64_t this_thread_number() noexcept;

inline void loop_core::check_loop_thread() const {
  if (tls_loop_thread_number != owner_number) [[unlikely]] {
    check_thread();
  }
}

}  // namespace greenlet::asyncio::detail

#pragma GCC visibility pop
