// io/protocols.hpp: asyncio's protocols and transports for TCP, Unix-domain
// sockets and pipes: create_connection(), create_server(),
// connect_accepted_socket(), connect_read_pipe() and connect_write_pipe()
// with a protocol factory. The loop calls the protocol's methods on its
// thread as bytes arrive; no task per connection, as in Python:
//
//   struct EchoServerProtocol : asyncio::Protocol {
//     asyncio::Transport transport;
//     void connection_made(asyncio::Transport& t) override { transport = t; }
//     void data_received(std::string_view data) override { transport.write(data); }
//   };
//   asyncio::Server server = asyncio::create_server<EchoServerProtocol>("127.0.0.1", 8888);
//   server.serve_forever();
//
// For sequential code (a task per connection) use the streams of
// io/streams.hpp instead.
#pragma once

#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "greenlet/io/address.hpp"
#include "greenlet/io/errors.hpp"
#include "greenlet/io/streams.hpp"
#include "greenlet/io/tls.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

namespace detail {
class protocol_transport;
}  // namespace detail

class Transport;

// BaseProtocol is asyncio.BaseProtocol: the calls every protocol gets. The
// loop calls them on its thread: connection_made() first, connection_lost()
// last and once. Each default does nothing. A BaseProtocol alone suits a
// write pipe; on a socket or read pipe, bytes arriving for it are a fatal
// RuntimeError (reported, the connection closed), as asyncio's AttributeError.
class BaseProtocol {
 public:
  virtual ~BaseProtocol() = default;
  // connection_made(t): the connection is ready; keep t (a handle) to write. Throws what you throw
  // (the connection is then closed with that error, which is reported).
  virtual void connection_made(Transport& transport);
  // connection_lost(exc): the connection is closed; exc is null after close(), abort() or the
  // peer's EOF, else the error that closed it (ConnectionResetError...). Throws what you throw
  // (reported).
  virtual void connection_lost(std::exception_ptr exc);
  // pause_writing(): more than the high-water mark of bytes wait to be sent; resume_writing():
  // back at or below the low-water mark. write() keeps buffering meanwhile, as asyncio's. Throw
  // what you throw (reported; the write goes on).
  virtual void pause_writing();
  // resume_writing(): see pause_writing().
  virtual void resume_writing();
};

// Protocol is asyncio.Protocol: bytes arrive in data_received().
class Protocol : public BaseProtocol {
 public:
  // data_received(data): bytes arrived, as many as one read took (at most 256 KiB). data is
  // valid during the call only: copy what you keep. Throws what you throw (the connection is
  // closed with that error, which is reported: asyncio's "Fatal error: protocol.data_received()
  // call failed.").
  virtual void data_received(std::string_view data);
  // eof_received(): the peer will send nothing more (it shut down its writing side, or a pipe's
  // writer closed). Return false (the default) to close the transport; true to keep it open for
  // writing (a socket only: a read pipe closes anyway). Throws what you throw (as data_received).
  virtual bool eof_received();
};

// BufferedProtocol is asyncio.BufferedProtocol: bytes are read straight into a buffer of the
// protocol's, without a copy.
class BufferedProtocol : public BaseProtocol {
 public:
  // get_buffer(sizehint) is where the next read goes (sizehint is the most it wants, 256 KiB; any
  // non-empty size will do). An empty span is an error that closes the connection, as asyncio's.
  virtual std::span<char> get_buffer(std::size_t sizehint) = 0;
  // buffer_updated(nbytes): nbytes were written at the start of the last get_buffer()'s span.
  virtual void buffer_updated(std::size_t nbytes) = 0;
  // eof_received(): as Protocol::eof_received().
  virtual bool eof_received();
};

// Transport is asyncio's socket or pipe transport: a handle (copies share
// the connection; an empty one, default-made, raises RuntimeError on use).
// The connection lives until it is closed, not until its last handle goes:
// the loop keeps it reading, as asyncio's selector does. A read pipe's
// transport cannot write, a write pipe's cannot read (RuntimeError). Loop
// thread only.
class Transport {
 public:
  Transport() = default;
  // Internal: made by create_connection() and its relatives. Throws nothing.
  explicit Transport(std::shared_ptr<detail::protocol_transport> t) noexcept : t_(std::move(t)) {}

