// stack_pool.hpp: per-thread pool of fiber stacks.
//
// Self-contained (standard headers only), so white-box tests can include it
// by path.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "malloc_allocator.hpp"

namespace greenlet::detail {

// fiber_stack is one stack: usable memory is [limit, base). A guarded stack
// is its own mapping, [mapping, mapping + mapping_size), with an inaccessible
// guard page just below limit. An unguarded stack is carved from a slab;
// then mapping == limit and mapping_size == size, and the canary word
// (stack_canary.hpp) sits at limit.
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
// thread and is not synchronized.
//
// Guarded stacks are one mmap each plus an mprotect'd guard page, which
// splits the mapping: two kernel mappings per stack, whatever the layout.
// Linux allows vm.max_map_count (65530 by default) mappings per process, so
// ~32,000 guarded stacks is the ceiling.
//
// Unguarded stacks are carved from slabs: one MAP_NORESERVE mapping holding
// up to slab_max_bytes of stacks of one size (the kernel also merges adjacent
// slabs), so a million stacks take a few hundred mappings and cost memory
// only for the pages fibers touch. See stack_pool.cpp for the layout.
//
// acquire() throws greenlet::error(errc::stack_exhausted) naming
// vm.max_map_count, the stacks mapped and the fixes when the kernel refuses.
class stack_pool {
 public:
  stack_pool();
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;
  ~stack_pool();

  // acquire(size, guarded) is a stack of at least size bytes; release()
  // takes it back. The common case is inline: a guarded stack of the size
  // used last, pooled (a pop or a push: the general path, a bucket search and
  // sanitizer bookkeeping, was a tenth of creating and finishing a greenlet).
  fiber_stack acquire(std::size_t size, bool guarded) {
    size = (size + page_ - 1) & ~(page_ - 1);
    bucket* b = guarded_hint_;
    if (guarded && b != nullptr && b->size == size && b->head != nullptr) [[likely]] {
      free_node* n = b->head;
      b->head = n->next;
      --b->count;
      return guarded_stack_layout(n, size);
    }
    return acquire_slow(size, guarded);
  }
  void release(const fiber_stack& stack) noexcept {
    bucket* b = guarded_hint_;
    if (stack.guarded && b != nullptr && b->size == stack.size && b->count < max_pooled_guarded) [[likely]] {
      push_guarded(*b, stack);
      return;
    }
    release_slow(stack);
  }

  // memory_checked() says AddressSanitizer or Valgrind watches this process's
  // memory: the shortcuts that would hide memory from them are off.
  bool memory_checked() const noexcept { return !hint_allowed_; }

  // How many stacks are mapped (in use or pooled, slab stacks once carved),
  // for error reports.
  std::size_t mapped() const noexcept { return mapped_; }
  // How many kernel mappings the pool holds: two per guarded stack, one per
  // slab (fewer in the kernel's count when adjacent slabs merge).
  std::size_t kernel_mappings() const noexcept { return 2 * guarded_mapped_ + individual_ + slabs_.size(); }
  std::size_t slab_count() const noexcept { return slabs_.size(); }

  // Up to warm_budget released unguarded stacks per stack size keep their
  // pages (reuse costs no page fault); past it, a released stack's pages go
  // back to the kernel (madvise MADV_DONTNEED) and it is pooled "cold"
  // (while released stacks are held, see hold_released(), only at trim_warm()).
  // The madvise calls are batched: every purge_batch such releases, the
  // stacks are sorted and adjacent ones given back in one call (one TLB
  // shootdown for a run of stacks, not one per stack).
  // The environment variable GREENLET_STACK_WARM_BUDGET sets it for threads
  // that start using greenlets afterwards.
  static constexpr std::size_t default_warm_budget = 1024;
  static constexpr std::size_t purge_batch = 256;
  void set_warm_budget(std::size_t stacks);
  std::size_t warm_budget() const noexcept { return warm_budget_; }
  // trim() gives back now the pages still queued for the next batch.
  void trim() noexcept {
    if (!purge_.empty()) purge();
  }
  // hold_released(true) keeps the pages of every released stack, past the
  // warm budget too, until trim_warm() or hold_released(false): the event
  // loop holds them while it is busy (a burst of tasks finishing is often
  // followed by another starting: page faults saved) and lets them go when
  // it is about to wait. Resident memory never exceeds what the stacks
  // used when they were all in use.
  void hold_released(bool hold) noexcept {
    hold_ = hold;
    if (!hold) trim_warm();
  }
  // trim_warm() gives back the pages of the warm stacks past the budget,
  // those released longest ago first.
  void trim_warm() noexcept;
  // Pooled unguarded stacks, warm (resident pages) and cold (given back or
  // queued to be).
  std::size_t pooled_warm() const noexcept;
  std::size_t pooled_cold() const noexcept;

  // Slab geometry, exposed for tests.
  static constexpr std::size_t slab_max_bytes = std::size_t{64} << 20;
  static constexpr std::size_t slab_min_stacks = 16;
  // Bytes between a page boundary and the stack limit above it (where the
  // canary goes): see the layout in stack_pool.cpp.
  static constexpr std::size_t canary_room = 64;

