// tls_context.cpp: ssl_context (Python's ssl.SSLContext) over an OpenSSL
// SSL_CTX, and the SSLError texts.
#include "io/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cctype>
#include <cstdio>
#include <memory>
#include <new>

#include "greenlet/asyncio/sync_errors.hpp"

namespace greenlet::asyncio {

namespace {

class ssl_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "ssl"; }
  std::string message(int code) const override {
    switch (static_cast<ssl_errc>(code)) {
      case ssl_errc::ssl: return "SSL error";
      case ssl_errc::syscall: return "SSL system call error";
      case ssl_errc::zero_return: return "TLS/SSL connection has been closed (EOF)";
      case ssl_errc::eof: return "EOF occurred in violation of protocol";
    }
    return "unknown SSL error";
  }
};

// Python's short names for OpenSSL's libraries (SSLError.library).
std::string library_name(unsigned long err) {
  switch (ERR_GET_LIB(err)) {
    case ERR_LIB_SSL: return "SSL";
    case ERR_LIB_X509: return "X509";
    case ERR_LIB_X509V3: return "X509V3";
    case ERR_LIB_PEM: return "PEM";
    case ERR_LIB_EVP: return "EVP";
    case ERR_LIB_ASN1: return "ASN1";
    case ERR_LIB_SYS: return "SYS";
    case ERR_LIB_BIO: return "BIO";
    case ERR_LIB_RSA: return "RSA";
    case ERR_LIB_EC: return "EC";
    default: break;
  }
  const char* lib = ERR_lib_error_string(err);
  return lib != nullptr ? lib : "SSL";
}

// The reason's mnemonic, as Python prints it: "wrong version number" ->
// "WRONG_VERSION_NUMBER" (OpenSSL 3 offers the text, not the macro name).
std::string reason_mnemonic(const char* reason) {
  std::string out;
  for (const char* p = reason; *p != '\0'; ++p) {
    out += *p == ' ' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(*p)));
  }
  return out;
}

// The server's ALPN choice: its own first protocol the client offers; no
// common one means no ALPN (the handshake goes on), as Python's.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void* arg) {
  const auto* s = static_cast<const ssl_context::state*>(arg);
  if (s->alpn_wire.empty()) return SSL_TLSEXT_ERR_NOACK;
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, reinterpret_cast<const unsigned char*>(s->alpn_wire.data()),
                            static_cast<unsigned int>(s->alpn_wire.size()), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

const std::error_category& ssl_category() noexcept {
  static const ssl_category_impl instance;
  return instance;
}

namespace detail {

std::exception_ptr ssl_error_from_queue(ssl_errc code, const std::string& doing) {
  const unsigned long err = ERR_peek_last_error();
  ERR_clear_error();
  std::string library = "SSL";
  std::string reason;
  std::string text;
  if (err != 0) {
    library = library_name(err);
    const char* why = ERR_reason_error_string(err);
    reason = why != nullptr ? reason_mnemonic(why) : "UNKNOWN";
    text = "[" + library + ": " + reason + "] " + (why != nullptr ? why : "unknown error");
  } else {
    text = ssl_category().message(static_cast<int>(code));
  }
  if (!doing.empty()) text = doing + ": " + text;
  return std::make_exception_ptr(SSLError(code, std::move(library), std::move(reason), text));
}

void raise_ssl_error(ssl_errc code, const std::string& doing) {
  std::rethrow_exception(ssl_error_from_queue(code, doing));
}

namespace {

void check_positive_timeout(const char* name, double seconds) {
  if (seconds > 0) return;
  char text[64];
  std::snprintf(text, sizeof text, "%g", seconds);
  throw ValueError(std::string(name) + " should be a positive number, got " + text);
}

}  // namespace

void check_handshake_timeout(double seconds) { check_positive_timeout("ssl_handshake_timeout", seconds); }

void check_shutdown_timeout(double seconds) { check_positive_timeout("ssl_shutdown_timeout", seconds); }

}  // namespace detail

ssl_context::state::state(ssl_protocol side) : protocol(side) {
  ctx = SSL_CTX_new(side == ssl_protocol::tls_client ? TLS_client_method() : TLS_server_method());
  if (ctx == nullptr) detail::raise_ssl_error(ssl_errc::ssl, "ssl_context");
  // TLS 1.2 at least, no renegotiation (a write would then wait for a read), compression off, as
  // Python's defaults; a write may be split into records as the memory BIO takes it whole anyway.
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (side == ssl_protocol::tls_client) {
    check_hostname = true;
    set_verify(ssl_verify_mode::cert_required);
  } else {
    set_verify(ssl_verify_mode::cert_none);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, this);
    // A server that asks for client certificates refuses to resume sessions without a session id
    // context (OpenSSL's "session id context uninitialized"); Python's contexts set one too.
    static constexpr unsigned char session_id_context[] = "greenlet-cpp";
    SSL_CTX_set_session_id_context(ctx, session_id_context, sizeof session_id_context - 1);
  }
}

