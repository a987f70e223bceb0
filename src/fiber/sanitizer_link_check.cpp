// sanitizer_link_check.cpp: the symbol that says how this library was built,
// which every file including greenlet/detail/sanitizers.hpp needs (see the
// comment there): a program built with AddressSanitizer or ThreadSanitizer
// against a library built without it, or the reverse, fails to link instead
// of aborting at its first switch.
#include "greenlet/detail/sanitizers.hpp"

extern "C" {
#if defined(GREENLET_ASAN)
const char greenlet_link_check_libgreenlet_built_with_address_sanitizer = 0;
#else
const char greenlet_link_check_libgreenlet_built_without_address_sanitizer = 0;
#endif
#if defined(GREENLET_TSAN)
const char greenlet_link_check_libgreenlet_built_with_thread_sanitizer = 0;
#else
const char greenlet_link_check_libgreenlet_built_without_thread_sanitizer = 0;
#endif
}
