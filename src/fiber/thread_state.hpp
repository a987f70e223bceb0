// thread_state.hpp: what each thread keeps for its greenlets.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <vector>

#include "fiber/object_cache.hpp"
#include "fiber/stack_pool.hpp"
#include "greenlet/detail/greenlet_impl.hpp"
#include "greenlet/detail/switch_inline.hpp"
#include "greenlet/fiber/greenlet.hpp"

namespace greenlet::detail {

// thread_state is made on a thread's first use of greenlets and destroyed at
// thread exit, when it kills the thread's unfinished greenlets so their
// destructors run on the thread that owns their stacks.
struct thread_state : switch_state {
  thread_state();
  ~thread_state();
  thread_state(const thread_state&) = delete;
  thread_state& operator=(const thread_state&) = delete;

  greenlet_impl* main = nullptr;
  trace_function trace;
  stack_pool stacks;
  // Freed greenlet objects for reuse (see allocate_greenlet()).
  object_cache objects;

  // Registry of this thread's greenlets (main excluded), touched only by
  // this thread. Greenlets released on other threads arrive in `mail`.
  greenlet_impl* registry_head = nullptr;
  std::size_t live = 0;
  std::uint64_t thread_index = 0;
  std::uint64_t next_id = 1;
  // Counts set_parent() calls, so that kill() looks for a cycle its victim's
  // old parent would close only when something was re-parented meanwhile.
  std::uint64_t reparents = 0;

  // References dropped on other threads, for this thread to release.
  std::vector<greenlet_impl*> mail;  // guarded by foreign_release_mutex()
  std::atomic<bool> has_mail{false};

  // Where a greenlet dying into a resume-locked parent goes instead (see
  // set_locked_parent_stand_in() in loop_hints.hpp); null: to the parent.
  greenlet_impl* (*locked_parent_stand_in)(greenlet_impl* locked_parent) noexcept = nullptr;

  void* signal_stack = nullptr;
  bool exiting = false;
  // Made after this thread's first state was destroyed (a thread_local or
  // static destructor used greenlets after it; see make_thread_state()).
  bool made_after_exit = false;

  // Stack copying (stack_copy.cpp). shared_owner is the shared-mode greenlet
  // whose bytes are on the shared stack now (running or suspended), if any.
  // The copier is a helper context on a small stack of its own: a greenlet
  // running on the shared stack cannot copy another greenlet's bytes over
  // it, so it jumps to the copier, which saves one and restores the other.
  // What stack_mode::inherit means on this thread: set_thread_stack_mode()'s
  // mode, or else the process's; never inherit (resolved once, not at every
  // greenlet made).
  stack_mode default_mode = stack_mode::separate;
  greenlet_impl* shared_owner = nullptr;
  fiber_stack shared_stack;
  greenlet_impl* copier = nullptr;
  fiber_stack copier_stack;
  greenlet_impl* copy_target = nullptr;  // where the copier goes next
  greenlet_impl* copy_origin = nullptr;  // who jumped to the copier last
  // A get_stack() read the copier makes for a greenlet on the shared stack (read_swapped_out()):
  // the function that reads target in place, and its argument; null for a switch.
  void (*copy_read)(thread_state& ts, greenlet_impl* target, void* arg) noexcept = nullptr;
  void* copy_read_arg = nullptr;

  void link(greenlet_impl* g) noexcept;
  void unlink(greenlet_impl* g) noexcept;
  void process_mail() noexcept;
};

// Serializes releases from foreign threads with thread exit.
std::mutex& foreign_release_mutex() noexcept;

// The running thread's state; state() makes it on first use.
// constinit: without it every access from another file goes through a TLS
// wrapper call (the compiler must assume a dynamic initializer), which cost
// more than the rest of a switch.
extern constinit thread_local thread_state* tls_state __attribute__((tls_model("initial-exec")));
thread_state& make_thread_state();
inline thread_state& state() {
  thread_state* ts = tls_state;
  if (ts == nullptr) [[unlikely]] {
    return make_thread_state();
  }
  return *ts;
}

// The switch machinery (switch.cpp): raising an exception in the target
// (throw_, kill); plain switches are switch_inline().
value throw_to(thread_state& ts, greenlet_impl* target, std::exception_ptr error);
// The thread state that owns g, or null once its thread has exited.
// Acquire: a thread that sees null may free g, after everything the exiting
// thread did to it (~thread_state publishes null with a release store).
inline thread_state* owner_of(const greenlet_impl* g) noexcept {
  return static_cast<thread_state*>(g->owner.load(std::memory_order_acquire));
}
// refuse_other_thread(g, what) throws greenlet::error (errc::wrong_thread) when
// g belongs to another thread that is still running: `what` reads or writes
// state that thread changes without synchronization. After g's thread has
// exited nothing changes g any more, so that is allowed.
void refuse_other_thread(const greenlet_impl* g, const char* what);
// Called on g's own thread when only handles on g's own stack (or none)
// are left: kills a suspended g, frees an unstarted or dead one.
void on_unreachable(thread_state& ts, greenlet_impl* g) noexcept;
// Drops one reference on g's own thread.
void release_here(thread_state& ts, greenlet_impl* g) noexcept;
// Frees a greenlet nobody refers to that is unstarted or dead.
void dispose(thread_state* ts, greenlet_impl* g) noexcept;
// Gives a finished greenlet's stack back to the pool (a hosted one's goes
// back with its host, stack_host.hpp).
void release_stack(thread_state& ts, greenlet_impl* g) noexcept;
// hosted_stack(h) is the part of h's stack below its hosted bytes, where the
// greenlet made on it runs (stack_host.cpp).
fiber_stack hosted_stack(const stack_host* h) noexcept;
// Kills a suspended greenlet with GreenletExit (as on its last release),
// unless that cannot be done safely (it is suspended while its stack unwinds)
// or it was reported leaked already. g must not be an ancestor of the running
// greenlet, which becomes its parent for the kill.
void kill(thread_state& ts, greenlet_impl* g) noexcept;
// kill(), then drops one reference the caller took: frees g if it died and
// that was the last, reports and leaks it if it is still suspended and
// nothing else can reach it.
void kill_and_release(thread_state& ts, greenlet_impl* g) noexcept;

// Reports an exception that has nowhere to go (trace.cpp).
void report_unraisable(std::exception_ptr error, const std::string& context) noexcept;
// Calls the trace function on the target's side; if it throws, the exception
// goes to ts.transfer_error and tracing is turned off. The caller holds a
// reference on origin and on target for the call and drops it afterwards.
void call_trace(thread_state& ts, greenlet_impl* origin, greenlet_impl* target) noexcept;

// Installs the stack-overflow reporter for this thread (overflow_report.cpp).
void install_overflow_reporter(thread_state& ts);
void remove_overflow_reporter(thread_state& ts) noexcept;

}  // namespace greenlet::detail
