// stream_transport.hpp: one connected socket shared by a StreamReader and a
// StreamWriter: the read buffer, the write buffer flushed by a writer
// callback, and closing.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>

#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/future.hpp"
#include "greenlet/detail/loop_core.hpp"
#include "greenlet/io/streams.hpp"
#include "greenlet/io/tls.hpp"
#include "io/resolve.hpp"

namespace greenlet::asyncio::detail {

class tls_session;

// transport_kind says which system calls move the bytes: recv/send with
// MSG_NOSIGNAL on a socket, read/write on a pipe (SIGPIPE blocked around
// the write, see write_no_sigpipe()). A pipe's write_eof() closes it.
enum class transport_kind : unsigned char { socket, pipe };

// check_stream_config(config, call) refuses a limit of 0 with ValueError, as
// asyncio's StreamReader(limit=0) ("Limit cannot be <= 0"): every line but
// an empty one would overrun it. Called before anything is connected or
// owned.
void check_stream_config(const stream_config& config, const char* call);

class stream_transport {
 public:
  // read_budget: the bytes a stream reads before it lets the loop poll (see
  // yield_if_over_read_budget()). asyncio reads up to 256 KiB a loop
  // iteration; a yield (sleep(0) and a zero-timeout poll) per 256 KiB is
  // lost in the noise of one fast stream's throughput (bench/io_bench
  // StreamsBulkRead) and bounds how long a reader keeps the loop.
  static constexpr std::size_t read_budget = 256 * 1024;
  // unread_discard_budget: at most this many unread bytes (or 2 x the
  // stream's limit if more, up to 16 MiB) are read and dropped when a
  // socket is closed (see close_fd()).
  static constexpr std::size_t unread_discard_budget = 1024 * 1024;

  // make(loop, fd, config, kind) is a transport for the connected,
  // non-blocking fd (owned from then on), as the handle that StreamReader,
  // StreamWriter and Process share. When the last copy of that handle
  // goes, handles_gone() decides whether the transport goes with it.
  static std::shared_ptr<stream_transport> make(loop_core& loop, int fd, stream_config config,
                                                transport_kind kind = transport_kind::socket);
  stream_transport(const stream_transport&) = delete;
  stream_transport& operator=(const stream_transport&) = delete;

  // Reading. fill() awaits more bytes into rbuf (true, also when another
  // task's at_eof() read them while this one waited); false at EOF (or
  // closed) with nothing new buffered.
  // After read_budget bytes read with no poll of the loop in between, it
  // first yields to the loop (see yield_if_over_read_budget()).
  bool fill();
  // fill_nowait() reads what the fd has now without waiting: 1 if bytes
  // came, 0 at EOF (or closed), -1 if none are there yet. Never yields: a
  // caller looping on it calls yield_if_over_read_budget() between calls.
  int fill_nowait();
  // yield_if_over_read_budget() is sleep(0) once read_budget bytes were
  // read since the loop last polled. A peer that writes as fast as the
  // stream reads always has bytes ready, so reads never wait and the loop
  // would never poll: timers and other connections would stall (asyncio
  // reads once per loop iteration). Throws CancelledError from the yield.
  void yield_if_over_read_budget() {
    if (read_since_poll_ >= read_budget) [[unlikely]]
      yield_to_loop();
  }
  // check_error() raises the connection's error, if it had one: the first
  // recv/read or send/write that failed (not EAGAIN/EINTR). It sticks, as
  // asyncio's StreamReader.set_exception(): every later read, drain() and
  // wait_closed() raise it, and at_eof() stays false unless EOF came first.
  // A reader's set_exception() sticks the same way for the reads and drain() (asyncio's drain()
  // raises its reader's exception()); the connection's own error comes first.
  void check_error() const {
    if (error_ != 0 || reader_exception_ != nullptr) [[unlikely]]
      raise_error();
  }
  // set_exception(e) is StreamReader.set_exception(): e replaces an earlier one and a waiting
  // reader wakes to raise it. The connection goes on (writes, close()). exception() is the error
  // reads raise: the connection's, else the one set, else null.
  void set_exception(std::exception_ptr e) noexcept;
  std::exception_ptr exception() const noexcept;
  // repr() is asyncio's repr() of the transport: "<_SelectorSocketTransport fd=6 read=polling
  // write=<idle, bufsize=0>>" ("_UnixPipeTransport" for a pipe; "closing", "closed" without fd).
  // reader_repr() is its StreamReader's: "<StreamReader 4 bytes eof transport=<...>>".
  std::string repr() const;
  std::string reader_repr() const;
  std::size_t buffered() const noexcept { return rbuf_.size() - rpos_; }
  std::string_view view() const noexcept { return std::string_view(rbuf_).substr(rpos_); }
  std::string take(std::size_t n);
  // take_all() is take(buffered()), without copying a big buffer.
  std::string take_all();
  // at_eof() is true once EOF was read and the buffer is empty. EOF that
  // came with the last bytes (a short read took them, and the poller saw
  // the FIN or hang-up since) is read now: with an empty buffer, one read
  // that cannot wait. An error it meets is kept for the next read.
  bool at_eof() noexcept;

