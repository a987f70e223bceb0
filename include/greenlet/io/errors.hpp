// io/errors.hpp: the I/O layer's exception types, named as Python's.
#pragma once

#include <string>
#include <system_error>

#include "greenlet/asyncio/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// io_errc names the stream layer's own conditions, in io_category().
enum class io_errc {
  incomplete_read = 1,  // IncompleteReadError
  limit_overrun,        // LimitOverrunError
  unknown_host,         // getaddrinfo() found nothing
};

}  // namespace greenlet::asyncio

template <>
struct std::is_error_code_enum<greenlet::asyncio::io_errc> : std::true_type {};

namespace greenlet::asyncio {

// io_category() is the std::error_category of io_errc codes, named "asyncio.io". Throws nothing;
// a function-local static, safe to call from any thread.
const std::error_category& io_category() noexcept;

// make_error_code(e) wraps an io_errc in a std::error_code of io_category(), so the enum converts
// implicitly. Throws nothing; any thread.
inline std::error_code make_error_code(io_errc e) noexcept { return {static_cast<int>(e), io_category()}; }

// OSError is a failed system call: code() is the errno in
// std::generic_category(), what() names the call and the errno's text.
class OSError : public std::system_error {
 public:
  // OSError(err, what) makes the exception for errno err, with `what` naming the failed call. Throws
  // std::bad_alloc if building the message fails. Exception objects are not synchronized: share one
  // between threads only read-only.
  OSError(int err, const std::string& what) : std::system_error(err, std::generic_category(), what) {}
  // errno_() is the errno value the exception was made with. Throws nothing.
  int errno_() const noexcept { return code().value(); }

 protected:
  // OSError(code, what) is for the kinds whose code is not an errno (SSLError's, in ssl_category()).
  OSError(std::error_code code, const std::string& what) : std::system_error(code, what) {}
};

// ConnectionError and its kinds, as Python's.
class ConnectionError : public OSError {
 public:
  // ConnectionError(err, what) is OSError's constructor: errno err, `what` naming the call.
  using OSError::OSError;
};
// ConnectionResetError is raised for ECONNRESET: the peer reset the connection.
class ConnectionResetError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
// ConnectionRefusedError is raised for ECONNREFUSED: nothing listens at the address.
class ConnectionRefusedError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
// ConnectionAbortedError is raised for ECONNABORTED: the connection was aborted locally.
class ConnectionAbortedError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
// BrokenPipeError is raised for EPIPE (and ESHUTDOWN): writing to a connection the peer closed.
class BrokenPipeError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};

// raise_os_error(err, what) throws the OSError subclass Python would use
// for errno err (ECONNRESET -> ConnectionResetError, ...).
[[noreturn]] void raise_os_error(int err, const std::string& what);

// gaierror is a name resolution failure (getaddrinfo), e.g. an unknown host.
class gaierror : public std::system_error {
 public:
  // gaierror(what, eai) makes the exception with code io_errc::unknown_host, the given text and
  // getaddrinfo's EAI_* code (0 if none). Throws std::bad_alloc if copying the text fails;
  // read-only sharing between threads only.
  explicit gaierror(const std::string& what, int eai = 0)
      : std::system_error(make_error_code(io_errc::unknown_host), what), what_(what), eai_(eai) {}
  // what() is the text given to the constructor: the host, getaddrinfo's reason and what to
  // check. Throws nothing.
  const char* what() const noexcept override { return what_.c_str(); }
  // eai() is getaddrinfo's error code (EAI_NONAME, EAI_AGAIN, ...), Python's gaierror.errno; 0
  // if none. Throws nothing.
  int eai() const noexcept { return eai_; }

 private:
  std::string what_;
  int eai_;
};

// IncompleteReadError is raised by readexactly()/readuntil() at EOF;
// partial() holds the bytes read before it, expected() how many were wanted
// (0 for readuntil).
class IncompleteReadError : public std::system_error {
 public:
  // IncompleteReadError(partial, expected) makes the exception holding the bytes read before EOF and
  // the count wanted (0: undefined, for readuntil). Throws std::bad_alloc if building the message
  // fails; read-only sharing between threads only.
  IncompleteReadError(std::string partial, std::size_t expected)
      : std::system_error(make_error_code(io_errc::incomplete_read), ""),
        partial_(std::move(partial)),
        expected_(expected),
        what_(std::to_string(partial_.size()) + " bytes read on a total of " +
              (expected == 0 ? std::string("undefined") : std::to_string(expected)) + " expected bytes") {}
  // partial() is the bytes read before EOF. Throws nothing.
  const std::string& partial() const noexcept { return partial_; }
  // expected() is how many bytes were wanted, 0 if undefined (readuntil()). Throws nothing.
  std::size_t expected() const noexcept { return expected_; }
  // what() reads "N bytes read on a total of M expected bytes". Throws nothing.
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::string partial_;
  std::size_t expected_;
  std::string what_;
};

// LimitOverrunError is raised by readuntil()/readline() when the separator
// is not found within the stream's limit; consumed() is how many bytes to
// skip. The data stays in the buffer (readline() drops it, as asyncio).
class LimitOverrunError : public std::system_error {
 public:
  // LimitOverrunError(what, consumed) makes the exception with code io_errc::limit_overrun, its text
  // and how many bytes to skip. Throws std::bad_alloc if copying the text fails; read-only sharing
  // between threads only.
  LimitOverrunError(const std::string& what, std::size_t consumed)
      : std::system_error(make_error_code(io_errc::limit_overrun), what), consumed_(consumed), what_(what) {}
  // consumed() is how many buffered bytes to consume to get past the overrun. Throws nothing.
  std::size_t consumed() const noexcept { return consumed_; }
  // what() is the text given to the constructor. Throws nothing.
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::size_t consumed_;
  std::string what_;
};

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
