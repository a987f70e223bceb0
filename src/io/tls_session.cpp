// tls_session.cpp: an OpenSSL SSL object between two memory BIOs, with
// Python's error texts for what goes wrong.
#include "io/tls_session.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <climits>
#include <new>

#include "greenlet/asyncio/sync_errors.hpp"

namespace greenlet::asyncio::detail {

namespace {

bool is_ip_address(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// verify_message(code, host) is Python's SSLCertVerificationError.verify_message: OpenSSL's text,
// except for a certificate of another host, where Python names the host.
std::string verify_message(long code, const std::string& host) {
  if (code == X509_V_ERR_HOSTNAME_MISMATCH) {
    return "Hostname mismatch, certificate is not valid for '" + host + "'.";
  }
  if (code == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    return "IP address mismatch, certificate is not valid for '" + host + "'.";
  }
  return X509_verify_cert_error_string(code);
}

}  // namespace

tls_session::tls_session(std::shared_ptr<ssl_context::state> ctx, bool server_side, const std::string& server_hostname,
                         const ssl_session& resume)
    : ctx_(std::move(ctx)), server_side_(server_side), server_hostname_(server_hostname) {
  const bool server_ctx = ctx_->protocol == ssl_protocol::tls_server;
  if (server_side != server_ctx) {
    throw ValueError(server_side ? "a server-side TLS connection needs an ssl_context(ssl_protocol::tls_server) "
                                   "(create_default_context(ssl_purpose::client_auth))"
                                 : "a client TLS connection needs an ssl_context(ssl_protocol::tls_client) "
                                   "(create_default_context())");
  }
  if (!server_side && ctx_->check_hostname && server_hostname.empty()) {
    throw ValueError(
        "check_hostname requires server_hostname: pass tls_options{.server_hostname = \"name\"}, or turn "
        "set_check_hostname(false) off on the context");
  }
  if (!server_side && resume && resume.internal_state()->ctx != ctx_) {
    throw ValueError(
        "tls_options.session comes from a connection made with another ssl_context: a session resumes only "
        "with the context it was made with");
  }
  ERR_clear_error();
  ssl_ = SSL_new(ctx_->ctx);
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || in_ == nullptr || out_ == nullptr) {
    BIO_free(in_);
    BIO_free(out_);
    SSL_free(ssl_);
    throw std::bad_alloc();
  }
  // An empty input BIO says "retry", not EOF: the transport tells EOF itself.
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_mem_eof_return(out_, -1);
  SSL_set_bio(ssl_, in_, out_);
  if (server_side) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  if (resume && SSL_set_session(ssl_, resume.internal_state()->session) != 1) {
    SSL_free(ssl_);
    raise_ssl_error(ssl_errc::ssl, "tls_options.session");
  }
  if (server_hostname.empty()) return;
  const bool ip = is_ip_address(server_hostname);
  // SNI carries names only (RFC 6066), as Python's.
  if (!ip && SSL_set_tlsext_host_name(ssl_, server_hostname.c_str()) != 1) {
    SSL_free(ssl_);
    raise_ssl_error(ssl_errc::ssl, "server_hostname '" + server_hostname + "'");
  }
  if (ctx_->check_hostname) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_hostname.c_str())
                      : X509_VERIFY_PARAM_set1_host(param, server_hostname.c_str(), 0);
    if (ok != 1) {
      SSL_free(ssl_);
      raise_ssl_error(ssl_errc::ssl, "server_hostname '" + server_hostname + "'");
    }
  }
}

tls_session::~tls_session() { SSL_free(ssl_); }

void tls_session::feed(const char* data, std::size_t size) {
  if (BIO_write(in_, data, static_cast<int>(size)) != static_cast<int>(size)) throw std::bad_alloc();
}

