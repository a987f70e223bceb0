// asyncio/sync_errors.hpp: the exceptions of the synchronization
// primitives, queues and async iteration, named as Python's: QueueEmpty,
// QueueFull, QueueShutDown, BrokenBarrierError, ValueError, StopAsyncIteration.
//
// They carry a sync_errc in sync_category(), their own category because
// asyncio_errc (errors.hpp) belongs to the loop itself.
#pragma once

#include <string>
#include <system_error>

#include "greenlet/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// sync_errc names what the primitives and queues report.
enum class sync_errc {
  queue_empty = 1,       // get_nowait() on an empty queue
  queue_full,            // put_nowait() on a full queue
  broken_barrier,        // Barrier aborted, or reset while waiting
  value_error,           // a bad argument or an over-release, Python's ValueError
  stop_async_iteration,  // an asynchronous iterator is exhausted
  queue_shut_down,       // put on a shut-down queue, or get from one shut down and empty
};

}  // namespace greenlet::asyncio

// Makes the enum convert implicitly to std::error_code. A trait: nothing to throw, any thread.
template <>
struct std::is_error_code_enum<greenlet::asyncio::sync_errc> : std::true_type {};

namespace greenlet::asyncio {

namespace detail {
class sync_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "asyncio.sync"; }
  std::string message(int code) const override {
    switch (static_cast<sync_errc>(code)) {
      case sync_errc::queue_empty: return "the queue is empty; await get() to wait for an item";
      case sync_errc::queue_full: return "the queue is full; await put() to wait for room";
      case sync_errc::broken_barrier: return "the barrier is broken or was reset";
      case sync_errc::value_error: return "bad value";
      case sync_errc::stop_async_iteration: return "the asynchronous iterator is exhausted";
      case sync_errc::queue_shut_down:
        return "the queue was shut down (shutdown()): it takes no more items, and get() raises once it is empty";
    }
    return "unknown asyncio.sync error";
  }
};
}  // namespace detail

// sync_category() is the std::error_category of sync_errc. Throws nothing; any thread (a
// function-local static).
inline const std::error_category& sync_category() noexcept {
  static const detail::sync_category_impl instance;
  return instance;
}

// make_error_code(e) wraps a sync_errc in a std::error_code of sync_category(), so the enum
// converts implicitly. Throws nothing; any thread.
inline std::error_code make_error_code(sync_errc e) noexcept { return {static_cast<int>(e), sync_category()}; }

// sync_error is the common base of this header's exceptions: a
// greenlet::error whose code is a sync_errc.
// Exception objects are not synchronized: share one between threads only read-only.
class sync_error : public ::greenlet::error {
 public:
  // sync_error(code, what) makes the exception with the given sync_errc and text. Throws
  // std::bad_alloc if copying the text fails. Exception objects are not synchronized: share one
  // between threads only read-only.
  sync_error(sync_errc code, const std::string& what) : ::greenlet::error(make_error_code(code), what) {}
};

// QueueEmpty is raised by get_nowait() on an empty queue.
// Exception objects are not synchronized: share one between threads only read-only.
class QueueEmpty : public sync_error {
 public:
  // QueueEmpty(what) makes the exception (code sync_errc::queue_empty). Throws std::bad_alloc only.
  explicit QueueEmpty(const std::string& what = "QueueEmpty") : sync_error(sync_errc::queue_empty, what) {}
};

// QueueFull is raised by put_nowait() on a full queue.
// Exception objects are not synchronized: share one between threads only read-only.
class QueueFull : public sync_error {
 public:
  // QueueFull(what) makes the exception (code sync_errc::queue_full). Throws std::bad_alloc only.
  explicit QueueFull(const std::string& what = "QueueFull") : sync_error(sync_errc::queue_full, what) {}
};

// QueueShutDown is asyncio's QueueShutDown (Python 3.13): raised by put() and put_nowait() on a
// queue that was shut down, and by get() and get_nowait() on one shut down and empty (at once
// after shutdown(true), which empties it).
// Exception objects are not synchronized: share one between threads only read-only.
class QueueShutDown : public sync_error {
 public:
  // QueueShutDown(what) makes the exception (code sync_errc::queue_shut_down). Throws std::bad_alloc only.
  explicit QueueShutDown(const std::string& what = "QueueShutDown") : sync_error(sync_errc::queue_shut_down, what) {}
};

// BrokenBarrierError is raised by Barrier::wait() when the barrier is
// aborted, or reset while the caller waits.
// Exception objects are not synchronized: share one between threads only read-only.
class BrokenBarrierError : public sync_error {
 public:
  // BrokenBarrierError(what) makes the exception (code sync_errc::broken_barrier). Throws
  // std::bad_alloc only.
  explicit BrokenBarrierError(const std::string& what = "Barrier aborted")
      : sync_error(sync_errc::broken_barrier, what) {}
};

// ValueError is Python's: a BoundedSemaphore released too many times, a
// negative Semaphore value, task_done() called too often.
// Exception objects are not synchronized: share one between threads only read-only.
class ValueError : public sync_error {
 public:
  // ValueError(what) makes the exception (code sync_errc::value_error). Throws std::bad_alloc only.
  explicit ValueError(const std::string& what) : sync_error(sync_errc::value_error, what) {}
};

// StopAsyncIteration ends an asynchronous iteration: an anext() may throw
// it instead of returning std::nullopt.
class StopAsyncIteration : public sync_error {
 public:
  // StopAsyncIteration(what) makes the exception (code sync_errc::stop_async_iteration). Throws
  // std::bad_alloc only.
  explicit StopAsyncIteration(const std::string& what = "StopAsyncIteration")
      : sync_error(sync_errc::stop_async_iteration, what) {}
};

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
