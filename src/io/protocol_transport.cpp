// protocol_transport.cpp: the socket and pipe transports that call a
// protocol (io/protocols.hpp), and the Transport handle. The rules are
// asyncio's (selector_events.py, unix_events.py): which errors close the
// connection, which are reported, when connection_lost() comes.
#include "io/protocol_transport.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/detail/loop_core.hpp"
#include "io/owned_fd.hpp"
#include "io/resolve.hpp"
#include "io/stream_transport.hpp"
#include "io/tls_session.hpp"

namespace greenlet::asyncio {

void BaseProtocol::connection_made(Transport&) {}
void BaseProtocol::connection_lost(std::exception_ptr) {}
void BaseProtocol::pause_writing() {}
void BaseProtocol::resume_writing() {}
void Protocol::data_received(std::string_view) {}
bool Protocol::eof_received() { return false; }
bool BufferedProtocol::eof_received() { return false; }

namespace detail {

char* protocol_read_buffer() {
  struct freer {
    void operator()(char* p) const noexcept { std::free(p); }
  };
  thread_local std::unique_ptr<char, freer> buffer;
  if (!buffer) {
    buffer.reset(static_cast<char*>(std::malloc(max_protocol_read)));
    if (!buffer) throw std::bad_alloc();
  }
  return buffer.get();
}

std::exception_ptr os_error_ptr(int err, const char* call) noexcept {
  try {
    raise_os_error(err, call);
  } catch (...) {
    return std::current_exception();
  }
}

[[noreturn]] void throw_no_data_receiver(std::size_t count) {
  throw RuntimeError(asyncio_errc::invalid_state,
                     "Transport: " + std::to_string(count) +
                         " bytes arrived for a protocol that is neither a Protocol nor a BufferedProtocol; derive "
                         "from asyncio::Protocol (data_received) or asyncio::BufferedProtocol to receive data");
}

namespace {

bool is_os_error(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const OSError&) {
    return true;
  } catch (...) {
    return false;
  }
}

const char* kind_name(protocol_transport_kind kind) noexcept {
  switch (kind) {
    case protocol_transport_kind::socket: return "_SelectorSocketTransport";
    case protocol_transport_kind::read_pipe: return "_UnixReadPipeTransport";
    case protocol_transport_kind::write_pipe: return "_UnixWritePipeTransport";
  }
  return "Transport";
}

}  // namespace

protocol_transport::protocol_transport(event_loop& loop, int fd, protocol_transport_kind kind,
                                       std::shared_ptr<BaseProtocol> protocol)
    : loop_(loop), fd_(fd), fileno_(fd), kind_(kind) {
  set_protocol(std::move(protocol));
  if (kind_ == protocol_transport_kind::socket) {
    own_len_ = sizeof own_;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&own_), &own_len_) < 0) own_len_ = 0;
    peer_len_ = sizeof peer_;
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&peer_), &peer_len_) < 0) peer_len_ = 0;
  }
  if (kind_ == protocol_transport_kind::write_pipe) {
    // As asyncio: only a socket or FIFO reads as readable when its reader goes away; a
    // character device (a pty) is readable when it has input, which says nothing about that.
    struct stat st {};
    watch_reader_ = ::fstat(fd_, &st) == 0 && !S_ISCHR(st.st_mode);
  }
}

protocol_transport::~protocol_transport() { close_fd(); }

void protocol_transport::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
  if (protocol == nullptr) {
    throw ValueError("Transport.set_protocol(): the protocol is null; pass a Protocol or BufferedProtocol");
  }
  plain_protocol_ = dynamic_cast<Protocol*>(protocol.get());
  buffered_protocol_ = dynamic_cast<BufferedProtocol*>(protocol.get());
  protocol_ = std::move(protocol);
}

void protocol_transport::set_peer(const sockaddr* addr, socklen_t len) {
  if (len <= 0 || static_cast<std::size_t>(len) > sizeof peer_) return;
  std::memcpy(&peer_, addr, static_cast<std::size_t>(len));
  peer_len_ = len;
}

