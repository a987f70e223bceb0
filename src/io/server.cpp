// server.cpp: start_server() and Server. One accept task per server; each
// connection runs the handler in its own task.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <list>

#include "asyncio/poller.hpp"
#include "greenlet/asyncio/tasks.hpp"
#include "greenlet/io/socket.hpp"
#include "io/resolve.hpp"
#include "io/stream_transport.hpp"
#include "io/wait.hpp"

namespace greenlet::asyncio {

namespace detail {

struct server_state : std::enable_shared_from_this<server_state> {
  int fd = -1;
  int port = 0;
  bool tcp = true;
  client_connected handler;
  server_config config;
  // The acceptor task holds this state (so a dropped Server keeps serving);
  // the state holds no handle to the task, only these plain futures, so
  // there is no cycle.
  Future<void> accept_waiter;  // while the acceptor waits for a connection
  Future<void> acceptor_done;
  std::list<Task<void>> clients;  // running handler tasks
  Future<void> closed;            // done once close() ran

  int accept_one() {
    for (;;) {
      if (fd < 0) return -1;
      int c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c >= 0) return c;
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        wait_fd(fd, io_direction::read, &accept_waiter);
      } else if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of descriptors: say so, pause accepting, keep serving the
        // connections already open (asyncio's accept_retry_delay).
        char delay[32];
        std::snprintf(delay, sizeof delay, "%g", config.accept_retry_delay);
        const bool fds = err == EMFILE || err == ENFILE;
        get_running_loop().call_exception_handler(
            {std::string("socket.accept() out of system resource (") + std::strerror(err) +
                 "); pausing accepting for " + delay + "s, connections already open are still served" +
                 (fds ? "; close descriptors or raise the limit (ulimit -n, RLIMIT_NOFILE)" : ""),
             std::make_exception_ptr(OSError(err, std::string("accept: ") + std::strerror(err))),
             tcp ? "Server on port " + std::to_string(port) : std::string("Unix server")});
        sleep(config.accept_retry_delay);
      } else if (err != EINTR && err != ECONNABORTED && err != EPROTO) {
        raise_os_error(err, "accept");
      }
    }
  }

  void accept_loop() {
    std::weak_ptr<server_state> self = weak_from_this();
    for (;;) {
      int c = accept_one();
      if (c < 0) return;
      if (tcp) {
        int one = 1;
        ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      auto streams = make_streams(c, config.stream);
      auto task = create_task([h = handler, r = std::move(streams.first), w = std::move(streams.second)] { h(r, w); });
      auto it = clients.insert(clients.end(), task);
      task.add_done_callback([self, it](Future<void>&) {
        if (auto s = self.lock()) s->clients.erase(it);
      });
    }
  }

  void close() {
    if (fd < 0) return;
    // Unregister before closing: the acceptor's own cleanup runs later and
    // must not meet a new file that reuses the number.
    loop_core& loop = require_running_loop();
    if (!accept_waiter.empty()) {
      loop.io->remove_waiter(fd, io_direction::read, accept_waiter.state());
      if (!accept_waiter.done()) accept_waiter.set_result();
    }
    ::close(fd);
    fd = -1;
    if (!closed.done()) closed.set_result();
  }
};

namespace {

int listen_on(int family, const sockaddr* addr, socklen_t len, int backlog) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) raise_os_error(errno, "socket");
  if (family != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  if (::bind(fd, addr, len) < 0 || ::listen(fd, backlog) < 0) {
    int err = errno;
    ::close(fd);
    raise_os_error(err, "bind/listen");
  }
  return fd;
}

Server start(std::shared_ptr<server_state> s) {
  event_loop& loop = get_running_loop();
  s->closed = loop.create_future<void>();
  // The acceptor holds the state: a Server handle dropped while serving
  // keeps serving, as asyncio's.
  s->acceptor_done = loop.create_future<void>();
  loop.create_task([s] {
    struct finished {
      server_state& s;
      ~finished() {
        if (!s.acceptor_done.done()) s.acceptor_done.set_result();
      }
    } guard{*s};
    s->accept_loop();
  });
  return Server(s);
}

}  // namespace

}  // namespace detail

Server start_server(client_connected handler, const std::string& host, int port, server_config config) {
  auto addrs = detail::resolve(host, port, true);
  const auto& a = addrs.front();
  auto s = std::make_shared<detail::server_state>();
  s->handler = std::move(handler);
  s->config = config;
  s->fd = detail::listen_on(a.family, reinterpret_cast<const sockaddr*>(&a.addr), a.len, config.backlog);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(s->fd, reinterpret_cast<sockaddr*>(&bound), &len);
  s->port = detail::format_address(reinterpret_cast<sockaddr*>(&bound), len).port;
  return detail::start(std::move(s));
}

Server start_unix_server(client_connected handler, const std::string& path, server_config config) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw OSError(ENAMETOOLONG, "start_unix_server(" + path + ")");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ::unlink(path.c_str());
  auto s = std::make_shared<detail::server_state>();
  s->handler = std::move(handler);
  s->config = config;
  s->tcp = false;
  s->fd = detail::listen_on(AF_UNIX, reinterpret_cast<const sockaddr*>(&addr), sizeof addr, config.backlog);
  return detail::start(std::move(s));
}

int Server::port() const noexcept { return s_->port; }
int Server::fileno() const noexcept { return s_->fd; }
bool Server::is_serving() const noexcept { return s_->fd >= 0; }
void Server::close() { s_->close(); }

void Server::wait_closed() {
  Future<void> closed = s_->closed;
  detail::await_shared(closed);
  Future<void> acceptor_done = s_->acceptor_done;
  detail::await_shared(acceptor_done);
  while (!s_->clients.empty()) {
    std::vector<detail::future_state*> states;
    for (auto& t : s_->clients) states.push_back(t.state());
    detail::wait_until(states, -1.0, ALL_COMPLETED);
    // Done callbacks erase the finished tasks on a later turn.
    sleep(0);
  }
}

void Server::serve_forever() {
  try {
    Future<void> closed = s_->closed;
    detail::await_shared(closed);
  } catch (const CancelledError&) {
    s_->close();
    throw;
  }
}

}  // namespace greenlet::asyncio
