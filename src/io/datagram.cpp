// datagram.cpp: create_datagram_endpoint() and its transport, following
// asyncio's _SelectorDatagramTransport: one datagram read per readiness
// callback, sends tried at once and queued (in order) only when the socket's
// buffer is full, errors of single datagrams handed to error_received().
#include "greenlet/io/datagram.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/future.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/task.hpp"
#include "greenlet/io/socket.hpp"
#include "io/owned_fd.hpp"
#include "io/resolve.hpp"

namespace greenlet::asyncio {

void DatagramProtocol::connection_made(DatagramTransport&) {}
void DatagramProtocol::datagram_received(std::string, address) {}
void DatagramProtocol::error_received(const OSError&) {}
void DatagramProtocol::connection_lost(std::exception_ptr) {}
void DatagramProtocol::pause_writing() {}
void DatagramProtocol::resume_writing() {}

namespace detail {

namespace {

// max_datagram: the most one read takes (asyncio's max_size); a longer
// datagram (only Unix-domain ones can be) is cut, as recvfrom() cuts it.
constexpr std::size_t max_datagram = 256 * 1024;

address local_address(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) < 0) return {};
  return format_address(reinterpret_cast<const sockaddr*>(&a), len);
}

std::optional<resolved_address> peer_address(int fd) {
  resolved_address a;
  a.len = sizeof a.addr;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a.addr), &a.len) < 0) return std::nullopt;
  a.family = a.addr.ss_family;
  return a;
}

bool same_address(const resolved_address& a, const resolved_address& b) noexcept {
  return a.len == b.len && std::memcmp(&a.addr, &b.addr, a.len) == 0;
}

}  // namespace

class datagram_transport : public std::enable_shared_from_this<datagram_transport> {
 public:
  datagram_transport(event_loop& loop, int fd, std::shared_ptr<DatagramProtocol> protocol,
                     std::optional<resolved_address> peer, bool connected)
      : loop_(loop),
        fd_(fd),
        family_(socket_family(fd)),
        protocol_(std::move(protocol)),
        peer_(std::move(peer)),
        connected_(connected),
        sockname_(local_address(fd)) {
    if (peer_) peername_ = format_address(reinterpret_cast<const sockaddr*>(&peer_->addr), peer_->len);
  }
  datagram_transport(const datagram_transport&) = delete;
  datagram_transport& operator=(const datagram_transport&) = delete;
  ~datagram_transport() { close_fd(); }

  // start(ready) is asyncio's transport constructor: connection_made(),
  // then reading, then `ready` resolved, each as a callback in that order.
  void start(Future<void> ready) {
    // Closing the loop with the endpoint open drops it without callbacks:
    // the protocol, which may hold a handle to this transport, is let go.
    std::weak_ptr<datagram_transport> weak = weak_from_this();
    close_hook_ = loop_.core()->add_close_hook([weak] {
      if (auto t = weak.lock()) t->drop_at_loop_close();
    });
    auto self = shared_from_this();
    loop_.call_soon([self] {
      if (self->protocol_ == nullptr) return;
      DatagramTransport handle(self);
      auto protocol = self->protocol_;
      protocol->connection_made(handle);
    });
    loop_.call_soon([self] {
      if (!self->closing_) self->loop_.add_reader(self->fd_, [self] { self->on_readable(); });
    });
    loop_.call_soon([ready]() mutable {
      if (!ready.done()) ready.set_result();
    });
  }

  void require_open() const {
    if (closing_) {
      throw RuntimeError(asyncio_errc::invalid_state,
                         "DatagramTransport.sendto(): the endpoint is closing (close() or abort() was called); "
                         "create a new endpoint to send more");
    }
  }