  // write(data) sends data: at once as far as the socket takes it, the rest buffered and sent
  // in order as the socket drains (get_write_buffer_size()). Past the high-water mark the
  // protocol's pause_writing() is called. A failed send closes the connection (connection_lost
  // gets the error), it is not thrown. Writes after the connection was lost are dropped, as
  // asyncio's. Throws RuntimeError after write_eof() ("Cannot call write() after write_eof()"), on
  // a read pipe, or if empty.
  void write(std::string_view data);
  // writelines(list) writes each piece, as one write of them joined.
  void writelines(std::initializer_list<std::string_view> list);
  // write_eof() shuts the writing side down once the buffered bytes are sent (the peer reads
  // EOF; we may still read). On a write pipe it closes the transport, as asyncio's. Idempotent.
  void write_eof();
  // can_write_eof() is true for sockets and write pipes.
  bool can_write_eof() const noexcept;
  // close() stops reading; the buffered bytes are still sent, then the socket closes and
  // connection_lost(nullptr) is called on a later turn. Over TLS, close_notify follows the bytes
  // and the socket stays open, reading and dropping data, until the peer's close_notify (or EOF):
  // then eof_received() and connection_lost(nullptr); past tls_options::ssl_shutdown_timeout
  // seconds connection_lost() gets TimeoutError("SSL shutdown timed out"). Idempotent. Throws
  // nothing.
  void close() noexcept;
  // abort() closes at once, dropping buffered bytes; connection_lost(nullptr) follows. Throws nothing.
  void abort() noexcept;
  // is_closing() is true once close() or abort() was called, or an error or EOF closed it.
  bool is_closing() const noexcept;
  // pause_reading() stops data_received() until resume_reading() (the kernel's buffer fills and
  // the peer slows down). No-ops while closing or already so. Throw RuntimeError if empty.
  void pause_reading();
  // resume_reading(): see pause_reading().
  void resume_reading();
  // is_reading() is true while data_received() may be called: not paused, not closing.
  bool is_reading() const noexcept;
  // get_write_buffer_size() is the bytes waiting to be sent.
  std::size_t get_write_buffer_size() const noexcept;
  // set_write_buffer_limits(high, low): the water marks of pause_writing() and resume_writing()
  // (64 KiB and 16 KiB by default; low defaults to high / 4). Throws ValueError if low > high,
  // RuntimeError if empty.
  void set_write_buffer_limits(std::size_t high, std::optional<std::size_t> low = std::nullopt);
  // get_write_buffer_limits() is {low, high}, asyncio's order.
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const;
  // get_extra_info(name): "peername" or "sockname" of a socket, as an address (kept after
  // close()); an empty address for other names and for pipes. Throws RuntimeError if empty.
  address get_extra_info(std::string_view name) const;
  // fileno() is the socket or pipe (asyncio's get_extra_info("socket"/"pipe")), -1 once closed.
  int fileno() const noexcept;
  // get_protocol() is the protocol the transport calls (null once connection_lost() ran).
  std::shared_ptr<BaseProtocol> get_protocol() const noexcept;
  // set_protocol(p) makes the transport call p from now on (asyncio's set_protocol(), to switch
  // protocols mid-connection). Throws ValueError for null, RuntimeError if empty.
  void set_protocol(std::shared_ptr<BaseProtocol> protocol);
  // repr() is asyncio's repr() of the transport: "<_SelectorSocketTransport fd=6 read=polling
  // write=<idle, bufsize=0>>" ("closing" after close(), "closed fd=6" once lost, without the rest);
  // a read pipe's "<_UnixReadPipeTransport fd=7 polling>", a write pipe's
  // "<_UnixWritePipeTransport fd=8 idle bufsize=0>". Throws std::bad_alloc only.
  std::string repr() const;
  // tls() is what the TLS handshake negotiated (version, cipher, ALPN protocol, the peer's
  // certificate subject), asyncio's get_extra_info("ssl_object"/"cipher"/"peercert"); nullopt for
  // a plain connection. Throws RuntimeError if empty.
  std::optional<tls_info> tls() const;
  explicit operator bool() const noexcept { return t_ != nullptr; }

