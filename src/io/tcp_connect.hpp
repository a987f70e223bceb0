// tcp_connect.hpp: connecting a TCP client socket to one of a host's addresses, as asyncio's
// create_connection() does before it makes a transport: one address after another, or a
// Happy Eyeballs race (RFC 8305) of staggered attempts.
#pragma once

#include <sys/socket.h>

#include <string>
#include <vector>

#include "greenlet/io/streams.hpp"
#include "io/resolve.hpp"

namespace greenlet::asyncio::detail {

// connect_socket(family, addr, len) is a connected non-blocking socket.
int connect_socket(int family, const sockaddr* addr, socklen_t len);

// connect_tcp(host, port, options, peer) is a non-blocking socket connected to one of host's
// addresses (from options.resolver for a name if set, else getaddrinfo()), chosen as
// connect_options says (see there); peer is the address it connected to.
// Checks the options before any lookup. Throws what open_connection() documents.
int connect_tcp(const std::string& host, int port, const connect_options& options, resolved_address& peer);

}  // namespace greenlet::asyncio::detail
