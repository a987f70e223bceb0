// io/streams.hpp: asyncio's streams: open_connection(), start_server(),
// StreamReader and StreamWriter, over TCP (127.0.0.1, names resolved with
// getaddrinfo) or Unix-domain sockets. Every call that waits is made from a
// task and lets the other tasks run meanwhile.
//
//   auto [reader, writer] = asyncio::open_connection("127.0.0.1", port);
//   writer.write("ping\n");
//   writer.drain();
//   std::string line = reader.readline();
#pragma once

#include <sys/socket.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "greenlet/detail/exception_object_arg.hpp"
#include "greenlet/io/address.hpp"
#include "greenlet/io/errors.hpp"
#include "greenlet/io/tls.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

namespace detail {
class stream_transport;
struct server_state;
}  // namespace detail

// stream_config holds a stream's buffer limits, as asyncio's `limit` and
// the transport's write buffer limits.
struct stream_config {
  // limit: the most readuntil()/readline() buffer while looking for the
  // separator (LimitOverrunError beyond). 0 is refused with ValueError by
  // every call taking a stream_config, as asyncio's StreamReader(limit=0).
  std::size_t limit = 64 * 1024;
  // drain() waits while more than high_water bytes are unsent, until at
  // most low_water are.
  std::size_t high_water = 64 * 1024;
  // low_water: drain() returns once at most low_water bytes are unsent.
  std::size_t low_water = 16 * 1024;
};

// StreamReader reads from a connection. Copies share the stream. A read
// that is cancelled loses no bytes: they stay buffered for the next read.
// Only one task may read at a time. A connection error (the peer's reset, a
// broken pipe), met by a read or by the writer's send, sticks as asyncio's
// set_exception(): every later read raises it, bytes still buffered or not,
// so an aborted transfer never looks like one that ended at EOF.
// It is asynchronously iterable by lines, as `async for line in reader`:
//
//   for (std::string& line : asyncio::aiter(reader)) handle(line);  // "a\n", "b\n", "c" (no newline at EOF)
class StreamReader {
 public:
  StreamReader() = default;
  // Internal: StreamReader(t) reads from transport t; get readers from open_connection() or a
  // server's handler. Throws nothing; loop thread only, like the stream.
  explicit StreamReader(std::shared_ptr<detail::stream_transport> t) : t_(std::move(t)) {}

  // read(n) returns up to n bytes, at least one unless at EOF (then empty);
  // read() (n < 0) reads until EOF. Throws ConnectionResetError if the peer
  // reset the connection, CancelledError.
  std::string read(std::ptrdiff_t n = -1);
  // readexactly(n) returns exactly n bytes; IncompleteReadError at EOF first,
  // holding the partial bytes (which leave the buffer). ValueError for a
  // negative count converted to std::size_t (n > PTRDIFF_MAX), as asyncio's.
  std::string readexactly(std::size_t n);
  // readline() is readuntil("\n"), except that at EOF it returns the partial
  // line (empty at EOF) and, for a line longer than the limit, drops it (or
  // what is buffered of it) and throws ValueError, as asyncio's.
  std::string readline();
  // readuntil(sep) returns the data up to and including sep.
  // IncompleteReadError at EOF (the partial data leaves the buffer),
  // LimitOverrunError if sep is not within the limit (data stays);
  // ValueError for an empty separator, as asyncio's.
  std::string readuntil(std::string_view separator = "\n");
  // readuntil({sep1, sep2, ...}) is Python 3.13's readuntil((sep1, sep2, ...)): the data up to and
  // including whichever separator ends first (of two ending at the same byte, the shorter), e.g.
  // readuntil({"\r", "\n"}) for a progress line ended by either. The limit counts the bytes before
  // the separator that matched; the errors are readuntil(sep)'s, and ValueError for an empty list.
  std::string readuntil(std::initializer_list<std::string_view> separators);
  std::string readuntil(std::span<const std::string_view> separators);
  // at_eof() is true once the buffer is empty and the peer's EOF has come:
  // read by an earlier call, or a FIN the loop saw arrive with the last
  // bytes (then at_eof() reads it, without waiting), as asyncio's; also
  // once the writer's close() has completed. False after a connection
  // error, unless EOF came first.
  bool at_eof() const noexcept;
  // anext() is StreamReader.__anext__, for asyncio::aiter(): the next line
  // as readline() returns it, or std::nullopt once readline() returns empty
  // (at EOF). Throws what readline() throws; one task at a time.
  std::optional<std::string> anext();
  // exception() is asyncio's StreamReader.exception(): the error the reads raise, null if none:
  // the connection's (ConnectionResetError... from a recv or send), else one given to
  // set_exception(). Throws nothing; null for an empty reader.
  std::exception_ptr exception() const noexcept;
  // set_exception(e) is asyncio's StreamReader.set_exception(): from now on every read, and the
  // writer's drain() (as asyncio's drain() raises its reader's exception()), raises e; a task
  // waiting in a read wakes to raise it. A later call replaces it; null clears it. The connection
  // itself goes on: writes, close() and wait_closed() are unaffected. Throws RuntimeError
  // (invalid_state) on an empty reader. Loop thread only.
  void set_exception(std::exception_ptr error);
  // Overload of set_exception(std::exception_ptr): set_exception(e) sets a copy of the exception
  // object e. Same rules.
  template <::greenlet::detail::exception_object_arg E>
  void set_exception(E&& error) {
    set_exception(std::make_exception_ptr(std::forward<E>(error)));
  }
  // repr() is asyncio's repr() of the reader: "<StreamReader 4 bytes eof limit=10
  // waiter=<Future pending> exception=ValueError('x') transport=<_SelectorSocketTransport fd=6
  // read=polling write=<idle, bufsize=0>>>", each part only when it applies (a byte count if
  // some are buffered, limit= if not the default); "<StreamReader>" for an empty reader. Throws
  // std::bad_alloc only; loop thread only.
  std::string repr() const;

