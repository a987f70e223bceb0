// environment.hpp: sizes the fiber layer reads from the environment when a
// thread starts using greenlets (GREENLET_STACK_WARM_BUDGET,
// GREENLET_OBJECT_CACHE_BYTES). Standard headers only: white-box tests
// include it by path.
#pragma once

#include <cstddef>
#include <cstdlib>

namespace greenlet::detail {

// size_from_environment(name, fallback) is the environment variable `name` as
// a decimal count, or fallback when it is unset, empty or not all digits.
inline std::size_t size_from_environment(const char* name, std::size_t fallback) noexcept {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(text, &end, 10);
  return end != nullptr && *end == '\0' ? static_cast<std::size_t>(n) : fallback;
}

}  // namespace greenlet::detail
