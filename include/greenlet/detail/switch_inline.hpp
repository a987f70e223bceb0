// switch_inline.hpp: the common switch, inlined into the caller.
//
// Why inline: jump_fcontext returns with an indirect jmp, not a ret, so the
// CPU's return-address predictor is out of step after every switch and each
// ret between one jump and the next mispredicts (~5 ns each). Out of line,
// switch_() cost three of them; inlined, a switch in a loop costs none, as
// a raw boost::context::fiber::resume() (itself inline) does. Everything
// uncommon (first start, dead targets, exceptions, tracing, reaping) stays
// out of line in src/fiber/switch.cpp.
//
// Every function here is [[gnu::always_inline]]: `inline` is only a hint, and
// GCC's size heuristics stopped inlining switch_inline_empty() into a
// generator's step once the generator code around it grew (2026-11-26:
// generator_next went from 11.3 to 21.6 ns, two mispredicted returns per
// step, with no change to the switch itself).
//
// Why every instruction counts: on an Intel Xeon (Skylake family) the work
// around a jump does not overlap with it, so a switch costs in proportion to
// the instructions it runs, about 0.1 ns each (2026-11-27: 40 extra adds cost
// a raw jump 2.4 ns). jump_fcontext itself is 24 of them. So the resumed
// side tests one word (switch_state::pending) instead of four conditions and
// returns a value the compiler sees is empty; the exception state is copied
// as whole words; the thread's state pointer is never null; and branches are
// kept off 32-byte boundaries (cmake/GreenletBranchAlignment.cmake): 100
// instructions a switch became 77, and 2.6x raw fiber's time 1.7x.
#pragma once

#include <atomic>
#include <cstring>
#include <exception>

#include <boost/context/detail/fcontext.hpp>

#include "greenlet/detail/greenlet_impl.hpp"
#include "greenlet/detail/sanitizers.hpp"
#include "greenlet/detail/stack_canary.hpp"
#include "greenlet/fiber/value.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::detail {

// switch_state is the part of a thread's greenlet state every switch
// touches; thread_state (src/fiber) extends it.
struct switch_state {
  greenlet_impl* current = nullptr;
  exception_state* cxa_globals = nullptr;  // the C++ runtime's, for this thread
  bool tracing = false;                    // a trace function is set
  // What the side a switch resumes has to do besides going on: 0 for the
  // common switch, which carries nothing and needs no bookkeeping, so that
  // switched_back() tests one word (see pending_work).
  unsigned pending = 0;
  value transfer_value;               // what the switch carries
  std::exception_ptr transfer_error;  // or the exception it raises
};

// The bits of switch_state::pending. Whoever sets transfer_value or
// transfer_error, kills a greenlet, orphans the running one or turns tracing
// on sets them, before the jump; only the resumed side clears them, once it
// has taken what the switch carried. A bit set with nothing to do costs one
// trip through the slow path; a bit missing would lose a value, an exception
// or a kill, so every writer sets it.
namespace pending_work {
inline constexpr unsigned value_carried = 1;  // transfer_value holds what the switch carries
inline constexpr unsigned bookkeeping = 2;    // an exception carried, a trace call, an origin to reap
}  // namespace pending_work

// The running thread's state; before its first use of greenlets (and after
// its state is gone at exit), no_switch_state, which no greenlet has as its
// owner, so that the inline switch needs no null test: its owner check sends
// such a switch to switch_slow(). Never written.
// constinit: otherwise each access from another file calls a TLS wrapper.
// (tls_switch_state is declared in greenlet_impl.hpp, for retain().)
extern switch_state no_switch_state;

// Whether saved contexts keep MXCSR at offset 0 (checked once per process,
// before any switch; see src/fiber/switch.cpp).
extern bool fp_frame_layout_ok;
// The low byte of a saved MXCSR word that needs no fixing, the common case:
// canonical status bits with the control bits of that byte (the invalid-
// operation mask, denormals-are-zero) the process had at its first use of
// greenlets (0xa0 with the defaults; 0xe0 with -ffast-math's). See
// before_jump_fp().
extern unsigned char fp_usual_low_byte;

// current_impl() is the running greenlet without making a handle (no
// reference count traffic); null before the thread's first use.
[[gnu::always_inline]] inline greenlet_impl* current_impl() noexcept { return tls_switch_state->current; }

value switch_slow(greenlet_impl* target, value&& args);
value after_switch_slow(switch_state& ts, greenlet_impl* self, greenlet_impl* origin);
void canonicalize_fp_register() noexcept;
void before_jump_fp_slow(void* context) noexcept;