address protocol_transport::extra(std::string_view name) const {
  if (name == "peername" && peer_len_ > 0) return format_address(reinterpret_cast<const sockaddr*>(&peer_), peer_len_);
  if (name == "sockname" && own_len_ > 0) return format_address(reinterpret_cast<const sockaddr*>(&own_), own_len_);
  return {};
}

std::string protocol_transport::describe() const { return repr(); }

std::string protocol_transport::repr() const {
  // asyncio's transports' __repr__: the class, closed/closing, the fd (kept after the close), then
  // while open what the selector watches and the write buffer.
  std::string out = std::string("<") + kind_name(kind_);
  if (fd_ < 0) {
    out += " closed";
  } else if (closing_) {
    out += " closing";
  }
  out += " fd=" + std::to_string(fileno_);
  if (fd_ < 0) return out + ">";
  const std::string writing = writer_added_ ? "polling" : "idle";
  const std::string bufsize = "bufsize=" + std::to_string(buffered());
  switch (kind_) {
    case protocol_transport_kind::socket:
      return out + (reader_added_ ? " read=polling" : " read=idle") + " write=<" + writing + ", " + bufsize + ">>";
    case protocol_transport_kind::read_pipe: return out + (reader_added_ ? " polling>" : " idle>");
    case protocol_transport_kind::write_pipe: return out + " " + writing + " " + bufsize + ">";
  }
  return out + ">";
}

void protocol_transport::start(std::optional<Future<void>> ready) {
  // Closing the loop with the connection open drops it without callbacks:
  // the protocol, which may hold a handle to this transport, is let go.
  std::weak_ptr<protocol_transport> weak = weak_from_this();
  close_hook_ = loop_.core()->add_close_hook([weak] {
    if (auto t = weak.lock()) t->drop();
  });
  auto self = shared_from_this();
  if (tls_ != nullptr) {
    // connection_made() and `ready` wait for the handshake.
    ready_ = std::move(ready);
    loop_.call_soon([self] {
      if (self->closing_) return;
      self->add_reader();
      self->start_handshake();
    });
    return;
  }
  loop_.call_soon([self] { self->connection_made(); });
  loop_.call_soon([self] {
    if (!self->closing_ && !self->paused_) self->add_reader();
  });
  if (ready) {
    loop_.call_soon([ready = *ready]() mutable {
      if (!ready.done()) ready.set_result();
    });
  }
}

void protocol_transport::connection_made() {
  if (protocol_ == nullptr || app_connected_) return;
  app_connected_ = true;
  Transport handle(shared_from_this());
  auto protocol = protocol_;
  try {
    protocol->connection_made(handle);
  } catch (...) {
    fatal_error(std::current_exception(), "Fatal error: protocol.connection_made() call failed.");
  }
  if (ready_) {
    Future<void> ready = std::move(*ready_);
    ready_.reset();
    if (!ready.done()) ready.set_result();
  }
}

void protocol_transport::add_reader() {
  // A write pipe reads nothing: its "reader" watches for the other end going away, as asyncio's.
  auto self = shared_from_this();
  if (kind_ == protocol_transport_kind::write_pipe) {
    if (!watch_reader_) return;
    loop_.add_reader(fd_, [self] { self->on_reader_gone(); });
  } else {
    loop_.add_reader(fd_, [self] { self->on_readable(); });
  }
  reader_added_ = true;
}

void protocol_transport::on_readable() {
  if (awaiting_close_notify_) {
    read_until_close_notify();
    return;
  }
  if (fd_ < 0 || closing_ || paused_) return;  // queued before it stopped reading
  if (tls_ != nullptr) {
    on_tls_readable();
    return;
  }
  auto protocol = protocol_;  // the callbacks may close the transport or swap the protocol
  const char* failed_call = "Fatal error: protocol.data_received() call failed.";
  try {
    std::span<char> into;
    if (buffered_protocol_ != nullptr) {
      failed_call = "Fatal error: protocol.get_buffer() call failed.";
      into = buffered_protocol_->get_buffer(max_protocol_read);
      if (into.empty()) throw RuntimeError(asyncio_errc::invalid_state, "get_buffer() returned an empty buffer");
    } else {
      into = {protocol_read_buffer(), max_protocol_read};
    }
    const ssize_t n = read_retrying(fd_, into.data(), into.size());
    if (n < 0) {
      if (!would_block(errno)) {
        fatal_os_error(errno, "recv",
                       kind_ == protocol_transport_kind::socket ? "Fatal read error on socket transport"
                                                                : "Fatal read error on pipe transport");
      }
      return;
    }
    if (n == 0) {
      on_eof();
      return;
    }
    const auto count = static_cast<std::size_t>(n);
    if (buffered_protocol_ != nullptr) {
      failed_call = "Fatal error: protocol.buffer_updated() call failed.";
      buffered_protocol_->buffer_updated(count);
    } else if (plain_protocol_ != nullptr) {
      plain_protocol_->data_received(std::string_view(into.data(), count));
    } else {
      throw_no_data_receiver(count);
    }
  } catch (...) {
    fatal_error(std::current_exception(), failed_call);
  }
}

