// timeouts.hpp: how the blocking calls of concurrent:: (Future::result(),
// exception(), wait(), as_completed()) read a timeout.
#pragma once

#include <cmath>
#include <optional>

namespace greenlet::concurrent::detail {

// Past this many seconds (~31 years) a timeout is no timeout. Why: the
// condition variables convert a duration<double> to the clock's 64-bit
// nanoseconds, which overflows past ~292 years; an infinite timeout made
// wait_for() return at once, and wait() spun holding its lock, starving the
// thread finishing the futures.
inline constexpr double forever_after_seconds = 1e9;

// effective_timeout(t) is t as the calls wait it out: none, infinity or
// beyond forever_after_seconds waits forever; zero, negative or NaN polls
// (Python's concurrent.futures: result(-1) times out at once).
inline std::optional<double> effective_timeout(std::optional<double> t) noexcept {
  if (!t) return std::nullopt;
  if (std::isnan(*t) || *t <= 0) return 0.0;
  if (*t > forever_after_seconds) return std::nullopt;
  return t;
}

}  // namespace greenlet::concurrent::detail
