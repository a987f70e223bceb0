// socket.cpp: the reactor's edge: event_loop::add_reader and friends, the
// one-shot readiness wait every blocking call uses, and the sock_* calls.
// errno becomes an OSError here.
#include "greenlet/io/socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "asyncio/poller.hpp"
#include "asyncio/require_callable.hpp"
#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/task.hpp"
#include "io/resolve.hpp"
#include "io/wait.hpp"

namespace greenlet::asyncio {

namespace {

// in_registering_context(fn) is fn run, each time, in one copy of the
// context current now, as asyncio's Handle for add_reader() does: what one
// call sets, the next sees, and nothing else does.
std::function<void()> in_registering_context(std::function<void()> fn) {
  return detail::context_bound_callback{::greenlet::copy_context(), std::move(fn)};
}

}  // namespace

void event_loop::add_reader(int fd, std::function<void()> fn) {
  detail::require_callable(fn, "add_reader()");
  core_->check_loop_thread();
  core_->check_open();
  core_->io->add_callback(fd, detail::io_direction::read, detail::io_caller::user,
                          in_registering_context(std::move(fn)));
}

void event_loop::add_writer(int fd, std::function<void()> fn) {
  detail::require_callable(fn, "add_writer()");
  core_->check_loop_thread();
  core_->check_open();
  core_->io->add_callback(fd, detail::io_direction::write, detail::io_caller::user,
                          in_registering_context(std::move(fn)));
}

bool event_loop::remove_reader(int fd) noexcept { return core_->io->remove(fd, detail::io_direction::read); }

bool event_loop::remove_writer(int fd) noexcept { return core_->io->remove(fd, detail::io_direction::write); }

namespace detail {

void wait_fd(int fd, io_direction dir, io_caller caller, Future<void>* slot) {
  loop_core& loop = require_running_loop();
  Future<void> ready(new future_value<void>(&loop));
  loop.io->add_waiter(fd, dir, caller, ready.state());
  if (slot != nullptr) *slot = ready;
  // On every way out (woken, cancelled, killed) the registration must go:
  // a stale waiter would block the next task waiting on this fd.
  struct unregister {
    loop_core& loop;
    int fd;
    io_direction dir;
    Future<void>& ready;
    Future<void>* slot;
    ~unregister() {
      loop.io->remove_waiter(fd, dir, ready.state());
      if (slot != nullptr) *slot = Future<void>();
    }
  } guard{loop, fd, dir, ready, slot};
  await(ready);
}

void await_shared(Future<void>& f) {
  if (f.done()) {
    f.result();
    return;
  }
  Future<void> mine(new future_value<void>(f.state()->loop()));
  const std::uint64_t id = f.add_done_callback([mine](Future<void>&) mutable {
    if (!mine.done()) mine.set_result();
  });
  struct unchain {
    Future<void>& f;
    std::uint64_t id;
    ~unchain() { f.remove_done_callback(id); }
  } guard{f, id};
  await(mine);
  f.result();
}

}  // namespace detail

void wait_readable(int fd) { detail::wait_fd(fd, detail::io_direction::read, detail::io_caller::user, nullptr); }
void wait_writable(int fd) { detail::wait_fd(fd, detail::io_direction::write, detail::io_caller::user, nullptr); }

void raise_os_error(int err, const std::string& what) {
  // std::system_error appends ": " and strerror(err) to `what` itself.
  const std::string& message = what;
  switch (err) {
    case ECONNRESET: throw ConnectionResetError(err, message);
    case ECONNREFUSED: throw ConnectionRefusedError(err, message);
    case ECONNABORTED: throw ConnectionAbortedError(err, message);
    case EPIPE:
    case ESHUTDOWN: throw BrokenPipeError(err, message);
    default: throw OSError(err, message);
  }
}

namespace {

// require_nonblocking(fd, call) refuses a blocking socket, as asyncio's debug mode: accept() and
// connect() have no per-call flag like MSG_DONTWAIT, so on it they would block the loop's thread
// (and every task with it) until a peer comes or the handshake ends.
void require_nonblocking(int fd, const char* call) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) raise_os_error(errno, std::string(call) + ": fcntl(F_GETFL)");
  if ((flags & O_NONBLOCK) == 0) {
    throw ValueError(std::string(call) + ": the socket must be non-blocking (see set_nonblocking())");
  }
}

}  // namespace

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) raise_os_error(errno, "fcntl(O_NONBLOCK)");
}