  // operator bool() is false for an empty reader (default-made, moved from, or a Process's
  // stdout_()/stderr_() without PIPE): its reads throw RuntimeError (asyncio_errc::invalid_state)
  // saying so, and at_eof() is true. Throws nothing.
  explicit operator bool() const noexcept { return t_ != nullptr; }

 private:
  // read_until_first(separators) is readuntil() over separators sorted shortest first, none empty.
  std::string read_until_first(std::span<const std::string_view> separators);
  std::shared_ptr<detail::stream_transport> t_;
};

// StreamWriter writes to a connection. Copies share the stream. write()
// never waits: bytes the socket does not take at once are buffered and sent
// as it drains; call drain() to wait while the buffer is above its high-
// water mark. The connection closes when close() is called, or when every
// reader and writer copy is gone: either way once the buffered bytes are
// sent (the loop keeps the connection meanwhile; closing the loop first
// closes it then, dropping them), or at once if the peer fails.
class StreamWriter {
 public:
  StreamWriter() = default;
  // Internal: StreamWriter(t) writes to transport t; get writers from open_connection() or a
  // server's handler. Throws nothing; loop thread only, like the stream.
  explicit StreamWriter(std::shared_ptr<detail::stream_transport> t) : t_(std::move(t)) {}

  // write(data) queues data. After close() it is ignored, as asyncio's.
  void write(std::string_view data);
  // writelines(lines) writes each, without adding separators.
  void writelines(const std::vector<std::string>& lines);
  // drain() waits until the buffer is at or below the low-water mark.
  // Raises the connection's error (ConnectionResetError, BrokenPipeError,
  // from a send or a read: it sticks), and ConnectionResetError("Connection
  // lost") once the connection is closed, as asyncio's. A drain() waiting
  // while close() flushes returns when the close completes.
  void drain();
  // write_eof() half-closes: after the buffered bytes, shutdown(SHUT_WR).
  // A write() after it throws RuntimeError (asyncio_errc::invalid_state).
  void write_eof();
  // can_write_eof() is true but for a TLS stream (asyncio's SSL transport cannot half-close), whose
  // write_eof() throws RuntimeError. Throws nothing.
  bool can_write_eof() const noexcept;
  // close() closes the connection once the buffered bytes are sent;
  // wait_closed() waits for that. A reader waiting meanwhile sees EOF. A TLS stream sends
  // close_notify after them and closes once the peer's close_notify (or EOF) came, dropping what
  // comes before it, or after tls_options::ssl_shutdown_timeout seconds with TimeoutError("SSL
  // shutdown timed out"), which wait_closed() raises. close() itself never waits.
  void close();
  // abort() is writer.transport.abort(): the bytes not sent yet are dropped and the socket
  // closes at once, without close_notify for TLS (a waiting read sees EOF, a task in drain()
  // wakes). Throws RuntimeError if empty.
  void abort();
  // is_closing() is true once close() was called. Throws nothing; loop
  // thread only; true for an empty writer.
  bool is_closing() const noexcept;
  // wait_closed() waits until the connection is closed after close(). Call it from a task of the
  // stream's loop; throws the connection's error if it had one (as asyncio's), CancelledError if
  // the task is cancelled, RuntimeError outside a task.
  void wait_closed();
  // sendfile(file, offset, count, fallback) is `await loop.sendfile(writer.transport, file, offset,
  // count)`: it waits until every byte written before it is handed to the socket, then sends the
  // file as sock_sendfile() does (sendfile(2) for a regular file, else read and sent unless fallback
  // is false) and returns the bytes sent; a write() meanwhile, from another task, throws
  // RuntimeError ("unable to write; sendfile is in progress"). Bytes written after it returns
  // follow the file's. Throws RuntimeError if the writer is closing ("Transport is closing") or is
  // a subprocess's pipe ("sendfile is not supported"), and what sock_sendfile() throws. A task of
  // the stream's loop only.
  std::size_t sendfile(int file, std::uint64_t offset = 0, std::optional<std::uint64_t> count = {},
                       bool fallback = true);
  // start_tls(ssl, tls) is asyncio's StreamWriter.start_tls(): it upgrades the connection to TLS,
  // in place (this writer and its reader go on, encrypted), and returns once the handshake is done.
  // A connection a server accepted takes the server side (ssl must be a tls_server context), any
  // other the client side, checking tls.server_hostname (which a client needs when the context
  // checks host names). Bytes written before go out as they were, before the handshake; bytes
  // already read stay readable. Throws SSLCertVerificationError or SSLError if the handshake
  // fails, ConnectionAbortedError after tls.ssl_handshake_timeout seconds, ConnectionResetError if
  // the peer closes meanwhile, ValueError (no server_hostname, a context of the wrong side, a
  // timeout <= 0), RuntimeError (already TLS, closing, a pipe). After a failure the connection is
  // failed: later calls raise the same error. A close() meanwhile makes it throw
  // ConnectionAbortedError, and the stream is closed, not failed. A task of the stream's loop only.
  void start_tls(const ssl_context& ssl, tls_options tls = {});
  // tls() is what the TLS handshake negotiated (version, cipher, ALPN protocol, the peer's
  // certificate subject), asyncio's get_extra_info("ssl_object"/"cipher"/"peercert"); nullopt for
  // a plain stream. Throws std::bad_alloc only.
  std::optional<tls_info> tls() const;
  // get_extra_info(name): "peername" or "sockname", as an address; an
  // empty address for other names. Once known they are kept, so that they
  // outlive close() as asyncio's: the peer's address comes from accept() or
  // connect(), the socket's own from the first ask (ask before close()).
  address get_extra_info(std::string_view name) const;
  // transport_buffer_size() is how many bytes wait to be sent.
  std::size_t transport_buffer_size() const noexcept;
  // fileno() is the socket, -1 once closed.
  int fileno() const noexcept;
  // repr() is asyncio's repr() of the writer: "<StreamWriter transport=<_SelectorSocketTransport
  // fd=6 read=idle write=<idle, bufsize=0>>>" (the transport as in StreamReader::repr()); without
  // asyncio's reader= part, as a writer does not know its reader. "<StreamWriter>" for an empty
  // writer. Throws std::bad_alloc only; loop thread only.
  std::string repr() const;

