// callback_context.hpp: the context a scheduled callback runs in. Internal: the event loop's
// callbacks capture the context current when they are scheduled and run in it, as asyncio's Handle
// runs its callback in `context or copy_context()`; users never include it.
#pragma once

#include <utility>

#include "greenlet/detail/greenlet_impl.hpp"
#include "greenlet/detail/switch_inline.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::detail {

// captured_context() is the values of the calling greenlet's current context, for a callback
// scheduled now: null while no variable is set, and on a thread that never used greenlets (whose
// state is not made for this). Throws nothing; any thread.
inline context_ptr captured_context() noexcept {
  const greenlet_impl* current = tls_switch_state->current;  // null before the thread's first greenlet
  return current == nullptr ? context_ptr() : current->context_vars.vars;
}

// context_to_capture() is the calling greenlet's context values if any variable is set, else null
// (also on a thread that never used greenlets, whose state is not made for this). call_soon() calls
// it every time: it is three loads and two tests, with no shared_ptr made or destroyed. Throws
// nothing; any thread.
[[gnu::always_inline]] inline const context_ptr* context_to_capture() noexcept {
  const greenlet_impl* current = tls_switch_state->current;  // null before the thread's first greenlet
  if (current == nullptr) return nullptr;
  const context_ptr& vars = current->context_vars.vars;
  return vars != nullptr ? &vars : nullptr;
}

// enter_callback_context()'s rare case, out of line so that the common one stays a few
// instructions and needs no registers saved. Throws nothing.
[[gnu::noinline]] inline void reset_context_slot(context_slot& slot, context_ptr& captured) noexcept {
  slot.vars = std::move(captured);
  slot.id = 0;
}

// enter_callback_context(slot, captured) makes `slot`, the context slot of the greenlet running
// the loop (which loop_core::run_forever() sets aside for the loop's callbacks), a new context
// holding `captured` (moved from) for the callback about to run: a fresh identity (0: its first
// set() names it, so a token it makes is refused in any other callback) and none of what the
// previous callback set, which is dropped now rather than after that callback: nothing is kept
// across the call, and a callback that throws needs no cleanup. While nothing was captured and
// nothing set, this is three loads and three tests: every call_soon() callback takes it.
[[gnu::always_inline]] inline void enter_callback_context(context_slot& slot, context_ptr& captured) noexcept {
  if (slot.vars != nullptr || slot.id != 0 || captured != nullptr) [[unlikely]]
    reset_context_slot(slot, captured);
}

}  // namespace greenlet::detail

#pragma GCC visibility pop
