// server.cpp: start_server() and Server. One accept task per server; each
// connection runs the handler in its own task.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "asyncio/poller.hpp"
#include "greenlet/asyncio/any_task.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/tasks.hpp"
#include "greenlet/io/socket.hpp"
#include "io/given_socket.hpp"
#include "io/protocol_transport.hpp"
#include "io/resolve.hpp"
#include "io/server_hooks.hpp"
#include "io/stream_transport.hpp"
#include "io/tls_context.hpp"
#include "io/wait.hpp"

namespace greenlet::asyncio {

namespace detail {

// handshake_done(w, ssl, limit, shutdown_limit) makes an accepted connection's TLS handshake. A failure closes it
// and returns false without a report, as asyncio's outside debug mode: scanners and clients that
// give up would otherwise fill the log.
bool handshake_done(StreamWriter& w, const ssl_context& ssl, double limit, double shutdown_limit) {
  try {
    w.start_tls(ssl, {.server_hostname = {}, .ssl_handshake_timeout = limit, .ssl_shutdown_timeout = shutdown_limit});
    return true;
  } catch (const OSError&) {
    w.close();
    return false;
  }
}

// check_server_tls(config, call) refuses a TLS configuration the handshakes would refuse later.
void check_server_tls(const server_config& config, const char* call) {
  if (!config.ssl) {
    if (config.ssl_handshake_timeout) {
      throw ValueError(std::string(call) +
                       "(): ssl_handshake_timeout is only meaningful with ssl: set server_config.ssl too, or leave "
                       "ssl_handshake_timeout unset");
    }
    if (config.ssl_shutdown_timeout) {
      throw ValueError(std::string(call) +
                       "(): ssl_shutdown_timeout is only meaningful with ssl: set server_config.ssl too, or leave "
                       "ssl_shutdown_timeout unset");
    }
    return;
  }
  if (config.ssl->protocol() != ssl_protocol::tls_server) {
    throw ValueError(std::string(call) +
                     "(): server_config.ssl must be a server context: ssl_context(ssl_protocol::tls_server) or "
                     "create_default_context(ssl_purpose::client_auth), with load_cert_chain()");
  }
  if (config.ssl_handshake_timeout) check_handshake_timeout(*config.ssl_handshake_timeout);
  if (config.ssl_shutdown_timeout) check_shutdown_timeout(*config.ssl_shutdown_timeout);
}

// listener is one listening socket of a server, with its own acceptor task.
struct listener {
  int fd = -1;
  Future<void> accept_waiter;  // while its acceptor waits for a connection
  Future<void> acceptor_done;
};

// client is one accepted connection: the task running the handler, and the connection it serves,
// watched without being held (the handler's streams own it and close it when they go).
struct client {
  Task<void> task;
  std::weak_ptr<stream_transport> connection;

  // closed() is true once the connection is closed or closing: the handler (or anyone holding its
  // streams) called close(), it failed, or its last reader and writer are gone.
  bool closed() const noexcept {
    std::shared_ptr<stream_transport> t = connection.lock();
    return t == nullptr || t->closing() || t->fd() < 0;
  }
};

struct server_state : std::enable_shared_from_this<server_state> {
  server_state() = default;
  server_state(const server_state&) = delete;
  server_state& operator=(const server_state&) = delete;
  // A server nobody closed (its loop ended, its acceptors were cancelled)
  // still closes its listening sockets when the last reference goes, or
  // their ports would keep taking connections nobody accepts.
  ~server_state() {
    close_listeners();
    if (loop != nullptr) release(loop);
  }

