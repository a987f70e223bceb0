// protocol_connect.cpp: the entry points that give a protocol its transport
// (io/protocols.hpp): create_connection() and create_unix_connection(),
// connect_accepted_socket(), connect_read_pipe()/connect_write_pipe() and
// the protocol servers.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/task.hpp"
#include "greenlet/io/protocols.hpp"
#include "greenlet/io/socket.hpp"
#include "io/given_socket.hpp"
#include "io/owned_fd.hpp"
#include "io/protocol_transport.hpp"
#include "io/resolve.hpp"
#include "io/server_hooks.hpp"
#include "io/stream_transport.hpp"
#include "io/tcp_connect.hpp"
#include "io/tls_context.hpp"

namespace greenlet::asyncio::detail {

namespace {

std::shared_ptr<BaseProtocol> make_protocol(const protocol_factory& factory, const char* call) {
  std::shared_ptr<BaseProtocol> protocol = factory();
  if (protocol == nullptr) {
    throw ValueError(std::string(call) +
                     "(): the protocol factory returned null; return a std::shared_ptr to a "
                     "Protocol or BufferedProtocol");
  }
  return protocol;
}

// connect_transport(fd, kind, factory, call, tls, hostname) makes the protocol and its transport
// on fd (owned), TLS if tls is given (a client checks tls's server_hostname, by default
// `hostname`), and returns once connection_made() has run, as asyncio's waiter: after the
// handshake for TLS.
Transport connect_transport(owned_fd& fd, protocol_transport_kind kind, const protocol_factory& factory,
                            const char* call, const connection_tls* tls = nullptr, const std::string& hostname = {}) {
  event_loop& loop = get_running_loop();
  std::shared_ptr<BaseProtocol> protocol = make_protocol(factory, call);
  auto t = std::make_shared<protocol_transport>(loop, fd.release(), kind, std::move(protocol));
  if (tls != nullptr) {
    t->use_tls(tls->ssl, tls->server_side,
               tls->server_side ? std::string() : tls->options.server_hostname.value_or(hostname),
               tls->options.ssl_handshake_timeout, tls->options.ssl_shutdown_timeout,
               tls->server_side ? ssl_session{} : tls->options.session);
  }
  Future<void> ready = loop.create_future<void>();
  t->start(ready);
  try {
    await(ready);
  } catch (...) {
    t->abort();
    throw;
  }
  return Transport(std::move(t));
}

// adopt_transport(fd, ...) is connect_transport() on a descriptor the caller gave: it is the
// transport's once made; if the call throws before that (the factory threw or returned null), fd
// is left open and the caller's, as asyncio leaves the socket or pipe it was given.
Transport adopt_transport(int fd, protocol_transport_kind kind, const protocol_factory& factory, const char* call,
                          const connection_tls* tls = nullptr) {
  owned_fd owned{fd};
  try {
    return connect_transport(owned, kind, factory, call, tls);
  } catch (...) {
    owned.release();
    throw;
  }
}

void set_nodelay(int fd) noexcept {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

Transport open_protocol_connection(const protocol_factory& factory, const std::string& host, int port,
                                   const connect_options& options, const connection_tls* tls) {
  require_running_loop();
  if (tls != nullptr) check_tls_args(tls->ssl, tls->options, "create_connection");
  resolved_address peer;
  owned_fd fd{connect_tcp(host, port, options, peer)};
  return connect_transport(fd, protocol_transport_kind::socket, factory, "create_connection", tls, host);
}

Transport open_unix_protocol_connection(const protocol_factory& factory, const std::string& path,
                                        const connection_tls* tls) {
  require_running_loop();
  if (tls != nullptr) {
    check_tls_args(tls->ssl, tls->options, "create_unix_connection");
    require_server_hostname(tls->ssl, tls->options);
  }
  const resolved_address addr = unix_address(path, "create_unix_connection");
  owned_fd fd{connect_socket(AF_UNIX, reinterpret_cast<const sockaddr*>(&addr.addr), addr.len)};
  return connect_transport(fd, protocol_transport_kind::socket, factory, "create_unix_connection", tls);
}

Transport adopt_protocol_socket(const protocol_factory& factory, int fd, const char* call, const connection_tls* tls) {
  require_running_loop();
  if (tls != nullptr && tls->server_side) {
    if (tls->ssl.protocol() != ssl_protocol::tls_server) {
      throw ValueError(std::string(call) +
                       "(): the server side of a handshake needs a server context: ssl_context(ssl_protocol::"
                       "tls_server) with load_cert_chain()");
    }
    check_handshake_timeout(tls->options.ssl_handshake_timeout);
    check_shutdown_timeout(tls->options.ssl_shutdown_timeout);
  } else if (tls != nullptr) {
    check_tls_args(tls->ssl, tls->options, call);
    require_server_hostname(tls->ssl, tls->options);
  }
  const int family = check_stream_socket(fd, false, call, "pass a connected SOCK_STREAM socket");
  set_nonblocking(fd);
  if (family != AF_UNIX) set_nodelay(fd);
  return adopt_transport(fd, protocol_transport_kind::socket, factory, call, tls);
}

Transport adopt_protocol_pipe(const protocol_factory& factory, int fd, bool writing) {
  require_running_loop();
  const char* call = writing ? "connect_write_pipe" : "connect_read_pipe";
  struct stat st {};
  if (::fstat(fd, &st) < 0) raise_os_error(errno, std::string(call) + ": fstat");
  if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode) && !S_ISCHR(st.st_mode)) {
    throw ValueError(std::string(call) +
                     "(): Pipe transport is for pipes/sockets only. (a regular file or directory cannot be "
                     "watched for readiness: read it with run_in_executor or a thread)");
  }
  set_nonblocking(fd);
  return adopt_transport(fd, writing ? protocol_transport_kind::write_pipe : protocol_transport_kind::read_pipe,
                         factory, call);
}

namespace {

// serve_with(factory) is the accept hook of a protocol server: each connection gets a protocol
// and a transport; a factory that throws is reported and that connection closed, as asyncio's
// "Error on transport creation for incoming connection".
accept_hook serve_with(protocol_factory factory, const server_config& config) {
  return [factory = std::move(factory), ssl = config.ssl,
          limit = config.ssl_handshake_timeout.value_or(default_ssl_handshake_timeout),
          shutdown_limit = config.ssl_shutdown_timeout.value_or(default_ssl_shutdown_timeout)](
             int fd, const sockaddr* peer, socklen_t peer_len, std::function<void()> lost) {
    owned_fd owned{fd};
    struct lost_unless_handed {
      std::function<void()>* lost;
      ~lost_unless_handed() {
        if (lost != nullptr && *lost) (*lost)();
      }
    } guard{&lost};
    std::shared_ptr<BaseProtocol> protocol = make_protocol(factory, "create_server");
    auto t = std::make_shared<protocol_transport>(get_running_loop(), owned.release(), protocol_transport_kind::socket,
                                                  std::move(protocol));
    t->set_peer(peer, peer_len);
    if (ssl) t->use_tls(*ssl, true, {}, limit, shutdown_limit);
    t->on_lost(std::move(lost));
    guard.lost = nullptr;
    t->start(std::nullopt);
    return [weak = std::weak_ptr<protocol_transport>(t)](bool abort) {
      if (auto t = weak.lock()) abort ? t->abort() : t->close();
    };
  };
}

}  // namespace

Server start_protocol_server(protocol_factory factory, const std::string& host, int port, server_config config) {
  require_running_loop();
  check_server_tls(config, "create_server");
  accept_hook hook = serve_with(std::move(factory), config);
  return start_hooked_server(std::move(hook), host, port, std::move(config));
}

Server start_unix_protocol_server(protocol_factory factory, const std::string& path, server_config config) {
  require_running_loop();
  check_server_tls(config, "create_unix_server");
  accept_hook hook = serve_with(std::move(factory), config);
  return start_hooked_unix_server(std::move(hook), path, std::move(config));
}

Server start_protocol_server(protocol_factory factory, listening_socket sock, server_config config, bool unix_only) {
  require_running_loop();
  check_server_tls(config, unix_only ? "create_unix_server" : "create_server");
  accept_hook hook = serve_with(std::move(factory), config);
  return start_hooked_server(std::move(hook), sock, std::move(config), unix_only);
}

}  // namespace greenlet::asyncio::detail