  void sendto(std::string_view data, const resolved_address* to) {
    require_open();
    if (to == nullptr && !peer_) {
      throw ValueError(
          "DatagramTransport.sendto(): no address: pass one, or create the endpoint with remote_addr to send "
          "without one");
    }
    if (to != nullptr && peer_ && !same_address(*to, *peer_)) {
      throw ValueError("DatagramTransport.sendto(): invalid address: must be the endpoint's remote_addr " +
                       host_port(reinterpret_cast<const sockaddr*>(&peer_->addr), peer_->len) + " or none");
    }
    if (queue_.empty()) {
      const int err = send_one(data, to);
      if (err == 0) return;
      if (!would_block(err)) {
        report_send_error(err, to);
        return;
      }
      loop_.add_writer(fd_, [self = shared_from_this()] { self->on_writable(); });
    }
    queue_.push_back({std::string(data), to != nullptr ? *to : *peer_});
    queued_bytes_ += data.size();
    maybe_pause();
  }

  void close() noexcept {
    if (closing_) return;
    closing_ = true;
    loop_.remove_reader(fd_);
    if (queue_.empty()) schedule_connection_lost();
  }

  void abort() noexcept {
    if (lost_scheduled_) return;
    if (!queue_.empty()) {
      queue_.clear();
      queued_bytes_ = 0;
      loop_.remove_writer(fd_);
    }
    if (!closing_) {
      closing_ = true;
      loop_.remove_reader(fd_);
    }
    schedule_connection_lost();
  }

  bool closing() const noexcept { return closing_; }
  int fd() const noexcept { return fd_; }
  int family() const noexcept { return family_; }
  std::size_t queued_bytes() const noexcept { return queued_bytes_; }
  const std::shared_ptr<DatagramProtocol>& protocol() const noexcept { return protocol_; }
  address extra(std::string_view name) const {
    if (name == "sockname") return sockname_;
    if (name == "peername") return peername_;
    return {};
  }
  void set_limits(std::size_t high, std::size_t low) {
    if (low > high) {
      throw ValueError("set_write_buffer_limits(): high (" + std::to_string(high) + ") must be >= low (" +
                       std::to_string(low) + ")");
    }
    high_ = high;
    low_ = low;
    maybe_pause();
  }

 private:
  struct queued {
    std::string data;
    resolved_address to;
  };