  // The loop it serves on (retained: its poller must forget the fds).
  loop_core* loop = nullptr;
  // One per address bound; sized once, before any acceptor starts (they
  // hold references into it).
  std::vector<listener> listeners;
  int port = 0;
  bool tcp = true;
  // The one handler every connection calls; each connection's task holds it
  // too, so it outlives this state while one runs (the tasks do not hold
  // the state: it holds them).
  std::shared_ptr<const client_connected> handler;
  server_config config;
  // The acceptor tasks hold this state (so a dropped Server keeps serving);
  // the state holds no handle to the tasks, only plain futures, so there is
  // no cycle.
  std::list<client> clients;  // running handler tasks
  // A protocol server's (create_server()) accepted sockets go to accept_hook instead of handler
  // tasks; it calls the `lost` it is given once that connection is lost. hooked holds the
  // closers of those not lost yet (close_clients(), and wait_closed(), which awaits hooked_gone
  // meanwhile).
  accept_hook hook;
  std::list<connection_closer> hooked;
  Future<void> hooked_gone;
  Future<void> closed;           // done once close() ran
  bool accepting = false;        // start_accepting() ran (server_config::start_serving)
  bool serving_forever = false;  // a task is in serve_forever()

  // accept_one(l, peer, len) is the next connection and its peer's address.
  int accept_one(listener& l, sockaddr_storage& peer, socklen_t& len) {
    for (;;) {
      if (l.fd < 0) return -1;
      len = sizeof peer;
      int c = ::accept4(l.fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c >= 0) return c;
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        wait_fd(l.fd, io_direction::read, io_caller::owner, &l.accept_waiter);
      } else if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of descriptors: say so, pause accepting, keep serving the
        // connections already open (asyncio's accept_retry_delay).
        char delay[32];
        std::snprintf(delay, sizeof delay, "%g", config.accept_retry_delay);
        const bool fds = err == EMFILE || err == ENFILE;
        get_running_loop().call_exception_handler(
            {std::string("socket.accept() out of system resource (") + std::strerror(err) +
                 "); pausing accepting for " + delay + "s, connections already open are still served" +
                 (fds ? "; close descriptors or raise the limit (ulimit -n, RLIMIT_NOFILE)" : ""),
             std::make_exception_ptr(OSError(err, "accept")),
             tcp ? "Server on port " + std::to_string(port) : std::string("Unix server")});
        sleep(config.accept_retry_delay);
      } else if (err != EINTR && err != ECONNABORTED && err != EPROTO) {
        raise_os_error(err, "accept");
      }
    }
  }

