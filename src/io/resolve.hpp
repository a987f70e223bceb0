// resolve.hpp: getaddrinfo from a task.
#pragma once

#include <sys/socket.h>

#include <string>
#include <vector>

#include "greenlet/io/streams.hpp"

namespace greenlet::asyncio::detail {

struct resolved_address {
  int family = 0;
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// resolve(host, port, passive) returns host's TCP addresses. Numeric hosts
// resolve inline (AI_NUMERICHOST); names with getaddrinfo on the loop's
// default executor while the task awaits (the loop keeps running). Throws
// gaierror naming the host, getaddrinfo's reason and what to check;
// CancelledError (a lookup already running finishes on its thread);
// std::out_of_range for a port outside 0-65535 and ValueError for a host
// holding a NUL, before any lookup (Python's OverflowError and ValueError).
std::vector<resolved_address> resolve(const std::string& host, int port, bool passive);
// resolve_for_family(host, port, family) is resolve() keeping only the
// addresses of family (a socket's); gaierror if none.
std::vector<resolved_address> resolve_for_family(const std::string& host, int port, int family);

// format_address(addr) is (host, port) of an IPv4/IPv6/Unix address.
address format_address(const sockaddr* addr, socklen_t len);
// host_port(addr) is addr for error messages: "127.0.0.1:80", "[::1]:80",
// a Unix socket's path ("" for an unnamed or abstract one).
std::string host_port(const sockaddr* addr, socklen_t len);

}  // namespace greenlet::asyncio::detail
