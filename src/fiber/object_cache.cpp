// object_cache.cpp: memory for greenlet objects, from the thread's cache.
#include "fiber/object_cache.hpp"

#include <cstdlib>
#include <new>

#include "fiber/thread_state.hpp"
#include "greenlet/detail/sanitizers.hpp"

namespace greenlet::detail {

namespace {

// With AddressSanitizer every object goes back to free(), so that a use of a
// freed greenlet is reported rather than hidden by its reuse.
#if defined(GREENLET_ASAN)
constexpr bool cache_objects = false;
#else
constexpr bool cache_objects = true;
#endif

}  // namespace

void* allocate_greenlet(std::size_t bytes) {
  if (!cache_objects || bytes > object_cache::max_bytes) {
    if (void* p = std::malloc(bytes)) return p;
    throw std::bad_alloc();
  }
  if (thread_state* ts = tls_state; ts != nullptr) [[likely]] {
    if (void* p = ts->objects.take(bytes)) return p;
  }
  if (void* p = std::malloc(object_cache::class_bytes(object_cache::class_of(bytes)))) return p;
  throw std::bad_alloc();
}

void free_greenlet(void* p, std::size_t bytes) noexcept {
  if (cache_objects && bytes <= object_cache::max_bytes) {
    // A thread whose state is gone (or that never used greenlets) frees
    // what it frees: nothing would drain its cache.
    if (thread_state* ts = tls_state; ts != nullptr && ts->objects.give(p, bytes)) return;
  }
  std::free(p);
}

}  // namespace greenlet::detail
