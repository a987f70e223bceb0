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

// connect_transport(fd, kind, factory, call) makes the protocol and its transport on fd (owned),
// and returns once connection_made() has run, as asyncio's waiter.
Transport connect_transport(owned_fd& fd, protocol_transport_kind kind, const protocol_factory& factory,
                            const char* call) {
  event_loop& loop = get_running_loop();
  std::shared_ptr<BaseProtocol> protocol = make_protocol(factory, call);
  auto t = std::make_shared<protocol_transport>(loop, fd.release(), kind, std::move(protocol));
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

void set_nodelay(int fd) noexcept {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

Transport open_protocol_connection(const protocol_factory& factory, const std::string& host, int port,
                                   const local_addr* local) {
  require_running_loop();
  resolved_address peer;
  owned_fd fd{connect_tcp(host, port, local, peer)};
  return connect_transport(fd, protocol_transport_kind::socket, factory, "create_connection");
}

Transport open_unix_protocol_connection(const protocol_factory& factory, const std::string& path) {
  require_running_loop();
  const resolved_address addr = unix_address(path, "create_unix_connection");
  owned_fd fd{connect_socket(AF_UNIX, reinterpret_cast<const sockaddr*>(&addr.addr), addr.len)};
  return connect_transport(fd, protocol_transport_kind::socket, factory, "create_unix_connection");
}

Transport adopt_protocol_socket(const protocol_factory& factory, int fd, const char* call) {
  require_running_loop();
  const int family = check_stream_socket(fd, false, call, "pass a connected SOCK_STREAM socket");
  set_nonblocking(fd);
  if (family != AF_UNIX) set_nodelay(fd);
  owned_fd owned{fd};
  return connect_transport(owned, protocol_transport_kind::socket, factory, call);
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
  owned_fd owned{fd};
  return connect_transport(owned, writing ? protocol_transport_kind::write_pipe : protocol_transport_kind::read_pipe,
                           factory, call);
}

namespace {

void check_protocol_server_config(const server_config& config, const char* call) {
  if (config.ssl) {
    throw ValueError(std::string(call) +
                     "(): TLS is not supported for protocol servers yet; use start_server() with "
                     "server_config{.ssl = ...} (streams) for a TLS server");
  }
}

// serve_with(factory) is the accept hook of a protocol server: each connection gets a protocol
// and a transport; a factory that throws is reported and that connection closed, as asyncio's
// "Error on transport creation for incoming connection".
accept_hook serve_with(protocol_factory factory) {
  return [factory = std::move(factory)](int fd, const sockaddr* peer, socklen_t peer_len, std::function<void()> lost) {
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
    t->on_lost(std::move(lost));
    guard.lost = nullptr;
    t->start(std::nullopt);
  };
}

}  // namespace

Server start_protocol_server(protocol_factory factory, const std::string& host, int port, server_config config) {
  require_running_loop();
  check_protocol_server_config(config, "create_server");
  return start_hooked_server(serve_with(std::move(factory)), host, port, std::move(config));
}

Server start_unix_protocol_server(protocol_factory factory, const std::string& path, server_config config) {
  require_running_loop();
  check_protocol_server_config(config, "create_unix_server");
  return start_hooked_unix_server(serve_with(std::move(factory)), path, std::move(config));
}

Server start_protocol_server(protocol_factory factory, listening_socket sock, server_config config, bool unix_only) {
  require_running_loop();
  check_protocol_server_config(config, unix_only ? "create_unix_server" : "create_server");
  return start_hooked_server(serve_with(std::move(factory)), sock, std::move(config), unix_only);
}

}  // namespace greenlet::asyncio::detail
