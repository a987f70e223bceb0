// io/address.hpp: a socket address as Python writes it, (host, port).
#pragma once

#include <string>

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// address is a socket's address as Python's (host, port) tuple; for
// Unix-domain sockets host is the path and port is 0.
struct address {
  // host is the IP address in text form, or the socket's path for a Unix-domain socket.
  std::string host;
  // port is the TCP or UDP port, 0 for a Unix-domain socket.
  int port = 0;

  // Two addresses are equal when host and port are (the text as given: "::1" and "0:0:0:0:0:0:0:1"
  // differ). Throws nothing.
  friend bool operator==(const address&, const address&) = default;
};

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
