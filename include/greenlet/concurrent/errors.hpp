// concurrent/errors.hpp: the exception types of concurrent.futures.
#pragma once

#include <string>
#include <system_error>

#include "greenlet/asyncio/errors.hpp"
#include "greenlet/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::concurrent {

// concurrent_errc names the executor layer's error conditions, in
// concurrent::category().
enum class concurrent_errc {
  shutdown = 1,      // submit() after shutdown()
  broken_pool,       // a worker died or its initializer failed
  blocking_in_loop,  // a blocking call from inside an event-loop task
  remote_error,      // a process-pool function threw in the worker
  unknown_function,  // a process-pool function name nobody registered
  unexpected_state,  // set_running_or_notify_cancel() on a running or finished future
};

}  // namespace greenlet::concurrent

// Makes the enum convert implicitly to std::error_code. A trait: nothing to throw, any thread.
template <>
struct std::is_error_code_enum<greenlet::concurrent::concurrent_errc> : std::true_type {};

namespace greenlet::concurrent {

// category() is the std::error_category of concurrent_errc codes. Throws nothing; a
// function-local static, safe to call from any thread.
const std::error_category& category() noexcept;

// make_error_code(e) wraps a concurrent_errc in a std::error_code of category(), so the enum
// converts implicitly. Throws nothing; any thread.
inline std::error_code make_error_code(concurrent_errc e) noexcept { return {static_cast<int>(e), category()}; }

// CancelledError and TimeoutError are asyncio's own types, as in Python 3.8+
// (concurrent.futures.CancelledError is asyncio.CancelledError), so a
// cancellation crosses the bridge between the two without translation.
// Exception objects: share one between threads only read-only.
using CancelledError = ::greenlet::asyncio::CancelledError;
// TimeoutError is asyncio::TimeoutError, thrown by Future::result() and as_completed() when the
// timeout passes first. Share one between threads only read-only.
using TimeoutError = ::greenlet::asyncio::TimeoutError;

// RuntimeError is an executor misuse: submit() after shutdown(), a
// blocking call (Future::result(), shutdown(wait=true)) made from inside an
// event-loop task, which would block the loop's whole thread, or
// set_running_or_notify_cancel() on a future already running or finished
// (Python's RuntimeError "Future in unexpected state").
class RuntimeError : public ::greenlet::error {
 public:
  // RuntimeError(code, what) makes the exception with the given concurrent_errc and text. Throws
  // std::bad_alloc if copying the text fails. Exception objects are not synchronized: share one
  // between threads only read-only.
  RuntimeError(concurrent_errc code, const std::string& what)
      : ::greenlet::error(make_error_code(code), what), code_(code) {}
  // condition() is the concurrent_errc given to the constructor. Throws nothing.
  concurrent_errc condition() const noexcept { return code_; }

 private:
  concurrent_errc code_;
};

// BrokenExecutor: the pool can no longer run work; futures it had accepted
// fail with it and submit() throws it.
// Exception objects are not synchronized: share one between threads only read-only.
class BrokenExecutor : public ::greenlet::error {
 public:
  // BrokenExecutor(what) makes the exception with code concurrent_errc::broken_pool and the given
  // text; BrokenThreadPool and BrokenProcessPool inherit this constructor. Throws std::bad_alloc if
  // copying the text fails; read-only sharing between threads only.
  explicit BrokenExecutor(const std::string& what)
      : ::greenlet::error(make_error_code(concurrent_errc::broken_pool), what) {}
};

// BrokenThreadPool: a worker thread's initializer threw.
class BrokenThreadPool : public BrokenExecutor {
 public:
  // BrokenThreadPool(what) is BrokenExecutor's constructor.
  using BrokenExecutor::BrokenExecutor;
};

// BrokenProcessPool: a worker process died (crashed, killed, exited) while
// the pool had work for it.
// Exception objects are not synchronized: share one between threads only read-only.
class BrokenProcessPool : public BrokenExecutor {
 public:
  // BrokenProcessPool(what) is BrokenExecutor's constructor.
  using BrokenExecutor::BrokenExecutor;
};

// RemoteError carries an exception a process-pool function threw in its
// worker: the type cannot cross the process boundary, its what() does.
// Exception objects are not synchronized: share one between threads only read-only.
class RemoteError : public ::greenlet::error {
 public:
  // RemoteError(what) makes the exception with code concurrent_errc::remote_error; what carries the
  // remote exception's type and message. Throws std::bad_alloc if copying the text fails.
  explicit RemoteError(const std::string& what)
      : ::greenlet::error(make_error_code(concurrent_errc::remote_error), what) {}
};

}  // namespace greenlet::concurrent

#pragma GCC visibility pop