  // operator bool() is false for an empty writer (default-made, moved from, or a Process's
  // stdin_() without PIPE): its calls throw RuntimeError (asyncio_errc::invalid_state) saying so,
  // except is_closing() (true), transport_buffer_size() (0) and fileno() (-1). Throws nothing.
  explicit operator bool() const noexcept { return t_ != nullptr; }

 private:
  std::shared_ptr<detail::stream_transport> t_;
};

// open_connection(host, port) connects over TCP and returns the stream's
// reader and writer. host may be a numeric address (resolved inline) or a
// name (getaddrinfo on the loop's default executor, run_in_executor(nullptr),
// or the loop's resolver, set_resolver(), while the task awaits); every address is tried in turn. Throws gaierror
// for an unknown host (what() names it and what to check),
// ConnectionRefusedError and other OSErrors (the last address's, what()
// naming it: "connect to 127.0.0.1:1: Connection refused"),
// CancelledError; before any lookup, std::out_of_range for a port outside
// 0-65535 (Python's OverflowError) and asyncio::ValueError("embedded null
// character") for a host holding a NUL.
std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, int port, stream_config config = {});
// open_connection(host, port, ssl, tls, config) is open_connection(host, port, ssl=ssl): it
// connects, then makes the TLS handshake (client side) before it returns the streams, which read
// and write plaintext. The server's certificate must name tls.server_hostname, by default host.
// Throws as open_connection() and StreamWriter::start_tls(); ValueError before connecting for a
// server context, or a timeout <= 0.
std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, int port, const ssl_context& ssl,
                                                      tls_options tls = {}, stream_config config = {});
