// stack_pool.cpp: guarded stacks mapped one by one, unguarded stacks carved
// from slabs.
//
// Slab layout. A slab holds n stacks of size S (a multiple of the page size
// P) in one mapping of n*S + P bytes. Stack i is
//     [begin + i*S + P - canary_room, begin + (i+1)*S + P - canary_room)
// so each stack's lowest bytes (its canary, stack_canary.hpp) share a page
// with the top of the stack below it, the page that stack's fiber touches
// anyway. A suspended fiber whose frames fit in one page thus costs one
// resident page, canary included, instead of two (top page + canary page).
// The price: the page holding stack i's top also holds stack i+1's canary,
// so giving stack i's pages back must leave that page alone while stack i+1
// is in use (purge()).
#include "fiber/stack_pool.hpp"

#include "fiber/environment.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include <valgrind/valgrind.h>

#include "greenlet/detail/sanitizers.hpp"
#include "greenlet/detail/stack_canary.hpp"
#include "greenlet/errors.hpp"

namespace greenlet::detail {

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

// A mask, not a division: the page size is a power of two, and a 64-bit
// division (~40 cycles here) was a tenth of creating a greenlet.
std::size_t round_to_pages(std::size_t bytes) noexcept {
  const std::size_t page = page_size();
  return (bytes + page - 1) & ~(page - 1);
}

namespace {

std::string max_map_count() {
  std::ifstream in("/proc/sys/vm/max_map_count");
  std::string value;
  if (!(in >> value)) value = "unknown";
  return value;
}

// The process's kernel mappings right now (lines of /proc/self/maps).
std::string process_mappings() {
  std::ifstream in("/proc/self/maps");
  if (!in) return "unknown";
  std::size_t lines = 0;
  std::string line;
  while (std::getline(in, line)) ++lines;
  return std::to_string(lines);
}

// Valgrind is told every fiber stack's bounds (without them it takes a jump
// between stacks for one huge frame). A client request costs a dozen
// instructions and six stores even outside Valgrind, twice per greenlet
// created, so whether we run under it is asked once. A function's static,
// not a namespace-scope one: a greenlet made by another file's static
// initializer may come first.
bool under_valgrind() noexcept {
  static const bool under = RUNNING_ON_VALGRIND != 0;
  return under;
}

unsigned register_with_valgrind(void* limit, void* base) noexcept {
  return under_valgrind() ? VALGRIND_STACK_REGISTER(limit, base) : 0;
}

void deregister_with_valgrind(unsigned id) noexcept {
  if (under_valgrind()) VALGRIND_STACK_DEREGISTER(id);
}

constexpr int stack_protection = PROT_READ | PROT_WRITE;
// MAP_NORESERVE: a stack costs memory only for the pages a fiber touches.
constexpr int stack_flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK;

}  // namespace

stack_pool::stack_pool() : page_(page_size()) {
#if !defined(GREENLET_ASAN)
  hint_allowed_ = !under_valgrind();
#endif
  warm_budget_ = size_from_environment("GREENLET_STACK_WARM_BUDGET", warm_budget_);
}

stack_pool::~stack_pool() {
  for (std::size_t i = 0; i < buckets_used_; ++i) {
    for (free_node* n = buckets_[i].head; n != nullptr;) {
      free_node* next = n->next;
      const fiber_stack stack = guarded_stack_at(n, buckets_[i].size);
      deregister_with_valgrind(stack.valgrind_id);
      unmap_stack(stack);
      n = next;
    }
  }
  // A slab with a stack still in use (a greenlet that refused to die at
  // thread exit) is leaked with it, as a lone stack would be.
  for (slab* s : slabs_) {
    if (s->in_use == 0) ::munmap(s->begin, s->bytes);
    std::free(s->state);
    std::free(s);
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

std::size_t stack_pool::pooled_warm() const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < buckets_used_; ++i) n += buckets_[i].warm.size();
  return n;
}

std::size_t stack_pool::pooled_cold() const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < buckets_used_; ++i) n += buckets_[i].cold.size();
  return n;
}

