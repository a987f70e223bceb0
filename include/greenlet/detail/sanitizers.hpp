// sanitizers.hpp: tells AddressSanitizer and ThreadSanitizer about stack
// switches. Boost.Context's fcontext does not, so without these ASan reports
// false stack overflows and use-after-return, and TSan loses track of which
// stack runs. In plain builds every function here is empty.
#pragma once

#include "greenlet/detail/greenlet_impl.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define GREENLET_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GREENLET_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define GREENLET_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GREENLET_TSAN 1
#endif
#endif

#if defined(GREENLET_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(GREENLET_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::detail::sanitizers {

// on_main() records the thread's own stack as the main greenlet's.
inline void on_main([[maybe_unused]] greenlet_impl* main) noexcept {
#if defined(GREENLET_TSAN)
  main->tsan_fiber = __tsan_get_current_fiber();
#endif
}

// on_start() is called when a greenlet gets its stack.
inline void on_start([[maybe_unused]] greenlet_impl* g) noexcept {
#if defined(GREENLET_ASAN)
  g->asan_stack_bottom = g->stack_limit;
  g->asan_stack_size = g->stack_size;
  g->asan_fake_stack = nullptr;
  // A reused stack may still carry poison from the frames of its last user.
  ASAN_UNPOISON_MEMORY_REGION(g->stack_limit, g->stack_size);
#endif
#if defined(GREENLET_TSAN)
  g->tsan_fiber = __tsan_create_fiber(0);
#endif
}

// on_finish() is called when a dead greenlet's stack is given back.
inline void on_finish([[maybe_unused]] greenlet_impl* g) noexcept {
#if defined(GREENLET_TSAN)
  if (g->tsan_fiber != nullptr) {
    __tsan_destroy_fiber(g->tsan_fiber);
    g->tsan_fiber = nullptr;
  }
#endif
}

// before_jump() is the last thing before jump_fcontext; a dying greenlet
// lets ASan free its fake stack. Always inlined, even at -O0: as a function
// of its own under TSan it would enter on one fiber's shadow call stack and,
// after __tsan_switch_to_fiber(), return on the target's, leaving one entry
// behind on every switch until the shadow stack overflowed (a test built at
// -O0 crashed so after tens of thousands of switches on one thread).
[[gnu::always_inline]] inline void before_jump([[maybe_unused]] greenlet_impl* self,
                                               [[maybe_unused]] greenlet_impl* target,
                                               [[maybe_unused]] bool dying) noexcept {
#if defined(GREENLET_ASAN)
  __sanitizer_start_switch_fiber(dying ? nullptr : &self->asan_fake_stack, target->asan_stack_bottom,
                                 target->asan_stack_size);
#endif
#if defined(GREENLET_TSAN)
  __tsan_switch_to_fiber(target->tsan_fiber, 0);
#endif
}

// after_jump() is the first thing on the resumed side; it learns the
// origin's stack bounds (how the main greenlet's get known).
inline void after_jump([[maybe_unused]] greenlet_impl* self, [[maybe_unused]] greenlet_impl* origin) noexcept {
#if defined(GREENLET_ASAN)
  const void* bottom = nullptr;
  std::size_t size = 0;
  __sanitizer_finish_switch_fiber(self->asan_fake_stack, &bottom, &size);
  if (origin->is_main) {
    origin->asan_stack_bottom = bottom;
    origin->asan_stack_size = size;
  }
#endif
}

}  // namespace greenlet::detail::sanitizers

// The inline switch (switch_inline.hpp) annotates jumps by the flags of the
// file that includes it, the library's own switches by the flags it was
// built with: mixed, the sanitizer sees half of each switch and aborts
// ("starting fiber switch while in fiber switch"). So every file that
// includes this header needs a symbol only a library built the same way
// defines (src/fiber/sanitizer_link_check.cpp): a mismatch fails to link,
// naming the symbol, instead of aborting at the first switch. The fix is
// to build libgreenlet with the same sanitizer (-DGREENLET_SANITIZE=...).
extern "C" {
#if defined(GREENLET_ASAN)
extern const char greenlet_link_check_libgreenlet_built_with_address_sanitizer;
[[gnu::used]] static const char* const greenlet_asan_link_check =
    &greenlet_link_check_libgreenlet_built_with_address_sanitizer;
#else
extern const char greenlet_link_check_libgreenlet_built_without_address_sanitizer;
[[gnu::used]] static const char* const greenlet_asan_link_check =
    &greenlet_link_check_libgreenlet_built_without_address_sanitizer;
#endif
#if defined(GREENLET_TSAN)
extern const char greenlet_link_check_libgreenlet_built_with_thread_sanitizer;
[[gnu::used]] static const char* const greenlet_tsan_link_check =
    &greenlet_link_check_libgreenlet_built_with_thread_sanitizer;
#else
extern const char greenlet_link_check_libgreenlet_built_without_thread_sanitizer;
[[gnu::used]] static const char* const greenlet_tsan_link_check =
    &greenlet_link_check_libgreenlet_built_without_thread_sanitizer;
#endif
}

#pragma GCC visibility pop
