// io/tls.hpp: TLS for streams, as Python's ssl module serves asyncio:
// ssl_context (ssl.SSLContext), the SSLError family, and the options that
// open_connection(), start_server() and StreamWriter::start_tls() take.
// OpenSSL does the cryptography; this header does not include it.
//
//   auto ctx = asyncio::ssl_context::create_default_context();  // verifies the server, system CAs
//   auto [reader, writer] = asyncio::open_connection("example.org", 443, ctx);
//   writer.write("GET / HTTP/1.0\r\nHost: example.org\r\n\r\n");
//
//   asyncio::ssl_context server_ctx(asyncio::ssl_protocol::tls_server);
//   server_ctx.load_cert_chain("cert.pem", "key.pem");
//   auto server = asyncio::start_server(handler, "127.0.0.1", 8443, {.ssl = server_ctx});
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "greenlet/io/errors.hpp"

// OpenSSL's own typedef, repeated (the same type) so that native_handle() needs no OpenSSL header.
typedef struct ssl_ctx_st SSL_CTX;

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// ssl_protocol is the side a context serves: ssl.PROTOCOL_TLS_CLIENT or ssl.PROTOCOL_TLS_SERVER.
// Both negotiate the highest TLS version the peers share, TLS 1.2 at least.
enum class ssl_protocol { tls_client, tls_server };

// ssl_purpose is create_default_context()'s purpose, ssl.Purpose: server_auth makes a client's
// context (it authenticates servers), client_auth a server's.
enum class ssl_purpose { server_auth, client_auth };

// ssl_verify_mode is ssl.CERT_NONE / CERT_OPTIONAL / CERT_REQUIRED: whether the peer's certificate
// is asked for and checked against the trusted CAs. A client with cert_optional checks as with
// cert_required (as Python's).
enum class ssl_verify_mode { cert_none, cert_optional, cert_required };

// ssl_context is Python's ssl.SSLContext: the certificates, trusted CAs and checks shared by the
// connections made with it. Copies share one context, as a Python object; change it before the
// connections that use it are made (each copies what it needs when its handshake starts). Loop
// thread or any one thread at a time: not synchronized for changes.
class ssl_context {
 public:
  // ssl_context(protocol) is ssl.SSLContext(protocol): a client context checks the server's
  // certificate and host name (verify_mode() cert_required, check_hostname() true) but trusts no
  // CA yet (load_verify_locations() or load_default_certs()); a server context asks for no client
  // certificate. Throws SSLError if OpenSSL cannot make one, std::bad_alloc.
  explicit ssl_context(ssl_protocol protocol);
  // create_default_context(purpose, cafile) is ssl.create_default_context(): for server_auth a
  // client context trusting cafile, or the system's CAs when cafile is empty; for client_auth a
  // server context (load_cert_chain() still to call). Throws as load_verify_locations().
  static ssl_context create_default_context(ssl_purpose purpose = ssl_purpose::server_auth,
                                            const std::string& cafile = "");

  // load_cert_chain(certfile, keyfile) loads this side's certificate chain (PEM) and its private
  // key (PEM; in certfile when keyfile is empty). Throws SSLError naming the file and OpenSSL's
  // reason (a missing file, a key that does not match the certificate).
  void load_cert_chain(const std::string& certfile, const std::string& keyfile = "");
  // load_verify_locations(cafile, capath) trusts the CA certificates in cafile (PEM) and/or the
  // hashed directory capath. Throws ValueError if both are empty, SSLError if one cannot be read.
  void load_verify_locations(const std::string& cafile, const std::string& capath = "");
  // load_verify_cadata(pem) trusts the CA certificates of a PEM text (Python's cadata=). Throws
  // SSLError if it holds none, or a broken one.
  void load_verify_cadata(const std::string& pem);
  // load_default_certs() trusts the system's CAs (OpenSSL's default paths: Debian's
  // /etc/ssl/certs). Throws SSLError if OpenSSL cannot set them.
  void load_default_certs();

