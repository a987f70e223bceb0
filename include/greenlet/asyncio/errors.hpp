// asyncio/errors.hpp: the event loop's exception types, named as asyncio's.
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>

#include "greenlet/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// asyncio_errc names the event loop's error conditions, in asyncio::category(). An enum: nothing
// to throw, any thread.
enum class asyncio_errc {
  cancelled = 1,
  timeout,
  invalid_state,
  no_running_loop,
  loop_running,
  loop_closed,
  wrong_loop,
  deadlock,
  not_in_task,
  stranded_task,
  primitive_destroyed,     // a Lock, Event, Condition, Semaphore, Barrier or Queue destroyed while a task waited on it
  sendfile_not_available,  // SendfileNotAvailableError: sendfile(2) cannot send this file
  resolver_recursion,      // a lookup inside the loop's resolver (set_resolver()) that would ask it again
};

}  // namespace greenlet::asyncio

// Makes the enum convert implicitly to std::error_code. A trait: nothing to throw, any thread.
template <>
struct std::is_error_code_enum<greenlet::asyncio::asyncio_errc> : std::true_type {};

namespace greenlet::asyncio {

// category() is the std::error_category of asyncio_errc codes, named "asyncio". Throws nothing; a
// function-local static, safe to call from any thread.
const std::error_category& category() noexcept;

// make_error_code(e) wraps an asyncio_errc in a std::error_code of category(), so the enum converts
// implicitly. Throws nothing; any thread.
inline std::error_code make_error_code(asyncio_errc e) noexcept { return {static_cast<int>(e), category()}; }

// CancelledError is raised in a task at the await where it is cancelled, and
// by result() of a cancelled future. A task may catch it; one that lets it
// escape ends cancelled. Not a greenlet::error, so that catching misuse
// errors does not swallow cancellation (as asyncio made it a BaseException).
// Exception objects are not synchronized: share one between threads only
// read-only.
class CancelledError : public std::system_error {
 public:
  // CancelledError(message) makes the exception with cancel()'s message (empty if none). Throws
  // std::bad_alloc if copying the message fails. Exception objects are not synchronized: share one
  // between threads only read-only.
  explicit CancelledError(const std::string& message = "")
      : std::system_error(make_error_code(asyncio_errc::cancelled), message), message_(message) {}
  // message() is the argument given to cancel(), empty if none. Throws nothing; read-only.
  const std::string& message() const noexcept { return message_; }
  // what() is the cancel message, or "CancelledError" when it is empty. Throws nothing.
  const char* what() const noexcept override { return message_.empty() ? "CancelledError" : message_.c_str(); }

 private:
  std::string message_;
};

// TimeoutError is raised by wait_for() and asyncio::timeout scopes. Not
// synchronized: share one between threads only read-only.
class TimeoutError : public std::system_error {
 public:
  // TimeoutError(what) makes the exception with the given text. Throws std::bad_alloc if copying it
  // fails; read-only sharing between threads only.
  explicit TimeoutError(const std::string& what = "timed out")
      : std::system_error(make_error_code(asyncio_errc::timeout), what), what_(what) {}
  // what() is the text given to the constructor. Throws nothing.
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::string what_;
};

// InvalidStateError is raised by set_result() on a done future and by
// result() on a pending one. Not synchronized: share one between threads
// only read-only.
class InvalidStateError : public ::greenlet::error {
 public:
  // InvalidStateError(what) makes the exception with code asyncio_errc::invalid_state. Throws
  // std::bad_alloc if copying the text fails; read-only sharing between threads only.
  explicit InvalidStateError(const std::string& what)
      : ::greenlet::error(make_error_code(asyncio_errc::invalid_state), what) {}
};

// RuntimeError is asyncio's misuse report: no running loop, a loop run
// inside itself, a future of another loop, a deadlock. Not synchronized:
// share one between threads only read-only.
class RuntimeError : public ::greenlet::error {
 public:
  // RuntimeError(code, what) makes the exception with the given asyncio_errc and text. Throws
  // std::bad_alloc if copying the text fails; read-only sharing between threads only.
  RuntimeError(asyncio_errc code, const std::string& what)
      : ::greenlet::error(make_error_code(code), what), code_(code) {}
  // condition() is the asyncio_errc given to the constructor, to tell the misuse kinds apart.
  // Throws nothing.
  asyncio_errc condition() const noexcept { return code_; }

 private:
  asyncio_errc code_;
};

// SendfileNotAvailableError is asyncio's: sock_sendfile()/StreamWriter::sendfile() were told not
// to fall back on read() and send() (fallback = false) and sendfile(2) cannot send the file: not a
// regular file, or the kernel refuses the pair (EINVAL, ENOSYS...). A RuntimeError, as in asyncio.
class SendfileNotAvailableError : public RuntimeError {
 public:
  // SendfileNotAvailableError(what) makes the exception with code
  // asyncio_errc::sendfile_not_available. Throws std::bad_alloc if copying the text fails.
  explicit SendfileNotAvailableError(const std::string& what)
      : RuntimeError(asyncio_errc::sendfile_not_available, what) {}
};

namespace detail {
// is_cancellation(e) is true when e holds a CancelledError.
inline bool is_cancellation(const std::exception_ptr& e) noexcept {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}
}  // namespace detail

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
