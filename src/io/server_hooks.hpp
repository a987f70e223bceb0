// server_hooks.hpp: servers whose accepted sockets go to a function instead
// of a handler task each: the protocol servers' (create_server(), see
// protocol_connect.cpp) listening and accepting are start_server()'s.
#pragma once

#include <sys/socket.h>

#include <functional>
#include <string>

#include "greenlet/io/streams.hpp"

namespace greenlet::asyncio::detail {

// connection_closer(abort) closes one accepted connection: close(), or abort() if abort.
using connection_closer = std::function<void(bool abort)>;
// accept_hook(fd, peer, peer_len, lost) takes an accepted socket (owned from then on, even if
// it throws) and returns the connection's closer (Server::close_clients()). It must call lost()
// once, when that connection is lost (Server::wait_closed() waits for every connection's), and
// not before it returns unless it throws. What it throws goes to the loop's exception handler.
using accept_hook =
    std::function<connection_closer(int fd, const sockaddr* peer, socklen_t peer_len, std::function<void()> lost)>;

// check_server_tls(config, call) refuses a TLS configuration the handshakes would refuse later:
// a client context (ValueError), a handshake timeout <= 0.
void check_server_tls(const server_config& config, const char* call);

// start_hooked_server(hook, host, port, config) listens as start_server() does.
Server start_hooked_server(accept_hook hook, const std::string& host, int port, server_config config);
// start_hooked_unix_server(hook, path, config) listens as start_unix_server() does.
Server start_hooked_unix_server(accept_hook hook, const std::string& path, server_config config);
// start_hooked_server(hook, sock, config, unix_only) serves sock as start_server(handler,
// listening_socket) does (start_unix_server()'s if unix_only).
Server start_hooked_server(accept_hook hook, listening_socket sock, server_config config, bool unix_only);

}  // namespace greenlet::asyncio::detail