  void accept_loop(listener& l) {
    std::weak_ptr<server_state> self = weak_from_this();
    sockaddr_storage peer;
    socklen_t peer_len = 0;
    for (;;) {
      int c = accept_one(l, peer, peer_len);
      if (c < 0) return;
      if (tcp) {
        int one = 1;
        ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      if (hook) {
        hand_to_hook(c, peer, peer_len);
        continue;
      }
      std::shared_ptr<stream_transport> connection = stream_transport::make(*loop, c, config.stream);
      connection->set_peer_address(reinterpret_cast<const sockaddr*>(&peer), peer_len);
      connection->set_accepted();
      std::weak_ptr<stream_transport> watched = connection;
      // The handler gets the streams themselves, not copies: the task's
      // function keeps none while the handler runs, so the connection's
      // last reader and writer are the handler's (and the function is
      // destroyed when it returns, whoever holds the task).
      auto task =
          create_task([h = handler, r = StreamReader(connection), w = StreamWriter(connection), tls = config.ssl,
                       limit = config.ssl_handshake_timeout.value_or(default_ssl_handshake_timeout),
                       shutdown_limit = config.ssl_shutdown_timeout.value_or(default_ssl_shutdown_timeout)]() mutable {
            if (tls && !handshake_done(w, *tls, limit, shutdown_limit)) return;
            (*h)(std::move(r), std::move(w));
          });
      connection.reset();
      auto it = clients.insert(clients.end(), client{task, std::move(watched)});
      task.add_done_callback([self, it](Future<void>&) {
        if (auto s = self.lock()) s->clients.erase(it);
      });
    }
  }

  void hand_to_hook(int c, const sockaddr_storage& peer, socklen_t peer_len) {
    auto it = hooked.insert(hooked.end(), connection_closer{});
    std::weak_ptr<server_state> self = weak_from_this();
    try {
      // The hook calls `lost` only later (the connection's end), or while it throws: then the
      // assignment does not happen.
      *it = hook(c, reinterpret_cast<const sockaddr*>(&peer), peer_len, [self, it] {
        auto s = self.lock();
        if (s == nullptr) return;
        s->hooked.erase(it);
        if (s->hooked.empty() && !s->hooked_gone.empty() && !s->hooked_gone.done()) s->hooked_gone.set_result();
      });
    } catch (...) {
      // The hook reports its own failures; this keeps the acceptor serving whatever happens.
      get_running_loop().call_exception_handler(
          {"Error on transport creation for incoming connection", std::current_exception(),
           tcp ? "Server on port " + std::to_string(port) : std::string("Unix server")});
    }
  }

  // wait_hooked() waits until every protocol connection is lost.
  void wait_hooked() {
    while (!hooked.empty()) {
      if (hooked_gone.empty() || hooked_gone.done()) hooked_gone = get_running_loop().create_future<void>();
      Future<void> gone = hooked_gone;
      await_shared(gone);
    }
  }

  bool serving() const noexcept { return !listeners.empty() && listeners.front().fd >= 0; }

  // start_accepting() starts an acceptor task per listening socket, once.
  void start_accepting() {
    if (accepting || !serving()) return;
    accepting = true;
    event_loop& loop = get_running_loop();
    // Each acceptor holds the state: a Server handle dropped while serving
    // keeps serving, as asyncio's.
    std::shared_ptr<server_state> self = shared_from_this();
    for (listener& l : listeners) {
      // accept_one() waits only after EAGAIN and close() forgets the fd first,
      // as adopt() asks: an accept wait then costs no epoll_ctl.
      loop.core()->io->adopt(l.fd);
      l.acceptor_done = loop.create_future<void>();
      loop.create_task([self, &l] {
        struct finished {
          listener& l;
          ~finished() {
            if (!l.acceptor_done.done()) l.acceptor_done.set_result();
          }
        } guard{l};
        self->accept_loop(l);
      });
    }
  }

  // close_clients(abort): close() (or abort()) every connection accepted and still open, the
  // handler tasks' streams and the protocol connections alike (asyncio 3.13's close_clients()
  // and abort_clients()).
  void close_clients(bool abort) {
    for (const client& c : clients) {
      if (std::shared_ptr<stream_transport> t = c.connection.lock()) abort ? t->abort() : t->close();
    }
    // A copy: a connection may end while we go (its `lost` erases its entry).
    const std::vector<connection_closer> closers(hooked.begin(), hooked.end());
    for (const connection_closer& close_one : closers) {
      if (close_one) close_one(abort);
    }
  }

  // client_running(task) is the connection whose handler runs in `task`, or null.
  const client* client_running(const AnyTask& task) const noexcept {
    if (task.empty()) return nullptr;
    for (const client& c : clients) {
      if (c.task.state() == task.state()) return &c;
    }
    return nullptr;
  }

  void close() {
    if (!serving()) return;
    // Unregister before closing: an acceptor's own cleanup runs later and
    // must not meet a new file that reuses the number.
    for (listener& l : listeners) {
      if (!l.accept_waiter.empty()) {
        loop->io->remove_waiter(l.fd, io_direction::read, l.accept_waiter.state());
        if (!l.accept_waiter.done()) l.accept_waiter.set_result();
      }
    }
    close_listeners();
    if (!closed.done()) closed.set_result();
  }

  void close_listeners() noexcept {
    for (listener& l : listeners) {
      if (l.fd < 0) continue;
      if (loop != nullptr) loop->io->forget(l.fd);
      ::close(l.fd);
      l.fd = -1;
    }
    remove_socket_file();
  }

  // The socket file a Unix-domain server removes as it closes (cleanup_socket), and the file's
  // identity when it was bound: a file at that path now with another identity is not ours.
  std::string socket_file;
  dev_t socket_file_device = 0;
  ino_t socket_file_inode = 0;

  // remember_socket_file(fd) notes the file of a Unix-domain listening socket for
  // remove_socket_file(), unless config.cleanup_socket is false or the socket is abstract.
  void remember_socket_file(int fd) {
    if (!config.cleanup_socket.value_or(true)) return;
    sockaddr_un addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || addr.sun_family != AF_UNIX) return;
    const std::size_t path_bytes = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    if (path_bytes == 0 || addr.sun_path[0] == '\0') return;  // unnamed or abstract: no file
    std::string path(addr.sun_path, ::strnlen(addr.sun_path, path_bytes));
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return;  // gone already: nothing of ours to remove
    socket_file = std::move(path);
    socket_file_device = st.st_dev;
    socket_file_inode = st.st_ino;
  }

