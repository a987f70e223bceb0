#include "fiber/stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <valgrind/valgrind.h>

#include "greenlet/detail/sanitizers.hpp"
#include "greenlet/errors.hpp"

namespace greenlet::detail {

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

std::size_t round_to_pages(std::size_t bytes) noexcept {
  const std::size_t page = page_size();
  return (bytes + page - 1) / page * page;
}

namespace {

std::string max_map_count() {
  std::ifstream in("/proc/sys/vm/max_map_count");
  std::string value;
  if (!(in >> value)) value = "unknown";
  return value;
}

}  // namespace

stack_pool::~stack_pool() {
  for (std::size_t i = 0; i < buckets_used_; ++i) {
    for (free_node* n = buckets_[i].head; n != nullptr;) {
      free_node* next = n->next;
      unmap_stack(fiber_stack(n->stack));
      n = next;
    }
  }
}

stack_pool::bucket* stack_pool::bucket_for(std::size_t size, bool guarded) noexcept {
  for (std::size_t i = 0; i < buckets_used_; ++i) {
    if (buckets_[i].size == size && buckets_[i].guarded == guarded) return &buckets_[i];
  }
  if (buckets_used_ == max_buckets) return nullptr;
  bucket& b = buckets_[buckets_used_++];
  b.size = size;
  b.guarded = guarded;
  return &b;
}

fiber_stack stack_pool::acquire(std::size_t size, bool guarded) {
  size = round_to_pages(size);
  bucket* b = bucket_for(size, guarded);
  if (b != nullptr && b->head != nullptr) {
    free_node* n = b->head;
    b->head = n->next;
    --b->count;
    return n->stack;
  }
  return map_stack(size, guarded);
}

void stack_pool::release(const fiber_stack& stack) noexcept {
  bucket* b = bucket_for(stack.size, stack.guarded);
  if (b == nullptr || b->count == max_pooled_per_bucket) {
    unmap_stack(stack);
    return;
  }
#if defined(GREENLET_ASAN)
  // The dead fiber's frames may have left poison where the node goes.
  ASAN_UNPOISON_MEMORY_REGION(stack.limit, stack.size);
#endif
  auto* n = reinterpret_cast<free_node*>(static_cast<char*>(stack.base) - sizeof(free_node));
  n->next = b->head;
  n->stack = stack;
  b->head = n;
  ++b->count;
}

fiber_stack stack_pool::map_stack(std::size_t size, bool guarded) {
  const std::size_t guard = guarded ? page_size() : 0;
  const std::size_t total = size + guard;
  // MAP_NORESERVE: a stack costs memory only for the pages a fiber touches.
  void* mapping = ::mmap(nullptr, total, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  int err = errno;
  if (mapping != MAP_FAILED && guarded && ::mprotect(mapping, guard, PROT_NONE) != 0) {
    err = errno;
    ::munmap(mapping, total);
    mapping = MAP_FAILED;
  }
  if (mapping == MAP_FAILED) {
    // Each guarded stack is two kernel mappings; Linux allows vm.max_map_count
    // (65530 by default) per process, so ~32,000 guarded stacks exhaust it.
    throw ::greenlet::error(
        errc::stack_exhausted,
        "greenlet: cannot map a " + std::to_string(total) + "-byte fiber stack (" +
            std::strerror(err) + "); " + std::to_string(mapped_) +
            " stacks are mapped by this thread and vm.max_map_count is " + max_map_count() +
            ". Finish or drop suspended greenlets, use smaller stacks, use unguarded stacks "
            "(stack_options{.guard_page = false}), or raise the limit: "
            "sysctl -w vm.max_map_count=262144");
  }
  ++mapped_;
  fiber_stack s;
  s.mapping = mapping;
  s.mapping_size = total;
  s.limit = static_cast<char*>(mapping) + guard;
  s.base = static_cast<char*>(mapping) + total;
  s.size = size;
  s.guarded = guarded;
  s.valgrind_id = VALGRIND_STACK_REGISTER(s.limit, s.base);
  return s;
}

void stack_pool::unmap_stack(const fiber_stack& stack) noexcept {
  VALGRIND_STACK_DEREGISTER(stack.valgrind_id);
  ::munmap(stack.mapping, stack.mapping_size);
  --mapped_;
}

}  // namespace greenlet::detail