 private:
  // fresh must be 0 (calloc). purging: pooled cold, pages not given back yet (in purge_).
  enum class slot_state : std::uint8_t { fresh, in_use, warm, purging, cold };
  struct slab {
    char* begin = nullptr;
    std::size_t bytes = 0;
    std::size_t stack_size = 0;
    // index_in() divides by stack_size as a shift and a multiplication.
    unsigned size_shift = 0;
    std::uint64_t size_inverse = 0;
    std::uint32_t count = 0;   // stacks it holds
    std::uint32_t carved = 0;  // stacks [carved, count) were never handed out
    std::uint32_t in_use = 0;
    slot_state* state = nullptr;  // calloc'd: count entries, all fresh
    void set_stack_size(std::size_t size) noexcept;
  };
  using limit_list = std::vector<char*, malloc_allocator<char*>>;
  // A pooled guarded stack keeps its own free-list node in its top bytes:
  // just the link, the rest follows from where it is (guarded_stack_at()).
  struct free_node {
    free_node* next;
  };
  // guarded_stack_layout(node, size) is the pooled guarded stack of `size`
  // bytes whose free-list node is `node`, as map_stack() made it. Built in
  // one initializer, straight into the caller's: GCC built it field by field
  // in a temporary and copied that with 16-byte loads, each waiting for the
  // two 8-byte stores under it to reach the cache.
  fiber_stack guarded_stack_layout(free_node* node, std::size_t size) const noexcept {
    char* base = reinterpret_cast<char*>(node) + sizeof(free_node);
    char* limit = base - size;
    return fiber_stack{limit - page_, size + page_, limit, base, size, /*guarded=*/true, 0};
  }
  // guarded_stack_at() is guarded_stack_layout(), registered with Valgrind.
  fiber_stack guarded_stack_at(free_node* node, std::size_t size) const noexcept;
  struct bucket {
    std::size_t size = 0;
    bool guarded = false;
    // guarded stacks
    free_node* head = nullptr;
    std::size_t count = 0;
    // unguarded stacks: free slots, and the slab still holding fresh ones.
    // Both vectors have capacity for every stack of the bucket's slabs, so
    // release() never allocates.
    limit_list warm;  // stack limits
    limit_list cold;
    slab* current = nullptr;
    std::size_t stacks = 0;  // in all of its slabs
  };
  static constexpr std::size_t max_pooled_guarded = 1024;  // per bucket; more are unmapped
  static constexpr std::size_t max_buckets = 8;            // distinct (size, guard) kinds pooled

  static void push_guarded(bucket& b, const fiber_stack& stack) noexcept {
    auto* n = reinterpret_cast<free_node*>(static_cast<char*>(stack.base) - sizeof(free_node));
    n->next = b.head;
    b.head = n;
    ++b.count;
  }
  fiber_stack acquire_slow(std::size_t size, bool guarded);
  void release_slow(const fiber_stack& stack) noexcept;
  bucket* bucket_for(std::size_t size, bool guarded) noexcept;
  fiber_stack map_stack(std::size_t size, bool guarded);
  void unmap_stack(const fiber_stack& stack) noexcept;
  fiber_stack take_slot(bucket& b, slab& owner, std::uint32_t index) noexcept;
  void add_slab(bucket& b);
  void reserve_warm(bucket& b, std::size_t stacks);
  void send_cold(bucket& b, slab& owner, std::uint32_t index, char* limit) noexcept;
  slab* slab_of(const void* address) const noexcept;
  static std::uint32_t index_in(const slab& owner, const char* limit) noexcept;
  void purge() noexcept;
  [[noreturn]] void exhausted(std::size_t bytes, int err, bool guarded);
  const std::string& process_mappings_now();

  std::array<bucket, max_buckets> buckets_{};
  // The guarded bucket used last, for the inline acquire() and release();
  // null under Valgrind and AddressSanitizer, whose bookkeeping for each
  // stack is in the general path.
  bucket* guarded_hint_ = nullptr;
  bool hint_allowed_ = false;
  void track_guarded(bucket* b) noexcept {
    if (hint_allowed_) guarded_hint_ = b;
  }
  std::size_t page_;
  std::size_t buckets_used_ = 0;
  std::vector<slab*, malloc_allocator<slab*>> slabs_;  // malloc'd, sorted by begin
  limit_list purge_;                                   // limits of stacks to give back (capacity purge_batch)
  std::size_t mapped_ = 0;
  std::size_t guarded_mapped_ = 0;
  std::size_t individual_ = 0;  // unguarded stacks mapped alone (no bucket left)
  std::size_t warm_budget_ = default_warm_budget;
  bool hold_ = false;
  // The process's mapping count for exhaustion reports, and when it was read
  // (see process_mappings_now()).
  std::string mappings_counted_;
  std::chrono::steady_clock::time_point mappings_counted_at_{};
};

// page_size() is the system page size; round_to_pages() rounds up to it.
std::size_t page_size() noexcept;
std::size_t round_to_pages(std::size_t bytes) noexcept;

}  // namespace greenlet::detail