  // send_one(data, to) sends one datagram; 0 or the errno (EINTR retried).
  int send_one(std::string_view data, const resolved_address* to) noexcept {
    for (;;) {
      // Unconnected with a remote address (allow_broadcast): no address means remote_addr.
      const resolved_address* where = to != nullptr ? to : &*peer_;
      const ssize_t n = connected_ ? ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL)
                                   : ::sendto(fd_, data.data(), data.size(), MSG_NOSIGNAL,
                                              reinterpret_cast<const sockaddr*>(&where->addr), where->len);
      if (n >= 0) return 0;
      if (errno != EINTR) return errno;
    }
  }

  void report_send_error(int err, const resolved_address* to) {
    const resolved_address& where = to != nullptr ? *to : *peer_;
    try {
      raise_os_error(err, "sendto " + host_port(reinterpret_cast<const sockaddr*>(&where.addr), where.len));
    } catch (const OSError& e) {
      auto protocol = protocol_;
      protocol->error_received(e);
    }
  }

  void on_readable() {
    if (closing_) return;
    thread_local std::vector<char> buffer(max_datagram);
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    ssize_t n;
    do {
      n = ::recvfrom(fd_, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    } while (n < 0 && errno == EINTR);
    auto protocol = protocol_;  // the callback may close the endpoint
    if (n < 0) {
      if (would_block(errno)) return;
      try {
        raise_os_error(errno, "recvfrom");
      } catch (const OSError& e) {
        protocol->error_received(e);
      }
      return;
    }
    address sender = from_len > 0 ? format_address(reinterpret_cast<const sockaddr*>(&from), from_len) : address{};
    protocol->datagram_received(std::string(buffer.data(), static_cast<std::size_t>(n)), std::move(sender));
  }

  void on_writable() {
    while (!queue_.empty()) {
      queued& next = queue_.front();
      const int err = send_one(next.data, &next.to);
      if (would_block(err)) break;
      queued sent = std::move(next);
      queue_.pop_front();
      queued_bytes_ -= sent.data.size();
      if (err != 0) {
        // As asyncio: this datagram is dropped and reported; the rest wait
        // for the next writability.
        report_send_error(err, &sent.to);
        return;
      }
    }
    maybe_resume();
    if (queue_.empty()) {
      loop_.remove_writer(fd_);
      if (closing_) schedule_connection_lost();
    }
  }

  void maybe_pause() {
    if (paused_ || queued_bytes_ <= high_ || protocol_ == nullptr) return;
    paused_ = true;
    call_flow_control(&DatagramProtocol::pause_writing, "protocol.pause_writing() failed");
  }

  void maybe_resume() {
    if (!paused_ || queued_bytes_ > low_ || protocol_ == nullptr) return;
    paused_ = false;
    call_flow_control(&DatagramProtocol::resume_writing, "protocol.resume_writing() failed");
  }

  // As asyncio's flow control: a pause/resume callback that throws is
  // reported, and the send that caused it goes on.
  void call_flow_control(void (DatagramProtocol::*callback)(), const char* message) {
    auto protocol = protocol_;
    try {
      ((*protocol).*callback)();
    } catch (...) {
      loop_.call_exception_handler({message, std::current_exception(), "DatagramTransport"});
    }
  }

  void schedule_connection_lost() noexcept {
    if (lost_scheduled_) return;
    lost_scheduled_ = true;
    try {
      loop_.call_soon([self = shared_from_this()] { self->connection_lost(); });
    } catch (...) {
      // The loop is closed (or out of memory): nobody can be called back.
      drop_at_loop_close();
    }
  }

  void connection_lost() {
    struct finish {
      datagram_transport& t;
      ~finish() { t.drop_at_loop_close(); }
    } guard{*this};
    if (auto protocol = protocol_) protocol->connection_lost(nullptr);
  }

  // drop_at_loop_close() closes the socket and lets go of the protocol (the
  // end of connection_lost(), or the loop closing first).
  void drop_at_loop_close() noexcept {
    closing_ = true;
    lost_scheduled_ = true;
    queue_.clear();
    queued_bytes_ = 0;
    if (close_hook_ != 0) {
      loop_.core()->remove_close_hook(std::exchange(close_hook_, 0));
    }
    close_fd();
    protocol_.reset();
  }

  void close_fd() noexcept {
    if (fd_ < 0) return;
    loop_.remove_reader(fd_);
    loop_.remove_writer(fd_);
    ::close(std::exchange(fd_, -1));
  }

  event_loop& loop_;
  int fd_;
  int family_;
  std::shared_ptr<DatagramProtocol> protocol_;
  std::optional<resolved_address> peer_;  // remote_addr, or the adopted socket's peer
  // connected_: the socket is connected to peer_ (send() needs no address). Not with allow_broadcast,
  // as asyncio: a socket connected to a broadcast address would drop every reply, which comes from
  // another address.
  bool connected_;
  address sockname_, peername_;
  std::deque<queued> queue_;
  std::size_t queued_bytes_ = 0;
  std::size_t high_ = 64 * 1024;
  std::size_t low_ = 16 * 1024;
  std::uint64_t close_hook_ = 0;
  bool paused_ = false;
  bool closing_ = false;
  bool lost_scheduled_ = false;
};

namespace {

struct endpoint_socket {
  int fd = -1;
  std::optional<resolved_address> peer;
  bool connected = false;
};

void set_option(int fd, int option, const char* name) {
  const int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, option, &one, sizeof one) < 0) raise_os_error(errno, name);
}