  // remove_socket_file() unlinks the socket file remember_socket_file() noted if it is still the
  // one bound, as asyncio's _stop_serving() does; a failure other than its absence goes to the
  // loop's exception handler, as asyncio logs it.
  void remove_socket_file() noexcept {
    if (socket_file.empty()) return;
    const std::string path = std::move(socket_file);
    socket_file.clear();
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || st.st_dev != socket_file_device || st.st_ino != socket_file_inode) return;
    if (::unlink(path.c_str()) == 0 || errno == ENOENT) return;
    const int err = errno;
    if (loop == nullptr) return;
    try {
      loop->report(
          {"Unable to clean up listening UNIX socket '" + path + "'", os_error_ptr(err, "unlink"), "Unix server"});
    } catch (...) {  // std::bad_alloc making the report: the file stays, unreported
    }
  }
};

namespace {

// listen_on() makes a listening socket bound to addr. An IPv6 socket is
// IPv6-only (as asyncio's), so that the IPv4 and IPv6 wildcard addresses of
// one host can both be bound on one port. A TCP socket gets SO_REUSEADDR
// unless config.reuse_address is false, SO_REUSEPORT if config.reuse_port and
// SO_KEEPALIVE if config.keep_alive, all before bind(), as asyncio sets them.
int listen_on(int family, const sockaddr* addr, socklen_t len, const server_config& config) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) raise_os_error(errno, family == AF_INET6 ? "socket(AF_INET6)" : "socket");
  auto fail = [&](int err, const std::string& call) {
    ::close(fd);
    raise_os_error(err, call);
  };
  int one = 1;
  if (family != AF_UNIX && config.reuse_address.value_or(true) &&
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
    fail(errno, "setsockopt(SO_REUSEADDR)");
  }
  if (family != AF_UNIX && config.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    fail(errno, "setsockopt(SO_REUSEPORT)");
  }
  if (family != AF_UNIX && config.keep_alive.value_or(false) &&
      ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0) {
    fail(errno, "setsockopt(SO_KEEPALIVE)");
  }
  if (family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, addr, len) < 0 || ::listen(fd, config.backlog) < 0) {
    fail(errno, family == AF_UNIX ? std::string("bind/listen") : "bind/listen on " + host_port(addr, len));
  }
  return fd;
}

int bound_port(int fd) {
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  return format_address(reinterpret_cast<sockaddr*>(&bound), len).port;
}

void set_port(resolved_address& a, int port) {
  if (a.family == AF_INET) reinterpret_cast<sockaddr_in*>(&a.addr)->sin_port = htons(static_cast<std::uint16_t>(port));
  if (a.family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&a.addr)->sin6_port = htons(static_cast<std::uint16_t>(port));
  }
}

bool same_address(const resolved_address& a, const resolved_address& b) {
  return a.family == b.family && a.len == b.len && std::memcmp(&a.addr, &b.addr, a.len) == 0;
}

// listen_on_all() binds every address host resolves to, as asyncio's
// create_server does: "" (every interface) gives 0.0.0.0 and ::. With port
// 0 the first address picks a free port and the others take the same one,
// so that port() names the server. An address family the kernel lacks
// (IPv6 compiled out: EAFNOSUPPORT) is skipped, as asyncio skips it, while
// another address is left; any other failure leaves no socket open.
std::vector<listener> listen_on_all(std::vector<resolved_address> addrs, int port, const server_config& config) {
  std::vector<listener> out;
  std::exception_ptr unsupported;
  try {
    for (std::size_t i = 0; i < addrs.size(); ++i) {
      resolved_address& a = addrs[i];
      bool duplicate = false;
      for (std::size_t j = 0; j < i; ++j) duplicate = duplicate || same_address(addrs[j], a);
      if (duplicate) continue;
      if (port == 0 && !out.empty()) set_port(a, bound_port(out.front().fd));
      try {
        out.push_back({listen_on(a.family, reinterpret_cast<const sockaddr*>(&a.addr), a.len, config), {}, {}});
      } catch (const OSError& e) {
        if (e.code().value() != EAFNOSUPPORT) throw;
        unsupported = std::current_exception();
      }
    }
  } catch (...) {
    for (listener& l : out) ::close(l.fd);
    throw;
  }
  if (out.empty() && unsupported) std::rethrow_exception(unsupported);
  return out;
}

