// switch.cpp: the one place that jumps between stacks. It alone includes
// Boost.Context, and uses its lowest layer (make_fcontext/jump_fcontext) so
// that every jump can be annotated for the sanitizers and no jump is hidden
// inside a library call.
#include <cxxabi.h>

#include <boost/context/detail/fcontext.hpp>

#include <cstdlib>

#include "fiber/sanitizers.hpp"
#include "fiber/thread_state.hpp"

namespace greenlet::detail {

namespace ctx = boost::context::detail;

namespace {

// canonicalize_fp_status() keeps every switch on jump_fcontext's fast path.
// jump_fcontext stores MXCSR into the context it leaves and loads the one
// saved in the context it enters. Loading a value different from the
// current one costs ~70 ns, and the values differ as soon as any inexact
// floating-point operation has set the sticky precision flag on one side but
// not the other: a raw Boost.Context ping-pong goes from 5 ns to 72 ns per
// switch once a program has done floating-point work. Clearing the flags
// instead makes the next inexact operation pay a microcode assist (158 ns).
// So every context is saved with the same status bits, the precision flag
// set and the others clear, keeping the control bits (rounding, masks) as
// the greenlet set them. Cost: one stmxcsr and a compare per switch.
// Consequence: floating-point exception flags (fetestexcept) do not survive
// a switch.
inline void canonicalize_fp_status() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  constexpr unsigned status_bits = 0x3f;
  constexpr unsigned precision_flag = 0x20;
  unsigned mxcsr;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  const unsigned canonical = (mxcsr & ~status_bits) | precision_flag;
  if (mxcsr != canonical) [[unlikely]] {
    __asm__ volatile("ldmxcsr %0" : : "m"(canonical));
  }
#endif
}

[[noreturn]] void greenlet_entry(ctx::transfer_t from) noexcept;

// start() gives an unstarted greenlet a stack and an entry context.
void start(thread_state& ts, greenlet_impl* g) {
  const std::size_t size = g->stack_opts.size != 0 ? g->stack_opts.size : default_stack_size();
  fiber_stack s = ts.stacks.acquire(size, g->stack_opts.guard_page);
  g->stack_mapping = s.mapping;
  g->stack_limit = s.limit;
  g->stack_base = s.base;
  g->stack_size = s.size;
  g->valgrind_stack_id = s.valgrind_id;
  g->context = ctx::make_fcontext(s.base, s.size, &greenlet_entry);
  g->state = run_state::active;
  g->exceptions = {};
  sanitizers::on_start(g);
}

// leave() makes target current and jumps to it. When it returns, some other
// greenlet has switched back to `self`; it returns that greenlet.
inline greenlet_impl* leave(thread_state& ts, greenlet_impl* self, greenlet_impl* target) noexcept {
  self->exceptions = *ts.cxa_globals;
  *ts.cxa_globals = target->exceptions;
  canonicalize_fp_status();
  ts.current = target;
  sanitizers::before_jump(self, target, /*dying=*/false);
  ctx::transfer_t back = ctx::jump_fcontext(target->context, self);
  auto* origin = static_cast<greenlet_impl*>(back.data);
  origin->context = back.fctx;
  sanitizers::after_jump(self, origin);
  return origin;
}

// after_switch() is the resumed side's bookkeeping: a trace call, and reaping
// an origin that died (its stack goes back to the pool) or that lost its
// last handle while running (it is killed now that it is suspended).
inline void after_switch(thread_state& ts, greenlet_impl* self, greenlet_impl* origin) {
  if (ts.tracing) [[unlikely]] {
    call_trace(ts, origin, self);
  }
  if (origin->state == run_state::dead || origin->orphaned) [[unlikely]] {
    if (origin->state == run_state::dead) release_stack(ts, origin);
    // Only a greenlet orphaned on this thread is ours to free here; one whose
    // last handle went away on another thread waits in ts.mail instead.
    if (origin->orphaned) {
      origin->orphaned = false;
      if (origin->refs.load(std::memory_order_acquire) == origin->stack_refs) {
        // Kill or free it only after taking what the switch carried: killing
        // is itself a switch and would overwrite ts.transfer_*.
        value v = std::move(ts.transfer_value);
        std::exception_ptr e = std::move(ts.transfer_error);
        on_unreachable(ts, origin);
        ts.transfer_value = std::move(v);
        ts.transfer_error = std::move(e);
      }
    }
  }
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

// resolve_target() follows Python's rules for where a switch lands: a dead
// greenlet passes it to its parent, and an exception thrown into an
// unstarted greenlet kills it without running it. GreenletExit that kills a
// greenlet comes back as a value, as when it escapes run().
greenlet_impl* resolve_target(thread_state& ts, greenlet_impl* target, value& args,
                              std::exception_ptr& error) {
  for (;;) {
    thread_state* owner = target->owner.load(std::memory_order_relaxed);
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
    if (target->state == run_state::active) return target;
    if (target->state == run_state::unstarted && !error) return target;
    if (target->state == run_state::unstarted) {
      target->state = run_state::dead;
      target->ops->clear(target);
    }
    if (error && is_greenlet_exit(error)) {
      try {
        std::rethrow_exception(error);
      } catch (const GreenletExit& exit) {
        args = value(exit);
      }
      error = nullptr;
    }
    target = target->parent;
  }
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
greenlet_impl* run_to_completion(thread_state& ts, greenlet_impl* self) noexcept {
  value result;
  std::exception_ptr error;
  if (ts.transfer_error) {
    error = std::move(ts.transfer_error);
    ts.transfer_error = nullptr;
    ts.transfer_value.reset();
  } else {
    value args = std::move(ts.transfer_value);
    try {
      result = self->ops->invoke(self, std::move(args));
    } catch (const GreenletExit& exit) {
      result = value(exit);
    } catch (...) {
      error = std::current_exception();
    }
  }
  self->ops->clear(self);
  self->state = run_state::dead;

  // Deliver to the nearest live ancestor, starting an unstarted one with the
  // result as its arguments (Python does the same).
  greenlet_impl* target = self->parent;
  for (;;) {
    try {
      target = resolve_target(ts, target, result, error);
      if (target->state == run_state::unstarted) start(ts, target);
      break;
    } catch (...) {
      // Starting failed (no stack): that ancestor gets the error instead.
      error = std::current_exception();
      result.reset();
      if (target->state == run_state::unstarted) {
        target->state = run_state::dead;
        target->ops->clear(target);
      }
      target = target->parent;
    }
  }
  ts.transfer_value = std::move(result);
  ts.transfer_error = std::move(error);
  return target;
}

void greenlet_entry(ctx::transfer_t from) noexcept {
  thread_state& ts = *tls_state;
  greenlet_impl* self = ts.current;
  auto* origin = static_cast<greenlet_impl*>(from.data);
  origin->context = from.fctx;
  sanitizers::after_jump(self, origin);
  try {
    after_switch(ts, self, origin);
  } catch (...) {
    ts.transfer_error = std::current_exception();
  }

  greenlet_impl* target = run_to_completion(ts, self);

  *ts.cxa_globals = target->exceptions;
  canonicalize_fp_status();
  ts.current = target;
  sanitizers::before_jump(self, target, /*dying=*/true);
  ctx::jump_fcontext(target->context, self);
  std::abort();  // a dead greenlet is never resumed
}

}  // namespace

value switch_to(thread_state& ts, greenlet_impl* target, value&& args, std::exception_ptr error) {
  greenlet_impl* self = ts.current;
  target = resolve_target(ts, target, args, error);
  if (target == self) {
    if (error) std::rethrow_exception(error);
    return std::move(args);
  }
  if (target->state == run_state::unstarted) start(ts, target);
  ts.transfer_value = std::move(args);
  if (error) [[unlikely]] {
    ts.transfer_error = std::move(error);
  }
  greenlet_impl* origin = leave(ts, self, target);
  after_switch(ts, self, origin);
  return receive(ts);
}

void release_stack(thread_state& ts, greenlet_impl* g) noexcept {
  if (g->stack_mapping == nullptr) return;
  sanitizers::on_finish(g);
  fiber_stack s;
  s.mapping = g->stack_mapping;
  s.mapping_size = static_cast<std::size_t>(static_cast<char*>(g->stack_base) -
                                            static_cast<char*>(g->stack_mapping));
  s.limit = g->stack_limit;
  s.base = g->stack_base;
  s.size = g->stack_size;
  s.guarded = g->stack_opts.guard_page;
  s.valgrind_id = g->valgrind_stack_id;
  ts.stacks.release(s);
  g->stack_mapping = nullptr;
  g->stack_limit = g->stack_base = nullptr;
  g->stack_refs = 0;  // whatever lived on that stack is gone
  g->context = nullptr;
}

exception_state* runtime_exception_state() noexcept {
  return reinterpret_cast<exception_state*>(abi::__cxa_get_globals());
}

}  // namespace greenlet::detail