void stack_pool::set_warm_budget(std::size_t stacks) {
  warm_budget_ = stacks;
  for (std::size_t i = 0; i < buckets_used_; ++i) {
    if (!buckets_[i].guarded) reserve_warm(buckets_[i], buckets_[i].stacks);
  }
}

// reserve_warm(b, stacks) gives b's warm list room for what may come back
// warm out of `stacks` (release() never allocates): the budget, or all of
// them while released stacks are held. Growing geometrically: each growth
// is a large allocation, and a million stacks come in ~250 slabs.
void stack_pool::reserve_warm(bucket& b, std::size_t stacks) {
  const std::size_t want = hold_ ? stacks : std::min(stacks, warm_budget_);
  if (b.warm.capacity() < want) b.warm.reserve(std::max(want, 2 * b.warm.capacity()));
}

void stack_pool::trim_warm() noexcept {
  for (std::size_t i = 0; i < buckets_used_; ++i) {
    bucket& b = buckets_[i];
    if (b.guarded || b.warm.size() <= warm_budget_) continue;
    // The front of the list was released longest ago (acquire() takes from
    // the back), so it is the least likely to be in cache.
    const std::size_t excess = b.warm.size() - warm_budget_;
    for (std::size_t k = 0; k < excess; ++k) {
      char* limit = b.warm[k];
      slab* owner = slab_of(limit);
      send_cold(b, *owner, index_in(*owner, limit), limit);
    }
    b.warm.erase(b.warm.begin(), b.warm.begin() + static_cast<std::ptrdiff_t>(excess));
  }
  trim();
}

// send_cold() pools a free stack cold: its pages are queued to be given
// back with the next batch. Allocates nothing: cold has room for every
// stack of the bucket and purge_ for a batch (add_slab()).
void stack_pool::send_cold(bucket& b, slab& owner, std::uint32_t index, char* limit) noexcept {
  owner.state[index] = slot_state::purging;
  b.cold.push_back(limit);
  purge_.push_back(limit);
  if (purge_.size() == purge_batch) purge();
}

// The offset is an exact multiple of the stack size, so it is divided
// without a division (~40 cycles, on every release): shifted by the size's
// power of two, then multiplied by the inverse of its odd part modulo 2^64.
std::uint32_t stack_pool::index_in(const slab& owner, const char* limit) noexcept {
  const auto offset = static_cast<std::uint64_t>(limit - (owner.begin + page_size() - canary_room));
  return static_cast<std::uint32_t>((offset >> owner.size_shift) * owner.size_inverse);
}

void stack_pool::slab::set_stack_size(std::size_t size) noexcept {
  stack_size = size;
  size_shift = static_cast<unsigned>(__builtin_ctzll(size));
  const std::uint64_t odd = size >> size_shift;
  // Newton's iteration for the inverse modulo 2^64: odd * odd == 1 mod 8
  // (3 bits right), and each step doubles the correct bits: 6, 12, 24, 48, 96.
  std::uint64_t inverse = odd;
  for (int i = 0; i < 5; ++i) inverse *= 2 - odd * inverse;
  size_inverse = inverse;
}

stack_pool::slab* stack_pool::slab_of(const void* address) const noexcept {
  const char* a = static_cast<const char*>(address);
  auto it =
      std::upper_bound(slabs_.begin(), slabs_.end(), a, [](const char* x, const slab* s) { return x < s->begin; });
  if (it == slabs_.begin()) return nullptr;
  slab* s = *std::prev(it);
  return a < s->begin + s->bytes ? s : nullptr;
}

