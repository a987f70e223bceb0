// switch.cpp: starting, finishing and the uncommon switches. The common
// switch is inline (greenlet/detail/switch_inline.hpp). Both use Boost.Context's
// lowest layer (make_fcontext/jump_fcontext) so that every jump can be
// annotated for the sanitizers and no jump is hidden inside a library call.
#include <cxxabi.h>

#include <boost/context/detail/fcontext.hpp>

#include <cstdlib>
#include <mutex>
#include <utility>

#include "fiber/stack_copy.hpp"
#include "fiber/thread_state.hpp"
#include "greenlet/detail/sanitizers.hpp"

namespace greenlet::detail {

namespace ctx = boost::context::detail;

namespace {

// Keeping every switch on jump_fcontext's fast path.
//
// jump_fcontext stores MXCSR into the context it leaves and loads the one
// saved in the context it enters. On some CPUs, loading a value different
// from the current one costs ~70 ns, and the values differ as soon as an
// inexact floating-point operation has set the sticky precision flag on one
// side but not the other: a raw Boost.Context ping-pong goes from 5 ns to
// 72 ns per switch once a program does floating-point work. Clearing the
// flags instead makes the next inexact operation pay a microcode assist.
//
// So every saved context gets the same status bits: the precision flag set,
// the others clear, the control bits (rounding, masks) left as the greenlet
// set them. With the precision flag already set, inexact operations change
// nothing, so the running MXCSR matches what the next jump loads.
//
// Reading the register (stmxcsr) before each switch would do it, but right
// after the jump's own ldmxcsr it stalls ~6 ns on AMD EPYC: more than the
// switch. Instead every jump first fixes the word its target saved in its
// own frame when it last switched away (before_jump_fp() in
// switch_inline.hpp), a plain load and compare of a cached word (~0.1 ns; the
// resumed side fixing the word the origin had just saved cost ~0.9 ns, the
// stmxcsr store not forwarding). A frame so fixed holds the running MXCSR's
// value once the running side is canonical too, which its first jump in
// makes it. That relies on Boost's x86-64 frame layout (MXCSR at offset 0 of
// a saved context), which check_frame_layout() checks once per process; if
// it fails, the register is canonicalized before each switch instead.
// Consequence either way: floating-point exception flags (fetestexcept) do
// not survive a switch.
#if defined(__x86_64__)
inline unsigned read_mxcsr() noexcept {
  unsigned mxcsr;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  return mxcsr;
}
inline void write_mxcsr(unsigned mxcsr) noexcept { __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr)); }

#endif

// Under the sanitizers the probe's unannotated jump would confuse them; they
// get the register method.
#if defined(__x86_64__) && !defined(GREENLET_ASAN) && !defined(GREENLET_TSAN)
#define GREENLET_FP_FRAME_PROBE 1
// The probe: a context that sets a distinctive MXCSR and jumps back, so the
// word at its saved context can be compared with what it set.
constexpr unsigned probe_mxcsr = 0x7fa0;  // round toward zero, precision flag
void probe_entry(ctx::transfer_t t) {
  write_mxcsr(probe_mxcsr);
  ctx::jump_fcontext(t.fctx, nullptr);
  std::abort();  // never resumed
}

bool check_frame_layout() noexcept {
  alignas(16) static char stack[16 * 1024];
  const unsigned saved = read_mxcsr();
  ctx::fcontext_t probe = ctx::make_fcontext(stack + sizeof stack, sizeof stack, &probe_entry);
  ctx::transfer_t back = ctx::jump_fcontext(probe, nullptr);
  const bool ok = *static_cast<const unsigned*>(back.fctx) == probe_mxcsr && read_mxcsr() == saved;
  write_mxcsr(saved);
  return ok;
}

#endif

}  // namespace

bool fp_frame_layout_ok = false;
unsigned char fp_usual_low_byte = canonical_mxcsr(0x1f80) & 0xff;  // the default control bits

void before_jump_fp_slow(void* context) noexcept {
  if (fp_frame_layout_ok) {
    canonicalize_saved_fp(context);
  } else {
    canonicalize_fp_register();
  }
}