 private:
  friend Transport start_tls(Transport transport, std::shared_ptr<BaseProtocol> protocol, const ssl_context& ssl,
                             tls_options tls, bool server_side);
  std::shared_ptr<detail::protocol_transport> t_;
};

// start_tls(transport, protocol, ssl, tls, server_side) is loop.start_tls(transport, protocol,
// sslcontext, server_side=, server_hostname=, ssl_handshake_timeout=): a plain socket connection
// makes a TLS handshake in place (STARTTLS), and the protocol (given, or the transport's own if
// null) then sees plaintext; connection_made() is not called again. Returns the transport to use
// from then on, once the handshake completed. What the protocol writes meanwhile is sent after
// it, encrypted. A client (server_side false) needs a client context and, when it checks host
// names, tls.server_hostname (ValueError otherwise); a server a server context. Throws the
// handshake's error (SSLCertVerificationError, SSLError, ConnectionAbortedError past the
// timeout), and the connection is then closed; RuntimeError for a pipe's, a closing or a TLS
// transport, or an empty one. A task of the running loop only.
Transport start_tls(Transport transport, std::shared_ptr<BaseProtocol> protocol, const ssl_context& ssl,
                    tls_options tls = {}, bool server_side = false);

namespace detail {
using protocol_factory = std::function<std::shared_ptr<BaseProtocol>()>;
// connection_tls is a connection's TLS: create_connection(..., ssl, tls) (client side), or
// connect_accepted_socket(..., ssl) (server side).
struct connection_tls {
  const ssl_context& ssl;
  tls_options options;
  bool server_side = false;
};
// What each entry point below does, the protocol made by factory (see them).
Transport open_protocol_connection(const protocol_factory& factory, const std::string& host, int port,
                                   const connect_options& options, const connection_tls* tls);
Transport open_unix_protocol_connection(const protocol_factory& factory, const std::string& path,
                                        const connection_tls* tls);
Transport adopt_protocol_socket(const protocol_factory& factory, int fd, const char* call,
                                const connection_tls* tls = nullptr);
Transport adopt_protocol_pipe(const protocol_factory& factory, int fd, bool writing);
Server start_protocol_server(protocol_factory factory, const std::string& host, int port, server_config config);
Server start_unix_protocol_server(protocol_factory factory, const std::string& path, server_config config);
Server start_protocol_server(protocol_factory factory, listening_socket sock, server_config config, bool unix_only);

// with_protocol(factory, open) calls open with a factory that also keeps
// what factory made, and returns the transport with the protocol's own type.
template <class Factory, class Open>
auto with_protocol(Factory& factory, Open open) -> std::pair<Transport, std::invoke_result_t<Factory&>> {
  std::invoke_result_t<Factory&> protocol;
  Transport transport = open([&]() -> std::shared_ptr<BaseProtocol> {
    protocol = factory();
    return protocol;
  });
  return {std::move(transport), std::move(protocol)};
}
}  // namespace detail

// A protocol factory returns std::shared_ptr<P> for a P derived from
// BaseProtocol (Protocol or BufferedProtocol); it is called once per
// connection. Each entry point also has a form taking P and using its default
// constructor, as Python's create_connection(P, ...).
template <class Factory>
concept protocol_factory =
    std::invocable<Factory&> && std::derived_from<typename std::invoke_result_t<Factory&>::element_type, BaseProtocol>;