// local_addr{host, port} is asyncio's local_addr=(host, port) of open_connection(): the address
// the socket binds to before it connects (port 0: any free port; host "": any local address).
// It has no default, so that `open_connection(host, port, {})` still means a default
// stream_config.
struct local_addr {
  // local_addr(host, port) names the local address; host is numeric or a name (looked up as the
  // target's is).
  local_addr(std::string host_, int port_) : host(std::move(host_)), port(port_) {}
  std::string host;
  int port;
};
// open_connection(host, port, local_addr{lhost, lport}, config) is open_connection(host, port,
// local_addr=(lhost, lport)): each socket made for one of host's addresses binds to the first
// address lhost resolves to in that address's family (the others are skipped), then connects,
// as asyncio's. Throws as open_connection(); also, for that address, OSError naming the local
// address ("error while attempting to bind on address 127.0.0.1:5000 (local_addr): Address
// already in use") if every bind fails, OSError EAFNOSUPPORT ("no matching local address with
// family=AF_INET found ...") if lhost has none of its family; the last address's error is raised.
std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, int port, local_addr local,
                                                      stream_config config = {});
// open_connection(host, port, local_addr{...}, ssl, tls, config) is the same with TLS, as
// open_connection(host, port, ssl, tls, config).
std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, int port, local_addr local,
                                                      const ssl_context& ssl, tls_options tls = {},
                                                      stream_config config = {});
