// stack_canary.hpp: overflow detection for unguarded stacks.
//
// An unguarded stack has no inaccessible page below it, so a greenlet that
// overflows it writes into whatever lies below: in a slab, the top frames of
// the neighbouring stack. To catch that, the stack pool writes a canary word
// at the lowest usable bytes of every unguarded stack it hands out
// (write_stack_canary), and the switch path checks it when a greenlet
// switches away or dies (check_stack_canary). A broken canary means memory
// below the stack is already overwritten: the process is ended with a report
// naming the greenlet, as a guard-page hit is (overflow_report.cpp).
//
// It is best effort: a frame larger than the remaining stack can jump over
// the canary without writing it. Guarded stacks (the default) catch every
// overflow that reaches the guard page; use them when in doubt.
//
// Public only because the inline switch (switch_inline.hpp) calls the check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "greenlet/detail/greenlet_impl.hpp"

// Everything this header declares is exported even though the library is
// built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::detail {

// The canary is a constant mixed with its own address, so that zeroed
// memory, a copy of another stack's bytes or a stray pointer do not match.
inline std::uint64_t stack_canary_value(const void* limit) noexcept {
  return 0x6772'6565'6e6c'6574ULL ^ std::uint64_t{reinterpret_cast<std::uintptr_t>(limit)};
}

// write_stack_canary() writes the canary at limit, the lowest usable byte of
// an unguarded stack (8-byte aligned).
inline void write_stack_canary(void* limit) noexcept {
  *static_cast<volatile std::uint64_t*>(limit) = stack_canary_value(limit);
}

// has_stack_canary(g): g runs on an unguarded stack from the pool, the only
// kind with a canary. The pool marks those by mapping == limit (a guarded
// stack's mapping starts a guard page lower; the main greenlet, unstarted and
// dead ones have no limit; a shared-stack greenlet's limit is not its mapping).
inline bool has_stack_canary(const greenlet_impl* g) noexcept {
  return g->stack_limit != nullptr && g->stack_mapping == g->stack_limit;
}

// stack_canary_intact(g) is false when g has an unguarded stack whose canary
// was overwritten; true for every greenlet without a canary. One compare and,
// when unguarded, one load.
[[gnu::always_inline]] inline bool stack_canary_intact(const greenlet_impl* g) noexcept {
  if (!has_stack_canary(g)) return true;
  return *static_cast<const volatile std::uint64_t*>(g->stack_limit) == stack_canary_value(g->stack_limit);
}

// stack_canary_report(g) is the readable report for a broken canary: which
// greenlet (id and name), its stack size, and how to get a bigger or guarded
// stack.
std::string stack_canary_report(const greenlet_impl* g);

// stack_canary_broken(g) writes stack_canary_report(g) to stderr and aborts:
// the overflow has already overwritten memory below g's stack (another
// greenlet's frames), so nothing can safely run on.
[[noreturn]] void stack_canary_broken(const greenlet_impl* g) noexcept;

// stack_canary_broken_at_release(size) is the pool's own last-resort check
// (a released unguarded stack whose canary is gone), for when the switch
// path did not check first: the same report without the greenlet's name.
[[noreturn]] void stack_canary_broken_at_release(std::size_t stack_size) noexcept;

// check_stack_canary(g) is what the switch path calls for the greenlet it
// leaves (and for a dying greenlet before its stack goes back to the pool).
[[gnu::always_inline]] inline void check_stack_canary(const greenlet_impl* g) noexcept {
  if (!stack_canary_intact(g)) [[unlikely]] {
    stack_canary_broken(g);
  }
}

}  // namespace greenlet::detail

#pragma GCC visibility pop
