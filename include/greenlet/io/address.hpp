// io/address.hpp: a socket address as Python writes it, (host, port), or
// (host, port, flowinfo, scope_id) for IPv6.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// address is a socket's address as Python's (host, port) tuple, or its IPv6
// (host, port, flowinfo, scope_id); for Unix-domain sockets host is the path
// and port is 0.
struct address {
  // host is the IP address in text form, or the socket's path for a Unix-domain socket.
  std::string host;
  // port is the TCP or UDP port, 0 for a Unix-domain socket.
  int port = 0;
  // IPv6 only, the rest of Python's 4-tuple: the flow label (sin6_flowinfo, host byte order) and the
  // scope id, the index of the interface a link-local address belongs to (sin6_scope_id;
  // if_nametoindex("eth0")). An address a socket received or reports carries them, so a reply to a
  // link-local peer (fe80::...) goes out on the interface it came in on; without its scope id the
  // kernel has no route to such a peer on another host, nor binds to such an address. Zero
  // otherwise. A host written "fe80::1%eth0" names its scope in the text instead, as getaddrinfo()
  // reads it.
  std::uint32_t flowinfo = 0;
  std::uint32_t scope_id = 0;

  // Two addresses are equal when all four fields are (the text as given: "::1" and "0:0:0:0:0:0:0:1"
  // differ). Throws nothing.
  friend bool operator==(const address&, const address&) = default;
};

// `auto [host, port] = addr;` unpacks host and port, as Python's `host, port = addr` does, for an
// IPv6 address too (flowinfo and scope_id are read by name): address is a pair to structured
// bindings (std::tuple_size below).
template <std::size_t I>
requires(I < 2) auto& get(address& a) noexcept {
  if constexpr (I == 0) {
    return a.host;
  } else {
    return a.port;
  }
}
template <std::size_t I>
requires(I < 2) const auto& get(const address& a) noexcept {
  if constexpr (I == 0) {
    return a.host;
  } else {
    return a.port;
  }
}
template <std::size_t I>
requires(I < 2) auto&& get(address&& a) noexcept { return std::move(get<I>(a)); }

}  // namespace greenlet::asyncio

template <>
struct std::tuple_size<greenlet::asyncio::address> : std::integral_constant<std::size_t, 2> {};
template <std::size_t I>
struct std::tuple_element<I, greenlet::asyncio::address> {
  using type = std::conditional_t<I == 0, std::string, int>;
};

#pragma GCC visibility pop