// connect_options are the keyword arguments of asyncio's open_connection()/create_connection()
// that choose how to connect over TCP: local_addr=, family=, happy_eyeballs_delay=, interleave=
// and all_errors=. Pass them by name, with the type spelled out for open_connection():
//
//   asyncio::open_connection(host, port, asyncio::connect_options{.happy_eyeballs_delay = 0.25});
//
// A value type: copy it freely (the resolver is copied with it).
struct connect_options {
  // local: local_addr=(host, port), as the local_addr overloads: each socket binds to the first
  // address of local->host in its own family before it connects. Resolved in `family` if set.
  std::optional<local_addr> local = std::nullopt;
  // family: family=: AF_INET or AF_INET6 to connect only to host's addresses of that family
  // (host is resolved with that hint: gaierror if it has none); AF_UNSPEC, the default, both.
  int family = AF_UNSPEC;
  // happy_eyeballs_delay: happy_eyeballs_delay= (RFC 8305 "Happy Eyeballs"; 0.25 s is its
  // recommendation), in seconds, >= 0. Unset, the default: host's addresses are tried one at a
  // time, each until it fails, so an address that drops packets holds the caller until the
  // kernel gives up (minutes). Set: the attempts overlap. The first starts at once; the next
  // starts when the one before it fails or `happy_eyeballs_delay` seconds after it started,
  // whichever comes first; the first to connect wins, and the others are cancelled and their
  // sockets closed before the call returns.
  std::optional<double> happy_eyeballs_delay = std::nullopt;
  // interleave: interleave=: reorders host's addresses by family before trying them:
  // `interleave` addresses of the first family getaddrinfo() returned, then one of each family in
  // turn. Unset: 1 with happy_eyeballs_delay, else 0. 0 keeps getaddrinfo()'s order. >= 0.
  std::optional<int> interleave = std::nullopt;
  // all_errors: all_errors=: when every address fails, raise ExceptionGroup("create_connection
  // failed") holding each attempt's error in the order the attempts started; false, the default,
  // raises the error of the last address tried.
  bool all_errors = false;
  // resolver: what answers for a host name in place of getaddrinfo() (Python overrides
  // loop.getaddrinfo() for this): a DNS cache, a DNS client of your own, service discovery, or a
  // fixed table in tests. Called as resolver(host, port) from the connecting task, so it may
  // await; it returns numeric addresses with their ports, in the order to try them (then
  // filtered by `family` and reordered by `interleave`). Numeric hosts ("127.0.0.1", "::1") and ""
  // do not reach it, as asyncio's loop.getaddrinfo() is skipped for them; local->host is looked
  // up through it too. An empty answer is gaierror, a name in it ValueError; what it throws comes
  // out of the call. Empty (the default): getaddrinfo() on the loop's default executor.
  std::function<std::vector<address>(const std::string& host, int port)> resolver = nullptr;
};
namespace detail {
// open_connection_with(host, port, options, ...) is what the connect_options overloads below call.
std::pair<StreamReader, StreamWriter> open_connection_with(const std::string& host, int port,
                                                           const connect_options& options, stream_config config);
std::pair<StreamReader, StreamWriter> open_connection_with(const std::string& host, int port,
                                                           const connect_options& options, const ssl_context& ssl,
                                                           tls_options tls, stream_config config);
}  // namespace detail
// open_connection(host, port, connect_options{...}, config) is open_connection(host, port,
// local_addr=, family=, happy_eyeballs_delay=, interleave=, all_errors=). Throws as
// open_connection() and its local_addr overload; gaierror for a host without an address of
// `family`; with all_errors, ExceptionGroup (see connect_options); ValueError, before any
// lookup, for a family other than AF_INET, AF_INET6 and AF_UNSPEC, a negative or NaN
// happy_eyeballs_delay, a negative interleave. (A template only so that `open_connection(host,
// port, {})` keeps meaning a default stream_config: the type must be connect_options.)
template <std::same_as<connect_options> Options>
std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, int port, const Options& options,
                                                      stream_config config = {}) {
  return detail::open_connection_with(host, port, options, config);
}
// open_connection(host, port, connect_options{...}, ssl, tls, config) is the same with TLS, as
// open_connection(host, port, ssl, tls, config).
template <std::same_as<connect_options> Options>
std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, int port, const Options& options,
                                                      const ssl_context& ssl, tls_options tls = {},
                                                      stream_config config = {}) {
  return detail::open_connection_with(host, port, options, ssl, std::move(tls), config);
}
// open_unix_connection(path) connects to a Unix-domain socket.
std::pair<StreamReader, StreamWriter> open_unix_connection(const std::string& path, stream_config config = {});
// open_unix_connection(path, ssl, tls, config) adds TLS as open_connection()'s overload does.
// tls.server_hostname is needed when the context checks host names: ValueError ("You must set
// server_hostname when using ssl without a host"), before connecting.
std::pair<StreamReader, StreamWriter> open_unix_connection(const std::string& path, const ssl_context& ssl,
                                                           tls_options tls = {}, stream_config config = {});

