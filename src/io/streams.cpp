// streams.cpp: stream_transport, StreamReader, StreamWriter and
// open_connection(). Reads happen in the reading task itself (recv until
// EAGAIN, then a one-shot wait); writes go out at once and what the socket
// does not take is flushed by a writer callback on the loop, as asyncio's
// selector transport does.
#include "io/stream_transport.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <vector>

#include "asyncio/poller.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/task.hpp"
#include "greenlet/io/socket.hpp"
#include "io/given_socket.hpp"
#include "io/resolve.hpp"
#include "io/tcp_connect.hpp"
#include "io/tls_session.hpp"
#include "io/wait.hpp"

namespace greenlet::asyncio {

namespace detail {

namespace {
// take() hands over rather than copies a whole buffer this big.
constexpr std::size_t take_by_move = 1024 * 1024;
}  // namespace

// The thread's buffer that reads land in before they are appended to a
// stream's buffer. Reading straight into the stream's std::string would
// need resize(size + read_chunk) first, and resize() zero-fills: 64 KiB of
// memset per read, 39% of a 64-byte echo round trip (perf). malloc, not
// new: it lives as long as the thread, and the tests count new.
char* read_scratch() {
  struct freer {
    void operator()(char* p) const noexcept { std::free(p); }
  };
  thread_local std::unique_ptr<char, freer> scratch;
  if (!scratch) {
    scratch.reset(static_cast<char*>(std::malloc(read_chunk)));
    if (!scratch) throw std::bad_alloc();
  }
  return scratch.get();
}

ssize_t write_no_sigpipe(int fd, const char* data, std::size_t size) {
  // SIGPIPE is blocked around the call (per thread) and an occurrence the
  // call raised is consumed before the mask is restored; one that was
  // already pending stays pending.
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const ssize_t n = ::write(fd, data, size);
  const int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    const timespec zero{};
    sigtimedwait(&pipe_set, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return n;
}

stream_transport::stream_transport(loop_core& loop, int fd, stream_config config, transport_kind kind)
    : loop_(loop), fd_(fd), config_(config), kind_(kind), closed_(new future_value<void>(&loop)) {
  retain(&loop_);
  // Every wait here follows an EAGAIN or a short read, and every close a
  // forget(), as adopt() asks: waits on this fd then cost no epoll_ctl.
  adopted_ = loop_.io->adopt(fd_);
}

std::shared_ptr<stream_transport> stream_transport::make(loop_core& loop, int fd, stream_config config,
                                                         transport_kind kind) {
  stream_transport* t;
  try {
    t = new stream_transport(loop, fd, config, kind);
  } catch (...) {
    ::close(fd);  // owned from the call on
    throw;
  }
  // If making the handle throws, the deleter has run: t is gone.
  return std::shared_ptr<stream_transport>(t, [](stream_transport* p) noexcept { p->handles_gone(); });
}

void stream_transport::handles_gone() noexcept {
  // Nobody can wait_closed() any more, and the callbacks hold this: the wait for the peer's
  // close_notify ends, and the socket closes as it would have without it.
  if (awaiting_close_notify_) {
    stop_close_notify_wait();
    if (write_buffered() == 0) finish_close();
  }
  // The last handle went without close(): a TLS peer still gets close_notify.
  if (tls_ != nullptr && fd_ >= 0 && error_ == 0 && !closing_ && !loop_.closed) queue_close_notify();
  if (fd_ < 0 || error_ != 0 || write_buffered() == 0 || !writer_registered_ || loop_.closed) {
    delete this;
    return;
  }
  try {
    close_hook_ = loop_.add_close_hook([this] {
      close_hook_ = 0;  // being run: nothing to remove
      delete this;      // the loop closes first: the rest is dropped
    });
  } catch (...) {
    delete this;  // not on the loop's thread, or out of memory
    return;
  }
  orphaned_ = true;
  // As close(): the fd is closed once the rest is sent. Nobody reads any more.
  closing_ = true;
  rbuf_ = std::string();
  rpos_ = 0;
}

stream_transport::~stream_transport() {
  stop_close_notify_wait();
  if (close_hook_ != 0) loop_.remove_close_hook(close_hook_);
  if (fd_ >= 0) close_fd();
  // Members holding futures go before the loop reference they need.
  read_waiter_ = Future<void>();
  drain_waiter_ = Future<void>();
  closed_ = Future<void>();
  release(&loop_);
}

int stream_transport::fill_nowait() {
  if (tls_ != nullptr) return fill_tls_nowait();
  for (;;) {
    check_error();
    if (fd_ < 0 || eof_ || closing_) return 0;
    // Compact once the consumed prefix dominates, so the buffer stays small.
    compact_read_buffer();
    char* scratch = read_scratch();
    // Room first (no zero-fill), so the append below cannot fail after the
    // bytes have left the socket.
    rbuf_.reserve(rbuf_.size() + read_chunk);
    const ssize_t n =
        kind_ == transport_kind::socket ? ::recv(fd_, scratch, read_chunk, 0) : ::read(fd_, scratch, read_chunk);
    const int err = errno;
    drained_ = adopted_ && n > 0 && static_cast<std::size_t>(n) < read_chunk;
    drained_at_ = loop_.io->waits();
    if (n > 0) {
      rbuf_.append(scratch, static_cast<std::size_t>(n));
      count_read(static_cast<std::size_t>(n));
      return 1;
    }
    if (n == 0) {
      eof_ = true;
      return 0;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) return -1;
    if (err != EINTR) {
      fail(err, kind_ == transport_kind::socket ? "recv" : "read");
      raise_error();
    }
  }
}

void stream_transport::yield_to_loop() {
  if (loop_.io->waits() == budget_waits_ && loop_.current_task != nullptr) {
    // sleep(0) queues this task's next step behind this turn, so the loop
    // ends the turn, polls (a zero timeout: loop_core::run_once(), whenever
    // anything is registered) and runs due timers before the task goes on.
    sleep(0);
  }
  read_since_poll_ = 0;
  budget_waits_ = loop_.io->waits();
}

bool stream_transport::fill() {
  const std::size_t had = buffered();
  for (;;) {
    yield_if_over_read_budget();
    // A short read left the fd empty and the loop has not polled since
    // (which could take the next edge while nobody waits): the next bytes
    // (or EOF) come as a new edge, so wait for it rather than make a recv
    // that would say EAGAIN. One system call less per request for a server
    // that answers each request before reading the next.
    if (drained_) {
      drained_ = false;
      if (drained_at_ == loop_.io->waits() && fd_ >= 0 && !eof_ && !closing_) {
        release_idle_read_buffer();
        wait_fd(fd_, io_direction::read, io_caller::owner, &read_waiter_);
      }
    }
    // Another task's at_eof() can read while this one waits or yields (the
    // last bytes with the EOF behind them): they count as this fill's, or
    // the caller would see only the EOF and miss them.
    if (buffered() > had) return true;
    const int got = fill_nowait();
    if (got >= 0) return got > 0;
    release_idle_read_buffer();
    wait_fd(fd_, io_direction::read, io_caller::owner, &read_waiter_);
  }
}

bool stream_transport::at_eof() noexcept {
  if (buffered() != 0) return false;
  if (!eof_ && adopted_ && error_ == 0 && fd_ >= 0 && !closing_ && loop_.io->hung_up(fd_)) [[unlikely]] {
    read_pending_eof();
  }
  return eof_;
}

void stream_transport::read_pending_eof() noexcept {
  try {
    fill_nowait();
  } catch (...) {
    // An OSError is kept (fail()) and raised by the next read; bytes that
    // could not be buffered (bad_alloc) are still in the socket.
  }
}

std::string stream_transport::take_all() {
  if (rpos_ != 0 || rbuf_.size() < take_by_move) return take(buffered());
  // A big buffer taken whole (communicate(), read() to EOF) is handed over,
  // not copied: copying 1.5 GB held the loop for seconds. Its spare capacity
  // was never written, so it costs address space, not memory.
  std::string out = std::move(rbuf_);
  rbuf_ = std::string();
  return out;
}

std::string stream_transport::take(std::size_t n) {
  n = std::min(n, buffered());
  std::string out = rbuf_.substr(rpos_, n);
  rpos_ += n;
  if (rpos_ == rbuf_.size()) {
    rbuf_.clear();
    rpos_ = 0;
  }
  return out;
}

void stream_transport::write(std::string_view data) {
  if (eof_written_) {
    // As asyncio's transports: the bytes would follow the FIN, or be lost.
    throw RuntimeError(asyncio_errc::invalid_state, "Cannot call write() after write_eof()");
  }
  if (sending_file_) {
    // Its bytes would land in the middle of the file's.
    throw RuntimeError(asyncio_errc::invalid_state, "unable to write; sendfile is in progress");
  }
  if (closing_ || fd_ < 0 || data.empty()) return;
  if (error_ != 0) return;  // drain() reports it
  if (tls_ != nullptr) {
    write_tls(data);
    return;
  }
  wbuf_.append(data);
  if (!writer_registered_) flush();
}

void stream_transport::flush() {
  while (wpos_ < wbuf_.size()) {
    const ssize_t n = kind_ == transport_kind::socket
                          ? ::send(fd_, wbuf_.data() + wpos_, wbuf_.size() - wpos_, MSG_NOSIGNAL)
                          : write_no_sigpipe(fd_, wbuf_.data() + wpos_, wbuf_.size() - wpos_);
    if (n > 0) {
      wpos_ += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      fail(n < 0 ? errno : EPIPE, kind_ == transport_kind::socket ? "send" : "write");
      return;
    }
  }
  if (wpos_ == wbuf_.size()) {
    wbuf_.clear();
    wpos_ = 0;
  } else if (wpos_ > read_chunk && wpos_ * 2 > wbuf_.size()) {
    wbuf_.erase(0, wpos_);
    wpos_ = 0;
  }
  const bool pending = wpos_ < wbuf_.size();
  if (pending && !writer_registered_) {
    loop_.io->add_callback(fd_, io_direction::write, io_caller::owner, [this] { on_writable(); });
    writer_registered_ = true;
  } else if (!pending && writer_registered_) {
    loop_.io->remove(fd_, io_direction::write);
    writer_registered_ = false;
  }
  if (write_buffered() <= config_.low_water) wake_drainer();
  if (!pending) {
    if (eof_pending_) {
      eof_pending_ = false;
      if (kind_ == transport_kind::socket) {
        ::shutdown(fd_, SHUT_WR);
      } else {
        closing_ = true;  // a pipe has no half-close: its EOF is closing it
      }
    }
    if (closing_ && !awaiting_close_notify_) finish_close();
  }
}

void stream_transport::on_writable() {
  if (fd_ >= 0) flush();
  // Sent (or failed) and closed: an orphan is nobody's to delete but its own.
  if (orphaned_ && fd_ < 0) delete this;
}

void stream_transport::watch_reader_gone() {
  // A forget() before the fd is closed drops the watch, and cancels a run
  // already queued: the callback never outlives the transport.
  loop_.io->watch_hang_up(fd_, [this] { on_reader_gone(); });
}

void stream_transport::on_reader_gone() {
  if (fd_ < 0) return;
  // asyncio's _read_ready(): _close(BrokenPipeError()) with bytes buffered,
  // _close() without. The BrokenPipeError is what drain(), wait_closed()
  // and later writes' drain() raise.
  if (write_buffered() != 0) fail(EPIPE, "write (the reader closed its end with bytes still buffered)");
  close();
  // An orphan (see handles_gone()) is nobody's to delete but its own: the
  // forget() of its fd cancelled the writer callback that would have.
  if (orphaned_ && fd_ < 0) delete this;
}

void stream_transport::raise_error() const {
  if (failure_ != nullptr) std::rethrow_exception(failure_);
  if (error_ != 0) raise_os_error(error_, error_call_);
  std::rethrow_exception(reader_exception_);
}

void stream_transport::set_exception(std::exception_ptr e) noexcept {
  reader_exception_ = std::move(e);
  if (reader_exception_ != nullptr) wake_reader();
}

std::exception_ptr stream_transport::exception() const noexcept {
  if (failure_ != nullptr) return failure_;
  if (error_ == 0) return reader_exception_;
  try {
    raise_os_error(error_, error_call_);
  } catch (...) {
    return std::current_exception();  // std::bad_alloc making it, at worst
  }
}

std::string stream_transport::repr() const {
  std::string out = kind_ == transport_kind::socket ? "<_SelectorSocketTransport" : "<_UnixPipeTransport";
  if (fd_ < 0) return out + " closed>";
  if (closing_) out += " closing";
  out += " fd=" + std::to_string(fd_);
  if (!loop_.closed) {
    const bool reading = !read_waiter_.empty() && !read_waiter_.done();
    out += reading ? " read=polling" : " read=idle";
    out += std::string(" write=<") + (writer_registered_ ? "polling" : "idle") +
           ", bufsize=" + std::to_string(write_buffered()) + ">";
  }
  return out + ">";
}

std::string stream_transport::reader_repr() const {
  std::string out = "<StreamReader";
  // Appends, not " " + std::to_string(...): g++ 12 at -O3 warns (-Wrestrict, a false positive) on a
  // literal + temporary string.
  if (buffered() != 0) {
    out += ' ';
    out += std::to_string(buffered());
    out += " bytes";
  }
  if (eof_) out += " eof";
  if (config_.limit != stream_config{}.limit) out += " limit=" + std::to_string(config_.limit);
  if (!read_waiter_.empty() && !read_waiter_.done()) out += " waiter=" + read_waiter_.repr();
  if (const std::exception_ptr e = exception()) {
    out += " exception=";
    out += exception_repr(e);
  }
  return out + " transport=" + repr() + ">";
}

void stream_transport::wake_reader() noexcept {
  if (!read_waiter_.empty() && !read_waiter_.done()) {
    loop_.io->remove_waiter(fd_, io_direction::read, read_waiter_.state());
    read_waiter_.set_result();
  }
}

void stream_transport::fail(int err, const char* call) noexcept {
  if (peer_ended_tls_ && failure_ == nullptr && error_ == 0 && (err == EPIPE || err == ECONNRESET)) {
    // The TLS peer ended the session first (close_notify or EOF) and went:
    // our answer could not reach it. The session ended cleanly all the same:
    // EOF, not an error, for the reader and wait_closed().
    wbuf_.clear();
    wpos_ = 0;
    wake_drainer();
    if (closing_) finish_close();
    return;
  }
  if (error_ == 0) {
    error_ = err;
    error_call_ = call;
  }
  // Unsent bytes can no longer go: a drainer and close() stop waiting.
  wbuf_.clear();
  wpos_ = 0;
  wake_drainer();
  // A reader waiting for bytes raises the error instead (the kernel reports
  // a reset once: if send() took it, its recv() would see a plain EOF).
  wake_reader();
  if (closing_) finish_close();
}

void stream_transport::wake_drainer() {
  if (!drain_waiter_.empty() && !drain_waiter_.done()) drain_waiter_.set_result();
}

void stream_transport::drain() {
  check_error();
  // As asyncio's: the connection is gone (closed, not by an error).
  if (fd_ < 0) throw ConnectionResetError(ECONNRESET, "Connection lost");
  for (;;) {
    check_error();
    // A close that finished while this task waited ends the wait normally.
    if (fd_ < 0 || write_buffered() <= config_.high_water) return;
    await_drain_waiter();
  }
}

void stream_transport::await_drain_waiter() {
  // Every task draining now waits on the same future, so that one wake-up
  // reaches them all (asyncio keeps a list of drain waiters); each awaits
  // it as a shared future, so cancelling one leaves the others waiting.
  if (drain_waiter_.empty() || drain_waiter_.done()) drain_waiter_ = Future<void>(new future_value<void>(&loop_));
  Future<void> shared = drain_waiter_;
  await_shared(shared);
}

void stream_transport::write_eof() {
  if (closing_ || fd_ < 0) return;
  if (kind_ == transport_kind::pipe) {
    close();  // later writes are dropped, as on any closing transport
    return;
  }
  if (tls_ != nullptr) {
    // As asyncio's SSL transport (NotImplementedError there): TLS 1.3 can
    // send close_notify and go on reading, but peers commonly take it for
    // the end of the connection.
    throw RuntimeError(asyncio_errc::invalid_state,
                       "write_eof(): a TLS connection cannot half-close (can_write_eof() is false); close() the "
                       "writer instead");
  }
  eof_written_ = true;
  if (write_buffered() == 0) {
    ::shutdown(fd_, SHUT_WR);
  } else {
    eof_pending_ = true;
  }
}

void stream_transport::close() {
  if (closing_) return;
  closing_ = true;
  // A reader waiting now sees EOF rather than a closed fd.
  if (!read_waiter_.empty() && !read_waiter_.done()) {
    loop_.io->remove_waiter(fd_, io_direction::read, read_waiter_.state());
    read_waiter_.set_result();
  }
  // asyncio's SSLProtocol waits for the peer's close_notify after sending its own (unless the
  // peer's came already), so that the peer knows the session ended cleanly before the socket
  // goes. Set first: sending the buffered bytes must not complete the close (flush()).
  awaiting_close_notify_ = tls_ != nullptr && error_ == 0 && fd_ >= 0 && tls_->handshake_done() && !peer_ended_tls_ &&
                           !tls_->peer_closed() && !loop_.closed && loop_.facade != nullptr;
  // A TLS stream says goodbye with close_notify, sent after the buffered
  // bytes; sending it can complete the close.
  if (tls_ != nullptr && error_ == 0) queue_close_notify();
  if (awaiting_close_notify_) {
    await_close_notify();
    return;
  }
  if (write_buffered() == 0 || error_ != 0) finish_close();
}

void stream_transport::abort() noexcept {
  if (fd_ < 0) return;
  wbuf_.clear();
  wpos_ = 0;
  if (!closing_) {
    closing_ = true;
    if (!read_waiter_.empty() && !read_waiter_.done()) {
      loop_.io->remove_waiter(fd_, io_direction::read, read_waiter_.state());
      read_waiter_.set_result();
    }
  }
  finish_close();
}

void stream_transport::finish_close() noexcept {
  stop_close_notify_wait();
  if (fd_ < 0) return;
  writer_registered_ = false;
  close_fd();
  // As asyncio's connection_lost(None) feeds the reader EOF: once the
  // buffered bytes are read, at_eof() is true (a failed connection keeps its
  // error instead). Set after close_fd(), which drops unread input only
  // before EOF.
  if (error_ == 0) eof_ = true;
  wake_drainer();
  if (!closed_.done()) closed_.set_result();
}

void stream_transport::close_fd() noexcept {
  loop_.io->forget(fd_);
  if (kind_ == transport_kind::socket && !eof_ && error_ == 0) discard_unread_input();
  ::close(fd_);
  fd_ = -1;
}

void stream_transport::discard_unread_input() noexcept {
  char* scratch;
  try {
    scratch = read_scratch();
  } catch (...) {
    return;  // out of memory: the peer may get a reset
  }
  // The stream's own bound on what it buffers, doubled as asyncio's pause
  // of reading, within [unread_discard_budget, 16 MiB].
  const std::size_t budget =
      std::clamp(std::min(config_.limit, std::size_t{8} << 20) * 2, unread_discard_budget, std::size_t{16} << 20);
  for (std::size_t dropped = 0; dropped < budget;) {
    const ssize_t n = ::recv(fd_, scratch, read_chunk, MSG_DONTWAIT);
    if (n > 0) {
      dropped += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return;  // empty (EAGAIN), EOF, or an error: nothing left to drop
    }
  }
}

void stream_transport::wait_closed() {
  Future<void> closed = closed_;
  await_shared(closed);
  // asyncio's connection_lost(exc) fails the closed future with exc; a reader's set_exception()
  // does not.
  if (failure_ != nullptr) std::rethrow_exception(failure_);
  if (error_ != 0) raise_os_error(error_, error_call_);
}

void check_stream_config(const stream_config& config, const char* call) {
  if (config.limit == 0) {
    throw ValueError(std::string(call) +
                     "(): Limit cannot be <= 0: stream_config.limit bounds what readline()/readuntil() buffer "
                     "while looking for the separator (the default is 64 KiB)");
  }
}

namespace {

// open_tcp(host, port, options, config) is open_connection(host, port, options...).
std::pair<StreamReader, StreamWriter> open_tcp(const std::string& host, int port, const connect_options& options,
                                               stream_config config) {
  check_stream_config(config, "open_connection");
  resolved_address peer;
  const int fd = connect_tcp(host, port, options, peer);
  return make_streams(fd, config, reinterpret_cast<const sockaddr*>(&peer.addr), peer.len);
}

}  // namespace

std::pair<StreamReader, StreamWriter> make_streams(int fd, stream_config config, const sockaddr* peer,
                                                   socklen_t peer_len) {
  auto t = stream_transport::make(require_running_loop(), fd, config);
  if (peer != nullptr) t->set_peer_address(peer, peer_len);
  return {StreamReader(t), StreamWriter(t)};
}

void stream_transport::set_peer_address(const sockaddr* addr, socklen_t len) noexcept {
  if (len <= 0 || static_cast<std::size_t>(len) > sizeof peer_address_.addr) return;
  std::memcpy(&peer_address_.addr, addr, static_cast<std::size_t>(len));
  peer_address_.len = len;
}

address stream_transport::extra_address(std::string_view name) {
  const bool peer = name == "peername";
  if (!peer && name != "sockname") return {};
  raw_address& known = peer ? peer_address_ : own_address_;
  if (known.len == 0 && fd_ >= 0 && kind_ == transport_kind::socket) {
    socklen_t len = sizeof known.addr;
    auto* addr = reinterpret_cast<sockaddr*>(&known.addr);
    if ((peer ? ::getpeername(fd_, addr, &len) : ::getsockname(fd_, addr, &len)) == 0) known.len = len;
  }
  if (known.len == 0) return {};
  return format_address(reinterpret_cast<const sockaddr*>(&known.addr), known.len);
}

}  // namespace detail

namespace {

// A reader or writer with no stream (default-made, moved from, or a
// Process's pipe its config did not ask for, Python's None) raises rather
// than crash: require_stream(t, call) throws RuntimeError naming the call.
[[noreturn]] void throw_no_stream(const char* call, bool reader) {
  throw RuntimeError(asyncio_errc::invalid_state,
                     std::string(call) + " on an empty " + (reader ? "StreamReader" : "StreamWriter") +
                         ": it was default-made or moved from, or it is a Process's " +
                         (reader ? "stdout_()/stderr_() whose config did not set .stdout_/.stderr_"
                                 : "stdin_() whose config did not set .stdin_") +
                         " = subprocess::PIPE");
}

inline void require_stream(const std::shared_ptr<detail::stream_transport>& t, const char* call, bool reader) {
  if (t == nullptr) [[unlikely]]
    throw_no_stream(call, reader);
}

constexpr bool reader = true;
constexpr bool writer = false;

}  // namespace

std::string StreamReader::read(std::ptrdiff_t n) {
  require_stream(t_, "read()", reader);
  t_->check_error();
  if (n == 0) return {};
  if (n < 0) {
    while (t_->fill()) {
    }
    return t_->take_all();
  }
  if (t_->buffered() == 0) t_->fill();
  return t_->take(static_cast<std::size_t>(n));
}

std::string StreamReader::readexactly(std::size_t n) {
  require_stream(t_, "readexactly()", reader);
  // A count past PTRDIFF_MAX is a negative one converted to std::size_t (a
  // port's readexactly(n) with n gone below zero): refused as asyncio's
  // ValueError, not a wait for EOF and an IncompleteReadError expecting
  // 18446744073709551615 bytes.
  if (n > static_cast<std::size_t>(PTRDIFF_MAX)) {
    throw ValueError("readexactly size can not be less than zero (got " +
                     std::to_string(static_cast<std::ptrdiff_t>(n)) + ", converted to std::size_t)");
  }
  t_->check_error();
  while (t_->buffered() < n) {
    if (!t_->fill()) throw IncompleteReadError(t_->take_all(), n);
  }
  return t_->take(n);
}

namespace {

// readuntil()'s ValueErrors, with asyncio's texts, so that a port's `except ValueError` catches them.
[[noreturn]] void throw_empty_separator() {
  throw ValueError("readuntil(): Separator should be at least one-byte string; pass the bytes that end a chunk");
}

}  // namespace

std::string StreamReader::readuntil(std::string_view separator) {
  require_stream(t_, "readuntil()", reader);
  if (separator.empty()) throw_empty_separator();
  return read_until_first(std::span(&separator, 1));
}

std::string StreamReader::readuntil(std::initializer_list<std::string_view> separators) {
  return readuntil(std::span(separators.begin(), separators.size()));
}

std::string StreamReader::readuntil(std::span<const std::string_view> separators) {
  require_stream(t_, "readuntil()", reader);
  if (separators.empty()) {
    throw ValueError(
        "readuntil(): Separator should contain at least one element; pass the separators that may end a chunk");
  }
  // Shortest first, as asyncio sorts them, and stably: of two matches ending at the same byte the
  // shorter wins, and of two equal ones the first given.
  std::vector<std::string_view> sorted(separators.begin(), separators.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](std::string_view a, std::string_view b) { return a.size() < b.size(); });
  if (sorted.front().empty()) throw_empty_separator();
  return read_until_first(sorted);
}

std::string StreamReader::read_until_first(std::span<const std::string_view> separators) {
  t_->check_error();
  const std::size_t shortest = separators.front().size();
  const std::size_t longest = separators.back().size();
  const std::size_t limit = t_->config().limit;
  std::size_t searched = 0;  // no separator ends before searched + its size
  for (;;) {
    std::string_view data = t_->view();
    if (data.size() >= searched + shortest) {
      // The match that ends first, as asyncio's `end < match_end`.
      std::size_t match_start = std::string_view::npos;
      std::size_t match_end = std::string_view::npos;
      for (std::string_view separator : separators) {
        const std::size_t at = data.find(separator, searched);
        if (at != std::string_view::npos && at + separator.size() < match_end) {
          match_start = at;
          match_end = at + separator.size();
        }
      }
      // The limit counts the bytes before the separator, as asyncio's: a
      // line of exactly `limit` bytes plus its separator is accepted.
      if (match_end != std::string_view::npos) {
        if (match_start > limit) {
          throw LimitOverrunError("Separator is found, but chunk is longer than limit", match_start);
        }
        return t_->take(match_end);
      }
      // Where the longest separator could still start (never below 0, though data may be
      // shorter than it).
      searched = data.size() + 1 > longest ? data.size() + 1 - longest : 0;
      if (searched > limit) {
        // asyncio's transport reads into the buffer as bytes arrive until it
        // holds more than twice the limit, so bytes that have arrived by now
        // are part of its answer: a separator among them is "found" at its
        // offset. Take them too, without waiting, before deciding.
        if (t_->buffered() / 2 <= limit && t_->fill_nowait() > 0) continue;
        throw LimitOverrunError("Separator is not found, and chunk exceed the limit", searched);
      }
    }
    if (!t_->fill()) throw IncompleteReadError(t_->take_all(), 0);
  }
}

std::optional<std::string> StreamReader::anext() {
  std::string line = readline();
  if (line.empty()) return std::nullopt;
  return line;
}

std::string StreamReader::readline() {
  require_stream(t_, "readline()", reader);
  try {
    return readuntil("\n");
  } catch (const IncompleteReadError& e) {
    return e.partial();
  } catch (const LimitOverrunError& e) {
    // asyncio drops the overlong line (or what was buffered of it) and
    // raises ValueError with the overrun's message, which ported code
    // catches.
    std::string_view data = t_->view();
    if (data.substr(e.consumed()).starts_with("\n")) {
      t_->take(e.consumed() + 1);
    } else {
      t_->take_all();
    }
    throw ValueError(e.what());
  }
}

// Calls that cannot throw answer for an empty handle as for a closed stream.
bool StreamReader::at_eof() const noexcept { return t_ == nullptr || t_->at_eof(); }

std::exception_ptr StreamReader::exception() const noexcept { return t_ == nullptr ? nullptr : t_->exception(); }

void StreamReader::set_exception(std::exception_ptr error) {
  require_stream(t_, "set_exception()", reader);
  t_->set_exception(std::move(error));
}

void StreamWriter::write(std::string_view data) {
  require_stream(t_, "write()", writer);
  t_->write(data);
}

void StreamWriter::writelines(const std::vector<std::string>& lines) {
  require_stream(t_, "writelines()", writer);
  for (const std::string& line : lines) t_->write(line);
}

void StreamWriter::drain() {
  require_stream(t_, "drain()", writer);
  t_->drain();
}

std::size_t StreamWriter::sendfile(int file, std::uint64_t offset, std::optional<std::uint64_t> count, bool fallback) {
  require_stream(t_, "sendfile()", writer);
  return t_->send_file(file, offset, count, fallback);
}

void StreamWriter::write_eof() {
  require_stream(t_, "write_eof()", writer);
  t_->write_eof();
}

void StreamWriter::close() {
  require_stream(t_, "close()", writer);
  t_->close();
}

void StreamWriter::abort() {
  require_stream(t_, "abort()", writer);
  t_->abort();
}

bool StreamWriter::is_closing() const noexcept { return t_ == nullptr || t_->closing(); }

void StreamWriter::wait_closed() {
  require_stream(t_, "wait_closed()", writer);
  t_->wait_closed();
}

std::size_t StreamWriter::transport_buffer_size() const noexcept { return t_ == nullptr ? 0 : t_->write_buffered(); }
int StreamWriter::fileno() const noexcept { return t_ == nullptr ? -1 : t_->fd(); }

std::string StreamWriter::repr() const {
  return t_ == nullptr ? "<StreamWriter>" : "<StreamWriter transport=" + t_->repr() + ">";
}

std::string StreamReader::repr() const { return t_ == nullptr ? "<StreamReader>" : t_->reader_repr(); }

address StreamWriter::get_extra_info(std::string_view name) const {
  require_stream(t_, "get_extra_info()", writer);
  return t_->extra_address(name);
}

std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, int port, stream_config config) {
  return detail::open_tcp(host, port, {}, config);
}