// open_socket(family, local, remote, config) is a datagram socket of family,
// bound to local and connected to remote if given.
endpoint_socket open_socket(int family, const resolved_address* local, const resolved_address* remote,
                            const datagram_endpoint_config& config) {
  owned_fd fd(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.fd < 0) raise_os_error(errno, "socket");
  if (config.reuse_port) set_option(fd.fd, SO_REUSEPORT, "setsockopt(SO_REUSEPORT)");
  if (config.allow_broadcast) set_option(fd.fd, SO_BROADCAST, "setsockopt(SO_BROADCAST)");
  if (local != nullptr) {
    if (::bind(fd.fd, reinterpret_cast<const sockaddr*>(&local->addr), local->len) < 0) {
      raise_os_error(errno, "bind " + host_port(reinterpret_cast<const sockaddr*>(&local->addr), local->len));
    }
  }
  endpoint_socket out;
  if (remote != nullptr) {
    // asyncio connects only without allow_broadcast; with it, sendto() without an address still
    // goes to remote.
    if (!config.allow_broadcast) {
      sock_connect(fd.fd, reinterpret_cast<const sockaddr*>(&remote->addr), remote->len);
      out.connected = true;
    }
    out.peer = *remote;
  }
  out.fd = fd.release();
  return out;
}

endpoint_socket adopt_socket(const datagram_endpoint_config& config) {
  if (config.local_addr || config.remote_addr || config.family != AF_UNSPEC || config.reuse_port ||
      config.allow_broadcast) {
    throw ValueError(
        "create_datagram_endpoint(): with sock, leave local_addr, remote_addr, family, reuse_port and "
        "allow_broadcast unset (set the socket up before passing it)");
  }
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(config.sock, SOL_SOCKET, SO_TYPE, &type, &len) < 0) raise_os_error(errno, "getsockopt(SO_TYPE)");
  if (type != SOCK_DGRAM) {
    throw ValueError("create_datagram_endpoint(): sock must be a datagram socket (SOCK_DGRAM), got type " +
                     std::to_string(type));
  }
  set_nonblocking(config.sock);
  std::optional<resolved_address> peer = peer_address(config.sock);
  const bool connected = peer.has_value();
  return {config.sock, std::move(peer), connected};
}

endpoint_socket open_unix_socket(const datagram_endpoint_config& config) {
  std::optional<resolved_address> local, remote;
  if (config.local_addr) {
    local = unix_address(config.local_addr->host, "create_datagram_endpoint");
    remove_stale_socket(config.local_addr->host);
  }
  if (config.remote_addr) remote = unix_address(config.remote_addr->host, "create_datagram_endpoint");
  return open_socket(AF_UNIX, local ? &*local : nullptr, remote ? &*remote : nullptr, config);
}

// first_of(addrs, family) is the first of addrs in family, or null.
const resolved_address* first_of(const std::vector<resolved_address>& addrs, int family) {
  for (const auto& a : addrs) {
    if (a.family == family) return &a;
  }
  return nullptr;
}

endpoint_socket open_inet_socket(const datagram_endpoint_config& config) {
  if (!config.local_addr && !config.remote_addr) {
    if (config.family != AF_INET && config.family != AF_INET6) {
      throw ValueError(
          "create_datagram_endpoint(): unexpected address family: give local_addr, remote_addr or family "
          "(AF_INET, AF_INET6 or AF_UNIX)");
    }
    return open_socket(config.family, nullptr, nullptr, config);
  }
  auto resolve_in_family = [&](const address& a, bool passive) {
    std::vector<resolved_address> out = resolve(a.host, a.port, passive, AF_UNSPEC, SOCK_DGRAM);
    for (resolved_address& r : out) apply_ipv6_fields(r, a);
    if (config.family != AF_UNSPEC) {
      std::erase_if(out, [&](const resolved_address& r) { return r.family != config.family; });
    }
    return out;
  };
  std::vector<resolved_address> locals, remotes;
  if (config.local_addr) locals = resolve_in_family(*config.local_addr, true);
  if (config.remote_addr) remotes = resolve_in_family(*config.remote_addr, false);
  // One try per family both sides have, in the order the addresses came;
  // the first failure is what the caller sees if every try fails.
  std::vector<int> families;
  for (const auto* list : {&locals, &remotes}) {
    for (const auto& a : *list) {
      if (std::find(families.begin(), families.end(), a.family) == families.end()) families.push_back(a.family);
    }
  }
  std::exception_ptr first_failure;
  for (int family : families) {
    const resolved_address* local = first_of(locals, family);
    const resolved_address* remote = first_of(remotes, family);
    if ((config.local_addr && local == nullptr) || (config.remote_addr && remote == nullptr)) continue;
    try {
      return open_socket(family, local, remote, config);
    } catch (const OSError&) {
      if (!first_failure) first_failure = std::current_exception();
    }
  }
  if (first_failure) std::rethrow_exception(first_failure);
  throw ValueError("create_datagram_endpoint(): local_addr and remote_addr have no address family in common");
}

}  // namespace

