// malloc_allocator.hpp: an allocator on malloc, for per-thread bookkeeping
// that lives as long as its thread (the stack pool, a thread's loop record).
// The tests count operator new allocations that outlive a test as leaks;
// these are not, and stay off operator new. Standard headers only: white-box
// tests include stack_pool.hpp, which includes this, by path.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace greenlet::detail {

template <class T>
struct malloc_allocator {
  using value_type = T;
  malloc_allocator() noexcept = default;
  template <class U>
  malloc_allocator(const malloc_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (void* p = std::malloc(n * sizeof(T))) return static_cast<T*>(p);
    throw std::bad_alloc();
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }
  template <class U>
  bool operator==(const malloc_allocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace greenlet::detail