// create_connection(factory, host, port) is loop.create_connection(protocol_factory, host, port):
// it connects over TCP (every address host resolves to is tried in turn, as open_connection()),
// makes the protocol, waits until connection_made() has run, and returns the transport and the
// protocol. Throws as open_connection(), and ValueError if the factory returns null; a task of
// the running loop only.
template <protocol_factory Factory>
auto create_connection(Factory&& factory, const std::string& host, int port) {
  return detail::with_protocol(factory, [&](const detail::protocol_factory& f) {
    return detail::open_protocol_connection(f, host, port, connect_options{}, nullptr);
  });
}
template <std::derived_from<BaseProtocol> P>
std::pair<Transport, std::shared_ptr<P>> create_connection(const std::string& host, int port) {
  return create_connection([] { return std::make_shared<P>(); }, host, port);
}
// create_connection(factory, host, port, local_addr{lhost, lport}) binds each socket to the
// local address first, as create_connection(local_addr=) (see open_connection()'s overload).
template <protocol_factory Factory>
auto create_connection(Factory&& factory, const std::string& host, int port, const local_addr& local) {
  return detail::with_protocol(factory, [&](const detail::protocol_factory& f) {
    return detail::open_protocol_connection(f, host, port, connect_options{.local = local}, nullptr);
  });
}
template <std::derived_from<BaseProtocol> P>
std::pair<Transport, std::shared_ptr<P>> create_connection(const std::string& host, int port, const local_addr& local) {
  return create_connection([] { return std::make_shared<P>(); }, host, port, local);
}
// create_connection(factory, host, port, ssl, tls) is create_connection(..., ssl=ssl): the TLS
// handshake (client side) comes first, and connection_made() once it completed; the protocol
// sees plaintext. The server's certificate must name tls.server_hostname, by default host.
// Throws as open_connection()'s TLS overload (SSLCertVerificationError, SSLError,
// ConnectionAbortedError after tls.ssl_handshake_timeout seconds, ValueError for a server context).
template <protocol_factory Factory>
auto create_connection(Factory&& factory, const std::string& host, int port, const ssl_context& ssl,
                       tls_options tls = {}) {
  const detail::connection_tls settings{ssl, std::move(tls)};
  return detail::with_protocol(factory, [&](const detail::protocol_factory& f) {
    return detail::open_protocol_connection(f, host, port, connect_options{}, &settings);
  });
}
template <std::derived_from<BaseProtocol> P>
std::pair<Transport, std::shared_ptr<P>> create_connection(const std::string& host, int port, const ssl_context& ssl,
                                                           tls_options tls = {}) {
  return create_connection([] { return std::make_shared<P>(); }, host, port, ssl, std::move(tls));
}
// create_connection(factory, host, port, connect_options{...}) is create_connection(...,
// local_addr=, family=, happy_eyeballs_delay=, interleave=, all_errors=): see connect_options
// and open_connection()'s overload, which throws the same.
template <protocol_factory Factory>
auto create_connection(Factory&& factory, const std::string& host, int port, const connect_options& options) {
  return detail::with_protocol(factory, [&](const detail::protocol_factory& f) {
    return detail::open_protocol_connection(f, host, port, options, nullptr);
  });
}
template <std::derived_from<BaseProtocol> P>
std::pair<Transport, std::shared_ptr<P>> create_connection(const std::string& host, int port,
                                                           const connect_options& options) {
  return create_connection([] { return std::make_shared<P>(); }, host, port, options);
}
// create_connection(factory, host, port, connect_options{...}, ssl, tls) is the same with TLS, as
// create_connection(factory, host, port, ssl, tls).
template <protocol_factory Factory>
auto create_connection(Factory&& factory, const std::string& host, int port, const connect_options& options,
                       const ssl_context& ssl, tls_options tls = {}) {
  const detail::connection_tls settings{ssl, std::move(tls)};
  return detail::with_protocol(factory, [&](const detail::protocol_factory& f) {
    return detail::open_protocol_connection(f, host, port, options, &settings);
  });
}
template <std::derived_from<BaseProtocol> P>
std::pair<Transport, std::shared_ptr<P>> create_connection(const std::string& host, int port,
                                                           const connect_options& options, const ssl_context& ssl,
                                                           tls_options tls = {}) {
  return create_connection([] { return std::make_shared<P>(); }, host, port, options, ssl, std::move(tls));
}
// create_connection(factory, connected_socket{fd}) is create_connection(sock=sock): a connected
// stream socket the program made (owned once the call returns; if it throws, fd is left open and
// the caller's). Throws as connect_accepted_socket().
template <protocol_factory Factory>
auto create_connection(Factory&& factory, connected_socket sock) {
  return detail::with_protocol(factory, [&](const detail::protocol_factory& f) {
    return detail::adopt_protocol_socket(f, sock.fd, "create_connection");
  });
}
template <std::derived_from<BaseProtocol> P>
std::pair<Transport, std::shared_ptr<P>> create_connection(connected_socket sock) {
  return create_connection([] { return std::make_shared<P>(); }, sock);
}
// create_connection(factory, connected_socket{fd}, ssl, tls) adds TLS (client side) over a socket
// the program connected: tls.server_hostname is needed when the context checks host names.
template <protocol_factory Factory>
auto create_connection(Factory&& factory, connected_socket sock, const ssl_context& ssl, tls_options tls = {}) {
  const detail::connection_tls settings{ssl, std::move(tls)};
  return detail::with_protocol(factory, [&](const detail::protocol_factory& f) {
    return detail::adopt_protocol_socket(f, sock.fd, "create_connection", &settings);
  });
}
template <std::derived_from<BaseProtocol> P>
std::pair<Transport, std::shared_ptr<P>> create_connection(connected_socket sock, const ssl_context& ssl,
                                                           tls_options tls = {}) {
  return create_connection([] { return std::make_shared<P>(); }, sock, ssl, std::move(tls));
}

