#include "fiber/thread_state.hpp"
#include "fiber/environment.hpp"
#include "fiber/loop_hints.hpp"
#include "fiber/stack_copy.hpp"

#include <cxxabi.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "greenlet/detail/sanitizers.hpp"

// This library's (or program's) handle for __cxa_thread_atexit, as the
// compiler passes for a thread_local's destructor.
extern "C" __attribute__((visibility("hidden"))) void* __dso_handle;

namespace greenlet::detail {

exception_state* runtime_exception_state() noexcept;  // switch.cpp
void prepare_thread_fp() noexcept;                    // switch.cpp

constinit thread_local thread_state* tls_state __attribute__((tls_model("initial-exec"))) = nullptr;
switch_state no_switch_state;
constinit thread_local switch_state* tls_switch_state __attribute__((tls_model("initial-exec"))) = &no_switch_state;

namespace {

struct main_greenlet final : greenlet_impl {
  static value invoke(greenlet_impl*, value&&) { return value(); }
  static void clear(greenlet_impl*) noexcept {}
  static void dispose(greenlet_impl* self) noexcept { delete static_cast<main_greenlet*>(self); }
  static constexpr run_ops table{&invoke, &clear, &dispose};
};

std::atomic<std::uint64_t> next_thread_index{1};

// How a thread's state is destroyed at its exit. Not a thread_local object
// (as it was): a thread_local is made once, so a thread_local made before the
// thread's first use of greenlets, whose destructor (run after the state's)
// used greenlets again, recreated the state into the destroyed object: it
// was never destroyed (its greenlets never killed) or, where the destroyed
// unique_ptr still held the old pointer, destroyed twice (a crash). Each
// state registers its own destructor as a thread_local's constructor would,
// so one made while the thread's thread_locals are destroyed is destroyed in
// turn; a thread whose state was destroyed that way gets a new one whenever
// it uses greenlets again.
//
// A static destructor that uses greenlets on the thread calling exit() runs
// after that thread's thread_locals are gone: a state made then is destroyed
// by an atexit handler, run next (exit() runs handlers registered while it
// runs them).
constinit thread_local bool state_destroyed_before __attribute__((tls_model("initial-exec"))) = false;

void destroy_thread_state(void* ts) noexcept { delete static_cast<thread_state*>(ts); }

// A state made after this thread's first one was destroyed: if exit()'s
// thread_local destructors are done, its own registration never runs.
void destroy_late_thread_state() noexcept {
  thread_state* ts = tls_state;
  if (ts != nullptr && ts->made_after_exit) delete ts;
}

}  // namespace

void hold_released_stacks(bool hold) noexcept {
  if (tls_state != nullptr) tls_state->stacks.hold_released(hold);
}

void set_locked_parent_stand_in(locked_parent_stand_in_fn fn) noexcept {
  if (fn != nullptr || tls_state != nullptr) state().locked_parent_stand_in = fn;
}

void trim_released_stacks() noexcept {
  if (tls_state != nullptr) tls_state->stacks.trim_warm();
}

::greenlet::greenlet this_thread_main() {
  greenlet_impl* m = state().main;
  retain(m);
  return ::greenlet::greenlet::from_impl(m);
}

bool thread_exited(const ::greenlet::greenlet& main) noexcept {
  // ~thread_state clears the owner under this mutex after its last kill.
  std::lock_guard<std::mutex> lock(foreign_release_mutex());
  return owner_of(main.impl()) == nullptr;
}

std::mutex& foreign_release_mutex() noexcept {
  static std::mutex mutex;
  return mutex;
}

thread_state& make_thread_state() {
  auto ts = std::make_unique<thread_state>();
  if (abi::__cxa_thread_atexit(&destroy_thread_state, ts.get(), &__dso_handle) != 0) throw std::bad_alloc();
  if (state_destroyed_before) {
    ts->made_after_exit = true;
    std::atexit(&destroy_late_thread_state);
  }
  tls_state = ts.release();
  tls_switch_state = tls_state;
  install_overflow_reporter(*tls_state);
  return *tls_state;
}

thread_state::thread_state() {
  cxa_globals = runtime_exception_state();
  // The thread's own context starts with the status bits every saved
  // context will have (see switch.cpp), so its first switches are fast too.
  prepare_thread_fp();
  thread_index = next_thread_index.fetch_add(1, std::memory_order_relaxed);
  default_mode = process_default_mode();
  objects.set_budget(size_from_environment("GREENLET_OBJECT_CACHE_BYTES", object_cache::default_budget_bytes));
  auto* m = new main_greenlet();
  m->ops = &main_greenlet::table;
  m->is_main = true;
  m->state = run_state::active;
  m->owner.store(this, std::memory_order_relaxed);
  m->id = thread_index << 40;
  sanitizers::on_main(m);
  main = m;  // this reference is the thread state's own
  current = m;
}

void thread_state::link(greenlet_impl* g) noexcept {
  g->registry_prev = nullptr;
  g->registry_next = registry_head;
  if (registry_head != nullptr) registry_head->registry_prev = g;
  registry_head = g;
  ++live;
}

void thread_state::unlink(greenlet_impl* g) noexcept {
  if (g->registry_prev != nullptr) {
    g->registry_prev->registry_next = g->registry_next;
  } else if (registry_head == g) {
    registry_head = g->registry_next;
  } else {
    return;  // not linked
  }
  if (g->registry_next != nullptr) g->registry_next->registry_prev = g->registry_prev;
  g->registry_prev = g->registry_next = nullptr;
  --live;
}

void thread_state::process_mail() noexcept {
  std::vector<greenlet_impl*> items;
  {
    std::lock_guard<std::mutex> lock(foreign_release_mutex());
    items.swap(mail);
    has_mail.store(false, std::memory_order_relaxed);
  }
  for (greenlet_impl* g : items) release_here(*this, g);
}

namespace {

// hand_references_over(g) moves the exiting owner's count of references to
// g into the shared one, where every thread counts once g has no owner.
void hand_references_over(greenlet_impl* g) noexcept {
  g->shared_refs.fetch_add(g->local_refs, std::memory_order_relaxed);
  g->local_refs = 0;
}

}  // namespace

thread_state::~thread_state() {
  exiting = true;
  // No tracing while the thread's greenlets are killed: thread_locals made
  // after this state are destroyed by now, and a trace function that uses
  // one would use freed memory (Python's ThreadState destructor clears its
  // trace function first too). settrace() from here on is not traced either.
  // Its captures go now, so greenlets they hold are killed with the others.
  tracing = false;
  {
    trace_function dropped = std::move(trace);
    trace = nullptr;
  }
  process_mail();

  // Kill what is still suspended, so destructors on those stacks run here,
  // on their own thread. Killing may start new greenlets; a few rounds
  // settle that, and what still refuses to die is reported and leaked.
  for (int round = 0; round < 8; ++round) {
    std::vector<greenlet_impl*> victims;
    for (greenlet_impl* g = registry_head; g != nullptr; g = g->registry_next) {
      // One already reported leaked is not killed again: it switched away
      // from its first kill, maybe from a destructor, where GreenletExit
      // would call std::terminate.
      if (g->state == run_state::active && !g->leaked) {
        retain(g);
        victims.push_back(g);
      }
    }
    if (victims.empty()) break;
    for (greenlet_impl* g : victims) kill_and_release(*this, g);
    process_mail();
  }

  std::vector<greenlet_impl*> late_mail;
  {
    std::lock_guard<std::mutex> lock(foreign_release_mutex());
    for (greenlet_impl* g = registry_head; g != nullptr;) {
      greenlet_impl* next = g->registry_next;
      if (g->state == run_state::active && !g->leaked) {
        report_unraisable(nullptr, "greenlet #" + std::to_string(g->id) +
                                       " was still suspended when its thread exited; its stack is leaked");
      }
      // Unlinked before it is published as ownerless: from that store on,
      // a release() on another thread may free it without the mutex.
      g->registry_prev = g->registry_next = nullptr;
      hand_references_over(g);
      g->owner.store(nullptr, std::memory_order_release);
      g = next;
    }
    registry_head = nullptr;
    live = 0;
    main->state = run_state::dead;
    hand_references_over(main);
    main->owner.store(nullptr, std::memory_order_release);
    late_mail.swap(mail);
  }
  for (greenlet_impl* g : late_mail) release(g);
  greenlet_impl* m = main;
  main = current = nullptr;
  release(m);
  close_shared_stacks(*this);
  remove_overflow_reporter(*this);
  tls_state = nullptr;
  tls_switch_state = &no_switch_state;
  state_destroyed_before = true;
}

}  // namespace greenlet::detail