void protocol_transport::on_eof() {
  auto protocol = protocol_;
  peer_ended_ = true;
  if (kind_ == protocol_transport_kind::read_pipe) {
    // A read pipe ends at EOF whatever eof_received() says, as asyncio's.
    closing_ = true;
    loop_.remove_reader(fd_);
    reader_added_ = false;
    try {
      if (plain_protocol_ != nullptr) plain_protocol_->eof_received();
      if (buffered_protocol_ != nullptr) buffered_protocol_->eof_received();
    } catch (...) {
      loop_.call_exception_handler({"Exception in protocol.eof_received()", std::current_exception(), describe()});
    }
    schedule_connection_lost(nullptr);
    return;
  }
  bool keep_open = false;
  try {
    keep_open = plain_protocol_ != nullptr ? plain_protocol_->eof_received()
                                           : buffered_protocol_ != nullptr && buffered_protocol_->eof_received();
  } catch (...) {
    fatal_error(std::current_exception(), "Fatal error: protocol.eof_received() call failed.");
    return;
  }
  if (keep_open && tls_ == nullptr) {
    // Half-closed: we may still write; there is nothing more to read. (TLS cannot half-close:
    // asyncio ignores the answer there too.)
    loop_.remove_reader(fd_);
    reader_added_ = false;
  } else {
    close();
  }
}

void protocol_transport::on_reader_gone() {
  if (fd_ < 0 || lost_) return;
  // The reading end closed (or, on a socket, sent something: asyncio closes then too).
  force_close(buffered() != 0 ? os_error_ptr(EPIPE, "write") : nullptr);
}

ssize_t protocol_transport::send_some(std::string_view data, int& err) noexcept {
  for (;;) {
    const ssize_t n = kind_ == protocol_transport_kind::socket ? ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL)
                                                               : write_no_sigpipe(fd_, data.data(), data.size());
    if (n >= 0) return n;
    if (errno != EINTR) {
      err = errno;
      return -1;
    }
  }
}

void protocol_transport::write(std::string_view data) {
  if (kind_ == protocol_transport_kind::read_pipe) {
    throw RuntimeError(asyncio_errc::invalid_state,
                       "Transport.write(): this is a read pipe's transport (connect_read_pipe()); write to a "
                       "transport from connect_write_pipe() or a socket");
  }
  if (eof_) throw RuntimeError(asyncio_errc::invalid_state, "Cannot call write() after write_eof()");
  if (data.empty()) return;
  // As asyncio: once the connection is lost (or a pipe or TLS connection is closing), writes are
  // dropped and counted. lost_ covers the turn between a close()'s last buffered byte sent and
  // connection_lost().
  if (conn_lost_ != 0 || lost_ || fd_ < 0 ||
      (closing_ && (kind_ == protocol_transport_kind::write_pipe || tls_ != nullptr))) {
    ++conn_lost_;
    return;
  }
  if (tls_ != nullptr) {
    if (!tls_->handshake_done()) {
      pending_plain_.append(data);  // start_tls()'s handshake runs: sent once it completes
      return;
    }
    tls_->write(data);
    send_tls_output();
    return;
  }
  write_raw(data);
}