void canonicalize_fp_register() noexcept {
#if defined(__x86_64__)
  const unsigned mxcsr = read_mxcsr();
  if (mxcsr != canonical_mxcsr(mxcsr)) write_mxcsr(canonical_mxcsr(mxcsr));
#endif
}

// prepare_thread_fp() runs when a thread first uses greenlets, before its
// first switch: it checks the frame layout once per process and gives the
// thread's own context the status bits every saved context will have.
void prepare_thread_fp() noexcept {
#if defined(GREENLET_FP_FRAME_PROBE)
  static std::once_flag checked;
  std::call_once(checked, [] {
    fp_frame_layout_ok = check_frame_layout();
    fp_usual_low_byte = static_cast<unsigned char>(canonical_mxcsr(read_mxcsr()) & 0xff);
  });
#endif
  canonicalize_fp_register();
}

namespace {

// start() gives an unstarted greenlet a stack and an entry context.
void start(thread_state& ts, greenlet_impl* g) {
  if (g->shared_stack) {
    start_shared(ts, g);
    return;
  }
  const std::size_t size = g->stack_opts.size != 0 ? g->stack_opts.size : default_stack_size();
  const fiber_stack s = g->host != nullptr ? hosted_stack(g->host) : ts.stacks.acquire(size, g->stack_opts.guard_page);
  g->stack_mapping = s.mapping;
  g->stack_limit = s.limit;
  g->stack_base = s.base;
  g->stack_size = s.size;
  g->valgrind_stack_id = s.valgrind_id;
  g->context = ctx::make_fcontext(s.base, s.size, &greenlet_entry);
  g->state = run_state::active;
  clear_exceptions(g->exceptions);
  sanitizers::on_start(g);
}

// on_unreachable_keeping_transfer() is on_unreachable() for the resumed side
// of a switch, which has not taken what the switch carried yet: killing is
// itself a switch and would overwrite ts.transfer_*.
void on_unreachable_keeping_transfer(thread_state& ts, greenlet_impl* g) noexcept {
  value v = std::move(ts.transfer_value);
  std::exception_ptr e = std::move(ts.transfer_error);
  on_unreachable(ts, g);
  ts.transfer_value = std::move(v);
  ts.transfer_error = std::move(e);
}

// reap() gives a dead origin's stack back to the pool and kills or frees an
// origin that lost its last handle while running, now that it is suspended.
inline void reap(thread_state& ts, greenlet_impl* origin) {
  if (origin->state == run_state::dead || origin->orphaned) [[unlikely]] {
    if (origin->state == run_state::dead) release_stack(ts, origin);
    // Only a greenlet orphaned on this thread is ours to free here; one whose
    // last handle went away on another thread waits in ts.mail instead.
    if (origin->orphaned) {
      origin->orphaned = false;
      if (reference_count(origin) == origin->stack_refs) on_unreachable_keeping_transfer(ts, origin);
    }
  }
}

// traced_after_switch() calls the trace function with origin and self, then
// reaps. The trace function's handles to them are plain references taken
// here, dropped once the reaping is done: if it dropped the last handle to
// either (a profiler keeping "the greenlet now running" does, at every
// switch), that drop is the last release, which kills or frees it as any
// other would (the references used to be dropped raw: such a greenlet was
// never freed, nor killed before its thread exited).
[[gnu::noinline]] void traced_after_switch(thread_state& ts, greenlet_impl* self, greenlet_impl* origin) {
  retain(origin);
  retain(self);
  call_trace(ts, origin, self);  // its handles borrow these references
  if (origin->state == run_state::dead) release_stack(ts, origin);
  // Whether an orphaned origin is unreachable is decided when the trace's
  // reference goes, below.
  origin->orphaned = false;
  for (greenlet_impl* g : {self, origin}) {
    if (drop_local_reference(g) == g->stack_refs) on_unreachable_keeping_transfer(ts, g);
  }
}

// carry(ts, args, error) puts what a switch carries where the resumed side
// takes it, and says so in ts.pending (see switch_inline.hpp).
// Nothing is stored for an empty value: the slot is empty whenever a greenlet
// runs (the receiving side moves out what it gets), as switch_inline_empty()
// relies on too.
inline void carry(thread_state& ts, value&& args, std::exception_ptr&& error) noexcept {
  if (args.has_value()) {
    ts.transfer_value = std::move(args);
    ts.pending |= pending_work::value_carried;
  }
  if (error) {
    ts.transfer_error = std::move(error);
    ts.pending |= pending_work::bookkeeping;
  }
}

// after_switch() is the resumed side's bookkeeping: a trace call, and reaping
// an origin that died (its stack goes back to the pool) or that lost its
// last handle while running (it is killed now that it is suspended). Every
// landing off the inline path starts here, so it clears ts.pending first:
// what it flags is done below or taken by receive() next; what is flagged
// meanwhile (the trace function orphaning self) is for a later switch.
inline void after_switch(thread_state& ts, greenlet_impl* self, greenlet_impl* origin) {
  ts.pending = ts.tracing ? pending_work::bookkeeping : 0;
  origin = resumed_origin(ts, origin);
  if (ts.tracing) [[unlikely]] {
    traced_after_switch(ts, self, origin);
    return;
  }
  reap(ts, origin);
}

bool is_greenlet_exit(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const GreenletExit&) {
    return true;
  } catch (...) {
    return false;
  }
}