DatagramTransport open_datagram_endpoint(const datagram_protocol_factory& factory,
                                         const datagram_endpoint_config& config) {
  event_loop& loop = get_running_loop();
  endpoint_socket s = config.sock >= 0           ? adopt_socket(config)
                      : config.family == AF_UNIX ? open_unix_socket(config)
                                                 : open_inet_socket(config);
  owned_fd fd(s.fd);
  std::shared_ptr<DatagramProtocol> protocol = factory();
  if (protocol == nullptr) throw ValueError("create_datagram_endpoint(): the protocol factory returned null");
  auto t =
      std::make_shared<datagram_transport>(loop, fd.release(), std::move(protocol), std::move(s.peer), s.connected);
  Future<void> ready = loop.create_future<void>();
  t->start(ready);
  try {
    await(ready);
  } catch (...) {
    t->close();
    throw;
  }
  return DatagramTransport(std::move(t));
}

}  // namespace detail

namespace {

detail::datagram_transport& require(const std::shared_ptr<detail::datagram_transport>& t, const char* call) {
  if (t == nullptr) [[unlikely]] {
    throw RuntimeError(asyncio_errc::invalid_state,
                       std::string("DatagramTransport.") + call +
                           "(): empty transport (default-made or moved from); use one create_datagram_endpoint() "
                           "returned");
  }
  return *t;
}

}  // namespace

void DatagramTransport::sendto(std::string_view data) { require(t_, "sendto").sendto(data, nullptr); }

void DatagramTransport::sendto(std::string_view data, const address& addr) {
  detail::datagram_transport& t = require(t_, "sendto");
  t.require_open();
  std::optional<detail::resolved_address> to;
  if (t.family() == AF_UNIX) {
    to = detail::unix_address(addr.host, "DatagramTransport.sendto");
  } else {
    to = detail::numeric_address(addr, t.family());
    if (!to) {
      throw ValueError(
          "DatagramTransport.sendto(): '" + addr.host +
          "' is not a numeric address of the endpoint's family: sendto() cannot wait for a name "
          "lookup; resolve it first with asyncio::getaddrinfo() (or create the endpoint with remote_addr)");
    }
  }
  t.sendto(data, &*to);
}

void DatagramTransport::close() noexcept {
  if (t_ != nullptr) t_->close();
}

void DatagramTransport::abort() noexcept {
  if (t_ != nullptr) t_->abort();
}

bool DatagramTransport::is_closing() const noexcept { return t_ == nullptr || t_->closing(); }

address DatagramTransport::get_extra_info(std::string_view name) const {
  return require(t_, "get_extra_info").extra(name);
}

int DatagramTransport::fileno() const noexcept { return t_ != nullptr ? t_->fd() : -1; }

std::size_t DatagramTransport::get_write_buffer_size() const noexcept { return t_ != nullptr ? t_->queued_bytes() : 0; }

void DatagramTransport::set_write_buffer_limits(std::size_t high, std::optional<std::size_t> low) {
  require(t_, "set_write_buffer_limits").set_limits(high, low.value_or(high / 4));
}

std::shared_ptr<DatagramProtocol> DatagramTransport::get_protocol() const noexcept {
  return t_ != nullptr ? t_->protocol() : nullptr;
}

}  // namespace greenlet::asyncio
