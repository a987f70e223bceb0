// stack_host.hpp: objects of a layer above kept in the top page of their
// greenlet's stack. Internal.
//
// Why: a suspended greenlet on a stack of its own keeps the page its frames
// touched resident (4 KiB), yet a shallow one uses a few hundred bytes of
// it. A task's own objects (its state, its greenlet object: ~700 B) were
// heap memory on top of that page; hosted in the page's unused part they
// cost nothing more. Not faster for it: a stack stays taken while its objects
// live, and objects scattered over stack pages defeat the prefetcher that
// followed them on the heap (docs/asyncio.md, "Compact tasks", has the figures).
//
// A host is a stack taken from the thread's pool before its greenlet exists.
// Its top `bytes` (64-aligned) are the caller's; the greenlet made on it
// (greenlet::hosted_on_stack()) runs below them. The host counts references:
// one for the caller's objects (taken by acquire_stack_host()), one for the
// greenlet object; the stack goes back to the pool when both are released,
// so a finished greenlet's stack stays while a handle to its objects does.
#pragma once

#include <cstddef>

#include "greenlet/detail/greenlet_impl.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::detail {

struct stack_host;

// The most a caller may host: what the top page holds beside a shallow
// greenlet's frames (bigger objects stay on the heap).
inline constexpr std::size_t max_hosted_bytes = 2048;
inline constexpr std::size_t hosted_alignment = 64;
constexpr std::size_t hosted_size(std::size_t bytes) noexcept {
  return (bytes + hosted_alignment - 1) & ~(hosted_alignment - 1);
}

// acquire_stack_host(bytes, stack) is a host of `bytes` for a greenlet on this
// thread with stack options `stack`, holding one reference for the caller; or
// null where hosting is not done: stack copying, bytes over max_hosted_bytes,
// AddressSanitizer or Valgrind (which must see objects on the heap to
// report their misuse), or a pool that cannot give a stack now (the
// greenlet then gets, or fails to get, a stack at its first switch as usual).
// Throws nothing.
stack_host* acquire_stack_host(std::size_t bytes, const stack_options& stack) noexcept;
// stack_host_memory(h) is the caller's memory: hosted_size(bytes) bytes, 64-aligned.
void* stack_host_memory(stack_host* h) noexcept;
// release_stack_host(h) (declared in greenlet_impl.hpp, whose objects call it)
// drops one reference; the last gives the stack back to its thread's pool. On
// another thread, or once the owning thread has exited, the stack is kept
// (leaked with its pool's mapping): only the owner's pool may take it, and a
// host released there is one whose objects outlived it. Throws nothing.
// host_greenlet(g, h): g, not yet adopted, is built in h's memory and will run
// on h's stack; it takes a reference to h, dropped when g's object is.
void host_greenlet(greenlet_impl* g, stack_host* h) noexcept;

}  // namespace greenlet::detail

#pragma GCC visibility pop