fiber_stack stack_pool::take_slot(bucket& b, slab& owner, std::uint32_t index) noexcept {
  const std::size_t page = page_size();
  if (owner.state[index] == slot_state::fresh) ++mapped_;
  owner.state[index] = slot_state::in_use;
  ++owner.in_use;
  fiber_stack s;
  char* limit = owner.begin + page - canary_room + index * b.size;
  s.mapping = limit;
  s.mapping_size = b.size;
  s.limit = limit;
  s.base = limit + b.size;
  s.size = b.size;
  s.guarded = false;
  write_stack_canary(limit);
  s.valgrind_id = register_with_valgrind(s.limit, s.base);
  return s;
}

// add_slab() maps a slab for b: twice as many stacks as b already has, at
// least slab_min_stacks, at most slab_max_bytes of them (at least one).
void stack_pool::add_slab(bucket& b) {
  const std::size_t page = page_size();
  const std::size_t most = std::max<std::size_t>(1, slab_max_bytes / b.size);
  const std::size_t count = std::min(std::max(b.stacks, slab_min_stacks), most);
  const std::size_t bytes = count * b.size + page;
  // Make room first, so that nothing can fail once the slab is mapped.
  slabs_.reserve(slabs_.size() + 1);
  purge_.reserve(purge_batch);
  b.cold.reserve(b.stacks + count);
  reserve_warm(b, b.stacks + count);
  auto* state = static_cast<slot_state*>(std::calloc(count, sizeof(slot_state)));  // all fresh
  auto* s = static_cast<slab*>(std::malloc(sizeof(slab)));
  if (state == nullptr || s == nullptr) {
    std::free(state);
    std::free(s);
    throw std::bad_alloc();
  }
  void* mapping = ::mmap(nullptr, bytes, stack_protection, stack_flags, -1, 0);
  if (mapping == MAP_FAILED) {
    const int err = errno;
    std::free(state);
    std::free(s);
    exhausted(bytes, err, false);
  }
  s = new (s) slab;
  s->state = state;
  // With transparent huge pages set to "always", touching one stack's top
  // would fault in 2 MiB, the tops of a hundred stacks. Failure (no THP in
  // this kernel) changes nothing.
#if defined(MADV_NOHUGEPAGE)
  ::madvise(mapping, bytes, MADV_NOHUGEPAGE);
#endif
  s->begin = static_cast<char*>(mapping);
  s->bytes = bytes;
  s->set_stack_size(b.size);
  s->count = static_cast<std::uint32_t>(count);
  auto at = std::upper_bound(slabs_.begin(), slabs_.end(), s->begin,
                             [](const char* x, const slab* e) { return x < e->begin; });
  b.current = s;
  slabs_.insert(at, s);  // capacity reserved above
  b.stacks += count;
}

fiber_stack stack_pool::acquire_slow(std::size_t size, bool guarded) {
  bucket* b = bucket_for(size, guarded);
  if (b == nullptr) return map_stack(size, guarded);
  if (guarded) {
    track_guarded(b);
    if (b->head != nullptr) {
      free_node* n = b->head;
      b->head = n->next;
      --b->count;
      return guarded_stack_at(n, size);
    }
    return map_stack(size, guarded);
  }
  // Held releases (hold_released) need room for every stack mapped so far.
  if (hold_) reserve_warm(*b, b->stacks);
  // Warm stacks first (their pages are resident), then cold ones, then
  // fresh ones: all reuse comes before new address space.
  limit_list* from = !b->warm.empty() ? &b->warm : !b->cold.empty() ? &b->cold : nullptr;
  if (from != nullptr) {
    char* limit = from->back();
    from->pop_back();
    slab* owner = slab_of(limit);
    const std::uint32_t index = index_in(*owner, limit);
    return take_slot(*b, *owner, index);
  }
  if (b->current == nullptr || b->current->carved == b->current->count) add_slab(*b);
  slab& owner = *b->current;
  return take_slot(*b, owner, owner.carved++);
}

