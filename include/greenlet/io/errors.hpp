// io/errors.hpp: the I/O layer's exception types, named as Python's.
#pragma once

#include <string>
#include <system_error>

#include "greenlet/asyncio/errors.hpp"

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

const std::error_category& io_category() noexcept;

inline std::error_code make_error_code(io_errc e) noexcept { return {static_cast<int>(e), io_category()}; }

// OSError is a failed system call: code() is the errno in
// std::generic_category(), what() names the call and the errno's text.
class OSError : public std::system_error {
 public:
  OSError(int err, const std::string& what) : std::system_error(err, std::generic_category(), what) {}
  int errno_() const noexcept { return code().value(); }
};

// ConnectionError and its kinds, as Python's.
class ConnectionError : public OSError {
 public:
  using OSError::OSError;
};
class ConnectionResetError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
class ConnectionRefusedError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
class ConnectionAbortedError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
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
  explicit gaierror(const std::string& what)
      : std::system_error(make_error_code(io_errc::unknown_host), what), what_(what) {}
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::string what_;
};

// IncompleteReadError is raised by readexactly()/readuntil() at EOF;
// partial() holds the bytes read before it, expected() how many were wanted
// (0 for readuntil).
class IncompleteReadError : public std::system_error {
 public:
  IncompleteReadError(std::string partial, std::size_t expected)
      : std::system_error(make_error_code(io_errc::incomplete_read), ""),
        partial_(std::move(partial)),
        expected_(expected),
        what_(std::to_string(partial_.size()) + " bytes read on a total of " +
              (expected == 0 ? std::string("undefined") : std::to_string(expected)) + " expected bytes") {}
  const std::string& partial() const noexcept { return partial_; }
  std::size_t expected() const noexcept { return expected_; }
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
  LimitOverrunError(const std::string& what, std::size_t consumed)
      : std::system_error(make_error_code(io_errc::limit_overrun), what), consumed_(consumed), what_(what) {}
  std::size_t consumed() const noexcept { return consumed_; }
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::size_t consumed_;
  std::string what_;
};

}  // namespace greenlet::asyncio
