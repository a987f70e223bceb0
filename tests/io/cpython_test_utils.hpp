// cpython_test_utils.hpp: the helpers of CPython's test_asyncio/utils.py and socket_helper that the
// test_events.py ports share (tests/io/cpython_events_*_port_test.cpp): run_until(), run_briefly(),
// socket pairs, blocking sockets, free ports, Unix socket paths, pipes, http_server()
// (run_test_server()).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

namespace cpython_test_utils {

namespace asyncio = greenlet::asyncio;

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// run_until(loop, pred) is test_utils.run_until(): runs the loop a millisecond at a time until
// pred() holds; fails after `timeout` seconds.
template <class Pred>
inline void run_until(asyncio::event_loop& loop, Pred pred, double timeout = 30) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("run_until(): timed out");
    loop.run_until_complete([] { asyncio::sleep(0.001); });
  }
}

// run_briefly(loop): test_utils.run_briefly().
inline void run_briefly(asyncio::event_loop& loop) {
  loop.call_soon([&loop] { loop.stop(); });
  loop.run_forever();
}

struct socket_pair {
  int r = -1;
  int w = -1;
  socket_pair() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw std::runtime_error("socketpair");
    r = sv[0];
    w = sv[1];
  }
  socket_pair(const socket_pair&) = delete;
  socket_pair& operator=(const socket_pair&) = delete;
  ~socket_pair() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
};

inline sockaddr_in inet_address(const char* host, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host, &a.sin_addr);
  return a;
}

// sockname(fd) is socket.getsockname(): (host, port), or for IPv6 (host, port, flowinfo, scope_id).
inline asyncio::address sockname(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) throw std::runtime_error("getsockname");
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    return {host, ntohs(a->sin_port)};
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
  ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
  return {host, ntohs(a->sin6_port), ntohl(a->sin6_flowinfo), a->sin6_scope_id};
}

// blocking_connect(family, host, port) is `client = socket.socket(family); client.connect(...)`:
// the socket, or -1 with errno set.
inline int blocking_connect(int family, const char* host, int port) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int rc;
  if (family == AF_INET) {
    sockaddr_in a = inet_address(host, port);
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET6, host, &a.sin6_addr);
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

inline int unix_connect(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// create_server_socket(host, port) is socket.create_server((host, port)): bound, listening,
// SO_REUSEADDR, blocking.
inline int create_server_socket(const char* host, int port, int backlog = 128) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = inet_address(host, port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, backlog) != 0) {
    ::close(fd);
    throw std::runtime_error("create_server_socket");
  }
  return fd;
}

// find_unused_port() is socket_helper.find_unused_port(): a port nothing was bound to a moment ago.
inline int find_unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = inet_address("127.0.0.1", 0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  const int port = sockname(fd).port;
  ::close(fd);
  return port;
}

// unix_socket_path() is test_utils.gen_unix_socket_path(): a fresh path in a fresh directory.
struct unix_socket_path {
  std::string dir;
  std::string path;
  unix_socket_path() {
    char tmpl[] = "/tmp/cpython_port_XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
    dir = tmpl;
    path = dir + "/sock";
  }
  ~unix_socket_path() {
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
};

struct os_pipe {
  int r = -1, w = -1;
  os_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    r = fds[0];
    w = fds[1];
  }
  os_pipe(const os_pipe&) = delete;
  os_pipe& operator=(const os_pipe&) = delete;
  ~os_pipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
};

// answer_http_request(reader, writer) is run_test_server's handler: reads an HTTP/1.0 request,
// answers "Test message" and closes; a connection that fails meanwhile is dropped.
inline void answer_http_request(asyncio::StreamReader reader, asyncio::StreamWriter writer) {
  try {
    reader.readuntil("\r\n\r\n");
    writer.write("HTTP/1.0 200 OK\r\nContent-type: text/plain\r\n\r\nTest message");
    writer.close();
    writer.wait_closed();
  } catch (const std::exception&) {
  }
}

// http_server() is test_utils.run_test_server(): answers an HTTP/1.0 request and closes.
inline asyncio::Server http_server(std::optional<std::string> unix_path = std::nullopt) {
  if (unix_path) return asyncio::start_unix_server(answer_http_request, *unix_path);
  return asyncio::start_server(answer_http_request, "127.0.0.1", 0);
}

}  // namespace cpython_test_utils