  // verify_mode() / set_verify_mode(mode) as ssl.SSLContext.verify_mode. Setting cert_none while
  // check_hostname() is true throws ValueError, as Python's ("Cannot set verify_mode to CERT_NONE
  // when check_hostname is enabled.").
  ssl_verify_mode verify_mode() const noexcept;
  void set_verify_mode(ssl_verify_mode mode);
  // check_hostname() / set_check_hostname(on) as ssl.SSLContext.check_hostname: a client checks
  // that the server's certificate names the host it connected to (server_hostname). Turning it
  // on with verify_mode() cert_none sets cert_required, as Python's. Throws nothing.
  bool check_hostname() const noexcept;
  void set_check_hostname(bool on) noexcept;
  // set_alpn_protocols(protocols) is ssl.SSLContext.set_alpn_protocols(): a client offers them,
  // a server picks the first of its own list that the client offers. Throws ValueError for an
  // empty name or one longer than 255 bytes.
  void set_alpn_protocols(const std::vector<std::string>& protocols);
  // set_ciphers(list) is ssl.SSLContext.set_ciphers(): OpenSSL's cipher list for TLS 1.2 (TLS
  // 1.3's suites are not affected). Throws SSLError if no cipher in it can be used.
  void set_ciphers(const std::string& list);
  // protocol() is the side given to the constructor. Throws nothing.
  ssl_protocol protocol() const noexcept;
  // native_handle() is the OpenSSL SSL_CTX, for settings this class does not offer. Throws nothing.
  SSL_CTX* native_handle() const noexcept;

  struct state;  // internal

 private:
  std::shared_ptr<state> s_;
  friend const std::shared_ptr<state>& context_state(const ssl_context& ctx) noexcept;
};

// Internal: the shared state behind an ssl_context, for the stream layer.
const std::shared_ptr<ssl_context::state>& context_state(const ssl_context& ctx) noexcept;

// ssl_session is a TLS session a client can resume on its next connection to the same server,
// Python's ssl.SSLSession: the resumed handshake skips the certificate exchange and the key
// agreement's expensive half. Take it from a client's tls_info::session once the connection has
// read something (TLS 1.3 servers send their session tickets after the handshake), and pass it as
// tls_options::session to the next connection made with the same ssl_context. An empty one (the
// default) resumes nothing. A handle: copies share the session; read-only, so any thread.
class ssl_session {
 public:
  ssl_session() = default;
  // True for a session that can be resumed. Throws nothing.
  explicit operator bool() const noexcept { return s_ != nullptr; }
  // has_ticket() is SSLSession.has_ticket: the server gave a session ticket. Throws nothing.
  bool has_ticket() const noexcept;
  // timeout() is SSLSession.timeout: the seconds the session may be resumed for. Throws nothing.
  long timeout() const noexcept;

  struct state;  // internal
  explicit ssl_session(std::shared_ptr<const state> s) noexcept : s_(std::move(s)) {}
  const std::shared_ptr<const state>& internal_state() const noexcept { return s_; }

 private:
  std::shared_ptr<const state> s_;
};

// tls_options are the per-connection TLS arguments of open_connection(), open_unix_connection()
// and StreamWriter::start_tls() (and their protocol twins), as asyncio's keyword arguments.
struct tls_options {
  // server_hostname: the name the server's certificate must carry, also sent as SNI (not for an IP
  // address). Unset means the host open_connection() connects to; open_unix_connection() and
  // start_tls() on a client need it when the context checks host names.
  std::optional<std::string> server_hostname = std::nullopt;
  // ssl_handshake_timeout: seconds the handshake may take before the connection is aborted with
  // ConnectionAbortedError, asyncio's default 60. Must be positive.
  double ssl_handshake_timeout = 60.0;
  // ssl_shutdown_timeout: seconds a closed connection waits for the peer's close_notify, after
  // sending its own, before it aborts: asyncio's ssl_shutdown_timeout (3.11), default 30. The
  // connection then ends with TimeoutError("SSL shutdown timed out") (a stream's wait_closed()
  // raises it, a protocol's connection_lost() gets it). Must be positive.
  double ssl_shutdown_timeout = 30.0;
  // session: a client's session to resume (Python's wrap_bio(session=)), from an earlier
  // connection's tls_info::session made with the same ssl_context (ValueError otherwise, before
  // connecting). A server may decline it: the handshake is then a full one, and
  // tls_info::session_reused says which. Ignored by a server.
  ssl_session session = {};
};