  // Writing.
  void write(std::string_view data);
  void drain();
  void write_eof();
  // close() sends what is buffered, then closes; readers see EOF at once. A TLS stream sends
  // close_notify after the buffered bytes and, as asyncio's SSLProtocol, then reads (dropping what
  // comes) until the peer's close_notify or EOF before it closes the socket; past
  // ssl_shutdown_timeout seconds it fails the stream with TimeoutError("SSL shutdown timed out"),
  // which wait_closed() raises. Never waits itself. The wait ends early (the socket is closed
  // then) when the last reader and writer go.
  void close();
  // abort(): close() without sending what is still buffered (no close_notify either).
  void abort() noexcept;
  void wait_closed();
  // watch_reader_gone() makes a write pipe (a FIFO or socket) close when
  // its reader goes, without waiting for a write to fail, as asyncio's
  // _UnixWritePipeTransport (which add_reader()s its fd for that): the
  // poller's hang-up watch runs on_reader_gone(). Until then the loop
  // counts the watch as I/O that may still come (no deadlock report).
  void watch_reader_gone();
  // send_file() is StreamWriter::sendfile(): it awaits the write buffer's
  // last byte handed to the socket, then sock_sendfile() on it, write()
  // refused meanwhile (sendfile.cpp).
  std::size_t send_file(int file, std::uint64_t offset, std::optional<std::uint64_t> count, bool fallback);
  // start_tls(ctx, options, default_hostname) is StreamWriter::start_tls(): from now on the bytes
  // go through a TLS session, client side unless the connection was accepted (set_accepted()); it
  // returns once the handshake is done (tls_transport.cpp). server_hostname defaults to
  // default_hostname. On failure the connection is failed with the error it throws.
  void start_tls(const ssl_context& ctx, const tls_options& options, const std::string& default_hostname);
  bool is_tls() const noexcept { return tls_ != nullptr; }
  std::optional<tls_info> tls() const;
  // set_accepted() marks a connection a server accepted: start_tls() makes it the server side.
  void set_accepted() noexcept { accepted_ = true; }
  bool closing() const noexcept { return closing_; }
  std::size_t write_buffered() const noexcept { return wbuf_.size() - wpos_; }
  int fd() const noexcept { return fd_; }
  // extra_address(name) is get_extra_info(name): "peername" or "sockname",
  // kept once known so that it outlives the fd, as asyncio's (which reads
  // both when the transport is made); empty for other names, or a pipe.
  address extra_address(std::string_view name);
  // set_peer_address(addr, len) is the peer's address accept() or
  // connect() had at hand (no getpeername() needed).
  void set_peer_address(const sockaddr* addr, socklen_t len) noexcept;
  transport_kind kind() const noexcept { return kind_; }
  const stream_config& config() const noexcept { return config_; }