[[noreturn, gnu::cold, gnu::noinline]] void throw_dead_parent_cycle() {
  throw ::greenlet::error(errc::cyclic_parent,
                          "cyclic parent chain: the greenlet switched to is dead, and so is every parent "
                          "it passes the switch on to, round a cycle; there is no live greenlet to switch to");
}

// resolve_target() follows Python's rules for where a switch lands: a dead
// greenlet passes it to its parent (GreenletExit on its way comes back as a
// value, as when it escapes run()). An unstarted target is returned even with
// an exception to raise: as Python does, it is started and dies at once
// without running (run_to_completion()), so that both switches are traced.
// Parent chains have no cycles (set_parent() refuses them, kill() makes
// none), but a cycle of dead greenlets would make this loop for ever: it is
// detected (Brent's method, paid only when passing a dead greenlet on) and
// refused with greenlet::error (errc::cyclic_parent).
[[gnu::noinline]] greenlet_impl* resolve_target_slow(thread_state& ts, greenlet_impl* target, value& args,
                                                     std::exception_ptr& error) {
  const greenlet_impl* lap_start = target;
  std::size_t lap = 0;
  std::size_t lap_length = 1;
  for (;;) {
    thread_state* owner = owner_of(target);
    if (owner != &ts) [[unlikely]] {
      if (owner == nullptr) {
        throw ::greenlet::error(errc::thread_exited,
                                "cannot switch to a different thread (which happens to have exited)");
      }
      throw ::greenlet::error(errc::wrong_thread,
                              "Cannot switch to a different thread: the greenlet belongs to the thread "
                              "that created it. Expected its own thread; Current is another one. "
                              "Hand work between threads with call_soon_threadsafe().");
    }
    if (target->state != run_state::dead) return target;
    if (error && is_greenlet_exit(error)) args = value::of_exit(std::exchange(error, nullptr));
    target = target->parent;
    if (target == lap_start) throw_dead_parent_cycle();
    if (++lap == lap_length) {
      lap_start = target;
      lap = 0;
      lap_length *= 2;
    }
  }
}

// The common case inline (a live target of this thread: a call and a loop
// were two dozen instructions of each greenlet's start and end).
[[gnu::always_inline]] inline greenlet_impl* resolve_target(thread_state& ts, greenlet_impl* target, value& args,
                                                            std::exception_ptr& error) {
  if (owner_of(target) == &ts && target->state != run_state::dead) [[likely]] {
    return target;
  }
  return resolve_target_slow(ts, target, args, error);
}

value receive(thread_state& ts) {
  if (ts.transfer_error) [[unlikely]] {
    std::exception_ptr e = std::move(ts.transfer_error);
    ts.transfer_error = nullptr;
    ts.transfer_value.reset();
    std::rethrow_exception(e);
  }
  return std::move(ts.transfer_value);
}

// run_to_completion() runs a new greenlet's run function and says where its
// result goes. Its locals are gone before the greenlet's last jump.
// die_unstarted(g) ends an unstarted greenlet without running it.
void die_unstarted(greenlet_impl* g) noexcept {
  g->state = run_state::dead;
  g->ops->clear(g);
}