// connected_socket{fd} is asyncio's sock= of open_connection()/open_unix_connection(): a socket the
// caller connected (by hand, one end of socketpair(), one inherited), made into streams as
// `asyncio::open_connection(asyncio::connected_socket{fd})`.
struct connected_socket {
  // fd: a connected SOCK_STREAM socket, TCP or Unix-domain.
  int fd = -1;
};
// open_connection(connected_socket{fd}, config) is open_connection(sock=sock): the streams over
// fd, made non-blocking (TCP_NODELAY for TCP, as asyncio's transport). fd is the streams' once the
// call returns (closed with them, as connect_read_pipe()'s); if the call throws, it is left open
// and the caller's. Throws ValueError (not a socket; not SOCK_STREAM, asyncio's "A Stream Socket
// was expected"; not connected), OSError (EBADF), RuntimeError outside the running loop's thread.
std::pair<StreamReader, StreamWriter> open_connection(connected_socket sock, stream_config config = {});
// open_connection(connected_socket{fd}, ssl, tls, config) is open_connection(sock=sock, ssl=ssl):
// the TLS handshake (client side) over fd before the streams are returned. There is no host to
// check the certificate against: tls.server_hostname is needed when the context checks host names,
// ValueError ("You must set server_hostname when using ssl without a host") before fd is taken, as
// open_unix_connection(path, ssl). A failed handshake closes fd (it was taken); throws as
// StreamWriter::start_tls() then.
std::pair<StreamReader, StreamWriter> open_connection(connected_socket sock, const ssl_context& ssl,
                                                      tls_options tls = {}, stream_config config = {});
// open_unix_connection(connected_socket{fd}, ...) is open_unix_connection(sock=sock): as
// open_connection(connected_socket{fd}, ...) for an AF_UNIX socket only (ValueError for another
// family, asyncio's "A UNIX Domain Stream Socket was expected").
std::pair<StreamReader, StreamWriter> open_unix_connection(connected_socket sock, stream_config config = {});
// open_unix_connection(connected_socket{fd}, ssl, tls, config) adds TLS as open_connection()'s does.
std::pair<StreamReader, StreamWriter> open_unix_connection(connected_socket sock, const ssl_context& ssl,
                                                           tls_options tls = {}, stream_config config = {});

// connect_read_pipe(fd) is asyncio's connect_read_pipe() with a
// StreamReaderProtocol, as a stream: a StreamReader over the read end of a
// pipe (or a FIFO, a socket, a terminal):
//
//   asyncio::StreamReader in = asyncio::connect_read_pipe(::dup(0));  // stdin, lines as they come
//   for (std::string& line : asyncio::aiter(in)) handle(line);
//
// fd is made non-blocking and owned from then on: it is closed when the last
// copy of the reader goes (dup() it first to keep it, as above). Throws
// ValueError for a regular file or a directory (epoll cannot wait on them:
// read those with to_thread()), OSError (EBADF); RuntimeError outside the
// running loop's thread.
StreamReader connect_read_pipe(int fd, stream_config config = {});
// connect_write_pipe(fd) is connect_read_pipe() for the write end: a
// StreamWriter whose write()/drain() wait for the reader, close() closes fd
// once the buffer is written, and a reader gone is BrokenPipeError (never
// SIGPIPE). On a FIFO or socket the stream also watches for the reader going,
// as asyncio's pipe transport, and closes by itself then: with
// BrokenPipeError (raised by drain() and wait_closed()) if bytes were still
// buffered, cleanly otherwise (later writes dropped, drain() raising
// ConnectionResetError). Throws as connect_read_pipe().
StreamWriter connect_write_pipe(int fd, stream_config config = {});

// client_connected is a server's handler; it runs in its own task for each
// connection. Every connection calls the server's one handler object (never
// a copy, as a Python callback is one object): a mutable lambda's state is
// shared by all of them, and a big capture is not copied per connection. It
// lives while the server or a connection's task does. Its exception goes to
// the loop's exception handler.
using client_connected = std::function<void(StreamReader, StreamWriter)>;

// Server is what start_server() returns: it accepts connections until
// close(). Copies share the server. On an empty Server (default-made or
// moved from) close(), wait_closed() and serve_forever() throw RuntimeError
// (asyncio_errc::invalid_state); the others answer as for a closed server.
class Server {
 public:
  Server() = default;
  // Internal: Server(s) is a handle to server state s; get servers from start_server(). Throws
  // nothing; loop thread only.
  explicit Server(std::shared_ptr<detail::server_state> s) : s_(std::move(s)) {}