 private:
  stream_transport(loop_core& loop, int fd, stream_config config, transport_kind kind);
  ~stream_transport();
  // handles_gone() runs when the last handle goes. Bytes still waiting to
  // be sent are not dropped: as asyncio's selector keeps a transport with a
  // pending write, the loop keeps this one (a close hook owns it) until
  // they are written or the peer fails, then the fd is closed and the
  // transport deleted (on_writable()); the loop's close() deletes it
  // earlier. Otherwise it is deleted at once, closing the fd.
  void handles_gone() noexcept;
  void yield_to_loop();
  void read_pending_eof() noexcept;
  void count_read(std::size_t n) noexcept {
    if (drained_at_ != budget_waits_) {  // the loop polled since the count began
      budget_waits_ = drained_at_;
      read_since_poll_ = 0;
    }
    read_since_poll_ += n;
  }
  void on_writable();
  // on_reader_gone() closes the transport: failed with BrokenPipeError if
  // bytes were still buffered (they can never be read), cleanly otherwise.
  void on_reader_gone();
  void flush();  // sends what the socket takes now; never waits
  // The TLS side (tls_transport.cpp): fill_nowait() and write() for a TLS
  // stream, the handshake's reads, the session's output into wbuf_, and
  // the close_notify queued when the stream closes.
  int fill_tls_nowait();
  void write_tls(std::string_view data);
  void run_handshake();
  void send_tls_output();
  void queue_close_notify() noexcept;
  // The wait for the peer's close_notify after close(): await_close_notify() starts it (the
  // timer, then a first read), read_until_close_notify() reads and drops what comes (the read
  // callback's and the continuation's body), end_close_notify_wait() is its clean end (the
  // peer's close_notify or EOF), stop_close_notify_wait() drops the timer and callbacks.
  void await_close_notify() noexcept;
  void read_until_close_notify() noexcept;
  void end_close_notify_wait() noexcept;
  void stop_close_notify_wait() noexcept;
  // end_tls_at_eof() is the peer's close_notify or EOF on an established
  // session: EOF for the reader, and close() (asyncio's SSL protocol starts
  // its shutdown there): the buffered bytes go, then our close_notify.
  void end_tls_at_eof();
  // fail_tls(e) fails the connection with e (an SSLError, a handshake's
  // ConnectionAbortedError...): every later call raises e itself.
  void fail_tls(std::exception_ptr e) noexcept;
  // release_idle_read_buffer(), before a read waits with nothing buffered, frees the room
  // fill_nowait() reserved (64 KiB): an idle connection then holds no read buffer, whose first
  // pages would stay resident while it waits (~4-8 KiB per idle keep-alive connection).
  void release_idle_read_buffer() noexcept {
    if (rpos_ == rbuf_.size() && rbuf_.capacity() > 15) {
      std::string().swap(rbuf_);
      rpos_ = 0;
    }
  }
  void compact_read_buffer() noexcept {
    if (rpos_ > 0 && rpos_ >= rbuf_.size() / 2) {
      rbuf_.erase(0, rpos_);
      rpos_ = 0;
    }
  }
  // await_drain_waiter() awaits the next time flush() leaves at most
  // low_water bytes (or the connection fails): drain()'s and send_file()'s wait.
  void await_drain_waiter();
  [[noreturn]] void raise_error() const;
  void fail(int err, const char* call) noexcept;
  void wake_reader() noexcept;
  void wake_drainer();
  void finish_close() noexcept;
  // close_fd() forgets and closes fd_. A socket's unread input is read and
  // dropped first, without waiting (discard_unread_input()): Linux answers
  // a close() with bytes left in the receive queue by a reset, which also
  // throws away what the send queue still holds, the end of a reply the
  // peer was to get (a handler that answers without reading a request's
  // body). asyncio avoids it by reading eagerly while the connection is
  // open. Bytes that arrive after the close, or beyond the budget, still
  // get the peer a reset: a peer that keeps sending cannot hold the socket.
  void close_fd() noexcept;
  void discard_unread_input() noexcept;

