// stack_pool.hpp: per-thread pool of fiber stacks.
#pragma once

#include <cstddef>
#include <array>

namespace greenlet::detail {

// fiber_stack is one mapped stack: usable memory is [limit, base), with an
// inaccessible guard page just below limit when guarded.
struct fiber_stack {
  void* mapping = nullptr;
  std::size_t mapping_size = 0;
  void* limit = nullptr;
  void* base = nullptr;
  std::size_t size = 0;
  bool guarded = false;
  unsigned valgrind_id = 0;
};

// stack_pool hands out stacks and takes them back for reuse, so creating a
// greenlet costs no system call once the pool is warm. It belongs to one
// thread and is not synchronized. acquire() throws greenlet::error
// (errc::stack_exhausted) naming vm.max_map_count when the kernel refuses.
class stack_pool {
 public:
  stack_pool() = default;
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;
  ~stack_pool();

  fiber_stack acquire(std::size_t size, bool guarded);
  void release(const fiber_stack& stack) noexcept;

  // How many stacks are mapped (in use or pooled), for error reports.
  std::size_t mapped() const noexcept { return mapped_; }

 private:
  // A pooled stack keeps its own free-list node in its top bytes, so the
  // pool allocates nothing on the heap.
  struct free_node {
    free_node* next;
    fiber_stack stack;
  };
  struct bucket {
    std::size_t size = 0;
    bool guarded = false;
    free_node* head = nullptr;
    std::size_t count = 0;
  };
  static constexpr std::size_t max_pooled_per_bucket = 1024;
  static constexpr std::size_t max_buckets = 8;  // distinct (size, guard) kinds pooled

  bucket* bucket_for(std::size_t size, bool guarded) noexcept;
  fiber_stack map_stack(std::size_t size, bool guarded);
  void unmap_stack(const fiber_stack& stack) noexcept;

  std::array<bucket, max_buckets> buckets_{};
  std::size_t buckets_used_ = 0;
  std::size_t mapped_ = 0;
};

// page_size() is the system page size; round_to_pages() rounds up to it.
std::size_t page_size() noexcept;
std::size_t round_to_pages(std::size_t bytes) noexcept;

}  // namespace greenlet::detail
