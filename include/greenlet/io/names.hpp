// io/names.hpp: asyncio's loop.getaddrinfo() and loop.getnameinfo(): name
// lookups that let the other tasks run. A numeric address is answered
// inline; a name goes to getaddrinfo()/getnameinfo() on the loop's default
// executor (they may block for seconds on DNS) while the calling task awaits.
//
//   for (const auto& a : asyncio::getaddrinfo("localhost", 80, {.type = SOCK_STREAM}))
//     connect_to(a.family, a.addr);                       // a.addr: address{"127.0.0.1", 80}, ...
//   auto [host, service] = asyncio::getnameinfo({"127.0.0.1", 22});  // {"localhost", "ssh"}
#pragma once

#include <sys/socket.h>

#include <string>
#include <utility>
#include <vector>

#include "greenlet/io/address.hpp"
#include "greenlet/io/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// addrinfo_entry is one answer of getaddrinfo(), Python's 5-tuple
// (family, type, proto, canonname, sockaddr).
struct addrinfo_entry {
  // family: AF_INET or AF_INET6.
  int family = 0;
  // type: SOCK_STREAM, SOCK_DGRAM or SOCK_RAW.
  int type = 0;
  // proto: IPPROTO_TCP, IPPROTO_UDP, ...
  int proto = 0;
  // canonname: the canonical name, with AI_CANONNAME in the first answer only; else empty.
  std::string canonname;
  // addr: the address and port (IPv6 scope and flow information are not kept).
  address addr;
};

// addrinfo_hints is getaddrinfo()'s keyword arguments, as Python's.
struct addrinfo_hints {
  // family: AF_INET, AF_INET6, or AF_UNSPEC for both.
  int family = AF_UNSPEC;
  // type: SOCK_STREAM, SOCK_DGRAM, or 0 for every type.
  int type = 0;
  // proto: a protocol number, or 0 for any.
  int proto = 0;
  // flags: AI_* flags (AI_PASSIVE, AI_CANONNAME, AI_NUMERICHOST, ...).
  int flags = 0;
};

// getaddrinfo(host, port, hints) is `await loop.getaddrinfo(host, port,
// family=, type=, proto=, flags=)`: the addresses host resolves to, in
// getaddrinfo()'s order. An empty host is Python's None (with AI_PASSIVE:
// the wildcard address, else loopback). Throws gaierror (the message names
// the host, the reason and what to check), std::out_of_range for a port
// outside 0-65535, ValueError for a NUL in host, CancelledError (a lookup
// already running finishes on its thread); RuntimeError outside a task.
std::vector<addrinfo_entry> getaddrinfo(const std::string& host, int port, addrinfo_hints hints = {});
// getaddrinfo(host, service, hints) takes the port as a service name ("http") or number text. Throws as above.
std::vector<addrinfo_entry> getaddrinfo(const std::string& host, const std::string& service, addrinfo_hints hints = {});

// getnameinfo(addr, flags) is `await loop.getnameinfo((host, port), flags)`:
// the host name and service name of a numeric address (NI_NUMERICHOST,
// NI_NUMERICSERV, NI_NAMEREQD, NI_DGRAM as flags). Throws gaierror (NI_NAMEREQD
// and no name), ValueError if addr.host is not a numeric address,
// std::out_of_range for the port, CancelledError; RuntimeError outside a task.
std::pair<std::string, std::string> getnameinfo(const address& addr, int flags = 0);

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