void protocol_transport::write_raw(std::string_view data) {
  if (buffered() == 0) {
    int err = 0;
    ssize_t n = send_some(data, err);
    if (n < 0) {
      if (!would_block(err)) {
        send_failed(err);
        return;
      }
      n = 0;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    if (data.empty()) return;
    auto self = shared_from_this();
    loop_.add_writer(fd_, [self] { self->on_writable(); });
    writer_added_ = true;
  }
  wbuf_.append(data);
  maybe_pause_protocol();
}

void protocol_transport::send_failed(int err) noexcept {
  // Once a TLS peer ended the session, our answering close_notify meeting its closed socket
  // (EPIPE, ECONNRESET) ends a clean close: the connection is lost without an error.
  if (peer_ended_ && tls_ != nullptr && (err == EPIPE || err == ECONNRESET)) {
    force_close(nullptr);
    return;
  }
  fatal_os_error(err, "send",
                 kind_ == protocol_transport_kind::socket ? "Fatal write error on socket transport"
                                                          : "Fatal write error on pipe transport");
}

void protocol_transport::on_writable() {
  if (fd_ < 0 || buffered() == 0) return;
  int err = 0;
  const ssize_t n = send_some(std::string_view(wbuf_).substr(wpos_), err);
  if (n < 0) {
    if (would_block(err)) return;
    wbuf_.clear();
    wpos_ = 0;
    loop_.remove_writer(fd_);
    writer_added_ = false;
    send_failed(err);
    return;
  }
  wpos_ += static_cast<std::size_t>(n);
  if (wpos_ == wbuf_.size()) {
    wbuf_.clear();
    wpos_ = 0;
  } else if (wpos_ > wbuf_.size() / 2) {
    wbuf_.erase(0, wpos_);
    wpos_ = 0;
  }
  maybe_resume_protocol();
  if (buffered() != 0) return;
  loop_.remove_writer(fd_);
  writer_added_ = false;
  if (closing_ && !awaiting_close_notify_) {
    schedule_connection_lost(nullptr);
  } else if (eof_) {
    ::shutdown(fd_, SHUT_WR);
  }
}

void protocol_transport::write_eof() {
  switch (kind_) {
    case protocol_transport_kind::read_pipe:
      throw RuntimeError(asyncio_errc::invalid_state,
                         "Transport.write_eof(): this is a read pipe's transport (connect_read_pipe()); it cannot "
                         "write");
    case protocol_transport_kind::write_pipe:
      // A pipe has no half-close: its EOF is closing it, as asyncio's.
      close();
      return;
    case protocol_transport_kind::socket:
      if (tls_ != nullptr) {
        // As asyncio's SSL transport (can_write_eof() is false): peers commonly take a
        // close_notify for the end of the connection.
        throw RuntimeError(asyncio_errc::invalid_state,
                           "Transport.write_eof(): a TLS connection cannot half-close (can_write_eof() is false); "
                           "close() it instead");
      }
      if (closing_ || eof_) return;
      eof_ = true;
      if (buffered() == 0 && fd_ >= 0) ::shutdown(fd_, SHUT_WR);
      return;
  }
}

void protocol_transport::close() noexcept {
  if (closing_) return;
  closing_ = true;
  if (tls_ != nullptr && tls_->handshake_done() && fd_ >= 0 && !lost_) {
    try {
      tls_->shutdown();  // close_notify goes out after the bytes already written
      send_tls_output();
    } catch (...) {
      // Out of memory, or the send failed (then the connection is lost already).
    }
    // asyncio's SSLProtocol waits for the peer's close_notify (unless it came already), so that
    // the peer knows the session ended cleanly before the socket goes.
    if (!lost_ && fd_ >= 0 && !peer_ended_ && !tls_->peer_closed()) {
      await_close_notify();
      return;
    }
  }
  if (reader_added_ && (kind_ != protocol_transport_kind::write_pipe || buffered() == 0)) {
    // A write pipe keeps watching its reader while bytes wait (BrokenPipeError if it goes).
    loop_.remove_reader(fd_);
    reader_added_ = false;
  }
  if (buffered() == 0) {
    ++conn_lost_;
    schedule_connection_lost(nullptr);
  }
}

void protocol_transport::force_close(std::exception_ptr exc) noexcept {
  if (lost_) return;
  awaiting_close_notify_ = false;
  if (shutdown_timer_) shutdown_timer_->cancel();
  shutdown_timer_.reset();
  if (buffered() != 0) {
    wbuf_.clear();
    wpos_ = 0;
  }
  if (writer_added_) {
    loop_.remove_writer(fd_);
    writer_added_ = false;
  }
  closing_ = true;
  if (reader_added_) {
    loop_.remove_reader(fd_);
    reader_added_ = false;
  }
  ++conn_lost_;
  schedule_connection_lost(std::move(exc));
}

void protocol_transport::fatal_error(std::exception_ptr exc, const char* message) noexcept {
  // As asyncio: a connection error (OSError) just closes the connection;
  // anything else (a protocol callback that threw) is reported too.
  if (!is_os_error(exc)) {
    try {
      loop_.call_exception_handler({message, exc, describe()});
    } catch (...) {
    }
  }
  force_close(std::move(exc));
}

void protocol_transport::fatal_os_error(int err, const char* call, const char* message) noexcept {
  fatal_error(os_error_ptr(err, call), message);
}

void protocol_transport::schedule_connection_lost(std::exception_ptr exc) noexcept {
  if (lost_) return;
  lost_ = true;
  try {
    loop_.call_soon([self = shared_from_this(), exc] { self->call_connection_lost(exc); });
  } catch (...) {
    // The loop is closed (or out of memory): nobody can be called back.
    drop();
  }
}

void protocol_transport::call_connection_lost(std::exception_ptr exc) {
  struct finish {
    protocol_transport& t;
    ~finish() { t.drop(); }
  } guard{*this};
  // The fd closes first, as asyncio's (its socket closes in the same
  // finally): a connection_lost() that opens a new connection may get the number.
  close_fd();
  // A TLS connection whose handshake failed never told its protocol it was made.
  if (auto protocol = protocol_; protocol != nullptr && app_connected_) protocol->connection_lost(exc);
}

void protocol_transport::maybe_pause_protocol() {
  if (protocol_paused_ || buffered() <= high_ || protocol_ == nullptr) return;
  protocol_paused_ = true;
  call_flow_control(&BaseProtocol::pause_writing, "protocol.pause_writing() failed");
}

void protocol_transport::maybe_resume_protocol() {
  if (!protocol_paused_ || buffered() > low_ || protocol_ == nullptr) return;
  protocol_paused_ = false;
  call_flow_control(&BaseProtocol::resume_writing, "protocol.resume_writing() failed");
}

void protocol_transport::call_flow_control(void (BaseProtocol::*callback)(), const char* message) noexcept {
  // As asyncio's flow control: a callback that throws is reported, and the write that caused it goes on.
  auto protocol = protocol_;
  try {
    ((*protocol).*callback)();
  } catch (...) {
    try {
      loop_.call_exception_handler({message, std::current_exception(), describe()});
    } catch (...) {
    }
  }
}

void protocol_transport::set_limits(std::size_t high, std::size_t low) {
  if (low > high) {
    throw ValueError("set_write_buffer_limits(): high (" + std::to_string(high) + ") must be >= low (" +
                     std::to_string(low) + ") must be >= 0");
  }
  high_ = high;
  low_ = low;
  maybe_pause_protocol();
}

void protocol_transport::pause_reading() {
  if (kind_ == protocol_transport_kind::write_pipe) {
    throw RuntimeError(asyncio_errc::invalid_state,
                       "Transport.pause_reading(): this is a write pipe's transport (connect_write_pipe()); it "
                       "does not read");
  }
  if (closing_ || paused_) return;
  paused_ = true;
  if (reader_added_) {
    loop_.remove_reader(fd_);
    reader_added_ = false;
  }
}

void protocol_transport::resume_reading() {
  if (kind_ == protocol_transport_kind::write_pipe) {
    throw RuntimeError(asyncio_errc::invalid_state,
                       "Transport.resume_reading(): this is a write pipe's transport (connect_write_pipe()); it "
                       "does not read");
  }
  if (closing_ || !paused_) return;
  paused_ = false;
  if (fd_ >= 0) add_reader();
}

void protocol_transport::drop() noexcept {
  closing_ = true;
  lost_ = true;
  wbuf_.clear();
  wpos_ = 0;
  if (close_hook_ != 0) loop_.core()->remove_close_hook(std::exchange(close_hook_, 0));
  if (handshake_timer_) handshake_timer_->cancel();
  handshake_timer_.reset();
  awaiting_close_notify_ = false;
  if (shutdown_timer_) shutdown_timer_->cancel();
  shutdown_timer_.reset();
  if (ready_) {
    // The loop closed during the handshake: create_connection() must not wait for ever.
    Future<void> ready = std::move(*ready_);
    ready_.reset();
    if (!ready.done()) ready.cancel();
  }
  close_fd();
  protocol_.reset();
  plain_protocol_ = nullptr;
  buffered_protocol_ = nullptr;
  if (on_lost_) {
    auto lost = std::move(on_lost_);
    on_lost_ = nullptr;
    lost();
  }
}

void protocol_transport::close_fd() noexcept {
  if (fd_ < 0) return;
  if (reader_added_) loop_.remove_reader(fd_);
  if (writer_added_) loop_.remove_writer(fd_);
  reader_added_ = writer_added_ = false;
  ::close(std::exchange(fd_, -1));
}

}  // namespace detail

