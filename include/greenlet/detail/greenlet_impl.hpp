// greenlet_impl.hpp: the object behind a greenlet handle. Internal: the
// greenlet constructor template needs its layout; users never include it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>

#include "greenlet/fiber/context.hpp"
#include "greenlet/fiber/value.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet {

// stack_mode chooses where a greenlet's stack lives.
//  - separate: a stack of its own from the thread's pool. The fastest switch;
//    a suspended greenlet keeps the pages it touched (4 KiB or more).
//  - shared: stack copying, as Python's greenlet does. The thread's shared
//    greenlets all run on one shared stack; a suspended one keeps only the
//    bytes of stack it uses, copied to the heap when another shared greenlet
//    needs the stack (a few hundred bytes for a shallow greenlet). Switching
//    between two shared greenlets copies those bytes out and in, so it costs
//    more as stacks get deeper. Rule that comes with it: while a shared
//    greenlet is suspended, its locals are not at their addresses, so no
//    other greenlet may use a pointer or reference to them (heap objects and
//    the locals of separate-stack greenlets, main included, are fine).
//  - inherit: the thread's default (set_thread_stack_mode(); the environment
//    variable GREENLET_STACK_MODE=shared|separate; separate otherwise).
enum class stack_mode : unsigned char { inherit, separate, shared };

// stack_options chooses a greenlet's stack. size 0 means default_stack_size().
// With guard_page, the stack has an inaccessible page below it so an overflow
// stops with a report instead of corrupting memory; stacks come from a
// per-thread pool either way. Shared-mode greenlets run on their thread's
// shared stack (guarded; 8 MiB or default_stack_size() if larger, costing
// memory only for the pages used); one asking for a larger size gets a
// separate stack instead.
struct stack_options {
  std::size_t size = 0;
  bool guard_page = true;
  stack_mode mode = stack_mode::inherit;
};