// tls_info is what a TLS stream negotiated, asyncio's get_extra_info("ssl_object") /
// ("cipher") / ("peercert") in one value (StreamWriter::tls_info()).
struct tls_info {
  std::string version;        // SSLObject.version(): "TLSv1.3", "TLSv1.2"
  std::string cipher;         // the cipher suite's name: "TLS_AES_256_GCM_SHA384"
  std::string alpn_protocol;  // SSLObject.selected_alpn_protocol(), empty if none
  std::string server_hostname;
  bool server_side = false;
  // peer_subject: the peer certificate's subject, RFC 2253 ("CN=localhost,O=Test"), empty when
  // the peer sent none (a client, unless the server asked for one) or when it was not validated
  // (verify mode cert_none), as Python's getpeercert() returns {} then.
  std::string peer_subject;
  // session_reused: SSLObject.session_reused, the handshake resumed a session.
  bool session_reused = false;
  // session: a client's session, to resume on the next connection (tls_options::session); empty on
  // the server side and until the server has sent a resumable one (with TLS 1.3, after the
  // handshake: read something first).
  ssl_session session = {};
};

// ssl_errc names the SSL errors' codes in ssl_category(): OpenSSL's SSL_get_error() values, as
// Python's SSLError.errno (ssl.SSL_ERROR_SSL...).
enum class ssl_errc {
  ssl = 1,          // SSL_ERROR_SSL: a protocol error, a failed check (ssl.SSL_ERROR_SSL)
  syscall = 5,      // SSL_ERROR_SYSCALL
  zero_return = 6,  // SSL_ERROR_ZERO_RETURN: the peer closed the TLS session
  eof = 8,          // Python's SSL_ERROR_EOF: the connection ended in violation of the protocol
};

}  // namespace greenlet::asyncio

template <>
struct std::is_error_code_enum<greenlet::asyncio::ssl_errc> : std::true_type {};

namespace greenlet::asyncio {

// ssl_category() is the std::error_category of ssl_errc codes, named "ssl". Throws nothing.
const std::error_category& ssl_category() noexcept;
// make_error_code(e) wraps an ssl_errc in ssl_category(). Throws nothing.
inline std::error_code make_error_code(ssl_errc e) noexcept { return {static_cast<int>(e), ssl_category()}; }

// SSLError is Python's ssl.SSLError, an OSError: what() reads as Python's str(),
// "[SSL: WRONG_VERSION_NUMBER] wrong version number"; library() is "SSL", reason()
// "WRONG_VERSION_NUMBER"; errno_() the ssl_errc value.
class SSLError : public OSError {
 public:
  // SSLError(code, library, reason, what) makes the exception. Throws std::bad_alloc if copying
  // the texts fails; read-only sharing between threads only.
  SSLError(ssl_errc code, std::string library, std::string reason, const std::string& what)
      : OSError(make_error_code(code), what), library_(std::move(library)), reason_(std::move(reason)), what_(what) {}
  // what() is the text given to the constructor, without a category suffix. Throws nothing.
  const char* what() const noexcept override { return what_.c_str(); }
  // library() is OpenSSL's library of the error, as Python's SSLError.library ("SSL", "PEM"...).
  const std::string& library() const noexcept { return library_; }
  // reason() is the error's mnemonic, as Python's SSLError.reason ("CERTIFICATE_VERIFY_FAILED").
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string library_;
  std::string reason_;
  std::string what_;
};

// SSLCertVerificationError is ssl.SSLCertVerificationError: the peer's certificate failed the
// checks (an unknown CA, expired, another host's). verify_code() is OpenSSL's X509_V_ERR_* value,
// verify_message() its text ("self-signed certificate", "Hostname mismatch, certificate is not
// valid for 'example.org'."), as Python's verify_code and verify_message.
class SSLCertVerificationError : public SSLError {
 public:
  // SSLCertVerificationError(verify_code, verify_message, what): reason "CERTIFICATE_VERIFY_FAILED".
  // Throws std::bad_alloc if copying the texts fails.
  SSLCertVerificationError(long verify_code, std::string verify_message, const std::string& what)
      : SSLError(ssl_errc::ssl, "SSL", "CERTIFICATE_VERIFY_FAILED", what),
        verify_code_(verify_code),
        verify_message_(std::move(verify_message)) {}
  long verify_code() const noexcept { return verify_code_; }
  const std::string& verify_message() const noexcept { return verify_message_; }

 private:
  long verify_code_;
  std::string verify_message_;
};

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
