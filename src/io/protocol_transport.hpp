// protocol_transport.hpp: the transport behind Transport handles (io/protocols.hpp), following
// asyncio's _SelectorSocketTransport and the Unix pipe transports: a reader callback on the loop
// takes one read per readiness and hands it to the protocol; writes go out at once as far as the
// kernel takes them, the rest is buffered and sent from a writer callback.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/future.hpp"
#include "greenlet/io/protocols.hpp"
#include "greenlet/io/tls.hpp"

namespace greenlet::asyncio::detail {

class tls_session;

// max_protocol_read: the most one read takes, asyncio's max_size.
constexpr std::size_t max_protocol_read = 256 * 1024;
// protocol_read_buffer() is the thread's max_protocol_read bytes that reads land in (ciphertext,
// or a Protocol's bytes before data_received() sees them). malloc'd once per thread (the tests
// count operator new); only the pages a read touches become resident.
char* protocol_read_buffer();
// read_retrying(fd, into, size) is read(2) retried on EINTR: the byte count, 0 at EOF, or -1 with
// errno set (EAGAIN included). Throws nothing.
inline ssize_t read_retrying(int fd, char* into, std::size_t size) noexcept {
  ssize_t n;
  do {
    n = ::read(fd, into, size);
  } while (n < 0 && errno == EINTR);
  return n;
}
// throw_no_data_receiver(count) throws the RuntimeError for bytes that arrived for a protocol
// that is neither a Protocol nor a BufferedProtocol (asyncio fails there too).
[[noreturn]] void throw_no_data_receiver(std::size_t count);
// os_error_ptr(err, call) is the OSError subclass raise_os_error() would throw, as an exception_ptr.
std::exception_ptr os_error_ptr(int err, const char* call) noexcept;

enum class protocol_transport_kind : unsigned char { socket, read_pipe, write_pipe };

class protocol_transport : public std::enable_shared_from_this<protocol_transport> {
 public:
  // protocol_transport(loop, fd, kind, protocol): fd is owned from then on (non-blocking).
  protocol_transport(event_loop& loop, int fd, protocol_transport_kind kind, std::shared_ptr<BaseProtocol> protocol);
  protocol_transport(const protocol_transport&) = delete;
  protocol_transport& operator=(const protocol_transport&) = delete;
  ~protocol_transport();

  // start(ready) is asyncio's transport constructor: connection_made(), then reading (or, for a
  // write pipe, the watch for its reader going away), then `ready` resolved if given, each as a
  // callback in that order.
  void start(std::optional<Future<void>> ready);
  // use_tls(ctx, server_side, server_hostname, handshake_timeout, shutdown_timeout, resume), before
  // start(): the connection is TLS, as asyncio's SSLProtocol: start() makes the handshake, and
  // connection_made() (and `ready`) come once it completes; a failed handshake ends the connection
  // without them (`ready` gets the error). close() then waits up to shutdown_timeout seconds for
  // the peer's close_notify (see close()). Throws as tls_session's constructor.
  void use_tls(const ssl_context& ctx, bool server_side, const std::string& server_hostname, double handshake_timeout,
               double shutdown_timeout, const ssl_session& resume = {});
  std::optional<tls_info> tls() const;
  // upgrade_to_tls(ctx, server_side, server_hostname, handshake_timeout, shutdown_timeout, ready, resume)
  // is start_tls():
  // the connection, plain so far, makes a TLS handshake; `ready` is resolved once it completed
  // (what the protocol writes meanwhile is sent after it, encrypted), or gets its error. Throws
  // RuntimeError for a pipe, a closing or TLS transport; as tls_session's constructor.
  void upgrade_to_tls(const ssl_context& ctx, bool server_side, const std::string& server_hostname,
                      double handshake_timeout, double shutdown_timeout, Future<void> ready,
                      const ssl_session& resume = {});
  // on_lost(fn): fn runs once the connection is lost (a server counts its connections).
  void on_lost(std::function<void()> fn) { on_lost_ = std::move(fn); }

  void write(std::string_view data);
  void write_eof();
  // close(): the buffered bytes go, then connection_lost(nullptr). A TLS connection sends
  // close_notify after them and, as asyncio's SSLProtocol (_start_shutdown()), keeps reading until
  // the peer's close_notify (or EOF) comes, dropping the data before it; then it is lost without
  // error. Past shutdown_timeout seconds it is aborted with TimeoutError("SSL shutdown timed out").
  // Never waits itself.
  void close() noexcept;
  void abort() noexcept { force_close(nullptr); }
  void pause_reading();
  void resume_reading();
  void set_limits(std::size_t high, std::size_t low);
  void set_protocol(std::shared_ptr<BaseProtocol> protocol);