greenlet_impl* run_to_completion(thread_state& ts, greenlet_impl* self) noexcept {
  value result;
  std::exception_ptr error;
  if (ts.transfer_error) {
    // Started by an exception (throw_() into it, or one passing through it
    // to its parent): it dies without running run, and the exception goes
    // on, GreenletExit as a value, as if it had escaped run.
    error = std::move(ts.transfer_error);
    ts.transfer_error = nullptr;
    ts.transfer_value.reset();
    if (is_greenlet_exit(error)) result = value::of_exit(std::exchange(error, nullptr));
  } else {
    value args = std::move(ts.transfer_value);
    try {
      result = self->ops->invoke(self, std::move(args));
    } catch (const GreenletExit&) {
      result = value::of_exit(std::current_exception());  // as thrown: a derived class is not sliced
    } catch (...) {
      error = std::current_exception();
    }
  }
  self->ops->clear(self);
  self->state = run_state::dead;

  // Deliver to the nearest live ancestor, starting an unstarted one with the
  // result as its arguments (Python does the same), or with the exception,
  // which it passes on to its own parent.
  greenlet_impl* target = self->parent;
  for (;;) {
    try {
      target = resolve_target(ts, target, result, error);
      if (target->state == run_state::unstarted) start(ts, target);
      break;
    } catch (...) {
      // Starting failed (no stack): that ancestor dies unstarted. An
      // exception on its way goes on; a result it was to start with turns
      // into this failure.
      if (!error) {
        error = std::current_exception();
        result.reset();
      }
      if (target->state == run_state::unstarted) {
        die_unstarted(target);
      } else if (target->state == run_state::dead) {
        // No live ancestor to take it (a cycle of dead greenlets): the
        // thread's main greenlet, always live, does, rather than nobody.
        target = ts.main;
      }
    }
  }
  // A waiting task's greenlet (resume-locked) cannot take the result: its
  // wait would be cut short, and whoever resumed this greenlet stranded.
  if (resume_locked(target) && !target->being_killed && ts.locked_parent_stand_in != nullptr) [[unlikely]] {
    target = ts.locked_parent_stand_in(target);
  }
  carry(ts, std::move(result), std::move(error));
  return target;
}

}  // namespace

void greenlet_entry(ctx::transfer_t from) noexcept {
  thread_state& ts = *tls_state;
  greenlet_impl* self = ts.current;
  greenlet_impl* origin = landed(self, from);
  try {
    after_switch(ts, self, origin);
  } catch (...) {
    ts.transfer_error = std::current_exception();
  }

  greenlet_impl* target = run_to_completion(ts, self);
  if (target->swapped_out()) die_into_swapped(ts, self, target);
  jump_dying(ts, self, target);
}

void jump_dying(thread_state& ts, greenlet_impl* self, greenlet_impl* to) noexcept {
  ts.pending |= pending_work::bookkeeping;  // self is dead: its stack is to be reaped
  void* const context = to->context;
  hand_over(ts, ts.cxa_globals, self, to, context, /*dying=*/true);
  ctx::jump_fcontext(context, self);
  std::abort();  // a dead greenlet is never resumed
}