  // port() is the bound TCP port (the one picked when 0 was asked), the same on every address.
  int port() const noexcept;
  // fileno() is the first listening socket, -1 once closed. Throws nothing; loop thread only.
  int fileno() const noexcept;
  // sockets() is every listening socket (one per address bound), asyncio's Server.sockets;
  // empty once closed. Throws std::bad_alloc only; loop thread only.
  std::vector<int> sockets() const;
  // is_serving() is true while the server accepts: from start (or start_serving()) until close().
  // Throws nothing; loop thread only; false for an empty server.
  bool is_serving() const noexcept;
  // start_serving() starts accepting on a server made with server_config{.start_serving = false}
  // (asyncio's Server.start_serving()); nothing if it accepts already. Throws RuntimeError on a
  // closed or empty server; a task of the loop thread only.
  void start_serving();
  // close() stops accepting and closes the listening sockets; connections
  // already accepted go on.
  void close();
  // close_clients() closes every connection accepted and still open (asyncio 3.13): each
  // handler's streams as StreamWriter::close() does (a waiting read sees EOF), each protocol
  // connection as Transport::close(). Call close() first, or new clients keep coming. Throws
  // RuntimeError on an empty Server; loop thread only.
  void close_clients();
  // abort_clients() is close_clients() with abort(): the bytes not sent yet are dropped and the
  // sockets close at once.
  void abort_clients();
  // wait_closed() waits until closed and every handler task has finished.
  // From one of this server's own handlers it cannot wait for that handler:
  // while the handler's connection is open it throws RuntimeError
  // (asyncio_errc::deadlock) at once, saying so (Python 3.12 waits forever);
  // once the handler has closed its writer (or dropped its streams) it waits
  // for the other handlers only. Also CancelledError if the waiting task is
  // cancelled, RuntimeError outside a task. A task of the loop thread only.
  void wait_closed();
  // serve_forever() serves until the server is closed, then raises
  // CancelledError, as asyncio's (3.11): close() from another task cancels
  // it; if the waiting task is cancelled it closes the server and raises
  // CancelledError. RuntimeError (asyncio_errc::invalid_state) on a closed
  // server, or while another task is in serve_forever().
  void serve_forever();

 private:
  std::shared_ptr<detail::server_state> s_;
};

// server_config: backlog and the accepted streams' configuration.
struct server_config {
  // backlog: the listen() backlog, the most pending connections the kernel queues.
  int backlog = 1024;
  // stream: the configuration given to every accepted connection's streams.
  stream_config stream = {};
  // accept_retry_delay: after EMFILE/ENFILE (out of fds), seconds to pause
  // accepting; the error goes to the loop's exception handler and the
  // connections already open keep being served.
  double accept_retry_delay = 0.1;
  // ssl: a server context (ssl_protocol::tls_server with load_cert_chain()) makes every
  // connection TLS: its task makes the handshake before the handler runs with plaintext streams.
  // A connection whose handshake fails (or takes longer than ssl_handshake_timeout seconds) is
  // closed without running the handler, and without a report, as asyncio's outside debug mode.
  std::optional<ssl_context> ssl = std::nullopt;
  // ssl_handshake_timeout: unset is asyncio's 60 s. Set without ssl it is ValueError, as asyncio's
  // ("ssl_handshake_timeout is only meaningful with ssl").
  std::optional<double> ssl_handshake_timeout = std::nullopt;
  // ssl_shutdown_timeout: tls_options::ssl_shutdown_timeout for every connection (how long a
  // closed one waits for the client's close_notify); unset is asyncio's 30 s. Set without ssl it
  // is ValueError, as asyncio's ("ssl_shutdown_timeout is only meaningful with ssl").
  std::optional<double> ssl_shutdown_timeout = std::nullopt;
  // reuse_address: asyncio's reuse_address=, SO_REUSEADDR on each listening TCP socket before
  // bind(), so that a restarted server can bind a port whose old connections are in TIME_WAIT.
  // Unset means on, asyncio's default on POSIX; false leaves it off (bind() then fails while such
  // connections linger).
  std::optional<bool> reuse_address = std::nullopt;
  // reuse_port: asyncio's reuse_port=, SO_REUSEPORT on each listening TCP socket before bind(): several
  // servers (of this process or another of the same user) that all set it can bind the same address
  // and port, and the kernel spreads the incoming connections among them. Without it, a second
  // server on a bound port fails with OSError EADDRINUSE.
  bool reuse_port = false;
  // keep_alive: asyncio's keep_alive= (3.13): true sets SO_KEEPALIVE on each listening TCP socket
  // before bind(), and the connections it accepts inherit it, so the kernel probes a peer that went
  // silent and a dead one ends in ConnectionResetError or TimeoutError instead of an endless wait.
  // Unset or false leaves the system's default (off). A TCP option, as reuse_address: set for a
  // Unix-domain server or with a listening_socket it is ValueError.
  std::optional<bool> keep_alive = std::nullopt;
  // family: asyncio's family=: AF_INET or AF_INET6 binds only the host's addresses of that family
  // ("" then means 0.0.0.0 alone, or :: alone); AF_UNSPEC, the default, binds them all. A host with
  // no address of that family is gaierror (EAI_FAMILY); any other value, or a family set for a
  // Unix-domain server or with a listening_socket, is ValueError.
  int family = AF_UNSPEC;
  // cleanup_socket: asyncio's cleanup_socket= (3.13) of a Unix-domain server: unset or true removes
  // its socket file when the server closes (or is let go of unclosed), the path given or that of a
  // listening_socket, unless the file there is no longer the one it bound (removed, or replaced by
  // another server's since); false leaves the file. An abstract socket has no file. A Unix-domain
  // option: set for a TCP server it is ValueError.
  std::optional<bool> cleanup_socket = std::nullopt;
  // start_serving: asyncio's start_serving=. False makes the server listen without accepting yet:
  // connections wait in the backlog until Server::start_serving() or serve_forever().
  bool start_serving = true;
};

