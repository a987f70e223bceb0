// stack_copy.cpp: stack_mode::shared (see stack_copy.hpp).
//
// Why a copier context: the bytes of the greenlet that is running cannot be
// overwritten by code running on them. A shared greenlet switching to another
// swapped-out one therefore jumps to the copier, a context on a small stack
// of its own, which saves the owner's bytes, restores the target's and jumps
// on. The target then sees the copier as the greenlet it came from;
// resumed_origin() maps it back, so tracing and reaping see the real origin.
// When the running greenlet is not on the shared stack (main, a separate-stack
// greenlet), the copying happens in place, with no copier jump.
#include "fiber/stack_copy.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "greenlet/detail/sanitizers.hpp"

namespace greenlet {

namespace detail {

stack_mode process_default_mode() noexcept {
  static const stack_mode mode = [] {
    const char* v = std::getenv("GREENLET_STACK_MODE");
    if (v == nullptr || *v == '\0' || std::strcmp(v, "separate") == 0) return stack_mode::separate;
    if (std::strcmp(v, "shared") == 0) return stack_mode::shared;
    std::fprintf(stderr, "greenlet: ignoring GREENLET_STACK_MODE=%s (expected shared or separate)\n", v);
    return stack_mode::separate;
  }();
  return mode;
}

}  // namespace detail

void set_thread_stack_mode(stack_mode mode) {
  detail::state().default_mode = mode != stack_mode::inherit ? mode : detail::process_default_mode();
}

stack_mode thread_stack_mode() { return detail::resolve_stack_mode(detail::state(), stack_options{}); }

namespace detail {

namespace ctx = boost::context::detail;

namespace {

// Big, because the shared stack cannot grow or move once greenlets have
// frames on it (their saved bytes hold its addresses); MAP_NORESERVE means
// only the pages greenlets touch take memory.
constexpr std::size_t min_shared_stack_size = 8 * 1024 * 1024;
constexpr std::size_t copier_stack_size = 64 * 1024;
// A greenlet saved through the copier reserves its buffer before leaving,
// where running out of memory can still be thrown: the bytes from its
// current frame up, plus this much for the frames of the jump itself.
constexpr std::size_t jump_frame_slack = 256;
// A saved copy is shrunk when its buffer is this much larger than needed,
// so a suspended greenlet holds about what it uses.
constexpr std::size_t max_saved_waste = 256;

#if defined(GREENLET_ASAN)
// A suspended stack holds ASan's poisoned redzones: copy it unchecked, and
// byte by byte so the compiler does not turn the loop into an intercepted
// memcpy.
__attribute__((no_sanitize_address)) void copy_bytes(void* to, const void* from, std::size_t n) noexcept {
  auto* d = static_cast<volatile unsigned char*>(to);
  auto* s = static_cast<const volatile unsigned char*>(from);
  for (std::size_t i = 0; i < n; ++i) d[i] = s[i];
}
#else
void copy_bytes(void* to, const void* from, std::size_t n) noexcept { std::memcpy(to, from, n); }
#endif

std::size_t used_bytes(const greenlet_impl* g) noexcept {
  return static_cast<std::size_t>(static_cast<const char*>(g->stack_base) - static_cast<const char*>(g->context));
}

void reserve_saved(greenlet_impl* g, std::size_t bytes) {
  if (g->saved_capacity >= bytes) return;
  void* p = std::malloc(bytes);
  if (p == nullptr) throw std::bad_alloc();
  std::free(g->saved_stack);
  g->saved_stack = p;
  g->saved_capacity = bytes;
}

// fit_saved() sizes g's buffer for `used` bytes where nothing may throw (the
// copier): out of memory there has no way back, so it stops the process with
// a message rather than corrupt a stack.
void fit_saved(greenlet_impl* g, std::size_t used) noexcept {
  if (g->saved_capacity >= used && g->saved_capacity - used <= max_saved_waste) return;
  if (g->saved_capacity >= used) {
    // Shrink. realloc frees the old block itself if it moves it.
    if (void* p = std::realloc(g->saved_stack, used)) {
      g->saved_stack = p;
      g->saved_capacity = used;
    }  // else: could not shrink, keep the larger buffer
    return;
  }
  void* p = std::malloc(used);
  if (p == nullptr) {
    std::fputs("greenlet: out of memory while copying a shared-stack greenlet's stack out; aborting\n", stderr);
    std::abort();
  }
  std::free(g->saved_stack);
  g->saved_stack = p;
  g->saved_capacity = used;
}

// save_owner() copies the suspended owner's bytes out; its buffer is big enough.
void save_owner(thread_state& ts, greenlet_impl* owner) noexcept {
  copy_bytes(owner->saved_stack, owner->context, used_bytes(owner));
  owner->saved_size = used_bytes(owner);
  owner->set_swapped_out(true);
  ts.shared_owner = nullptr;
}

// needs_saving() is the greenlet whose bytes must leave the shared stack
// before target's come in, or null.
greenlet_impl* needs_saving(const thread_state& ts, const greenlet_impl* target) noexcept {
  greenlet_impl* owner = ts.shared_owner;
  return owner != nullptr && owner != target && owner->state == run_state::active ? owner : nullptr;
}

void restore(thread_state& ts, greenlet_impl* g) noexcept {
  if (g->context == nullptr) {
    g->context = ctx::make_fcontext(g->stack_base, g->stack_size, &greenlet_entry);
  } else {
    copy_bytes(g->context, g->saved_stack, g->saved_size);
  }
#if defined(GREENLET_ASAN)
  // The shadow still describes the frames of the greenlet copied out.
  ASAN_UNPOISON_MEMORY_REGION(g->stack_limit, g->stack_size);
#endif
  g->set_swapped_out(false);
  ts.shared_owner = g;
}

// The copier lives as long as its thread; it is malloc'd rather than made
// with new so that it does not show as a leak in checks that count new.
struct copier_greenlet final : greenlet_impl {
  static value invoke(greenlet_impl*, value&&) { return value(); }
  static void clear(greenlet_impl*) noexcept {}
  static void dispose(greenlet_impl* self) noexcept {
    static_cast<copier_greenlet*>(self)->~copier_greenlet();
    std::free(self);
  }
  static constexpr run_ops table{&invoke, &clear, &dispose};
};

// read_for_origin(ts, copier) is the copier's part of read_swapped_out(): the reader (the origin,
// whose bytes are on the shared stack) out, the target in, the read, the target out, the reader
// back in and resumed. Returns the copier's next transfer.
ctx::transfer_t read_for_origin(thread_state& ts, greenlet_impl* copier) noexcept {
  greenlet_impl* reader = ts.copy_origin;
  greenlet_impl* target = ts.copy_target;
  const auto read = std::exchange(ts.copy_read, nullptr);
  fit_saved(reader, used_bytes(reader));
  save_owner(ts, reader);
  restore(ts, target);
  read(ts, target, ts.copy_read_arg);
  fit_saved(target, used_bytes(target));
  save_owner(ts, target);
  restore(ts, reader);
  void* const to = reader->context;
  hand_over(ts, ts.cxa_globals, copier, reader, to, /*dying=*/false);
  return ctx::jump_fcontext(to, copier);
}

[[noreturn]] void copier_entry(ctx::transfer_t t) noexcept {
  for (;;) {
    thread_state& ts = *tls_state;
    greenlet_impl* copier = ts.copier;
    ts.copy_origin = landed(copier, t);
    if (ts.copy_read != nullptr) {
      t = read_for_origin(ts, copier);
      continue;
    }
    greenlet_impl* target = ts.copy_target;
    if (greenlet_impl* owner = needs_saving(ts, target)) {
      fit_saved(owner, used_bytes(owner));
      save_owner(ts, owner);
    }
    restore(ts, target);
    ts.pending |= pending_work::bookkeeping;  // target's origin is the copier: resumed_origin() names the real one
    void* const to = target->context;
    hand_over(ts, ts.cxa_globals, copier, target, to, /*dying=*/false);  // after restore(): the frame's bytes are back
    t = ctx::jump_fcontext(to, copier);
  }
}

void ensure_copier(thread_state& ts) {
  if (ts.copier != nullptr) return;
  ts.copier_stack = ts.stacks.acquire(copier_stack_size, /*guarded=*/true);
  void* memory = std::malloc(sizeof(copier_greenlet));
  if (memory == nullptr) {
    ts.stacks.release(ts.copier_stack);
    throw std::bad_alloc();
  }
  auto* c = new (memory) copier_greenlet();
  c->ops = &copier_greenlet::table;
  c->state = run_state::dead;  // so whoever it resumes takes the slow path
  c->owner.store(&ts, std::memory_order_relaxed);
  c->stack_limit = ts.copier_stack.limit;
  c->stack_base = ts.copier_stack.base;
  c->stack_size = ts.copier_stack.size;
  c->context = ctx::make_fcontext(c->stack_base, c->stack_size, &copier_entry);
  sanitizers::on_start(c);
  ts.copier = c;
}

}  // namespace

std::size_t shared_stack_size() noexcept { return std::max(min_shared_stack_size, default_stack_size()); }

stack_mode resolve_shared_mode(const thread_state& ts, const stack_options& options) noexcept {
  // A greenlet asking for more stack than the shared one has gets its own
  // (once mapped, the shared stack keeps its size).
  const std::size_t shared_size = ts.shared_stack.base != nullptr ? ts.shared_stack.size : shared_stack_size();
  return options.size > shared_size ? stack_mode::separate : stack_mode::shared;
}

void start_shared(thread_state& ts, greenlet_impl* g) {
  // The copier is made now, where failing can be thrown, because a dying
  // shared greenlet may need it and cannot fail.
  ensure_copier(ts);
  if (ts.shared_stack.base == nullptr) {
    ts.shared_stack = ts.stacks.acquire(shared_stack_size(), /*guarded=*/true);
  }
  g->stack_limit = ts.shared_stack.limit;
  g->stack_base = ts.shared_stack.base;
  g->stack_size = ts.shared_stack.size;
  g->context = nullptr;  // made when first swapped in
  g->saved_size = 0;
  g->set_swapped_out(true);
  g->state = run_state::active;
  clear_exceptions(g->exceptions);
  sanitizers::on_start(g);
}

// Not inlined, so its frame (the part of self's stack the estimate below
// cannot see) stays small.
__attribute__((noinline)) greenlet_impl* switch_to_swapped(thread_state& ts, greenlet_impl* self,
                                                           greenlet_impl* target) {
  if (ts.shared_owner == self) {
    // self runs on the shared stack: the copier saves it and restores target.
    const auto* frame = static_cast<const char*>(__builtin_frame_address(0));
    reserve_saved(self,
                  static_cast<std::size_t>(static_cast<const char*>(self->stack_base) - frame) + jump_frame_slack);
    ts.copy_target = target;
    return jump_to(ts, self, ts.copier);
  }
  if (greenlet_impl* owner = needs_saving(ts, target)) {
    reserve_saved(owner, used_bytes(owner));
    save_owner(ts, owner);
  }
  restore(ts, target);
  return jump_to(ts, self, target);
}

// A read leaves the target suspended one frame deeper (stack_trace.cpp): its saved bytes grow by
// that frame, which this covers.
constexpr std::size_t read_frame_slack = 1024;

// Not inlined, so that its frame (the part of self's stack the estimate cannot see) stays small.
__attribute__((noinline)) void read_swapped_out(thread_state& ts, greenlet_impl* target,
                                                void (*read)(thread_state&, greenlet_impl*, void*) noexcept,
                                                void* arg) {
  greenlet_impl* self = ts.current;
  // Grown keeping its bytes: target is copied out.
  if (target->saved_capacity < target->saved_size + read_frame_slack) {
    void* p = std::realloc(target->saved_stack, target->saved_size + read_frame_slack);
    if (p == nullptr) throw std::bad_alloc();
    target->saved_stack = p;
    target->saved_capacity = target->saved_size + read_frame_slack;
  }
  if (ts.shared_owner != self) {
    if (greenlet_impl* owner = needs_saving(ts, target)) {
      reserve_saved(owner, used_bytes(owner));
      save_owner(ts, owner);
    }
    restore(ts, target);
    read(ts, target, arg);
    return;
  }
  // self runs on the shared stack: the copier swaps target in, reads it, and swaps self back.
  const auto* frame = static_cast<const char*>(__builtin_frame_address(0));
  reserve_saved(self, static_cast<std::size_t>(static_cast<const char*>(self->stack_base) - frame) + jump_frame_slack);
  ts.copy_read = read;
  ts.copy_read_arg = arg;
  ts.copy_target = target;
  (void)jump_to(ts, self, ts.copier);  // the copier comes straight back, carrying nothing
}

void die_into_swapped(thread_state& ts, greenlet_impl* self, greenlet_impl* target) noexcept {
  ts.copy_target = target;
  jump_dying(ts, self, ts.copier);  // the copier was made when the first shared greenlet started
}

void release_shared(thread_state& ts, greenlet_impl* g) noexcept {
  if (ts.shared_owner == g) ts.shared_owner = nullptr;
  std::free(g->saved_stack);
  g->saved_stack = nullptr;
  g->saved_size = g->saved_capacity = 0;
  g->set_swapped_out(false);
}

void close_shared_stacks(thread_state& ts) noexcept {
  ts.shared_owner = nullptr;
  if (ts.shared_stack.base != nullptr) {
    ts.stacks.release(ts.shared_stack);
    ts.shared_stack = {};
  }
  if (ts.copier != nullptr) {
    sanitizers::on_finish(ts.copier);
    ts.stacks.release(ts.copier_stack);
    ts.copier_stack = {};
    ts.copier->ops->dispose(ts.copier);
    ts.copier = nullptr;
  }
}

}  // namespace detail
}  // namespace greenlet