namespace {

detail::protocol_transport& require(const std::shared_ptr<detail::protocol_transport>& t, const char* call) {
  if (t == nullptr) [[unlikely]] {
    throw RuntimeError(asyncio_errc::invalid_state,
                       std::string("Transport.") + call +
                           "(): empty transport (default-made or moved from); use one that create_connection(), "
                           "create_server()'s protocol or connect_*_pipe() gave");
  }
  return *t;
}

}  // namespace

void Transport::write(std::string_view data) { require(t_, "write").write(data); }

void Transport::writelines(std::initializer_list<std::string_view> list) {
  detail::protocol_transport& t = require(t_, "writelines");
  std::size_t size = 0;
  for (std::string_view piece : list) size += piece.size();
  std::string joined;
  joined.reserve(size);
  for (std::string_view piece : list) joined.append(piece);
  t.write(joined);
}

void Transport::write_eof() { require(t_, "write_eof").write_eof(); }

bool Transport::can_write_eof() const noexcept {
  return t_ != nullptr && t_->kind() != detail::protocol_transport_kind::read_pipe && !t_->is_tls();
}

std::string Transport::repr() const { return t_ == nullptr ? "<Transport empty>" : t_->repr(); }

std::optional<tls_info> Transport::tls() const { return require(t_, "tls").tls(); }

