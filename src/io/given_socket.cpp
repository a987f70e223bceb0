// given_socket.cpp: check_stream_socket(), for start_server()'s listening_socket and
// open_connection()'s connected_socket.
#include "io/given_socket.hpp"

#include <sys/socket.h>

#include <cerrno>

#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/io/errors.hpp"
#include "io/resolve.hpp"

namespace greenlet::asyncio::detail {

namespace {

std::string type_name(int type) {
  switch (type) {
    case SOCK_STREAM: return "SOCK_STREAM";
    case SOCK_DGRAM: return "SOCK_DGRAM";
    case SOCK_SEQPACKET: return "SOCK_SEQPACKET";
    case SOCK_RAW: return "SOCK_RAW";
    default: return "type " + std::to_string(type);
  }
}

}  // namespace

int check_stream_socket(int fd, bool unix_only, const char* call, const std::string& needs) {
  const std::string name = "fd " + std::to_string(fd);
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
    const int err = errno;
    if (err == ENOTSOCK) throw ValueError(std::string(call) + "(): " + name + " is not a socket: " + needs);
    raise_os_error(err, std::string(call) + "(): getsockopt(" + name + ", SO_TYPE)");
  }
  const int family = socket_family(fd);
  if (type != SOCK_STREAM || (unix_only && family != AF_UNIX)) {
    throw ValueError(std::string(call) + "(): A " + (unix_only ? "UNIX Domain " : "") +
                     "Stream Socket was expected, got " + name + " (" + family_name(family) + ", " + type_name(type) +
                     "): " + needs);
  }
  return family;
}

}  // namespace greenlet::asyncio::detail
