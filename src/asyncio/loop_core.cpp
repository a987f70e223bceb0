// loop_core.cpp: the event loop's machinery: ready queue, timers, one
// iteration (run_once), closing, error reports and deadlock detection.
#include "greenlet/detail/loop_core.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <new>
#include <sstream>
#include <thread>
#include <typeinfo>
#include <utility>
#include <vector>

#include "asyncio/lookahead.hpp"
#include "asyncio/poller.hpp"
#include "fiber/loop_hints.hpp"
#include "greenlet/asyncio/errors.hpp"
#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/detail/task_state.hpp"

namespace greenlet::asyncio::detail {

void retire_default_executor(loop_core* loop) noexcept;  // asyncio/executor.cpp

namespace {

// Timers form a min-heap on (when, seq): equal deadlines run in the order
// they were scheduled, as asyncio guarantees.
bool later(const callback_node* x, const callback_node* y) noexcept {
  if (x->when != y->when) return x->when > y->when;
  return x->seq > y->seq;
}

}  // namespace

constinit thread_local loop_core* tls_running_loop = nullptr;
void set_running_loop(loop_core* loop) noexcept { tls_running_loop = loop; }

loop_core& require_running_loop() {
  if (tls_running_loop == nullptr) {
    throw RuntimeError(asyncio_errc::no_running_loop,
                       "no running event loop: call this from a task, e.g. inside asyncio::run(main)");
  }
  return *tls_running_loop;
}

loop_core::loop_core() : owner(this_loop_thread()), owner_number(this_thread_number()), io(make_epoll_poller()) {
  stand_in_room = ::operator new(sizeof(event_loop));  // last: nothing throws after it
}

loop_core::~loop_core() {
  while (free_nodes != nullptr) {
    callback_node* n = free_nodes;
    free_nodes = n->next;
    delete n;
  }
  ::operator delete(stand_in_room);
  free_task_wrappers(task_wrappers);
  free_awaited_by_links(this);
}

void release(loop_core* loop) noexcept {
  if (--loop->refs != 0) return;
  // What user code gave the loop goes on its own thread; the rest (memory,
  // the poller's descriptors) may go on the thread with the last remote
  // reference.
  loop->handler = nullptr;
  loop->close_hooks.clear();
  release_remote(loop);
}

void release_remote(loop_core* loop) noexcept {
  if (loop->remote_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete loop;
}

void release(callback_node* n) noexcept {
  if (--n->refs == 0) n->loop->recycle(n);
}

double loop_core::time() const {
  if (virtual_time) return virtual_now;
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

callback_node* loop_core::new_node() {
  callback_node* n = free_nodes;
  if (n != nullptr) {
    free_nodes = n->next;
    --free_node_count;
  } else {
    n = new callback_node();
  }
  n->next = nullptr;
  n->loop = this;
  n->refs = 1;
  n->cancelled = false;
  n->kind = callback_node::kind_t::soon;
  n->in_heap = false;
  return n;
}

void loop_core::recycle(callback_node* n) noexcept {
  ++free_node_count;
  n->general = nullptr;  // n has no context: taken by the run, dropped by cancel or drop
  n->fast = nullptr;
  n->drop = nullptr;
  n->next = free_nodes;
  free_nodes = n;
}

void loop_core::trim_free_nodes() noexcept {
  while (free_node_count > max_free_nodes) {
    callback_node* n = free_nodes;
    free_nodes = n->next;
    --free_node_count;
    delete n;
  }
}

void loop_core::trim_ready_ring() noexcept {
  if (ready_count != 0 || ready_ring.size() <= max_free_nodes) return;
  try {
    std::vector<callback_node*>(max_free_nodes).swap(ready_ring);
    ready_first = 0;
  } catch (const std::bad_alloc&) {  // the big one serves as well
  }
}

void loop_core::check_open() const {
  if (closed) throw RuntimeError(asyncio_errc::loop_closed, "Event loop is closed");
}

void loop_core::check_thread() const {
  if (!on_owner_thread()) {
    throw RuntimeError(asyncio_errc::wrong_loop,
                       "event loop used from another thread: use call_soon_threadsafe() or "
                       "run_coroutine_threadsafe()");
  }
}

void loop_core::reserve_ready_slot() {
  if (ready_count < ready_ring.size()) return;
  // Full (or never used): double the ring, unwrapping the queue to index 0.
  std::vector<callback_node*> bigger(std::max<std::size_t>(64, ready_ring.size() * 2));
  for (std::size_t i = 0; i < ready_count; ++i) bigger[i] = ready_at(i);
  ready_ring.swap(bigger);
  ready_first = 0;
}

void loop_core::push_ready(callback_node* n) noexcept {
  ready_ring[(ready_first + ready_count) & (ready_ring.size() - 1)] = n;
  ++ready_count;
}

callback_node* loop_core::pop_ready() noexcept {
  callback_node* n = ready_ring[ready_first];
  ready_first = (ready_first + 1) & (ready_ring.size() - 1);
  --ready_count;
  return n;
}

callback_node* loop_core::call_soon(std::function<void()> fn) {
  check_loop_thread();
  check_open();
  reserve_ready_slot();
  callback_node* n = new_node();
  n->general = std::move(fn);
  push_ready(n);
  return n;
}

callback_node* loop_core::call_soon(std::function<void()> fn, ::greenlet::detail::context_ptr context) {
  callback_node* n = call_soon(std::move(fn));
  if (context != nullptr) give_context(n, std::move(context));
  return n;
}

void loop_core::call_soon_fast(void (*fn)(void*, void*), void* a, void* b, void (*drop)(void*, void*)) {
  reserve_ready_slot();
  callback_node* n = new_node();
  n->fast = fn;
  n->drop = drop;
  n->args = {a, b};
  push_ready(n);
}

void loop_core::push_timer(callback_node* n) {
  // A NaN deadline compares false with everything: it would never come due
  // and would break the heap's order for the timers under it. asyncio runs
  // one at once; so does this (sleep(NaN) returns, wait_for(x, NaN) times
  // out at once).
  n->kind = callback_node::kind_t::timer;
  if (std::isnan(n->when)) {
    n->when = -std::numeric_limits<double>::infinity();
    n->kind = callback_node::kind_t::nan_timer;
  }
  n->seq = timer_seq++;
  n->in_heap = true;
  timers.push_back(n);
  std::push_heap(timers.begin(), timers.end(), later);
}

callback_node* loop_core::call_at(double when, std::function<void()> fn) {
  check_loop_thread();
  check_open();
  callback_node* n = new_node();
  n->general = std::move(fn);
  n->when = when;
  push_timer(n);
  return n;
}

callback_node* loop_core::call_at(double when, std::function<void()> fn, ::greenlet::detail::context_ptr context) {
  callback_node* n = call_at(when, std::move(fn));
  if (context != nullptr) give_context(n, std::move(context));
  return n;
}

callback_node* loop_core::call_at_fast(double when, void (*fn)(void*, void*), void* a, void* b) {
  check_open();
  callback_node* n = new_node();
  n->fast = fn;
  n->args = {a, b};
  n->when = when;
  push_timer(n);
  return n;
}

namespace {

// note_failed_callback(fn) records fn's name for the report of the exception it is throwing
// (loop_core::report_callback_error()). Only a failing callback pays for it.
void note_failed_callback(const std::function<void()>& fn) noexcept {
  try {
    if (loop_core* loop = running_loop()) loop->failed_callback = callable_name(fn);
  } catch (...) {  // std::bad_alloc: the report names no function
  }
}

// The head of a closed loop's threadsafe stack: posts see it and fail.
threadsafe_node closed_sentinel;

// function_node carries a call_soon_threadsafe() function and the context
// values it runs in.
struct function_node : threadsafe_node {
  std::function<void()> fn;
  ::greenlet::detail::context_ptr context;
};

void run_function_node(threadsafe_node* n) {
  std::unique_ptr<function_node> own(static_cast<function_node*>(n));
  std::function<void()> fn = std::move(own->fn);
  ::greenlet::detail::context_ptr context = std::move(own->context);
  own.reset();
  // Run from the ready queue, on the loop's greenlet: its slot is callback_slot.
  ::greenlet::detail::enter_callback_context(::greenlet::detail::tls_switch_state->current->context_vars, context);
  try {
    fn();
  } catch (...) {
    note_failed_callback(fn);
    throw;
  }
}

void drop_function_node(threadsafe_node* n) noexcept { delete static_cast<function_node*>(n); }

void run_posted(void* node, void*) {
  auto* n = static_cast<threadsafe_node*>(node);
  n->run_fn(n);
}

void drop_posted(void* node, void*) {
  auto* n = static_cast<threadsafe_node*>(node);
  n->drop_fn(n);
}

}  // namespace

void loop_core::call_soon_threadsafe(std::function<void()> fn, ::greenlet::detail::context_ptr context) {
  auto n = std::make_unique<function_node>();
  n->run_fn = &run_function_node;
  n->drop_fn = &drop_function_node;
  n->fn = std::move(fn);
  n->context = std::move(context);
  if (!post_threadsafe(n.get())) throw RuntimeError(asyncio_errc::loop_closed, "Event loop is closed");
  n.release();
}

bool loop_core::post_threadsafe(threadsafe_node* n) noexcept {
  // Registered as a poster before looking at the head: close_threadsafe()
  // swaps the sentinel in, then waits for posters to leave, so a poster
  // either sees the sentinel or finishes waking the loop before close()
  // can free the poller (every access here is sequentially consistent: the
  // two sides store, then load the other's variable). Only a push onto an
  // empty stack wakes the loop: the loop takes the whole stack once awake,
  // and one system call per callback was the executor bridge's bottleneck.
  threadsafe_posters.fetch_add(1);
  threadsafe_node* head = threadsafe_head.load();
  do {
    if (head == &closed_sentinel) {
      threadsafe_posters.fetch_sub(1);
      return false;
    }
    n->next = head;
  } while (!threadsafe_head.compare_exchange_weak(head, n));
  if (head == nullptr) {
    threadsafe_pending.store(true);
    io->wake();
  }
  threadsafe_posters.fetch_sub(1);
  return true;
}

void loop_core::drain_threadsafe() {
  // Cleared before the stack is taken: a post that lands after the
  // exchange raises it again, so nothing is left unseen.
  threadsafe_pending.store(false);
  threadsafe_node* n = threadsafe_head.exchange(nullptr);
  if (n == &closed_sentinel) {
    threadsafe_head.store(n);
    return;
  }
  // The stack is newest first: reverse it to run the posts in order.
  threadsafe_node* fifo = nullptr;
  while (n != nullptr) {
    threadsafe_node* next = n->next;
    n->next = fifo;
    fifo = n;
    n = next;
  }
  while (fifo != nullptr) {
    threadsafe_node* next = fifo->next;
    call_soon_fast(&run_posted, fifo, nullptr, &drop_posted);
    fifo = next;
  }
}

void loop_core::close_threadsafe() noexcept {
  threadsafe_node* n = threadsafe_head.exchange(&closed_sentinel);
  if (n == &closed_sentinel) return;
  while (threadsafe_posters.load() != 0) std::this_thread::yield();
  threadsafe_pending.store(false);
  while (n != nullptr) {
    threadsafe_node* next = n->next;
    n->drop_fn(n);
    n = next;
  }
}

bool loop_core::threadsafe_closed() const noexcept { return threadsafe_head.load() == &closed_sentinel; }

void loop_core::cancel_node(callback_node* n) noexcept {
  if (n->cancelled) return;
  n->cancelled = true;
  // Free what the callback holds now rather than when it is popped.
  n->general = nullptr;
  drop_context(n);
  if (n->drop != nullptr) {
    n->drop(n->args.a, n->args.b);
    n->drop = nullptr;
  }
  if (n->in_heap) ++cancelled_timers;
}

void loop_core::drop_node(callback_node* n) noexcept {
  if (!n->cancelled && n->drop != nullptr) n->drop(n->args.a, n->args.b);
  n->drop = nullptr;
  drop_context(n);
  release(n);
}

namespace {

// enter_captured_context(slot, n) is run_general_node()'s rare case: the
// slot (callback_slot) becomes a new context holding n's captured values,
// dropping what the previous callback left there.
[[gnu::noinline]] void enter_captured_context(::greenlet::detail::context_slot& slot, callback_node* n) noexcept {
  slot.vars = take_context(n);
  slot.id = 0;
}

}  // namespace

void loop_core::run_ready_node(callback_node* n) {
  if (n->fast != nullptr) {
    n->drop = nullptr;  // it runs: the callback owns its arguments now
    n->fast(n->args.a, n->args.b);
  } else {
    run_general_node(n);
  }
}

// Out of line: the fast path above (every task step) then needs no stack frame.
void loop_core::run_general_node(callback_node* n) {
  // It runs in a context of its own, holding the values captured when it
  // was scheduled: what it sets stays there, unseen by later callbacks and
  // by the code that runs the loop.
  ::greenlet::detail::context_slot& slot = *callback_slot;
  if (slot.vars != nullptr || slot.id != 0 || n->context_live) [[unlikely]] {
    enter_captured_context(slot, n);
  }
  // Move the function out: it may cancel its own handle or re-schedule.
  std::function<void()> fn = std::move(n->general);
  try {
    fn();
  } catch (...) {
    note_failed_callback(fn);
    throw;
  }
}

bool loop_core::can_make_progress(bool count_timers) const {
  return ready_count > 0 || (count_timers && !timers.empty()) || io->watched() > 0 ||
         external_work.load(std::memory_order_acquire) > 0 || threadsafe_pending.load(std::memory_order_acquire);
}

std::string loop_core::deadlock_report() const {
  std::ostringstream out;
  out << "deadlock: the event loop has nothing to run and nothing can wake it (no ready callbacks, "
      << (timers.empty() ? "no timers" : "only timers at infinity, which the virtual clock never reaches")
      << ", no I/O, no pending threadsafe work)";
  // summary(), not repr(): each task gets a line and says what it awaits, so
  // nesting what that awaits in turn (wait_for=) would only repeat the chain.
  if (target != nullptr) out << ", but " << target->summary() << " is not done";
  out << ". " << task_count << " task(s) are blocked:";
  for (task_state* t = tasks_head; t != nullptr; t = t->next) {
    out << "\n  " << t->summary() << " awaits " << t->awaiting();
  }
  out << "\nEach waits for a future nobody will complete: set its result, or await something "
         "that finishes. If another thread will call call_soon_threadsafe(), hold an "
         "event_loop::external_work_guard meanwhile.";
  return out.str();
}

void loop_core::run_once() {
  if (threadsafe_pending.load(std::memory_order_acquire)) drain_threadsafe();

  // Drop cancelled timers in bulk once they dominate the heap.
  if (cancelled_timers > 64 && cancelled_timers * 2 > timers.size()) {
    auto keep = std::partition(timers.begin(), timers.end(), [](callback_node* n) { return !n->cancelled; });
    for (auto it = keep; it != timers.end(); ++it) {
      (*it)->in_heap = false;
      release(*it);
    }
    timers.erase(keep, timers.end());
    std::make_heap(timers.begin(), timers.end(), later);
    cancelled_timers = 0;
  }

  // Cancelled timers at the front go now, as asyncio's _run_once does:
  // otherwise the wait below would last until a deadline nobody waits for
  // (and a deadlock would be seen only then).
  while (!timers.empty() && timers.front()->cancelled) {
    std::pop_heap(timers.begin(), timers.end(), later);
    callback_node* n = timers.back();
    timers.pop_back();
    n->in_heap = false;
    --cancelled_timers;
    release(n);
  }

  // A virtual clock never jumps to a timer at infinity (sleep(INFINITY)): it would stay there, the
  // timer would run, and every later deadline would be due at once. Such a timer is no timer then.
  const bool jump_to_timer =
      !timers.empty() && !(virtual_time && timers.front()->when == std::numeric_limits<double>::infinity());
  double timeout = -1;
  if (ready_count > 0 || stopping) {
    timeout = 0;
  } else if (jump_to_timer) {
    // At most a day at a time (asyncio's MAXIMUM_SELECT_TIMEOUT): a
    // deadline at infinity (sleep(INFINITY)) or centuries away is no
    // timeout the kernel takes.
    timeout = std::clamp(timers.front()->when - time(), 0.0, max_wait_seconds);
  } else if (!can_make_progress(!virtual_time)) {
    throw RuntimeError(asyncio_errc::deadlock, deadlock_report());
  }

  if (timeout != 0) {  // about to wait: the loop is idle, so it lets go of its burst caches
    trim_free_nodes();
    trim_ready_ring();
    ::greenlet::detail::trim_released_stacks();
  }

  if (virtual_time) {
    if (timeout > 0) virtual_now = timers.front()->when;
    if (timeout < 0) {
      io->wait(*this, -1);  // only other threads or I/O can wake it
    } else {
      io->wait(*this, 0);
    }
  } else if (timeout != 0 || io->watched() > 0) {
    io->wait(*this, timeout);
  }
  if (threadsafe_pending.load(std::memory_order_acquire)) drain_threadsafe();

  // Timers that are due join the ready queue in deadline order.
  // (No clock read without timers: it was 4% of a task step.)
  const double now = timers.empty() ? 0 : time();
  while (!timers.empty() && (timers.front()->when <= now || timers.front()->cancelled)) {
    reserve_ready_slot();
    std::pop_heap(timers.begin(), timers.end(), later);
    callback_node* n = timers.back();
    timers.pop_back();
    n->in_heap = false;
    if (n->cancelled) {
      --cancelled_timers;
      release(n);
    } else {
      push_ready(n);
    }
  }

  // Run what is ready now; callbacks they schedule wait for the next turn.
  // Tasks may take steps of this turn themselves (take_handoff_step()).
  turn_remaining = ready_count;
  lookahead_start(*this);
  struct end_turn {
    loop_core* loop;
    ~end_turn() { loop->turn_remaining = 0; }
  } end{this};
  while (turn_remaining > 0) {
    --turn_remaining;
    lookahead_before_step(*this);
    callback_node* n = pop_ready();
    if (!n->cancelled) {
      try {
        if (debug) [[unlikely]] {
          run_ready_node_timed(n);
        } else {
          run_ready_node(n);
        }
      } catch (const GreenletExit&) {
        failed_callback.clear();
        release(n);
        throw;
      } catch (const RuntimeError& e) {
        if (e.condition() == asyncio_errc::deadlock) {
          failed_callback.clear();
          release(n);
          throw;
        }
        report_callback_error(n);
      } catch (...) {
        report_callback_error(n);
      }
    }
    release(n);
  }
}

task_state* loop_core::take_handoff_step(const task_state* self) noexcept {
  if (debug) return nullptr;  // debug mode times each step alone: run_once() runs it
  if (turn_remaining == 0) return nullptr;
  callback_node* n = ready_at(0);  // this turn's next: those queued since come after it
  task_state* t = task_of(n);      // a task's step or wake-up, not cancelled
  // Only a task suspended mid-run (active: started, not dead) can be switched to.
  if (t == nullptr || t == self || t->future()->done() || t->glet.empty() || !t->glet) return nullptr;
  --turn_remaining;
  lookahead_before_step(*this);
  pop_ready();
  n->drop = nullptr;  // it runs: a wake-up's future reference is released here, as wakeup_callback does
  if (n->fast == &task_state::wakeup_callback) release(static_cast<future_state*>(n->args.b));
  release(n);
  return t;
}

namespace {

// function_type_of(n) is, before n runs, the type of the user function it will run (typeid(void) for
// none known): its name is made only if the callback turns out slow, after the function was moved
// out of the node (and a call_soon_threadsafe() node freed).
const std::type_info& function_type_of(const callback_node* n) noexcept {
  if (n->fast == nullptr) return n->general.target_type();
  if (n->fast == &run_posted) {
    const auto* posted = static_cast<const threadsafe_node*>(n->args.a);
    if (posted->run_fn == &run_function_node) return static_cast<const function_node*>(posted)->fn.target_type();
    return typeid(void);
  }
  return io_callback_type(n);
}

}  // namespace

void loop_core::run_ready_node_timed(callback_node* n) {
  // asyncio's _format_handle(): a task's step is named by the task's repr() (after the step, as
  // asyncio formats it then), held alive across the step for that; another callback by its
  // Handle's repr().
  task_state* task = task_of(n);
  future_state* task_future = task != nullptr ? task->future() : nullptr;
  if (task_future != nullptr) retain(task_future);
  struct release_task {
    future_state* f;
    ~release_task() {
      if (f != nullptr) release(f);
    }
  } hold{task_future};
  const std::type_info& function_type = function_type_of(n);
  // The real clock, not time(): a virtual clock does not move while a callback runs.
  const auto start = std::chrono::steady_clock::now();
  auto report_if_slow = [&]() noexcept {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!(seconds >= slow_callback_duration)) return;
    std::string what;
    try {
      what = task != nullptr ? task->repr() : handle_repr(*n, callable_type_name(function_type));
    } catch (...) {  // std::bad_alloc: the line names no callback
    }
    report_slow_callback(what, seconds);
  };
  try {
    run_ready_node(n);
  } catch (...) {  // timed too, as asyncio times a callback that raised; run_once() reports the error
    report_if_slow();
    throw;
  }
  report_if_slow();
}

void loop_core::report_slow_callback(const std::string& what, double seconds) noexcept {
  char took[64];
  std::snprintf(took, sizeof took, " took %.3f seconds", seconds);
  try {
    const std::string line = "Executing " + what + took;
    if (!debug_log) {
      std::fprintf(stderr, "asyncio: %s\n", line.c_str());
      return;
    }
    // A copy: the log function may replace itself (set_debug_log()) while it runs.
    const std::function<void(std::string_view)> log = debug_log;
    log(line);
  } catch (...) {
    try {
      report({"exception in the debug log function (event_loop::set_debug_log())", std::current_exception(), what});
    } catch (...) {  // std::bad_alloc copying the report's text
    }
  }
}

void loop_core::check_can_run() const {
  check_open();
  if (running) {
    throw RuntimeError(asyncio_errc::loop_running,
                       "This event loop is already running: a task cannot run its own loop; "
                       "await instead");
  }
  if (running_loop() != nullptr) {
    throw RuntimeError(asyncio_errc::loop_running,
                       "Cannot run the event loop while another loop is running on this thread");
  }
  check_thread();
}

namespace {

// A greenlet finishing into a waiting task's greenlet (its parent, locked
// while the task waits) goes instead to the greenlet that resumed it: the
// task taking its step now, or the loop's own greenlet when a callback did.
::greenlet::detail::greenlet_impl* stand_in_for_waiting_task(
    ::greenlet::detail::greenlet_impl* locked_parent) noexcept {
  loop_core* loop = running_loop();
  if (loop == nullptr) return locked_parent;
  if (loop->current_task != nullptr) {
    ::greenlet::detail::greenlet_impl* g = loop->current_task->glet.impl();
    if (g != nullptr && g != locked_parent && g->state == ::greenlet::detail::run_state::active &&
        !::greenlet::detail::resume_locked(g)) {
      return g;
    }
  }
  ::greenlet::detail::greenlet_impl* own = loop->loop_greenlet.impl();
  return own != nullptr ? own : locked_parent;
}

}  // namespace

void loop_core::run_forever() {
  check_can_run();
  running = true;
  loop_greenlet = ::greenlet::getcurrent();
  suspend_target = loop_greenlet.impl();
  // The running greenlet's context is set aside while the loop runs: its
  // slot is the callbacks' (see callback_slot).
  callback_slot = &loop_greenlet.impl()->context_vars;
  set_running_loop(this);
  ::greenlet::detail::hold_released_stacks(true);  // through bursts; trimmed when idle (run_once)
  ::greenlet::detail::set_locked_parent_stand_in(&stand_in_for_waiting_task);
  struct reset {
    loop_core* self;
    ::greenlet::detail::context_slot own_context;
    ~reset() {
      ::greenlet::detail::hold_released_stacks(false);
      ::greenlet::detail::set_locked_parent_stand_in(nullptr);
      self->running = false;
      self->stopping = false;
      *self->callback_slot = std::move(own_context);
      self->callback_slot = nullptr;
      self->loop_greenlet = ::greenlet::greenlet();
      self->suspend_target = nullptr;
      set_running_loop(nullptr);
      // The event_loop was destroyed while it ran: close the loop now, as its destructor would
      // have, and give back the reference it had. Last: this may free *self.
      if (event_loop* stand_in = std::exchange(self->stand_in, nullptr)) {
        stand_in->~event_loop();
        ::operator delete(stand_in);  // the room, no longer the core's (which may be gone now)
      }
    }
  } guard{this, std::exchange(*callback_slot, {})};
  // At least one iteration: a stop() made before run_forever() still lets
  // the callbacks already scheduled run once, as asyncio does.
  do {
    run_once();
  } while (!stopping);
}

void loop_core::close() {
  if (running) throw RuntimeError(asyncio_errc::loop_running, "Cannot close a running event loop");
  if (closed) return;
  closed = true;
  // Kill unfinished tasks so their stacks unwind now, as asyncio would warn
  // "Task was destroyed but it is pending!" and drop them.
  while (tasks_head != nullptr) {
    task_state* t = tasks_head;
    report({"Task was destroyed but it is pending!", nullptr, t->repr()});
    t->abandon();
  }
  while (ready_count > 0) drop_node(pop_ready());
  for (callback_node* n : timers) {
    n->in_heap = false;
    drop_node(n);
  }
  timers.clear();
  // Close hooks release what the I/O layer holds for this loop (signalfds,
  // signal masks) while its registrations still exist to be removed.
  while (!close_hooks.empty()) {
    std::function<void()> hook = std::move(close_hooks.back().second);
    close_hooks.pop_back();
    try {
      hook();
    } catch (...) {
      report({"exception in a close hook", std::current_exception(), ""});
    }
  }
  // I/O registrations may hold futures (references to this loop) and
  // callbacks: drop them with the rest.
  io->clear();
  close_threadsafe();
  // No other thread can hand anything back now: end what waits for it.
  while (loop_sides != nullptr) loop_sides->end(loop_sides);
  // The waiters future_add_to_awaited_by() recorded hold references to this loop: let go.
  free_awaited_by_links(this);
  // Last, as asyncio's close(): the default executor is shut down without
  // waiting and forgotten, so no later loop at this address inherits it.
  retire_default_executor(this);
}

void loop_core::attach_side(loop_side* side) noexcept {
  side->prev = nullptr;
  side->next = loop_sides;
  if (loop_sides != nullptr) loop_sides->prev = side;
  loop_sides = side;
}

void loop_core::detach_side(loop_side* side) noexcept {
  if (side->prev == nullptr && loop_sides != side) return;  // not attached
  if (side->prev != nullptr) {
    side->prev->next = side->next;
  } else {
    loop_sides = side->next;
  }
  if (side->next != nullptr) side->next->prev = side->prev;
  side->prev = side->next = nullptr;
}

std::uint64_t loop_core::add_close_hook(std::function<void()> fn) {
  check_loop_thread();
  check_open();
  const std::uint64_t id = next_close_hook++;
  close_hooks.emplace_back(id, std::move(fn));
  return id;
}

void loop_core::remove_close_hook(std::uint64_t id) noexcept {
  std::erase_if(close_hooks, [id](const auto& hook) { return hook.first == id; });
}

namespace {

// report_handler_error(context, error) is asyncio's "Unhandled error in exception handler": the
// default handler prints the handler's own error and the context it was given, both of which
// would otherwise be lost.
void report_handler_error(const exception_context& context, std::exception_ptr error) noexcept {
  try {
    exception_context failure;
    failure.message = "Unhandled error in exception handler\n  context: " + context.message;
    if (!context.source.empty()) failure.message += "\n    in " + context.source;
    if (context.exception) failure.message += "\n    exception: " + describe_exception(context.exception);
    failure.exception = std::move(error);
    event_loop::default_exception_handler(failure);
  } catch (...) {
    std::fputs("asyncio: Unhandled error in exception handler (and no memory to describe it)\n", stderr);
  }
}

}  // namespace

void loop_core::report(const exception_context& context) noexcept {
  // Without a facade (the event_loop is gone, a future outliving it reports) the handler has no
  // loop to be given, and its captures may have gone with the loop's owner: the default handler
  // takes the report.
  if (handler && facade != nullptr) {
    // Held for the call: the handler may replace itself, and its closure must outlive that.
    const std::shared_ptr<const exception_handler> running_handler = handler;
    try {
      (*running_handler)(facade, context);
    } catch (...) {
      report_handler_error(context, std::current_exception());
    }
    return;
  }
  event_loop::default_exception_handler(context);
}

void loop_core::report_callback_error(const callback_node* n) noexcept {
  exception_context context{"Exception in callback", std::current_exception(), {}};
  // The function's name is known for a general callback or a call_soon_threadsafe() one; the
  // loop's own fast callbacks (task steps and wake-ups) run no user function.
  const bool named = n->fast == nullptr || n->fast == &run_posted;
  try {
    context.source = handle_repr(*n, named ? failed_callback : std::string());
  } catch (...) {  // std::bad_alloc: reported without its source
  }
  failed_callback.clear();
  report(context);
}

void loop_core::link_task(task_state* t) noexcept {
  retain(t->future());
  t->prev = nullptr;
  t->next = tasks_head;
  if (tasks_head != nullptr) tasks_head->prev = t;
  tasks_head = t;
  ++task_count;
}

void loop_core::unlink_task(task_state* t) noexcept {
  if (t->prev != nullptr) {
    t->prev->next = t->next;
  } else if (tasks_head == t) {
    tasks_head = t->next;
  } else {
    return;
  }
  if (t->next != nullptr) t->next->prev = t->prev;
  t->prev = t->next = nullptr;
  --task_count;
  release(t->future());
}

}  // namespace greenlet::asyncio::detail