// purge() gives the pages of the stacks in purge_ back to the kernel
// (MADV_DONTNEED: they read as zeros when touched again), sorted so that a
// run of adjacent stacks goes in one call. The page a stack shares with a
// neighbour holds that neighbour's canary (above) or top frames (below); it
// goes only when the neighbour is not in use. Stacks taken again since they
// were queued are skipped.
void stack_pool::purge() noexcept {
  const std::size_t page = page_size();
  std::sort(purge_.begin(), purge_.end());
  char* run_lo = nullptr;
  char* run_hi = nullptr;
  slab* owner = nullptr;
  for (char* limit : purge_) {
    if (owner == nullptr || limit < owner->begin || limit >= owner->begin + owner->bytes) owner = slab_of(limit);
    const std::uint32_t index = index_in(*owner, limit);
    if (owner->state[index] != slot_state::purging) continue;  // taken again, or a duplicate
    owner->state[index] = slot_state::cold;
    char* lo = owner->begin + index * owner->stack_size + page;  // first page wholly inside the stack
    char* hi = owner->begin + (index + 1) * owner->stack_size;   // page holding the top and the next canary
    if (index == 0 || owner->state[index - 1] != slot_state::in_use) lo -= page;
    if (index + 1 == owner->count || owner->state[index + 1] != slot_state::in_use) hi += page;
    if (hi <= lo) continue;
    if (run_hi != nullptr && lo <= run_hi) {
      run_hi = std::max(run_hi, hi);
      continue;
    }
    if (run_hi != nullptr) ::madvise(run_lo, static_cast<std::size_t>(run_hi - run_lo), MADV_DONTNEED);
    run_lo = lo;
    run_hi = hi;
  }
  if (run_hi != nullptr) ::madvise(run_lo, static_cast<std::size_t>(run_hi - run_lo), MADV_DONTNEED);
  purge_.clear();
}

void stack_pool::release_slow(const fiber_stack& stack) noexcept {
#if defined(GREENLET_ASAN)
  // The dead fiber's frames may have left poison, where the free-list node
  // goes and where the next user runs.
  ASAN_UNPOISON_MEMORY_REGION(stack.limit, stack.size);
#endif
  deregister_with_valgrind(stack.valgrind_id);
  if (stack.guarded) {
    bucket* b = bucket_for(stack.size, true);
    if (b == nullptr || b->count == max_pooled_guarded) {
      unmap_stack(stack);
      return;
    }
    track_guarded(b);
    push_guarded(*b, stack);
    return;
  }
  // The switch path checks a greenlet's canary as it leaves it (and as it
  // dies, with its name); this catches what reaches the pool unchecked.
  if (*static_cast<const std::uint64_t*>(stack.limit) != stack_canary_value(stack.limit)) [[unlikely]] {
    stack_canary_broken_at_release(stack.size);
  }
  slab* owner = slab_of(stack.limit);
  if (owner == nullptr) {
    unmap_stack(stack);  // mapped alone: no bucket was left for its size
    return;
  }
  bucket* b = bucket_for(stack.size, false);  // exists: the slab was made for it
  const std::uint32_t index = index_in(*owner, static_cast<char*>(stack.limit));
  --owner->in_use;
  // Slabs are kept until the thread exits, even when all their stacks are
  // free: unmapping one would mean taking its stacks out of the free lists
  // on every release, and a workload that oscillates around a slab boundary
  // would map and unmap 64 MiB each time. A free stack past the warm budget
  // costs no memory (its pages are given back), only address space, which
  // MAP_NORESERVE does not charge, and page-table entries.
  if ((hold_ || b->warm.size() < warm_budget_) && b->warm.size() < b->warm.capacity()) {
    owner->state[index] = slot_state::warm;
    b->warm.push_back(static_cast<char*>(stack.limit));
  } else {
    send_cold(*b, *owner, index, static_cast<char*>(stack.limit));
  }
}

