// timeouts.hpp: how the blocking calls of concurrent:: (Future::result(),
// exception(), wait(), as_completed()) read a timeout.
#pragma once

#include <cmath>
#include <limits>
#include <optional>

namespace greenlet::concurrent::detail {

// Past this many seconds (~31 years) a timeout is no timeout. Why: the
// condition variables convert a duration<double> to the clock's 64-bit
// nanoseconds, which overflows past ~292 years; an infinite timeout made
// wait_for() return at once, and wait() spun holding its lock, starving the
// thread finishing the futures.
inline constexpr double forever_after_seconds = 1e9;

// wait_seconds(t) is how long the calls wait for t: infinity (no bound) for
// none, infinity or beyond forever_after_seconds; 0 (a poll) for zero,
// negative or NaN (Python's concurrent.futures: result(-1) times out at
// once). A double, not an optional: g++ 12 with sanitizer instrumentation
// warns (falsely) that copies of an empty optional<double> read its payload.
inline double wait_seconds(const std::optional<double>& t) noexcept {
  if (!t.has_value()) return std::numeric_limits<double>::infinity();
  const double seconds = *t;
  if (std::isnan(seconds) || seconds <= 0) return 0.0;
  if (seconds > forever_after_seconds) return std::numeric_limits<double>::infinity();
  return seconds;
}

}  // namespace greenlet::concurrent::detail