std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, int port, local_addr local,
                                                      stream_config config) {
  return detail::open_tcp(host, port, {.local = std::move(local)}, config);
}

bool StreamWriter::can_write_eof() const noexcept { return t_ == nullptr || !t_->is_tls(); }

void StreamWriter::start_tls(const ssl_context& ssl, tls_options tls) {
  require_stream(t_, "start_tls()", writer);
  t_->start_tls(ssl, tls, "");
}

std::optional<tls_info> StreamWriter::tls() const {
  require_stream(t_, "tls()", writer);
  return t_->tls();
}

namespace detail {

void check_tls_args(const ssl_context& ssl, const tls_options& tls, const char* call) {
  if (ssl.protocol() != ssl_protocol::tls_client) {
    throw ValueError(std::string(call) +
                     "(): a client connection needs an ssl_context(ssl_protocol::tls_client) "
                     "(create_default_context()), not a server's");
  }
  check_handshake_timeout(tls.ssl_handshake_timeout);
  check_shutdown_timeout(tls.ssl_shutdown_timeout);
}

void require_server_hostname(const ssl_context& ssl, const tls_options& tls) {
  if (!tls.server_hostname && ssl.check_hostname()) {
    throw ValueError(
        "You must set server_hostname when using ssl without a host: pass tls_options{.server_hostname = "
        "\"name\"} (the name the server's certificate carries)");
  }
}

}  // namespace detail