std::size_t sock_recv_into(int fd, void* buf, std::size_t size) {
  for (;;) {
    ssize_t n = ::recv(fd, buf, size, MSG_DONTWAIT);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_readable(fd);
    } else if (errno != EINTR) {
      raise_os_error(errno, "recv");
    }
  }
}

std::size_t sock_recv_into(int fd, std::span<std::byte> buf) { return sock_recv_into(fd, buf.data(), buf.size()); }

std::string sock_recv(int fd, std::size_t n) {
  std::string out(n, '\0');
  out.resize(sock_recv_into(fd, out.data(), n));
  return out;
}

void sock_sendall(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_writable(fd);
    } else if (errno != EINTR) {
      raise_os_error(errno, "send");
    }
  }
}

void sock_sendall(int fd, std::span<const std::byte> data) {
  sock_sendall(fd, std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

std::pair<std::size_t, address> sock_recvfrom_into(int fd, std::span<std::byte> buf) {
  for (;;) {
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    ssize_t n = ::recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n >= 0) {
      address sender =
          from_len > 0 ? detail::format_address(reinterpret_cast<const sockaddr*>(&from), from_len) : address{};
      return {static_cast<std::size_t>(n), std::move(sender)};
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_readable(fd);
    } else if (errno != EINTR) {
      raise_os_error(errno, "recvfrom");
    }
  }
}

std::pair<std::string, address> sock_recvfrom(int fd, std::size_t n) {
  std::string data(n, '\0');
  auto [size, from] = sock_recvfrom_into(fd, std::as_writable_bytes(std::span(data)));
  data.resize(size);
  return {std::move(data), std::move(from)};
}

std::size_t sock_sendto(int fd, std::string_view data, const sockaddr* addr, socklen_t len) {
  for (;;) {
    ssize_t n = ::sendto(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT, addr, len);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_writable(fd);
    } else if (errno != EINTR) {
      const std::string where = addr != nullptr ? detail::host_port(addr, len) : std::string();
      raise_os_error(errno, where.empty() ? std::string("sendto") : "sendto " + where);
    }
  }
}

std::size_t sock_sendto(int fd, std::string_view data, const address& to) {
  const detail::resolved_address a = detail::resolve_for_socket(fd, to, "sock_sendto");
  return sock_sendto(fd, data, reinterpret_cast<const sockaddr*>(&a.addr), a.len);
}

int sock_accept(int fd, sockaddr_storage* peer, socklen_t* peer_len) {
  require_nonblocking(fd, "sock_accept");
  for (;;) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int c = ::accept4(fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
      if (peer != nullptr) *peer = addr;
      if (peer_len != nullptr) *peer_len = len;
      return c;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_readable(fd);
    } else if (errno != EINTR && errno != ECONNABORTED) {
      raise_os_error(errno, "accept");
    }
  }
}

namespace {

// raise_connect_error(err, addr) names the address that refused (or could
// not be reached), as Python's "Connect call failed ('127.0.0.1', 1)":
// "connect to 127.0.0.1:1: Connection refused".
[[noreturn]] void raise_connect_error(int err, const sockaddr* addr, socklen_t len) {
  const std::string where = addr != nullptr ? detail::host_port(addr, len) : std::string();
  raise_os_error(err, where.empty() ? std::string("connect") : "connect to " + where);
}

}  // namespace

void sock_connect(int fd, const sockaddr* addr, socklen_t len) {
  require_nonblocking(fd, "sock_connect");
  if (::connect(fd, addr, len) == 0) return;
  if (errno != EINPROGRESS && errno != EINTR) raise_connect_error(errno, addr, len);
  wait_writable(fd);
  int err = 0;
  socklen_t err_len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) < 0) raise_os_error(errno, "getsockopt(SO_ERROR)");
  if (err != 0) raise_connect_error(err, addr, len);
}

void sock_connect(int fd, const std::string& host, int port) {
  require_nonblocking(fd, "sock_connect");  // before a lookup that may take long
  const int family = detail::socket_family(fd);
  if (family != AF_INET && family != AF_INET6) {
    throw OSError(EAFNOSUPPORT, "sock_connect(" + host + "): not an AF_INET/AF_INET6 socket");
  }
  auto addrs = detail::resolve_for_family(host, port, family, false, detail::lookup_socktype(fd));
  const auto& a = addrs.front();
  sock_connect(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len);
}

}  // namespace greenlet::asyncio