void tls_session::raise_failure(int ret, const char* doing) {
  const int kind = SSL_get_error(ssl_, ret);
  if (kind == SSL_ERROR_SSL && !handshake_done_) {
    const long verified = SSL_get_verify_result(ssl_);
    const unsigned long err = ERR_peek_last_error();
    if (verified != X509_V_OK && ERR_GET_REASON(err) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
      ERR_clear_error();
      std::string message = verify_message(verified, server_hostname_);
      throw SSLCertVerificationError(verified, message,
                                     "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: " + message);
    }
  }
  if (kind == SSL_ERROR_ZERO_RETURN) raise_ssl_error(ssl_errc::zero_return, doing);
  raise_ssl_error(kind == SSL_ERROR_SSL ? ssl_errc::ssl : ssl_errc::eof, doing);
}

bool tls_session::handshake() {
  ERR_clear_error();
  const int ret = SSL_do_handshake(ssl_);
  if (ret == 1) {
    handshake_done_ = true;
    return true;
  }
  if (SSL_get_error(ssl_, ret) == SSL_ERROR_WANT_READ) return false;
  raise_failure(ret, "");
}

std::size_t tls_session::read_into(std::string& out, char* buffer, std::size_t size) {
  std::size_t total = 0;
  const int chunk = static_cast<int>(std::min<std::size_t>(size, INT_MAX));
  while (!peer_closed_) {
    ERR_clear_error();
    const int n = SSL_read(ssl_, buffer, chunk);
    if (n > 0) {
      out.append(buffer, static_cast<std::size_t>(n));
      total += static_cast<std::size_t>(n);
      continue;
    }
    const int kind = SSL_get_error(ssl_, n);
    if (kind == SSL_ERROR_WANT_READ) break;
    if (kind == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      break;
    }
    raise_failure(n, "");
  }
  return total;
}

void tls_session::write(std::string_view data) {
  ERR_clear_error();
  const int n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
  // A memory BIO takes everything: a short write cannot happen.
  if (n <= 0) raise_failure(n, "write");
}

void tls_session::shutdown() noexcept {
  ERR_clear_error();
  if (handshake_done_ && (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) == 0) SSL_shutdown(ssl_);
  ERR_clear_error();
}

bool tls_session::take_output(std::string& out) {
  const std::size_t pending = BIO_ctrl_pending(out_);
  if (pending == 0) return false;
  const std::size_t at = out.size();
  out.resize(at + pending);
  const int n = BIO_read(out_, out.data() + at, static_cast<int>(pending));
  out.resize(at + (n > 0 ? static_cast<std::size_t>(n) : 0));
  return n > 0;
}

tls_info tls_session::info() const {
  tls_info info;
  info.version = SSL_get_version(ssl_);
  if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_)) info.cipher = SSL_CIPHER_get_name(cipher);
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
  if (alpn != nullptr) info.alpn_protocol.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  info.server_hostname = server_hostname_;
  info.server_side = server_side_;
  info.session_reused = SSL_session_reused(ssl_) == 1;
  if (!server_side_) {
    SSL_SESSION* session = SSL_get1_session(ssl_);
    if (session != nullptr && SSL_SESSION_is_resumable(session) == 1) {
      info.session = ssl_session(std::make_shared<const ssl_session::state>(session, ctx_));
    } else {
      SSL_SESSION_free(session);
    }
  }
  // As Python's getpeercert(): a certificate that was not validated (verify mode CERT_NONE) is not
  // reported, so that nobody trusts a subject that anyone could have put there.
  X509* peer = (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) != 0 ? SSL_get_peer_certificate(ssl_) : nullptr;
  if (peer != nullptr) {
    if (BIO* text = BIO_new(BIO_s_mem())) {
      X509_NAME_print_ex(text, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
      char* data = nullptr;
      const long size = BIO_get_mem_data(text, &data);
      if (size > 0) info.peer_subject.assign(data, static_cast<std::size_t>(size));
      BIO_free(text);
    }
    X509_free(peer);
  }
  return info;
}

}  // namespace greenlet::asyncio::detail