void Transport::close() noexcept {
  if (t_ != nullptr) t_->close();
}

void Transport::abort() noexcept {
  if (t_ != nullptr) t_->abort();
}

bool Transport::is_closing() const noexcept { return t_ == nullptr || t_->closing(); }

void Transport::pause_reading() { require(t_, "pause_reading").pause_reading(); }

void Transport::resume_reading() { require(t_, "resume_reading").resume_reading(); }

bool Transport::is_reading() const noexcept { return t_ != nullptr && t_->reading(); }

std::size_t Transport::get_write_buffer_size() const noexcept { return t_ != nullptr ? t_->buffered() : 0; }

void Transport::set_write_buffer_limits(std::size_t high, std::optional<std::size_t> low) {
  require(t_, "set_write_buffer_limits").set_limits(high, low.value_or(high / 4));
}

std::pair<std::size_t, std::size_t> Transport::get_write_buffer_limits() const {
  const detail::protocol_transport& t = require(t_, "get_write_buffer_limits");
  return {t.low_water(), t.high_water()};
}

address Transport::get_extra_info(std::string_view name) const { return require(t_, "get_extra_info").extra(name); }

int Transport::fileno() const noexcept { return t_ != nullptr ? t_->fd() : -1; }

std::shared_ptr<BaseProtocol> Transport::get_protocol() const noexcept {
  return t_ != nullptr ? t_->protocol() : nullptr;
}

void Transport::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
  require(t_, "set_protocol").set_protocol(std::move(protocol));
}

}  // namespace greenlet::asyncio