void ssl_context::state::set_verify(ssl_verify_mode mode) noexcept {
  verify = mode;
  int flags = SSL_VERIFY_NONE;
  // A client always needs the server's certificate (Python's CERT_OPTIONAL on a client checks as
  // CERT_REQUIRED); a server with cert_optional lets a client without one in.
  if (mode != ssl_verify_mode::cert_none) flags = SSL_VERIFY_PEER;
  if (mode == ssl_verify_mode::cert_required && protocol == ssl_protocol::tls_server) {
    flags |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  SSL_CTX_set_verify(ctx, flags, nullptr);
}

ssl_context::state::~state() { SSL_CTX_free(ctx); }

ssl_context::ssl_context(ssl_protocol protocol) : s_(std::make_shared<state>(protocol)) {}

ssl_context ssl_context::create_default_context(ssl_purpose purpose, const std::string& cafile) {
  if (purpose == ssl_purpose::client_auth) {
    ssl_context server(ssl_protocol::tls_server);
    if (!cafile.empty()) server.load_verify_locations(cafile);
    return server;
  }
  ssl_context client(ssl_protocol::tls_client);
  if (cafile.empty()) {
    client.load_default_certs();
  } else {
    client.load_verify_locations(cafile);
  }
  return client;
}

const std::shared_ptr<ssl_context::state>& context_state(const ssl_context& ctx) noexcept { return ctx.s_; }

void ssl_context::load_cert_chain(const std::string& certfile, const std::string& keyfile) {
  const std::string& key = keyfile.empty() ? certfile : keyfile;
  if (SSL_CTX_use_certificate_chain_file(s_->ctx, certfile.c_str()) != 1) {
    detail::raise_ssl_error(ssl_errc::ssl, "load_cert_chain(" + certfile + "): cannot read the certificate chain");
  }
  if (SSL_CTX_use_PrivateKey_file(s_->ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    detail::raise_ssl_error(ssl_errc::ssl, "load_cert_chain(" + key + "): cannot read the private key");
  }
  if (SSL_CTX_check_private_key(s_->ctx) != 1) {
    detail::raise_ssl_error(ssl_errc::ssl,
                            "load_cert_chain(" + certfile + ", " + key + "): the key does not match the certificate");
  }
}

void ssl_context::load_verify_locations(const std::string& cafile, const std::string& capath) {
  if (cafile.empty() && capath.empty())
    throw ValueError("load_verify_locations(): cafile and capath cannot be both empty");
  if (SSL_CTX_load_verify_locations(s_->ctx, cafile.empty() ? nullptr : cafile.c_str(),
                                    capath.empty() ? nullptr : capath.c_str()) != 1) {
    detail::raise_ssl_error(ssl_errc::ssl, "load_verify_locations(" + (cafile.empty() ? capath : cafile) + ")");
  }
}

void ssl_context::load_verify_cadata(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) throw std::bad_alloc();
  X509_STORE* store = SSL_CTX_get_cert_store(s_->ctx);
  int loaded = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    const int ok = X509_STORE_add_cert(store, cert);
    X509_free(cert);
    if (ok != 1) detail::raise_ssl_error(ssl_errc::ssl, "load_verify_cadata()");
    ++loaded;
  }
  ERR_clear_error();  // the end of the text reads as "no start line"
  if (loaded == 0) {
    throw SSLError(ssl_errc::ssl, "X509", "NO_CERTIFICATE_OR_CRL_FOUND",
                   "load_verify_cadata(): [X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate or crl found: pass "
                   "PEM text holding at least one \"-----BEGIN CERTIFICATE-----\" block");
  }
}

void ssl_context::load_default_certs() {
  if (SSL_CTX_set_default_verify_paths(s_->ctx) != 1) detail::raise_ssl_error(ssl_errc::ssl, "load_default_certs()");
}

ssl_verify_mode ssl_context::verify_mode() const noexcept { return s_->verify; }

void ssl_context::set_verify_mode(ssl_verify_mode mode) {
  if (mode == ssl_verify_mode::cert_none && s_->check_hostname) {
    throw ValueError("Cannot set verify_mode to CERT_NONE when check_hostname is enabled.");
  }
  s_->set_verify(mode);
}

bool ssl_context::check_hostname() const noexcept { return s_->check_hostname; }

void ssl_context::set_check_hostname(bool on) noexcept {
  if (on && s_->verify == ssl_verify_mode::cert_none) s_->set_verify(ssl_verify_mode::cert_required);
  s_->check_hostname = on;
}

void ssl_context::set_alpn_protocols(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& p : protocols) {
    if (p.empty() || p.size() > 255) {
      throw ValueError("set_alpn_protocols(): a protocol name must be 1 to 255 bytes, got " + std::to_string(p.size()));
    }
    wire += static_cast<char>(p.size());
    wire += p;
  }
  s_->alpn_wire = wire;
  if (s_->protocol == ssl_protocol::tls_client &&
      SSL_CTX_set_alpn_protos(s_->ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                              static_cast<unsigned int>(wire.size())) != 0) {
    throw std::bad_alloc();
  }
}

void ssl_context::set_ciphers(const std::string& list) {
  if (SSL_CTX_set_cipher_list(s_->ctx, list.c_str()) != 1) {
    detail::raise_ssl_error(ssl_errc::ssl, "set_ciphers(\"" + list + "\"): no cipher can be selected");
  }
}

ssl_protocol ssl_context::protocol() const noexcept { return s_->protocol; }

SSL_CTX* ssl_context::native_handle() const noexcept { return s_->ctx; }

bool ssl_session::has_ticket() const noexcept { return s_ != nullptr && SSL_SESSION_has_ticket(s_->session) == 1; }

long ssl_session::timeout() const noexcept { return s_ != nullptr ? SSL_SESSION_get_timeout(s_->session) : 0; }

}  // namespace greenlet::asyncio
