// tcp_connect.hpp: connecting a TCP client socket to one of a host's addresses, as asyncio's
// create_connection() does before it makes a transport: one address after another, or a
// Happy Eyeballs race (RFC 8305) of staggered attempts.
#pragma once

#include <sys/socket.h>

#include <cstddef>
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

// connect_first(addrs, locals, options, peer) is connect_tcp() once the addresses are known:
// addrs in the order to try (interleaved already), each socket bound first to one of *locals if
// locals is not null. Throws the last address's error, or with options.all_errors an
// ExceptionGroup of all of them; CancelledError once every attempt it started is over.
int connect_first(const std::vector<resolved_address>& addrs, const std::vector<resolved_address>* locals,
                  const connect_options& options, resolved_address& peer);

// interleave_by_family(addrs, first_family_count) is asyncio's _interleave_addrinfos():
// first_family_count addresses of the family addrs starts with, then one address of each family
// in turn, families in the order they first appear. 0 returns addrs as they are.
std::vector<resolved_address> interleave_by_family(const std::vector<resolved_address>& addrs,
                                                   std::size_t first_family_count);

}  // namespace greenlet::asyncio::detail