namespace {

// take_connected_socket(sock, config, unix_only, call) checks a socket the caller connected and
// makes its streams, as asyncio's create_connection(sock=): non-blocking, TCP_NODELAY for TCP.
// Until the streams are made, a refusal leaves fd the caller's.
std::pair<StreamReader, StreamWriter> take_connected_socket(connected_socket sock, stream_config config, bool unix_only,
                                                            const char* call) {
  detail::require_running_loop();
  detail::check_stream_config(config, call);
  const int family =
      detail::check_stream_socket(sock.fd, unix_only, call,
                                  std::string("connected_socket{fd} needs a connected SOCK_STREAM socket") +
                                      (unix_only ? " of AF_UNIX (open_connection() takes a TCP one)" : ""));
  sockaddr_storage peer{};
  socklen_t peer_len = sizeof peer;
  if (::getpeername(sock.fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) < 0) {
    const int err = errno;
    if (err != ENOTCONN) raise_os_error(err, std::string(call) + "(): getpeername(fd " + std::to_string(sock.fd) + ")");
    int accepting = 0;
    socklen_t len = sizeof accepting;
    ::getsockopt(sock.fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len);
    throw ValueError(std::string(call) + "(): fd " + std::to_string(sock.fd) + " is not connected: " +
                     (accepting != 0 ? "it is listening; serve it with start_server(handler, listening_socket{fd})"
                                     : "connect it first (sock_connect()), or pass the host and port to connect to"));
  }
  set_nonblocking(sock.fd);
  if (family == AF_INET || family == AF_INET6) {
    int one = 1;
    ::setsockopt(sock.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return detail::make_streams(sock.fd, config, nullptr, 0);
}

}  // namespace

std::pair<StreamReader, StreamWriter> open_connection(connected_socket sock, stream_config config) {
  return take_connected_socket(sock, config, false, "open_connection");
}

std::pair<StreamReader, StreamWriter> open_connection(connected_socket sock, const ssl_context& ssl, tls_options tls,
                                                      stream_config config) {
  detail::check_tls_args(ssl, tls, "open_connection");
  detail::require_server_hostname(ssl, tls);
  auto streams = take_connected_socket(sock, config, false, "open_connection");
  streams.second.start_tls(ssl, tls);
  return streams;
}

std::pair<StreamReader, StreamWriter> open_unix_connection(connected_socket sock, stream_config config) {
  return take_connected_socket(sock, config, true, "open_unix_connection");
}

std::pair<StreamReader, StreamWriter> open_unix_connection(connected_socket sock, const ssl_context& ssl,
                                                           tls_options tls, stream_config config) {
  detail::check_tls_args(ssl, tls, "open_unix_connection");
  detail::require_server_hostname(ssl, tls);
  auto streams = take_connected_socket(sock, config, true, "open_unix_connection");
  streams.second.start_tls(ssl, tls);
  return streams;
}

std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, int port, const ssl_context& ssl,
                                                      tls_options tls, stream_config config) {
  detail::check_tls_args(ssl, tls, "open_connection");
  auto streams = open_connection(host, port, config);
  if (!tls.server_hostname) tls.server_hostname = host;
  streams.second.start_tls(ssl, tls);
  return streams;
}

std::pair<StreamReader, StreamWriter> open_connection(const std::string& host, int port, local_addr local,
                                                      const ssl_context& ssl, tls_options tls, stream_config config) {
  return detail::open_connection_with(host, port, {.local = std::move(local)}, ssl, std::move(tls), config);
}

namespace detail {

std::pair<StreamReader, StreamWriter> open_connection_with(const std::string& host, int port,
                                                           const connect_options& options, stream_config config) {
  return open_tcp(host, port, options, config);
}

std::pair<StreamReader, StreamWriter> open_connection_with(const std::string& host, int port,
                                                           const connect_options& options, const ssl_context& ssl,
                                                           tls_options tls, stream_config config) {
  check_tls_args(ssl, tls, "open_connection");
  auto streams = open_tcp(host, port, options, config);
  if (!tls.server_hostname) tls.server_hostname = host;
  streams.second.start_tls(ssl, tls);
  return streams;
}

}  // namespace detail

std::pair<StreamReader, StreamWriter> open_unix_connection(const std::string& path, const ssl_context& ssl,
                                                           tls_options tls, stream_config config) {
  detail::check_tls_args(ssl, tls, "open_unix_connection");
  detail::require_server_hostname(ssl, tls);
  auto streams = open_unix_connection(path, config);
  streams.second.start_tls(ssl, tls);
  return streams;
}

std::pair<StreamReader, StreamWriter> open_unix_connection(const std::string& path, stream_config config) {
  detail::check_stream_config(config, "open_unix_connection");
  const detail::resolved_address addr = detail::unix_address(path, "open_unix_connection");
  const auto* sa = reinterpret_cast<const sockaddr*>(&addr.addr);
  int fd = detail::connect_socket(AF_UNIX, sa, addr.len);
  return detail::make_streams(fd, config, sa, addr.len);
}

}  // namespace greenlet::asyncio
