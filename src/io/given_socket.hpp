// given_socket.hpp: checks of a socket a caller hands over (asyncio's sock= arguments of
// start_server() and open_connection()), shared by the server and the client calls.
#pragma once

#include <string>

namespace greenlet::asyncio::detail {

// check_stream_socket(fd, unix_only, call, needs) returns fd's address family once it is a
// SOCK_STREAM socket (an AF_UNIX one if unix_only). Throws ValueError for anything else, as
// asyncio's "A Stream Socket was expected, got <socket>" ("A UNIX Domain Stream Socket ..."), or
// "fd N is not a socket", each message ending with `needs` (what to pass); OSError (EBADF...).
// It changes nothing about fd.
int check_stream_socket(int fd, bool unix_only, const char* call, const std::string& needs);

}  // namespace greenlet::asyncio::detail