fiber_stack stack_pool::guarded_stack_at(free_node* node, std::size_t size) const noexcept {
  fiber_stack stack = guarded_stack_layout(node, size);
  stack.valgrind_id = register_with_valgrind(stack.limit, stack.base);
  return stack;
}

// map_stack() maps one stack on its own: every guarded stack, and unguarded
// ones of a size with no bucket left.
fiber_stack stack_pool::map_stack(std::size_t size, bool guarded) {
  const std::size_t guard = guarded ? page_size() : 0;
  const std::size_t total = size + guard;
  void* mapping = ::mmap(nullptr, total, stack_protection, stack_flags, -1, 0);
  int err = errno;
  if (mapping != MAP_FAILED && guarded && ::mprotect(mapping, guard, PROT_NONE) != 0) {
    err = errno;
    ::munmap(mapping, total);
    mapping = MAP_FAILED;
  }
  if (mapping == MAP_FAILED) exhausted(total, err, guarded);
  ++mapped_;
  if (guarded) {
    ++guarded_mapped_;
  } else {
    ++individual_;
  }
  fiber_stack s;
  s.mapping = mapping;
  s.mapping_size = total;
  s.limit = static_cast<char*>(mapping) + guard;
  s.base = static_cast<char*>(mapping) + total;
  s.size = size;
  s.guarded = guarded;
  if (!guarded) write_stack_canary(s.limit);
  s.valgrind_id = register_with_valgrind(s.limit, s.base);
  return s;
}

void stack_pool::unmap_stack(const fiber_stack& stack) noexcept {
  ::munmap(stack.mapping, stack.mapping_size);
  --mapped_;
  if (stack.guarded) {
    --guarded_mapped_;
  } else {
    --individual_;
  }
}

// process_mappings_now() is the process's mapping count for a report, read
// at most once a second. Why: with the tens of thousands of mappings an
// exhaustion comes with, reading /proc/self/maps takes milliseconds, and
// when many tasks start at once, every one the kernel refuses a stack
// fails with its own report: 67,000 tasks took 9 minutes of system time to
// fail, one read each, before this.
const std::string& stack_pool::process_mappings_now() {
  const auto now = std::chrono::steady_clock::now();
  if (mappings_counted_.empty() || now - mappings_counted_at_ > std::chrono::seconds(1)) {
    mappings_counted_ = process_mappings();
    mappings_counted_at_ = now;
  }
  return mappings_counted_;
}

void stack_pool::exhausted(std::size_t bytes, int err, bool guarded) {
  std::string what = "greenlet: cannot map ";
  what += guarded ? "a " + std::to_string(bytes) + "-byte guarded fiber stack"
                  : "a " + std::to_string(bytes) + "-byte slab of unguarded fiber stacks";
  what += " (";
  what += std::strerror(err);
  what += "). This thread has " + std::to_string(mapped_) + " stacks mapped (" + std::to_string(guarded_mapped_) +
          " guarded, in " + std::to_string(kernel_mappings()) + " kernel mappings); the process has " +
          process_mappings_now() + " mappings and vm.max_map_count is " + max_map_count() +
          ". Each guarded stack costs two mappings (its guard page splits the mapping), so about "
          "32,000 guarded stacks exhaust the default limit of 65530; unguarded stacks come many to "
          "a mapping. Fixes: finish or drop suspended greenlets; use unguarded stacks "
          "(stack_options{.size = 16384, .guard_page = false}, or "
          "event_loop::options::task_stack for tasks), checked by a canary instead of a guard page; "
          "use smaller stacks; or raise the limit: sysctl -w vm.max_map_count=1048576.";
  if (err == ENOMEM && !guarded) {
    what += " (ENOMEM with few mappings means memory: check ulimit -v and vm.overcommit_memory.)";
  }
  throw ::greenlet::error(errc::stack_exhausted, what);
}

}  // namespace greenlet::detail