  loop_core& loop_;
  int fd_;
  stream_config config_;
  transport_kind kind_;

  std::string rbuf_;
  std::size_t rpos_ = 0;
  bool eof_ = false;
  bool adopted_ = false;          // the poller watches fd_ edge-triggered
  bool drained_ = false;          // the last read came back short: fd_ was empty
  std::uint64_t drained_at_ = 0;  // the poller's waits() at that read
  Future<void> read_waiter_;      // set while a reader waits in fill()
  // Fairness (yield_if_over_read_budget()): bytes read since the loop's
  // waits() was budget_waits_, that is since it last polled or yielded.
  std::size_t read_since_poll_ = 0;
  std::uint64_t budget_waits_ = 0;

  struct raw_address {
    sockaddr_storage addr{};
    socklen_t len = 0;  // 0: not known yet
  };
  raw_address peer_address_;  // for extra_address()
  raw_address own_address_;

  std::string wbuf_;
  std::size_t wpos_ = 0;
  bool writer_registered_ = false;
  bool eof_pending_ = false;   // write_eof() once the buffer is sent
  bool eof_written_ = false;   // write_eof() was called: write() is an error
  bool sending_file_ = false;  // send_file() runs: write() is an error, as asyncio's
  bool closing_ = false;
  int error_ = 0;                        // see check_error()
  const char* error_call_ = nullptr;     // the call that failed: "recv", "send"...
  std::exception_ptr reader_exception_;  // set_exception()'s
  std::exception_ptr failure_;           // the error when it is not an errno (fail_tls())
  std::unique_ptr<tls_session> tls_;     // set by start_tls()
  bool handshaking_ = false;
  double shutdown_timeout_ = 30.0;        // tls_options::ssl_shutdown_timeout
  bool awaiting_close_notify_ = false;    // closed: reading until the peer's close_notify
  bool close_notify_reader_ = false;      // read_until_close_notify() is fd_'s read callback
  std::optional<Handle> shutdown_timer_;  // while awaiting_close_notify_
  std::optional<Handle> shutdown_step_;   // read_until_close_notify()'s continuation, if queued
  bool peer_ended_tls_ = false;           // end_tls_at_eof() ran: see fail()
  bool accepted_ = false;
  Future<void> drain_waiter_;  // shared by every task in drain()
  Future<void> closed_;
  // Set by handles_gone() while the loop keeps the transport to send the
  // rest: close_hook_ is the loop's close hook that deletes it.
  bool orphaned_ = false;
  std::uint64_t close_hook_ = 0;
};

// make_streams(fd, config, peer, peer_len) wraps a connected non-blocking
// fd (owned from then on) in a reader and a writer on the running loop;
// peer (if given) is the address the fd is connected to.
std::pair<StreamReader, StreamWriter> make_streams(int fd, stream_config config, const sockaddr* peer = nullptr,
                                                   socklen_t peer_len = 0);
// read_scratch() is the thread's 64 KiB buffer that reads land in.
constexpr std::size_t read_chunk = 64 * 1024;
char* read_scratch();
// write_no_sigpipe(fd, data, size) is write() that reports a reader-less
// pipe as EPIPE without raising SIGPIPE; errno as write() leaves it.
ssize_t write_no_sigpipe(int fd, const char* data, std::size_t size);
// check_tls_args(ssl, tls, call) refuses before connecting what a client handshake would refuse
// after: a server context (ValueError), a handshake timeout <= 0.
void check_tls_args(const ssl_context& ssl, const tls_options& tls, const char* call);
// require_server_hostname(ssl, tls) refuses TLS without a host to check the certificate against
// (a Unix socket, a given socket), in asyncio's words.
void require_server_hostname(const ssl_context& ssl, const tls_options& tls);

}  // namespace greenlet::asyncio::detail