// create_unix_connection(factory, path) is create_connection() over a Unix-domain socket.
template <protocol_factory Factory>
auto create_unix_connection(Factory&& factory, const std::string& path) {
  return detail::with_protocol(factory, [&](const detail::protocol_factory& f) {
    return detail::open_unix_protocol_connection(f, path, nullptr);
  });
}
template <std::derived_from<BaseProtocol> P>
std::pair<Transport, std::shared_ptr<P>> create_unix_connection(const std::string& path) {
  return create_unix_connection([] { return std::make_shared<P>(); }, path);
}

// create_unix_connection(factory, path, ssl, tls) adds TLS as create_connection()'s overload does;
// tls.server_hostname is needed when the context checks host names (ValueError before connecting).
template <protocol_factory Factory>
auto create_unix_connection(Factory&& factory, const std::string& path, const ssl_context& ssl, tls_options tls = {}) {
  const detail::connection_tls settings{ssl, std::move(tls)};
  return detail::with_protocol(factory, [&](const detail::protocol_factory& f) {
    return detail::open_unix_protocol_connection(f, path, &settings);
  });
}

// connect_accepted_socket(factory, fd) is loop.connect_accepted_socket(): it wraps a connected
// stream socket the program accepted or connected itself (made non-blocking; owned once the
// call returns: if it throws, fd is left open and the caller's) in a transport and protocol.
// Throws ValueError if fd is not a connected SOCK_STREAM socket ("A Stream Socket was
// expected"), as asyncio.
template <protocol_factory Factory>
auto connect_accepted_socket(Factory&& factory, int fd) {
  return detail::with_protocol(factory, [&](const detail::protocol_factory& f) {
    return detail::adopt_protocol_socket(f, fd, "connect_accepted_socket");
  });
}
template <std::derived_from<BaseProtocol> P>
std::pair<Transport, std::shared_ptr<P>> connect_accepted_socket(int fd) {
  return connect_accepted_socket([] { return std::make_shared<P>(); }, fd);
}
// connect_accepted_socket(factory, fd, ssl, ssl_handshake_timeout, ssl_shutdown_timeout) is
// connect_accepted_socket(..., ssl=ssl): the server side of a TLS handshake over fd first (a server
// context, ValueError otherwise), connection_made() once it completed; it returns then, or raises
// the handshake's error. The timeouts are tls_options'.
template <protocol_factory Factory>
auto connect_accepted_socket(Factory&& factory, int fd, const ssl_context& ssl, double ssl_handshake_timeout = 60.0,
                             double ssl_shutdown_timeout = 30.0) {
  const detail::connection_tls settings{ssl,
                                        {.server_hostname = std::nullopt,
                                         .ssl_handshake_timeout = ssl_handshake_timeout,
                                         .ssl_shutdown_timeout = ssl_shutdown_timeout},
                                        true};
  return detail::with_protocol(factory, [&](const detail::protocol_factory& f) {
    return detail::adopt_protocol_socket(f, fd, "connect_accepted_socket", &settings);
  });
}
template <std::derived_from<BaseProtocol> P>
std::pair<Transport, std::shared_ptr<P>> connect_accepted_socket(int fd, const ssl_context& ssl,
                                                                 double ssl_handshake_timeout = 60.0,
                                                                 double ssl_shutdown_timeout = 30.0) {
  return connect_accepted_socket([] { return std::make_shared<P>(); }, fd, ssl, ssl_handshake_timeout,
                                 ssl_shutdown_timeout);
}

