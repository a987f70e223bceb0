// resolve.hpp: getaddrinfo from a task.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>
#include <vector>

#include "greenlet/io/streams.hpp"

namespace greenlet::asyncio::detail {

struct resolved_address {
  int family = 0;
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// resolve(host, port, passive, family, socktype) returns host's addresses (of family only, passed
// to getaddrinfo as a hint, unless AF_UNSPEC). Numeric hosts resolve inline (AI_NUMERICHOST);
// names through the loop's resolver (set_resolver()) if it has one, else with getaddrinfo on the
// loop's default executor while the task awaits (the loop keeps running). Throws
// gaierror naming the host, getaddrinfo's reason and what to check;
// CancelledError (a lookup already running finishes on its thread);
// std::out_of_range for a port outside 0-65535 and ValueError for a host
// holding a NUL, before any lookup (Python's OverflowError and ValueError).
// socktype, SOCK_STREAM or SOCK_DGRAM, is the hint for getaddrinfo or the loop's resolver.
std::vector<resolved_address> resolve(const std::string& host, int port, bool passive, int family = AF_UNSPEC,
                                      int socktype = SOCK_STREAM);
// resolve_for_family(host, port, family, passive, socktype) is resolve() keeping only the
// addresses of family (a socket's); gaierror if none.
std::vector<resolved_address> resolve_for_family(const std::string& host, int port, int family, bool passive = false,
                                                 int socktype = SOCK_STREAM);
// family_name(family) is "AF_INET", "AF_INET6", "AF_UNIX" or "family N", for messages.
std::string family_name(int family);

// numeric_address(a, family) is a's socket address if a.host is a numeric
// address of family (AF_INET or AF_INET6; AF_UNSPEC takes either), without
// any lookup; nullopt for a name or another family's address. Throws
// std::out_of_range for a port outside 0-65535, ValueError for a NUL.
std::optional<resolved_address> numeric_address(const address& a, int family);
// apply_ipv6_fields(out, a) gives `out`, if IPv6 (a's host looked up), a's flowinfo, and its
// scope id unless zero: a zone written in the host ("fe80::1%eth0") came from getaddrinfo().
void apply_ipv6_fields(resolved_address& out, const address& a) noexcept;
// unix_address(path, call) is path as an AF_UNIX socket address; OSError
// (ENAMETOOLONG, naming call and path) if it does not fit sun_path.
resolved_address unix_address(const std::string& path, const char* call);
// remove_stale_socket(path) deletes path if it is a socket (a server's
// leftover, as asyncio does before binding); any other file is left alone,
// and bind() then fails with EADDRINUSE.
void remove_stale_socket(const std::string& path) noexcept;

// socket_family(fd) is fd's address family (SO_DOMAIN). Throws OSError.
int socket_family(int fd);
// lookup_socktype(fd) is the type hint to look up addresses for fd: SOCK_DGRAM for a datagram
// socket, else SOCK_STREAM (getaddrinfo() refuses some other types). Throws OSError.
int lookup_socktype(int fd);
// resolve_for_socket(fd, a, call) is a as a socket address for fd's family:
// a path for an AF_UNIX socket, else resolve_for_family()'s first address
// (a name looked up for fd's type). Throws as resolve_for_family(),
// OSError(EAFNOSUPPORT) for another family.
resolved_address resolve_for_socket(int fd, const address& a, const char* call);

// format_address(addr) is (host, port) of an IPv4/IPv6/Unix address.
address format_address(const sockaddr* addr, socklen_t len);
// host_port(addr) is addr for error messages: "127.0.0.1:80", "[::1]:80",
// a Unix socket's path ("" for an unnamed or abstract one).
std::string host_port(const sockaddr* addr, socklen_t len);

}  // namespace greenlet::asyncio::detail