// canonical_mxcsr(m) is m with the status bits every saved context gets:
// the precision flag set, the other flags clear (see src/fiber/switch.cpp).
inline constexpr unsigned mxcsr_status_bits = 0x3f;
inline constexpr unsigned mxcsr_precision_flag = 0x20;
constexpr unsigned canonical_mxcsr(unsigned mxcsr) noexcept {
  return (mxcsr & ~mxcsr_status_bits) | mxcsr_precision_flag;
}

[[gnu::always_inline]] inline void canonicalize_saved_fp(void* context) noexcept {
#if defined(__x86_64__)
  auto* word = static_cast<unsigned*>(context);
  // The same test as *word != canonical_mxcsr(*word), in one instruction
  // fewer (no `or`); the rare fix reads the word again.
  if ((*word & mxcsr_status_bits) != mxcsr_precision_flag) [[unlikely]] {
    *word = canonical_mxcsr(*word);
  }
#else
  (void)context;
#endif
}

// before_jump_fp(context) gives the frame a jump is about to load MXCSR from
// the canonical status bits (see src/fiber/switch.cpp), so that the jump
// keeps the CPU's MXCSR as it is. Every jump into a saved context calls it.
// The word read is the first of the frame the jump pops anyway, saved when
// its greenlet last switched away: a cache hit. (Fixing the origin's word
// after landing instead read a word the jump had just stored with stmxcsr,
// which cost ~0.9 ns a switch on AMD EPYC: the store does not forward
// quickly.) Inline, one compare of the word's low byte with the usual one,
// which holds all six status bits: two instructions of every switch where
// testing the layout check and the status bits took eight. Anything else
// (other control bits, a word to fix, a frame layout the check refused, where
// the byte is not MXCSR and the register is canonicalized instead) is out of
// line. With that layout a byte that happens to match skips the register's
// canonicalization: a slower switch at worst, never a write to the frame.
// The sanitizer builds always canonicalize the register (the layout check's
// probe jump would confuse them).
[[gnu::always_inline]] inline void before_jump_fp(void* context) noexcept {
#if defined(__x86_64__) && !defined(GREENLET_ASAN) && !defined(GREENLET_TSAN)
  if (*static_cast<const unsigned char*>(context) != fp_usual_low_byte) [[unlikely]] {
    before_jump_fp_slow(context);
  }
#else
  (void)context;
  canonicalize_fp_register();
#endif
}

// landed(self, back) is the first thing a context does when a jump resumes
// it (or starts it): it stores the context the origin just left, tells the
// sanitizers, and returns the origin.
[[gnu::always_inline]] inline greenlet_impl* landed(greenlet_impl* self,
                                                    boost::context::detail::transfer_t back) noexcept {
  auto* origin = static_cast<greenlet_impl*>(back.data);
  origin->context = back.fctx;
  sanitizers::after_jump(self, origin);
  return origin;
}

// hand_over() is what every jump into target does last, whoever jumps (a
// switch, a dying greenlet, the stack copier): give the C++ runtime target's
// exception state (into `runtime`, the thread's ts.cxa_globals), keep MXCSR
// canonical, make target current and tell the sanitizers. `from` is the
// context the jump leaves; `to` is target->context, read by the caller
// before its own stores (the compiler would read it again after each).
[[gnu::always_inline]] inline void hand_over(switch_state& ts, exception_state* runtime, greenlet_impl* from,
                                             greenlet_impl* target, void* to, bool dying) noexcept {
  // Copied as whole 16-byte words, padding included: one load and one store
  // instead of two (instructions are what a switch costs).
  std::memcpy(runtime, &target->exceptions, sizeof(exception_state));
  before_jump_fp(to);
  ts.current = target;
  sanitizers::before_jump(from, target, dying);
}

// jump_to() makes target current and jumps to it, carrying the C++ runtime's
// exception state and keeping MXCSR canonical. When it returns, some greenlet
// has switched back to `self`; it returns that greenlet. Every switch but a
// dying greenlet's last one goes through here.
[[gnu::always_inline]] inline greenlet_impl* jump_to(switch_state& ts, greenlet_impl* self,
                                                     greenlet_impl* target) noexcept {
  exception_state* runtime = ts.cxa_globals;  // one load: the store below could alias ts
  void* const to = target->context;           // likewise
  std::memcpy(&self->exceptions, runtime, sizeof(exception_state));
  // An unguarded stack has no guard page: its canary tells whether the
  // greenlet we leave overflowed (one compare for other stacks).
  check_stack_canary(self);
  hand_over(ts, runtime, self, target, to, /*dying=*/false);
  return landed(self, boost::context::detail::jump_fcontext(to, self));
}