// refuse_cleanup_socket(config, call) is ValueError for cleanup_socket set on a TCP server.
void refuse_cleanup_socket(const server_config& config, const char* call) {
  if (config.cleanup_socket) {
    throw ValueError(std::string(call) +
                     "(): server_config.cleanup_socket removes a Unix-domain server's socket file; a TCP server has "
                     "none: leave it unset");
  }
}

// listen_on_socket(sock, config, unix_only, call) checks the socket a caller gave start_server()
// and makes it listen, as asyncio's Server does with sock= (listen(backlog), non-blocking), and
// returns its family. Until it returns the fd is the caller's: a refusal leaves it open.
int listen_on_socket(listening_socket sock, const server_config& config, bool unix_only, const char* call) {
  const std::string fd = "fd " + std::to_string(sock.fd);
  if (config.reuse_address || config.reuse_port || config.keep_alive || config.family != AF_UNSPEC) {
    throw ValueError(std::string(call) +
                     "(): with a listening_socket, leave server_config.reuse_address and reuse_port unset (and "
                     "keep_alive and family): the socket has its family, and SO_REUSEADDR/SO_REUSEPORT/SO_KEEPALIVE "
                     "are yours to set on it, before bind()");
  }
  const int family = check_stream_socket(sock.fd, unix_only, call,
                                         std::string("listening_socket{fd} needs a bound SOCK_STREAM socket") +
                                             (unix_only ? " of AF_UNIX (start_server() takes a TCP one)" : ""));
  if (family != AF_UNIX) refuse_cleanup_socket(config, call);
  int accepting = 0;
  socklen_t len = sizeof accepting;
  ::getsockopt(sock.fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len);
  sockaddr_storage peer{};
  socklen_t peer_len = sizeof peer;
  if (accepting == 0 && ::getpeername(sock.fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0) {
    throw ValueError(std::string(call) + "(): " + fd +
                     " is a connected socket, which cannot listen: pass a socket that is bound (listening or "
                     "not), or read and write this one with open_connection(connected_socket{fd})");
  }
  if (::listen(sock.fd, config.backlog) < 0) raise_os_error(errno, std::string(call) + "(): listen(" + fd + ")");
  set_nonblocking(sock.fd);
  return family;
}

Server start(std::shared_ptr<server_state> s) {
  event_loop& loop = get_running_loop();
  s->loop = loop.core();
  retain(s->loop);
  s->closed = loop.create_future<void>();
  if (s->config.start_serving) s->start_accepting();
  return Server(s);
}

}  // namespace

}  // namespace detail