// start_server(handler, host, port) listens on host:port (port 0: any free
// port, see Server::port()) with SO_REUSEADDR and starts accepting, each
// connection running handler in a new task. As asyncio's, it binds every
// address host resolves to (resolved as by open_connection()): "" means
// every interface, IPv4 and IPv6 (0.0.0.0 and ::); IPv6 sockets are
// IPv6-only. With port 0 all of them share the port the first one got.
// config.reuse_address and config.reuse_port set SO_REUSEADDR (by default)
// and SO_REUSEPORT on each socket before bind().
// Throws gaierror, OSError (EADDRINUSE... naming the address; then no
// socket is left open), std::out_of_range and ValueError as
// open_connection() (port outside 0-65535, NUL in host). Call it from a
// task of the loop.
Server start_server(client_connected handler, const std::string& host, int port, server_config config = {});
// start_unix_server(handler, path) listens on a Unix-domain socket at path
// (an existing socket file there is replaced), and removes that file when it
// closes (config.cleanup_socket). config.reuse_address and config.reuse_port
// are TCP options: ValueError if either is set.
Server start_unix_server(client_connected handler, const std::string& path, server_config config = {});

// listening_socket{fd} is asyncio's sock= of start_server()/start_unix_server(): a socket the
// caller made and bound (and usually listen()ed on already): one inherited from systemd or inetd,
// or with options start_server() does not set. Made as
// `start_server(handler, asyncio::listening_socket{fd})`.
struct listening_socket {
  // fd: a bound SOCK_STREAM socket, TCP or Unix-domain.
  int fd = -1;
};
// start_server(handler, listening_socket{fd}, config) is start_server(cb, sock=sock): it serves
// fd, as start_server(handler, host, port) serves the sockets it makes. As asyncio's, it calls
// listen(fd, config.backlog) (a bound socket need not listen yet; for one that does, the backlog
// changes) and makes fd non-blocking. fd is the server's once the call returns: close() closes
// it; if the call throws, fd is left open and the caller's (listening, if listen() was reached).
// Server::port() is fd's port (0 for a Unix-domain socket), sockets() is {fd}. Throws ValueError
// (fd is not a socket; not SOCK_STREAM, asyncio's "A Stream Socket was expected"; a connected
// socket; config.reuse_address or reuse_port set: set options on the socket before bind()),
// OSError (EBADF; listen() failing). Call it from a task of the loop.
Server start_server(client_connected handler, listening_socket sock, server_config config = {});
// start_unix_server(handler, listening_socket{fd}, config) is start_unix_server(cb, sock=sock):
// start_server()'s overload for an AF_UNIX socket only (ValueError for another family, asyncio's
// "A UNIX Domain Stream Socket was expected").
Server start_unix_server(client_connected handler, listening_socket sock, server_config config = {});

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
