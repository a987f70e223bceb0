// stack_copy.hpp: stack_mode::shared, greenlet's own technique. The shared
// greenlets of a thread run on one shared stack; the one whose bytes are
// there is the thread's shared_owner. Switching to a shared greenlet that is
// swapped out first copies the owner's used bytes ([context, stack_base)) to
// the heap, then copies the target's back, then jumps.
#pragma once

#include <boost/context/detail/fcontext.hpp>

#include "fiber/thread_state.hpp"

namespace greenlet::detail {

// The entry point of every greenlet's first context (switch.cpp).
[[noreturn]] void greenlet_entry(boost::context::detail::transfer_t from) noexcept;
// jump_dying() is a dead greenlet's last jump, to `to` (switch.cpp).
[[noreturn]] void jump_dying(thread_state& ts, greenlet_impl* self, greenlet_impl* to) noexcept;

// The mode GREENLET_STACK_MODE asks for (separate or shared; separate when
// it is unset), read once per process.
stack_mode process_default_mode() noexcept;

// The stack mode (separate or shared) a greenlet made now with `options`
// gets on this thread. Inline: it runs for every greenlet made.
stack_mode resolve_shared_mode(const thread_state& ts, const stack_options& options) noexcept;
inline stack_mode resolve_stack_mode(const thread_state& ts, const stack_options& options) noexcept {
  const stack_mode mode = options.mode != stack_mode::inherit ? options.mode : ts.default_mode;
  if (mode != stack_mode::shared) return mode;
  return resolve_shared_mode(ts, options);  // shared, unless it asks for more than the shared stack
}

// start_shared() gives an unstarted shared greenlet the thread's shared
// stack; its first context is made when it is swapped in.
void start_shared(thread_state& ts, greenlet_impl* g);

// switch_to_swapped() is jump_to() for a target whose bytes are copied out:
// it puts them back (through the copier when self runs on the shared stack)
// and jumps. Returns what jump_to returns; see resumed_origin().
greenlet_impl* switch_to_swapped(thread_state& ts, greenlet_impl* self, greenlet_impl* target);

// read_swapped_out(ts, target, read, arg) lets get_stack() read swapped-out target's stack in
// place: it puts target's bytes back on the shared stack (copying the owner's out) and calls
// read(ts, target, arg), which reads target without running it. When the running greenlet is the
// one on the shared stack, the copier does that on its own stack and then puts the reader's bytes
// back. Throws std::bad_alloc (the buffers are sized before any byte moves).
void read_swapped_out(thread_state& ts, greenlet_impl* target,
                      void (*read)(thread_state&, greenlet_impl*, void*) noexcept, void* arg);

// die_into_swapped() is a dying greenlet's last jump when its target's bytes
// are copied out.
[[noreturn]] void die_into_swapped(thread_state& ts, greenlet_impl* self, greenlet_impl* target) noexcept;

// A greenlet resumed through the copier sees the copier as its origin;
// resumed_origin() gives the greenlet that really switched.
inline greenlet_impl* resumed_origin(const thread_state& ts, greenlet_impl* origin) noexcept {
  return origin == ts.copier ? ts.copy_origin : origin;
}

// release_shared() forgets a dead shared greenlet's bytes.
void release_shared(thread_state& ts, greenlet_impl* g) noexcept;

// close_shared_stacks() gives the shared and copier stacks back at thread exit.
void close_shared_stacks(thread_state& ts) noexcept;

}  // namespace greenlet::detail
