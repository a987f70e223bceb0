// tls_session.hpp: one TLS session over memory BIOs. The stream transport
// moves the bytes: it feeds what the socket gave (ciphertext) in, and sends
// what take_output() hands out; the session turns them into plaintext and
// back. No system call here, so it never blocks and never touches the fd.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "io/tls_context.hpp"

namespace greenlet::asyncio::detail {

class tls_session {
 public:
  // tls_session(ctx, server_side, server_hostname, resume) starts a session on ctx's settings: a
  // client sends server_hostname as SNI (not an IP address) and, when ctx checks host names,
  // accepts only a certificate for it; it offers to resume `resume` if not empty. Throws
  // ValueError when ctx checks host names and server_hostname is empty, for a client session on a
  // server context or the reverse, for a session of another context; SSLError.
  tls_session(std::shared_ptr<ssl_context::state> ctx, bool server_side, const std::string& server_hostname,
              const ssl_session& resume = {});
  ~tls_session();
  tls_session(const tls_session&) = delete;
  tls_session& operator=(const tls_session&) = delete;

  // feed(data, size) hands over ciphertext the socket gave.
  void feed(const char* data, std::size_t size);
  // handshake() advances the handshake: true once it is complete, false
  // while it needs more ciphertext. Throws SSLCertVerificationError or
  // SSLError when it fails (the alert for the peer is then in the output).
  bool handshake();
  // read_into(out, buffer, size) appends every byte of plaintext the
  // ciphertext fed so far makes, decrypting through buffer[0, size) (the
  // caller's: a task's stack may be small), and returns how many;
  // peer_closed() turns true at the peer's close_notify. Throws SSLError
  // for a corrupt or forged record.
  std::size_t read_into(std::string& out, char* buffer, std::size_t size);
  bool peer_closed() const noexcept { return peer_closed_; }
  // write(data) encrypts data into the output. Throws SSLError if the
  // session has failed or was shut down.
  void write(std::string_view data);
  // shutdown() queues the close_notify alert; later writes are refused.
  void shutdown() noexcept;
  // take_output(out) appends the ciphertext waiting to be sent; false if none.
  bool take_output(std::string& out);
  bool handshake_done() const noexcept { return handshake_done_; }
  bool server_side() const noexcept { return server_side_; }
  tls_info info() const;

 private:
  [[noreturn]] void raise_failure(int ret, const char* doing);

  std::shared_ptr<ssl_context::state> ctx_;  // the SSL refers to its SSL_CTX
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // ciphertext from the peer (owned by ssl_)
  BIO* out_ = nullptr;  // ciphertext for the peer (owned by ssl_)
  bool server_side_;
  bool handshake_done_ = false;
  bool peer_closed_ = false;
  std::string server_hostname_;
};

}  // namespace greenlet::asyncio::detail