  bool closing() const noexcept { return closing_; }
  bool reading() const noexcept { return !closing_ && !paused_ && kind_ != protocol_transport_kind::write_pipe; }
  bool is_tls() const noexcept { return tls_ != nullptr; }
  protocol_transport_kind kind() const noexcept { return kind_; }
  int fd() const noexcept { return fd_; }
  std::size_t buffered() const noexcept { return wbuf_.size() - wpos_; }
  std::size_t high_water() const noexcept { return high_; }
  std::size_t low_water() const noexcept { return low_; }
  const std::shared_ptr<BaseProtocol>& protocol() const noexcept { return protocol_; }
  address extra(std::string_view name) const;
  // repr() is asyncio's repr() of the transport (Transport::repr()).
  std::string repr() const;
  void set_peer(const sockaddr* addr, socklen_t len);

 private:
  void add_reader();
  void on_readable();
  // The TLS side (protocol_tls.cpp).
  void on_tls_readable();
  void start_handshake();
  void advance_handshake();
  void handshake_failed(std::exception_ptr error) noexcept;
  void deliver(std::string_view data);
  // The wait for the peer's close_notify after close() (protocol_tls.cpp): await_close_notify()
  // starts it (timer and reader), read_until_close_notify() is its reader callback,
  // end_close_notify_wait(error) ends it: lost with error, or cleanly (eof_received(), then
  // connection_lost(nullptr) once the rest is sent) for a null one.
  void await_close_notify() noexcept;
  void read_until_close_notify();
  void end_close_notify_wait(std::exception_ptr error) noexcept;
  void send_tls_output();
  void write_raw(std::string_view data);
  void connection_made();
  void on_eof();
  void on_writable();
  void on_reader_gone();
  // send_some(data) sends what the kernel takes now: the count, or -1 with the error in err.
  ssize_t send_some(std::string_view data, int& err) noexcept;
  // send_failed(err): a send failed with err (not EAGAIN): the connection is lost.
  void send_failed(int err) noexcept;
  void fatal_error(std::exception_ptr exc, const char* message) noexcept;
  void fatal_os_error(int err, const char* call, const char* message) noexcept;
  void force_close(std::exception_ptr exc) noexcept;
  void schedule_connection_lost(std::exception_ptr exc) noexcept;
  // call_connection_lost(exc) ends the connection; what connection_lost() throws goes to the loop.
  void call_connection_lost(std::exception_ptr exc);
  void maybe_pause_protocol();
  void maybe_resume_protocol();
  void call_flow_control(void (BaseProtocol::*callback)(), const char* message) noexcept;
  void drop() noexcept;
  void close_fd() noexcept;
  std::string describe() const;
  event_loop& loop_;
  int fd_;
  int fileno_;  // fd_ as it was opened, for repr() after the close
  protocol_transport_kind kind_;
  std::shared_ptr<BaseProtocol> protocol_;
  Protocol* plain_protocol_ = nullptr;             // protocol_ as a Protocol, or null
  BufferedProtocol* buffered_protocol_ = nullptr;  // protocol_ as a BufferedProtocol, or null
  std::function<void()> on_lost_;
  std::unique_ptr<tls_session> tls_;
  std::string plain_;                  // the plaintext one TLS read made
  std::string pending_plain_;          // written during start_tls()'s handshake
  std::optional<Future<void>> ready_;  // for create_connection(): resolved at connection_made()
  std::optional<Handle> handshake_timer_;
  double handshake_timeout_ = 60.0;
  std::optional<Handle> shutdown_timer_;  // ssl_shutdown_timeout's, while awaiting_close_notify_
  double shutdown_timeout_ = 30.0;
  bool awaiting_close_notify_ = false;  // closed: reading until the peer's close_notify
  bool app_connected_ = false;          // connection_made() ran (a TLS one waits for its handshake)
  bool peer_ended_ = false;             // the peer's EOF (or close_notify) came
  std::string wbuf_;
  std::size_t wpos_ = 0;  // the bytes of wbuf_ before it are sent
  std::size_t high_ = 64 * 1024;
  std::size_t low_ = 16 * 1024;
  sockaddr_storage peer_{};
  socklen_t peer_len_ = 0;
  sockaddr_storage own_{};
  socklen_t own_len_ = 0;
  std::uint64_t close_hook_ = 0;
  // conn_lost_: asyncio's _conn_lost, the writes dropped since the connection was lost (+1).
  unsigned conn_lost_ = 0;
  bool closing_ = false;
  bool paused_ = false;           // pause_reading()
  bool protocol_paused_ = false;  // pause_writing() called, resume_writing() not yet
  bool eof_ = false;              // write_eof() called
  bool reader_added_ = false;
  bool writer_added_ = false;
  bool lost_ = false;         // connection_lost() scheduled or done
  bool watch_reader_ = true;  // a write pipe watches for its reader going away (not a pty)
};

}  // namespace greenlet::asyncio::detail