// suspended_here() says whether target is a suspended greenlet of this
// thread other than self: what any inline switch needs. The owner first:
// another thread's greenlet is not ours to read (the switch then fails in
// switch_slow() with wrong_thread).
[[gnu::always_inline]] inline bool suspended_here(const switch_state* ts, const greenlet_impl* self,
                                                  const greenlet_impl* target) noexcept {
  return target->owner.load(std::memory_order_relaxed) == ts && target->state == run_state::active && target != self;
}

// takes_inline_switch() says whether a switch from self to target can take
// the inline path: suspended here, its stack in place and nobody's lock on
// it. Anything else (including a shared-stack greenlet whose bytes are
// copied out, or a waiting task's, see lock_resume()) goes to switch_slow().
[[gnu::always_inline]] inline bool takes_inline_switch(const switch_state* ts, const greenlet_impl* self,
                                                       const greenlet_impl* target) noexcept {
  return suspended_here(ts, self, target) && !has_detour(target);
}

// takes_owner_switch() is takes_inline_switch() for the owner of a greenlet
// locked with lock_resume(): the lock does not send its switch to the slow
// path (which refuses it).
[[gnu::always_inline]] inline bool takes_owner_switch(const switch_state* ts, const greenlet_impl* self,
                                                      const greenlet_impl* target) noexcept {
  return suspended_here(ts, self, target) && !target->detours.swapped_out;
}

// switched_back() is the resumed side of an inline switch: what came back, after
// the uncommon bookkeeping if anything needs it. The common switch returns an
// empty value the compiler can see is empty, so that the caller's copy and
// destructor of it fold away. It reads the thread's state afresh rather than
// keeping it from before the jump: the jump is a call, so a pointer kept
// across it costs a store and a load, against one load here; the greenlet
// resumed is the current one.
[[gnu::always_inline]] inline value switched_back(greenlet_impl* origin) {
  switch_state* ts = tls_switch_state;
  const unsigned pending = ts->pending;
  if (pending == 0) [[likely]] {
    return value();
  }
  if (pending == pending_work::value_carried) {
    ts->pending = 0;
    return std::move(ts->transfer_value);
  }
  return after_switch_slow(*ts, ts->current, origin);
}

// switch_inline() switches to target carrying args and returns what is
// switched back.
[[gnu::always_inline]] inline value switch_inline(greenlet_impl* target, value&& args) {
  switch_state* ts = tls_switch_state;
  greenlet_impl* self = ts->current;
  if (!takes_inline_switch(ts, self, target)) [[unlikely]] {
    return switch_slow(target, std::move(args));
  }
  ts->transfer_value = std::move(args);
  ts->pending |= pending_work::value_carried;
  return switched_back(jump_to(*ts, self, target));
}

// switch_inline_empty() is switch_inline() carrying nothing, as switch_()
// with no arguments: the transfer slot is empty whenever a greenlet runs
// (each side moves out what it received), so there is nothing to store.
[[gnu::always_inline]] inline value switch_inline_empty(greenlet_impl* target) {
  switch_state* ts = tls_switch_state;
  greenlet_impl* self = ts->current;
  if (!takes_inline_switch(ts, self, target)) [[unlikely]] {
    return switch_slow(target, value());
  }
  return switched_back(jump_to(*ts, self, target));
}

// switch_as_owner() is switch_inline_empty() for the owner of a greenlet it
// locked with lock_resume() (an event loop resuming its task): the lock lets
// it through, and unlocks the target just before the jump: a plain store to
// the lock's own byte, which nothing reads until the target next suspends
// (the checks above read the state and swapped_out bytes), so no load waits
// on it. (When the lock was a bit of the byte the checks read, the target
// had to unlock itself after landing: a read-modify-write the resumer's load
// would have stalled on.) Off the inline path it unlocks the target first,
// for switch_slow() (a first start, a shared-stack target).
[[gnu::always_inline]] inline value switch_as_owner(greenlet_impl* target) {
  switch_state* ts = tls_switch_state;
  greenlet_impl* self = ts->current;
  if (!takes_owner_switch(ts, self, target)) [[unlikely]] {
    unlock_resume(target);
    return switch_slow(target, value());
  }
  unlock_resume(target);
  return switched_back(jump_to(*ts, self, target));
}

}  // namespace greenlet::detail

#pragma GCC visibility pop
