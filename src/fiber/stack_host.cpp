// stack_host.cpp: a stack whose top bytes hold the objects of the layer above
// (stack_host.hpp says why).
//
// Layout, from the top of the stack down:
//     [base - 64, base)                  the stack_host record
//     [memory, base - 64)                the caller's bytes (hosted_size), then a
//                                        gap of 0-15 cache lines (the colour)
//     [limit, memory)                    the greenlet's stack
#include "greenlet/detail/stack_host.hpp"

#include <cstdint>
#include <new>

#include "fiber/stack_copy.hpp"
#include "fiber/thread_state.hpp"

namespace greenlet::detail {

struct stack_host {
  fiber_stack stack;          // as the pool gave it
  std::uint64_t owner_index;  // thread_state::thread_index of the thread whose pool it came from
  std::uint32_t bytes;        // the caller's, hosted_size(), plus the colour's gap
  std::uint32_t refs;
};

namespace {

constexpr std::size_t record_bytes = hosted_alignment;
constexpr unsigned colours = 16;
static_assert(sizeof(stack_host) <= record_bytes);

char* memory_of(const stack_host* h) noexcept { return static_cast<char*>(h->stack.base) - record_bytes - h->bytes; }

}  // namespace

stack_host* acquire_stack_host(std::size_t bytes, const stack_options& options) noexcept {
  if (bytes > max_hosted_bytes) return nullptr;
  try {
    thread_state& ts = state();
    if (ts.stacks.memory_checked() || resolve_stack_mode(ts, options) == stack_mode::shared) return nullptr;
    const std::size_t size = options.size != 0 ? options.size : default_stack_size();
    const fiber_stack s = ts.stacks.acquire(size, options.guard_page);
    // Every stack's top lies at the same offset in its page, so without this
    // the hosted objects of all tasks would compete for the same few L1 cache
    // sets (ten tasks stepping in turn ran ~20% slower): each host leaves a gap of
    // 0 to 15 cache lines above its objects, in turn.
    static thread_local unsigned colour = 0;
    colour = (colour + 1) % colours;
    auto* h = ::new (static_cast<char*>(s.base) - record_bytes)
        stack_host{s, ts.thread_index, static_cast<std::uint32_t>(hosted_size(bytes) + colour * hosted_alignment), 1};
    return h;
  } catch (...) {
    // No stack now (vm.max_map_count, memory): the greenlet asks again at its
    // first switch, where the failure is reported as usual.
    return nullptr;
  }
}

void* stack_host_memory(stack_host* h) noexcept { return memory_of(h); }

void release_stack_host(stack_host* h) noexcept {
  thread_state* ts = tls_state;
  if (ts == nullptr || ts->thread_index != h->owner_index) return;  // outlived its thread: kept
  if (--h->refs != 0) return;
  const fiber_stack s = h->stack;
  h->~stack_host();
  ts->stacks.release(s);
}

void host_greenlet(greenlet_impl* g, stack_host* h) noexcept {
  g->host = h;
  ++h->refs;
}

// The size stays the whole stack's, hosted bytes included: it is what the
// greenlet's stack_size() and an overflow report give, and what the options
// asked for (make_fcontext uses only the top).
fiber_stack hosted_stack(const stack_host* h) noexcept {
  fiber_stack s = h->stack;
  s.base = memory_of(h);
  return s;
}

}  // namespace greenlet::detail