namespace detail {

struct switch_state;
struct greenlet_impl;
struct stack_host;                                // stack_host.hpp
void release_stack_host(stack_host* h) noexcept;  // stack_host.hpp says what it does
struct generator_state_base;

enum class run_state : unsigned char { unstarted, active, dead };

// greenlet_role says what a greenlet a layer above made for its own use is
// for (an asyncio task's), so that reports the fiber layer makes about it (a
// stack overflow, a leak) name it as the user knows it and give advice that
// applies. That layer derives its object from greenlet_role and points
// greenlet_impl::role at it; the fiber layer knows nothing else about it.
// Both functions write a NUL-terminated text of at most `size` bytes into
// `out`. They run in the SIGSEGV handler of a stack overflow, on an alternate
// stack: no allocation, no lock, no exception.
struct greenlet_role;
struct greenlet_role_ops {
  // describe: what the greenlet is, e.g. "Task 'parser-task'".
  void (*describe)(const greenlet_role* role, char* out, std::size_t size) noexcept;
  // advise_stack: how to give it a stack of `bigger` bytes (one line).
  void (*advise_stack)(const greenlet_role* role, std::size_t bigger, bool guarded, char* out,
                       std::size_t size) noexcept;
};
struct greenlet_role {
  const greenlet_role_ops* role_ops;
};

// The C++ runtime's per-thread exception bookkeeping (libstdc++/libc++abi
// __cxa_eh_globals): saved and restored on every switch so each greenlet has
// its own std::current_exception() and std::uncaught_exceptions().
struct exception_state {
  void* caught_exceptions = nullptr;
  unsigned int uncaught_exceptions = 0;
};
// The switch copies it as two machine words (switch_inline.hpp), padding included.
static_assert(sizeof(exception_state) == 2 * sizeof(void*));

// clear_exceptions(s) empties s with one 16-byte store. The switch reads s
// as one 16-byte load, and a load spanning two smaller stores (what
// `s = {}` compiles to) cannot take its data from them: it waits for them
// to reach the cache, ~15 cycles on a new greenlet's first switch.
inline void clear_exceptions(exception_state& s) noexcept { std::memset(static_cast<void*>(&s), 0, sizeof s); }

// run_ops is the per-callable-type table for a greenlet's run function.
struct run_ops {
  value (*invoke)(greenlet_impl* self, value&& args);
  void (*clear)(greenlet_impl* self) noexcept;    // destroy run (when it finishes)
  void (*dispose)(greenlet_impl* self) noexcept;  // delete the whole object
};

struct greenlet_impl {
  // Fields used by every switch come first.
  void* context = nullptr;                    // Boost fcontext_t of the suspended greenlet
  std::atomic<switch_state*> owner{nullptr};  // its thread's state
  greenlet_impl* parent = nullptr;            // strong reference; null only for main
  run_state state = run_state::unstarted;
  bool is_main = false;
  // Set on the owning thread when the last handle went away while this
  // greenlet ran; it is killed or freed when it next switches away or dies.
  bool orphaned = false;
  // Set while GreenletExit is thrown in by kill() (its last handle went, or
  // its thread exits): whatever it switches to, only the killer resumes.
  bool being_killed = false;
  // Set when a kill could not end it and nothing can reach it any more: it
  // was reported to the unraisable hook once, and is never killed again (its
  // stack is leaked; see kill_is_safe() in src/fiber/lifecycle.cpp).
  bool leaked = false;
  // Stack copying (stack_mode::shared): it runs on its thread's shared stack.
  bool shared_stack = false;
  // detours holds why a switch to this greenlet must leave the inline path
  // (switch_inline.hpp), one byte per reason, which the inline path reads
  // as one 16-bit word (has_detour()) so that one compare tests them all;
  // separate bytes, so that setting one is a plain store, not a
  // read-modify-write (a task locks and unlocks itself at every step):
  //  - swapped_out (stack copying): its bytes are in saved_stack instead of
  //    on the shared stack;
  //  - resume_locked: only its owner resumes it (an event loop, a task's
  //    greenlet); see lock_resume().
  struct detour_flags {
    bool swapped_out = false;
    bool resume_locked = false;
  };
  alignas(2) detour_flags detours;
  bool swapped_out() const noexcept { return detours.swapped_out; }
  void set_swapped_out(bool on) noexcept { detours.swapped_out = on; }
  exception_state exceptions;
  // References, counted in two parts (biased reference counting): the
  // owning thread counts its own in local_refs, with plain arithmetic;
  // other threads add theirs to shared_refs atomically, and mail their
  // releases to the owner (release()), which subtracts them from
  // local_refs. local_refs may go negative; the count is the sum. When the
  // owner exits it moves local_refs into shared_refs, and every thread then
  // counts there. Why: an atomic read-modify-write waits for every store
  // before it to reach the cache, and creating a greenlet did three (its
  // own count, its parent's up and down): a fifth of its cost.
  long local_refs = 1;
  std::atomic<long> shared_refs{0};
  // How many of the references are handles living on this greenlet's own stack (locals,
  // temporaries such as getcurrent()'s, its run function's captures). When
  // only those are left nobody else can reach it, and it is killed as if its
  // last handle went away. Touched only on the owning thread.
  long stack_refs = 0;
  const run_ops* ops = nullptr;
  // The generator whose body this greenlet is, or null: the static
  // generator<...>::yield() finds its generator by walking the parent chain
  // and reading this, O(nesting depth) instead of a search of every live
  // generator. Set and cleared by generator_state_base on the owning thread.
  // Such a greenlet has no context variables of its own: it uses its
  // parent's, the resumer's (src/fiber/context.cpp).
  generator_state_base* generator = nullptr;
  // What the greenlet is for, when a layer above made it (see greenlet_role);
  // null for a plain greenlet. Set on the owning thread before it starts.
  const greenlet_role* role = nullptr;

  // The stack: [stack_limit, stack_base) is usable, the guard page (if any)
  // lies just below stack_limit; mapping_* is what to give back to the pool.
  void* stack_base = nullptr;
  void* stack_limit = nullptr;
  std::size_t stack_size = 0;
  stack_options stack_opts;
  void* stack_mapping = nullptr;
  // The host whose stack it runs on and whose memory holds this object (null: its own stack from
  // the pool, its object on the heap); see stack_host.hpp.
  stack_host* host = nullptr;
  // Shared mode: the heap copy of [context, stack_base) while swapped out.
  void* saved_stack = nullptr;
  std::size_t saved_size = 0;
  std::size_t saved_capacity = 0;

  // Sanitizer and valgrind bookkeeping; unused in plain builds.
  void* asan_fake_stack = nullptr;
  const void* asan_stack_bottom = nullptr;
  std::size_t asan_stack_size = 0;
  void* tsan_fiber = nullptr;
  unsigned valgrind_stack_id = 0;
  // Suspended inside the frame a get_stack() read left on its stack (src/fiber/stack_trace.cpp):
  // the next read resumes that frame rather than stack another. (In the padding after the id.)
  bool parked_by_read = false;