namespace {

// refuse_if_resume_locked(target) refuses a switch_() or throw_() to a
// greenlet of this thread locked by its owner (lock_resume()): a waiting
// task's, which only its event loop resumes. A kill (being_killed) passes,
// and so does a dead greenlet (resolve_target() passes the switch on).
// Out of line; checked by switch_any() on the target resolve_target() gives.
[[gnu::noinline, gnu::cold]] void refuse_if_resume_locked(const greenlet_impl* target) {
  if (target->being_killed || target->state == run_state::dead) return;
  throw ::greenlet::error(errc::resume_locked,
                          "cannot switch into an asyncio task's greenlet by hand: only its event loop resumes "
                          "a task (switched into, the task's wait would be cut short and the caller stranded); "
                          "await the task instead (asyncio::await(task)), or wake it through a Future it awaits");
}

// start_to_die() starts unstarted target only to raise `error` in it (it
// dies at once, see run_to_completion()) and returns it; when there is no
// stack for that, it dies unstarted (untraced) and the exception goes on:
// returns where it lands then. Out of line: rare, and it keeps the common
// switch below small.
[[gnu::noinline]] greenlet_impl* start_to_die(thread_state& ts, greenlet_impl* target, value& args,
                                              std::exception_ptr& error) {
  for (;;) {
    try {
      start(ts, target);
      return target;
    } catch (...) {
      die_unstarted(target);
    }
    target = resolve_target(ts, target, args, error);
    if (target->state != run_state::unstarted) return target;
  }
}

// switch_to_self() is a switch or throw to the running greenlet (directly,
// or to a dead greenlet whose nearest live ancestor it is): nothing is
// switched, but Python traces it all the same.
[[gnu::noinline]] value switch_to_self(thread_state& ts, greenlet_impl* self, value&& args, std::exception_ptr error) {
  if (ts.tracing) {
    ts.transfer_value = std::move(args);
    ts.transfer_error = std::move(error);
    traced_after_switch(ts, self, self);
    return receive(ts);
  }
  if (error) std::rethrow_exception(error);
  return std::move(args);
}

// switch_any() handles every switch: to a dead, unstarted or foreign
// greenlet, to itself, raising an exception, as well as the common case.
// Inlined into its two callers (switch_slow(), throw_to()), as GCC chose
// until the resume-lock check grew them: a call more per task start.
[[gnu::always_inline]] inline value switch_any(thread_state& ts, greenlet_impl* target, value&& args,
                                               std::exception_ptr error) {
  greenlet_impl* self = ts.current;
  target = resolve_target(ts, target, args, error);
  // Checked where the switch lands, after a dead target passed it on to its
  // parent: a waiting task's dead child must not be a way in.
  if (resume_locked(target)) [[unlikely]] {
    refuse_if_resume_locked(target);
  }
  if (target->state == run_state::unstarted) {
    if (error) [[unlikely]] {
      target = start_to_die(ts, target, args, error);
    } else {
      start(ts, target);
    }
  }
  if (target == self) [[unlikely]] {
    return switch_to_self(ts, self, std::move(args), std::move(error));
  }
  carry(ts, std::move(args), std::move(error));
  greenlet_impl* origin = target->swapped_out() ? switch_to_swapped(ts, self, target) : jump_to(ts, self, target);
  after_switch(ts, self, origin);
  return receive(ts);
}

}  // namespace

value switch_slow(greenlet_impl* target, value&& args) { return switch_any(state(), target, std::move(args), nullptr); }

value after_switch_slow(switch_state& ts, greenlet_impl* self, greenlet_impl* origin) {
  thread_state& full = static_cast<thread_state&>(ts);
  after_switch(full, self, origin);
  return receive(full);
}

value throw_to(thread_state& ts, greenlet_impl* target, std::exception_ptr error) {
  return switch_any(ts, target, value(), std::move(error));
}

void release_stack(thread_state& ts, greenlet_impl* g) noexcept {
  if (g->shared_stack) {
    if (g->stack_base == nullptr) return;
    sanitizers::on_finish(g);
    release_shared(ts, g);
    g->stack_limit = g->stack_base = nullptr;
    g->stack_refs = 0;
    g->context = nullptr;
    return;
  }
  if (g->stack_mapping == nullptr) return;
  check_stack_canary(g);  // names g, which the pool's own check cannot
  sanitizers::on_finish(g);
  // A hosted stack still holds its host's objects (g's own among them): it
  // goes back to the pool when they have gone (release_stack_host()).
  if (g->host == nullptr) {
    fiber_stack s;
    s.mapping = g->stack_mapping;
    s.mapping_size = static_cast<std::size_t>(static_cast<char*>(g->stack_base) - static_cast<char*>(g->stack_mapping));
    s.limit = g->stack_limit;
    s.base = g->stack_base;
    s.size = g->stack_size;
    s.guarded = g->stack_opts.guard_page;
    s.valgrind_id = g->valgrind_stack_id;
    ts.stacks.release(s);
  }
  g->stack_mapping = nullptr;
  g->stack_limit = g->stack_base = nullptr;
  g->stack_refs = 0;  // whatever lived on that stack is gone
  g->context = nullptr;
}

exception_state* runtime_exception_state() noexcept {
  return reinterpret_cast<exception_state*>(abi::__cxa_get_globals());
}

}  // namespace greenlet::detail