namespace greenlet::asyncio {

Transport start_tls(Transport transport, std::shared_ptr<BaseProtocol> protocol, const ssl_context& ssl,
                    tls_options tls, bool server_side) {
  if (transport.t_ == nullptr) {
    throw RuntimeError(asyncio_errc::invalid_state,
                       "start_tls(): empty transport (default-made or moved from); pass the connection's transport");
  }
  if (server_side) {
    if (ssl.protocol() != ssl_protocol::tls_server) {
      throw ValueError(
          "start_tls(): the server side of a handshake needs a server context: ssl_context(ssl_protocol::tls_server) "
          "with load_cert_chain()");
    }
    detail::check_handshake_timeout(tls.ssl_handshake_timeout);
    detail::check_shutdown_timeout(tls.ssl_shutdown_timeout);
  } else {
    detail::check_tls_args(ssl, tls, "start_tls");
    detail::require_server_hostname(ssl, tls);
  }
  detail::protocol_transport& t = *transport.t_;
  if (protocol != nullptr) t.set_protocol(std::move(protocol));
  Future<void> ready = get_running_loop().create_future<void>();
  t.upgrade_to_tls(ssl, server_side, server_side ? std::string() : tls.server_hostname.value_or(std::string()),
                   tls.ssl_handshake_timeout, tls.ssl_shutdown_timeout, ready,
                   server_side ? ssl_session{} : tls.session);
  try {
    await(ready);
  } catch (...) {
    t.close();
    throw;
  }
  return transport;
}

}  // namespace greenlet::asyncio