  // The live-greenlet registry of the owning thread (for leak checks and debuggers).
  greenlet_impl* registry_prev = nullptr;
  greenlet_impl* registry_next = nullptr;
  std::uint64_t id = 0;
  std::string name;
  // Context variables (greenlet's gr_context) and the context's identity; empty for a new greenlet.
  // Unused while this is a generator's body (see `generator`).
  context_slot context_vars;
};

template <class F>
struct is_std_function : std::false_type {};
template <class Signature>
struct is_std_function<std::function<Signature>> : std::true_type {};

template <class F>
struct callable_args : callable_args<decltype(&F::operator())> {};
template <class R, class... A>
struct callable_args<R (*)(A...)> {
  using type = std::tuple<std::decay_t<A>...>;
};
template <class R, class... A>
struct callable_args<R (*)(A...) noexcept> : callable_args<R (*)(A...)> {};
template <class R, class C, class... A>
struct callable_args<R (C::*)(A...)> : callable_args<R (*)(A...)> {};
template <class R, class C, class... A>
struct callable_args<R (C::*)(A...) const> : callable_args<R (*)(A...)> {};
template <class R, class C, class... A>
struct callable_args<R (C::*)(A...) noexcept> : callable_args<R (*)(A...)> {};
template <class R, class C, class... A>
struct callable_args<R (C::*)(A...) const noexcept> : callable_args<R (*)(A...)> {};

template <class Call>
value result_as_value(Call&& call) {
  using R = decltype(call());
  if constexpr (std::is_void_v<R>) {
    call();
    return value();
  } else if constexpr (std::is_same_v<std::decay_t<R>, value>) {
    return call();
  } else {
    return value(call());
  }
}

template <class Tuple>
struct apply_arguments;
template <class... A>
struct apply_arguments<std::tuple<A...>> {
  template <class F>
  static decltype(auto) call(F& f, value&& args) {
    return std::apply(f, std::move(args).template as_arguments<A...>());
  }
};

// call_run calls run with the first switch_()'s arguments: a run taking
// greenlet::value gets them as they are; otherwise they must match run's
// parameter types, or bad_value_access is thrown inside the new greenlet (and
// so reaches its parent), as Python raises TypeError there.
template <class F>
value call_run(F& f, value&& args) {
  if constexpr (std::is_invocable_v<F&, value&&>) {
    return result_as_value([&]() -> decltype(auto) { return std::invoke(f, std::move(args)); });
  } else if constexpr (std::is_invocable_v<F&>) {
    std::move(args).template as_arguments<>();
    return result_as_value([&]() -> decltype(auto) { return std::invoke(f); });
  } else {
    using Args = typename callable_args<std::decay_t<F>>::type;
    return result_as_value([&]() -> decltype(auto) { return apply_arguments<Args>::call(f, std::move(args)); });
  }
}

// allocate_greenlet(bytes) and free_greenlet(p, bytes) are the memory of
// greenlet objects: a freed one is kept in its thread's cache for the next
// greenlet made there (src/fiber/object_cache.hpp says why). malloc'd, so
// any thread may free one. allocate_greenlet throws std::bad_alloc.
void* allocate_greenlet(std::size_t bytes);
void free_greenlet(void* p, std::size_t bytes) noexcept;

// global_delete(p, bytes[, align]) gives memory back to the global operator
// delete, telling it the size where the compiler offers sized deallocation:
// GCC always does, clang before 19 only with -fsized-deallocation, and users'
// clang builds compile these headers too.
inline void global_delete(void* p, [[maybe_unused]] std::size_t bytes) noexcept {
#if defined(__cpp_sized_deallocation)
  ::operator delete(p, bytes);
#else
  ::operator delete(p);
#endif
}
inline void global_delete(void* p, [[maybe_unused]] std::size_t bytes, std::align_val_t align) noexcept {
#if defined(__cpp_sized_deallocation)
  ::operator delete(p, bytes, align);
#else
  ::operator delete(p, align);
#endif
}

template <class F>
struct greenlet_with_run final : greenlet_impl {
  template <class G>
  explicit greenlet_with_run(G&& g) : run(std::forward<G>(g)) {
    ops = &table;
  }
  std::optional<F> run;

