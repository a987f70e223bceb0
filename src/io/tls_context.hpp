// tls_context.hpp: the state behind an ssl_context, and the SSLError
// reports built from OpenSSL's error queue. Internal to the I/O layer.
#pragma once

#include <openssl/ssl.h>

#include <exception>
#include <memory>
#include <string>

#include "greenlet/io/tls.hpp"

namespace greenlet::asyncio {

struct ssl_context::state {
  explicit state(ssl_protocol side);
  ~state();
  state(const state&) = delete;
  state& operator=(const state&) = delete;

  // set_verify(mode) sets verify and the SSL_CTX's verification flags.
  void set_verify(ssl_verify_mode mode) noexcept;

  SSL_CTX* ctx = nullptr;
  ssl_protocol protocol;
  ssl_verify_mode verify = ssl_verify_mode::cert_none;
  bool check_hostname = false;
  // The ALPN list in the wire format (length-prefixed names), for both the
  // client's offer and the server's choice.
  std::string alpn_wire;
};

// The state behind an ssl_session: the OpenSSL session, and the context it was made with (a
// session resumes only with that one).
struct ssl_session::state {
  state(SSL_SESSION* s, std::shared_ptr<ssl_context::state> c) noexcept : session(s), ctx(std::move(c)) {}
  ~state() { SSL_SESSION_free(session); }
  state(const state&) = delete;
  state& operator=(const state&) = delete;
  SSL_SESSION* session;
  std::shared_ptr<ssl_context::state> ctx;
};

namespace detail {

// ssl_error_from_queue(code, doing) is the SSLError for OpenSSL's latest
// queued error (Python's text: "[SSL: REASON] reason"), `doing` prefixed
// when not empty ("load_cert_chain(cert.pem): [PEM: NO_START_LINE] ..."),
// and empties the thread's queue. With nothing queued it reads as
// Python's for the code ("EOF occurred in violation of protocol").
std::exception_ptr ssl_error_from_queue(ssl_errc code, const std::string& doing);
[[noreturn]] void raise_ssl_error(ssl_errc code, const std::string& doing);
// check_handshake_timeout(seconds) throws ValueError unless seconds > 0, worded as asyncio's:
// "ssl_handshake_timeout should be a positive number, got 0" (the number as Python prints it, not
// std::to_string's "0.000000"). Every call taking ssl_handshake_timeout uses it.
void check_handshake_timeout(double seconds);
// check_shutdown_timeout(seconds) is the same check for ssl_shutdown_timeout: "ssl_shutdown_timeout
// should be a positive number, got -1".
void check_shutdown_timeout(double seconds);
// default_ssl_handshake_timeout: asyncio's constants.SSL_HANDSHAKE_TIMEOUT.
constexpr double default_ssl_handshake_timeout = 60.0;
// default_ssl_shutdown_timeout: asyncio's constants.SSL_SHUTDOWN_TIMEOUT.
constexpr double default_ssl_shutdown_timeout = 30.0;

}  // namespace detail

}  // namespace greenlet::asyncio