// connect_read_pipe(factory, fd) is loop.connect_read_pipe(protocol_factory, pipe): the read end
// of a pipe, FIFO, socket or character device (made non-blocking; owned once the call returns:
// if it throws, fd is left open and the caller's) whose bytes go to the protocol's
// data_received(). At EOF it calls eof_received(), then closes and calls
// connection_lost(nullptr), as asyncio's read-pipe transport. Throws ValueError for a
// regular file ("Pipe transport is for pipes/sockets only."), OSError from fstat().
template <protocol_factory Factory>
auto connect_read_pipe(Factory&& factory, int fd) {
  return detail::with_protocol(
      factory, [&](const detail::protocol_factory& f) { return detail::adopt_protocol_pipe(f, fd, false); });
}
// connect_write_pipe(factory, fd) is loop.connect_write_pipe(protocol_factory, pipe): the write
// end of a pipe, FIFO, socket or character device. On a pipe, FIFO or socket it watches for the
// reader going away and then closes (connection_lost gets BrokenPipeError if bytes were still
// buffered, else null), as asyncio's; a character device (a pty) is not watched: its input is not
// that. Writes never raise SIGPIPE. Throws as connect_read_pipe().
template <protocol_factory Factory>
auto connect_write_pipe(Factory&& factory, int fd) {
  return detail::with_protocol(
      factory, [&](const detail::protocol_factory& f) { return detail::adopt_protocol_pipe(f, fd, true); });
}

// create_server(factory, host, port, config) is loop.create_server(protocol_factory, host,
// port): it listens as start_server() does, and each connection gets a protocol from factory
// and a transport, without a task. config's backlog, reuse options, accept_retry_delay, ssl and
// ssl_handshake_timeout apply (with ssl, connection_made() comes after each connection's
// handshake; a failed handshake closes it without a report or protocol calls); its stream
// settings do not.
// An exception from the factory is reported and that connection closed. Server::wait_closed()
// waits for every connection to be lost. Throws as start_server().
template <protocol_factory Factory>
Server create_server(Factory factory, const std::string& host, int port, server_config config = {}) {
  return detail::start_protocol_server(
      [f = std::move(factory)]() mutable -> std::shared_ptr<BaseProtocol> { return f(); }, host, port,
      std::move(config));
}
template <std::derived_from<BaseProtocol> P>
Server create_server(const std::string& host, int port, server_config config = {}) {
  return create_server([] { return std::make_shared<P>(); }, host, port, std::move(config));
}
// create_server(factory, listening_socket{fd}, config) is create_server(sock=sock): it serves a
// socket the program made, as start_server(handler, listening_socket{fd}) does.
template <protocol_factory Factory>
Server create_server(Factory factory, listening_socket sock, server_config config = {}) {
  return detail::start_protocol_server(
      [f = std::move(factory)]() mutable -> std::shared_ptr<BaseProtocol> { return f(); }, sock, std::move(config),
      false);
}
template <std::derived_from<BaseProtocol> P>
Server create_server(listening_socket sock, server_config config = {}) {
  return create_server([] { return std::make_shared<P>(); }, sock, std::move(config));
}

// create_unix_server(factory, path, config) is create_server() on a Unix-domain socket at path
// (an existing socket file there is replaced).
template <protocol_factory Factory>
Server create_unix_server(Factory factory, const std::string& path, server_config config = {}) {
  return detail::start_unix_protocol_server(
      [f = std::move(factory)]() mutable -> std::shared_ptr<BaseProtocol> { return f(); }, path, std::move(config));
}
template <std::derived_from<BaseProtocol> P>
Server create_unix_server(const std::string& path, server_config config = {}) {
  return create_unix_server([] { return std::make_shared<P>(); }, path, std::move(config));
}
// create_unix_server(factory, listening_socket{fd}, config) serves a Unix-domain socket the
// program made.
template <protocol_factory Factory>
Server create_unix_server(Factory factory, listening_socket sock, server_config config = {}) {
  return detail::start_protocol_server(
      [f = std::move(factory)]() mutable -> std::shared_ptr<BaseProtocol> { return f(); }, sock, std::move(config),
      true);
}
template <std::derived_from<BaseProtocol> P>
Server create_unix_server(listening_socket sock, server_config config = {}) {
  return create_unix_server([] { return std::make_shared<P>(); }, sock, std::move(config));
}

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