  // The run function moves onto the greenlet's own stack when it starts (as
  // Python drops `run` then), so handles it captured count as its own.
  static value invoke(greenlet_impl* self, value&& args) {
    auto& stored = static_cast<greenlet_with_run*>(self)->run;
    F local(std::move(*stored));
    stored.reset();
    return call_run(local, std::move(args));
  }
  static void clear(greenlet_impl* self) noexcept { static_cast<greenlet_with_run*>(self)->run.reset(); }
  static void dispose(greenlet_impl* self) noexcept {
    auto* g = static_cast<greenlet_with_run*>(self);
    if (stack_host* h = g->host; h != nullptr) {
      g->~greenlet_with_run();  // built in h's memory (greenlet::hosted_on_stack())
      release_stack_host(h);
    } else {
      delete g;
    }
  }
  static constexpr run_ops table{&invoke, &clear, &dispose};

  static void* operator new(std::size_t bytes) { return allocate_greenlet(bytes); }
  static void operator delete(void* p, std::size_t bytes) noexcept { free_greenlet(p, bytes); }
  // A run function aligned past what malloc gives takes the global operators.
  static void* operator new(std::size_t bytes, std::align_val_t align) { return ::operator new(bytes, align); }
  static void operator delete(void* p, std::size_t bytes, std::align_val_t align) noexcept {
    global_delete(p, bytes, align);
  }
};

// lock_resume(g) makes g resumable only by its owner, which switches to it with
// switch_as_owner() (switch_inline.hpp): while locked, a switch_() or throw_() to g from anyone is
// refused with greenlet::error (errc::resume_locked), except a kill (g's last handle dropped, its
// thread exiting). The event loop locks a task's greenlet while the task waits, and the switch
// that resumes it as the owner unlocks it: switched into by hand, its wait was cut short and the
// switching task stranded. Owning thread only; a flag in the word the inline switch tests
// anyway, so switches cost nothing more.
inline void lock_resume(greenlet_impl* g) noexcept { g->detours.resume_locked = true; }
inline void unlock_resume(greenlet_impl* g) noexcept { g->detours.resume_locked = false; }
inline bool resume_locked(const greenlet_impl* g) noexcept { return g->detours.resume_locked; }

// has_detour(g): a switch to g must leave the inline path (any of g->detours set), tested as one
// 16-bit load and compare.
[[gnu::always_inline]] inline bool has_detour(const greenlet_impl* g) noexcept {
  static_assert(sizeof(greenlet_impl::detour_flags) == sizeof(std::uint16_t));
  std::uint16_t word;
  std::memcpy(&word, &g->detours, sizeof word);
  return word != 0;
}

// Links a newly made greenlet into its thread; parent null means getcurrent().
void adopt_new(greenlet_impl* self, greenlet_impl* parent, const stack_options& stack);
void release(greenlet_impl* self) noexcept;

// The running thread's state (see switch_inline.hpp).
extern constinit thread_local switch_state* tls_switch_state __attribute__((tls_model("initial-exec")));

// retain(g) adds a reference to g: in local_refs on g's thread, atomically
// in shared_refs elsewhere (see local_refs).
inline void retain(greenlet_impl* self) noexcept {
  if (self->owner.load(std::memory_order_relaxed) == tls_switch_state) [[likely]] {
    ++self->local_refs;
  } else {
    self->shared_refs.fetch_add(1, std::memory_order_relaxed);
  }
}

// reference_count(g) is how many references g has; exact on g's thread,
// where no other thread can take one away (their releases are mailed) and
// an addition by another thread means a reference it already held.
inline long reference_count(const greenlet_impl* g) noexcept {
  return g->local_refs + g->shared_refs.load(std::memory_order_acquire);
}

// drop_local_reference(g) drops one of the owner thread's references to g
// and says how many are left.
inline long drop_local_reference(greenlet_impl* g) noexcept {
  --g->local_refs;
  return reference_count(g);
}

// place()/unplace() record that a handle at `where` starts or stops referring
// to g; they count it in g->stack_refs when `where` is on g's own stack.
void place(greenlet_impl* g, const void* where) noexcept;
void unplace(greenlet_impl* g, const void* where) noexcept;
// drop_handle(g, where) is what a handle at `where` does as it goes away:
// unplace() and release(), in one call.
void drop_handle(greenlet_impl* g, const void* where) noexcept;

}  // namespace detail
}  // namespace greenlet

#pragma GCC visibility pop