namespace detail {

namespace {

// server_addresses(host, port, config, call) is what a TCP server binds: every address host
// resolves to, or those of config.family.
std::vector<resolved_address> server_addresses(const std::string& host, int port, const server_config& config,
                                               const char* call) {
  if (config.family == AF_UNSPEC) return resolve(host, port, true);
  if (config.family != AF_INET && config.family != AF_INET6) {
    throw ValueError(std::string(call) +
                     "(): server_config.family must be AF_INET, AF_INET6 or AF_UNSPEC (both), got " +
                     std::to_string(config.family) +
                     (config.family == AF_UNIX ? " (AF_UNIX): for a Unix-domain server call start_unix_server()" : ""));
  }
  return resolve_for_family(host, port, config.family, true);
}

// The servers' listening sockets, before a handler or a hook is chosen and the acceptors start.
std::shared_ptr<server_state> listening_tcp(const std::string& host, int port, const server_config& config,
                                            const char* call) {
  refuse_cleanup_socket(config, call);
  auto s = std::make_shared<server_state>();
  s->listeners = listen_on_all(server_addresses(host, port, config, call), port, config);
  s->config = config;
  s->port = bound_port(s->listeners.front().fd);
  return s;
}

std::shared_ptr<server_state> listening_unix(const std::string& path, const server_config& config, const char* call) {
  if (config.reuse_address || config.reuse_port || config.keep_alive || config.family != AF_UNSPEC) {
    throw ValueError(std::string(call) +
                     "(): server_config.reuse_address and reuse_port are TCP options (SO_REUSEADDR, "
                     "SO_REUSEPORT), as are keep_alive (SO_KEEPALIVE) and family (AF_INET, AF_INET6); leave them "
                     "unset for a Unix-domain server");
  }
  const resolved_address addr = unix_address(path, call);
  // As asyncio: a socket left by an earlier server is replaced; any other
  // file at path stays, and bind() reports EADDRINUSE.
  remove_stale_socket(path);
  auto s = std::make_shared<server_state>();
  s->config = config;
  s->tcp = false;
  s->listeners.push_back({listen_on(AF_UNIX, reinterpret_cast<const sockaddr*>(&addr.addr), addr.len, config), {}, {}});
  s->remember_socket_file(s->listeners.front().fd);
  return s;
}

std::shared_ptr<server_state> listening_given(listening_socket sock, const server_config& config, bool unix_only,
                                              const char* call) {
  get_running_loop();  // before the checks touch fd: outside a loop it stays as it was
  auto s = std::make_shared<server_state>();
  s->config = config;
  s->tcp = listen_on_socket(sock, config, unix_only, call) != AF_UNIX;
  // Owned from here on: the state closes it, whatever happens next.
  s->listeners.push_back({sock.fd, {}, {}});
  s->port = bound_port(sock.fd);
  if (!s->tcp) s->remember_socket_file(sock.fd);
  return s;
}

// serving(s, handler) starts s with a handler task per connection.
Server serving(std::shared_ptr<server_state> s, client_connected handler) {
  s->handler = std::make_shared<const client_connected>(std::move(handler));
  return start(std::move(s));
}

// hooked(s, hook) starts s handing each connection to hook.
Server hooked(std::shared_ptr<server_state> s, accept_hook hook) {
  s->hook = std::move(hook);
  return start(std::move(s));
}

void check_stream_server(const server_config& config, const char* call) {
  check_stream_config(config.stream, call);
  check_server_tls(config, call);
}

}  // namespace

Server start_hooked_server(accept_hook hook, const std::string& host, int port, server_config config) {
  return hooked(listening_tcp(host, port, config, "create_server"), std::move(hook));
}

Server start_hooked_unix_server(accept_hook hook, const std::string& path, server_config config) {
  return hooked(listening_unix(path, config, "create_unix_server"), std::move(hook));
}

Server start_hooked_server(accept_hook hook, listening_socket sock, server_config config, bool unix_only) {
  return hooked(listening_given(sock, config, unix_only, unix_only ? "create_unix_server" : "create_server"),
                std::move(hook));
}

}  // namespace detail

Server start_server(client_connected handler, const std::string& host, int port, server_config config) {
  detail::check_stream_server(config, "start_server");
  return detail::serving(detail::listening_tcp(host, port, config, "start_server"), std::move(handler));
}

Server start_unix_server(client_connected handler, const std::string& path, server_config config) {
  detail::check_stream_server(config, "start_unix_server");
  return detail::serving(detail::listening_unix(path, config, "start_unix_server"), std::move(handler));
}

Server start_server(client_connected handler, listening_socket sock, server_config config) {
  detail::check_stream_server(config, "start_server");
  return detail::serving(detail::listening_given(sock, config, false, "start_server"), std::move(handler));
}

Server start_unix_server(client_connected handler, listening_socket sock, server_config config) {
  detail::check_stream_server(config, "start_unix_server");
  return detail::serving(detail::listening_given(sock, config, true, "start_unix_server"), std::move(handler));
}

