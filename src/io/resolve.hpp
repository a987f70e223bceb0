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

// resolve(host, port) returns host's TCP addresses. Numeric hosts resolve
// inline; names on a helper thread while the task awaits (the loop keeps
// running). Throws gaierror with getaddrinfo's message.
std::vector<resolved_address> resolve(const std::string& host, int port, bool passive);

// format_address(addr) is (host, port) of an IPv4/IPv6/Unix address.
address format_address(const sockaddr* addr, socklen_t len);

}  // namespace greenlet::asyncio::detail