namespace {

// An empty Server (default-made or moved from) raises rather than crash;
// the calls that cannot throw answer as for a closed server.
void require_server(const std::shared_ptr<detail::server_state>& s, const char* call) {
  if (s == nullptr) [[unlikely]] {
    throw RuntimeError(asyncio_errc::invalid_state,
                       std::string(call) +
                           " on an empty Server: it was default-made or moved from; servers come from "
                           "start_server() and start_unix_server()");
  }
}

}  // namespace

int Server::port() const noexcept { return s_ == nullptr ? 0 : s_->port; }
int Server::fileno() const noexcept { return s_ == nullptr ? -1 : s_->listeners.front().fd; }
std::vector<int> Server::sockets() const {
  std::vector<int> fds;
  if (s_ == nullptr || !s_->serving()) return fds;
  for (const detail::listener& l : s_->listeners) fds.push_back(l.fd);
  return fds;
}
bool Server::is_serving() const noexcept { return s_ != nullptr && s_->serving() && s_->accepting; }

void Server::start_serving() {
  require_server(s_, "start_serving()");
  if (!s_->serving()) throw RuntimeError(asyncio_errc::invalid_state, "start_serving(): the server is closed");
  s_->start_accepting();
}

void Server::close() {
  require_server(s_, "close()");
  s_->close();
}

void Server::close_clients() {
  require_server(s_, "close_clients()");
  s_->close_clients(false);
}

void Server::abort_clients() {
  require_server(s_, "abort_clients()");
  s_->close_clients(true);
}

namespace {

// own_handler_task(s) is the state of the calling task when it is one of s's handlers whose
// connection is closed (waited for by nobody: it is the caller), else null. RuntimeError
// (asyncio_errc::deadlock) for a handler whose connection is still open: wait_closed() waits
// for every connection, that one included, which only its own handler, now waiting, would close
// (Python 3.12 hangs there).
detail::future_state* own_handler_task(const detail::server_state& s) {
  const detail::client* own = s.client_running(current_task());
  if (own == nullptr) return nullptr;
  if (!own->closed()) {
    throw RuntimeError(asyncio_errc::deadlock,
                       "Server.wait_closed() called from one of the server's own connection handlers while its "
                       "connection is open: wait_closed() waits for every connection to finish, this one "
                       "included, so it would wait for itself forever. Call wait_closed() from another task "
                       "(the one that started the server), or close this handler's writer first "
                       "(writer.close()): then it waits only for the other connections");
  }
  return own->task.state();
}

}  // namespace

void Server::wait_closed() {
  require_server(s_, "wait_closed()");
  const detail::future_state* own = own_handler_task(*s_);
  Future<void> closed = s_->closed;
  detail::await_shared(closed);
  for (const detail::listener& l : s_->listeners) {
    if (l.acceptor_done.empty()) continue;  // never accepted (start_serving = false)
    Future<void> acceptor_done = l.acceptor_done;
    detail::await_shared(acceptor_done);
  }
  for (;;) {
    std::vector<detail::future_state*> states;
    for (const detail::client& c : s_->clients) {
      if (c.task.state() != own) states.push_back(c.task.state());
    }
    if (states.empty()) break;
    detail::wait_until(states, std::nullopt, ALL_COMPLETED);
    // Done callbacks erase the finished tasks on a later turn.
    sleep(0);
  }
  s_->wait_hooked();
}

void Server::serve_forever() {
  require_server(s_, "serve_forever()");
  // As asyncio's (3.11) serve_forever(): one task at a time, on an open
  // server, and close() ends it with CancelledError (it cancels the future
  // serve_forever() awaits).
  if (s_->serving_forever) {
    throw RuntimeError(asyncio_errc::invalid_state,
                       "serve_forever(): the server is already being awaited on serve_forever() by another task");
  }
  if (!s_->serving()) throw RuntimeError(asyncio_errc::invalid_state, "serve_forever(): the server is closed");
  s_->start_accepting();
  s_->serving_forever = true;
  struct done_serving {
    detail::server_state& s;
    ~done_serving() { s.serving_forever = false; }
  } guard{*s_};
  try {
    Future<void> closed = s_->closed;
    detail::await_shared(closed);
  } catch (const CancelledError&) {
    s_->close();
    throw;
  }
  throw CancelledError();
}

}  // namespace greenlet::asyncio
