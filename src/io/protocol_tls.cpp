// protocol_tls.cpp: the protocol transport's TLS side, asyncio's SSLProtocol
// in its place: the socket moves ciphertext as for a plain connection (the
// same reader callback, write buffer and close); a tls_session turns it into
// the plaintext data_received() gets, and write() into ciphertext. The app
// protocol's connection_made() waits for the handshake; a handshake that
// fails or times out ends the connection without connection_made() or
// connection_lost(), and without a report (asyncio outside debug mode).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "greenlet/asyncio/sync_errors.hpp"
#include "io/owned_fd.hpp"
#include "io/protocol_transport.hpp"
#include "io/tls_context.hpp"
#include "io/tls_session.hpp"

namespace greenlet::asyncio::detail {

void protocol_transport::use_tls(const ssl_context& ctx, bool server_side, const std::string& server_hostname,
                                 double handshake_timeout, double shutdown_timeout, const ssl_session& resume) {
  tls_ = std::make_unique<tls_session>(context_state(ctx), server_side, server_hostname, resume);
  handshake_timeout_ = handshake_timeout;
  shutdown_timeout_ = shutdown_timeout;
}

std::optional<tls_info> protocol_transport::tls() const {
  if (tls_ == nullptr || !tls_->handshake_done()) return std::nullopt;
  return tls_->info();
}

void protocol_transport::start_handshake() {
  std::weak_ptr<protocol_transport> weak = weak_from_this();
  handshake_timer_ = loop_.call_later(handshake_timeout_, [weak, limit = handshake_timeout_] {
    auto t = weak.lock();
    if (t == nullptr || t->tls_ == nullptr || t->tls_->handshake_done()) return;
    char text[160];
    std::snprintf(text, sizeof text, "SSL handshake is taking longer than %g seconds: aborting the connection", limit);
    t->handshake_failed(std::make_exception_ptr(ConnectionAbortedError(ECONNABORTED, text)));
  });
  advance_handshake();  // a client's first flight goes out now
}

void protocol_transport::advance_handshake() {
  bool done = false;
  try {
    done = tls_->handshake();
  } catch (...) {
    std::exception_ptr error = std::current_exception();
    send_tls_output();  // the alert that tells the peer why
    handshake_failed(error);
    return;
  }
  send_tls_output();
  if (!done) return;
  if (handshake_timer_) handshake_timer_->cancel();
  handshake_timer_.reset();
  if (!pending_plain_.empty()) {
    // What the protocol wrote while start_tls()'s handshake ran goes first, encrypted.
    std::string pending = std::move(pending_plain_);
    pending_plain_.clear();
    tls_->write(pending);
    send_tls_output();
  }
  if (!app_connected_) {
    connection_made();
  } else if (ready_) {
    // start_tls(): the protocol was connected already; the caller's wait ends.
    Future<void> ready = std::move(*ready_);
    ready_.reset();
    if (!ready.done()) ready.set_result();
  }
}

void protocol_transport::upgrade_to_tls(const ssl_context& ctx, bool server_side, const std::string& server_hostname,
                                        double handshake_timeout, double shutdown_timeout, Future<void> ready,
                                        const ssl_session& resume) {
  if (kind_ != protocol_transport_kind::socket || tls_ != nullptr || closing_ || fd_ < 0) {
    throw RuntimeError(
        asyncio_errc::invalid_state,
        std::string("start_tls(): ") + (tls_ != nullptr ? "the transport is TLS already"
                                        : closing_      ? "Transport is closing"
                                                        : "only a socket's transport can start TLS, not a pipe's"));
  }
  use_tls(ctx, server_side, server_hostname, handshake_timeout, shutdown_timeout, resume);
  ready_ = std::move(ready);
  start_handshake();
  // As asyncio's start_tls(): reading resumes (a protocol pauses it before it answers "go ahead",
  // so that the peer's first handshake bytes are not taken for plaintext).
  resume_reading();
}

void protocol_transport::handshake_failed(std::exception_ptr error) noexcept {
  if (handshake_timer_) handshake_timer_->cancel();
  handshake_timer_.reset();
  if (ready_) {
    Future<void> ready = std::move(*ready_);
    ready_.reset();
    if (!ready.done()) ready.set_exception(error);
  }
  force_close(std::move(error));
}

void protocol_transport::send_tls_output() {
  std::string out;
  if (!tls_->take_output(out) || fd_ < 0 || lost_) return;
  write_raw(out);
}

void protocol_transport::on_tls_readable() {
  auto protocol = protocol_;  // the callbacks may close the transport or swap the protocol
  char* buffer = protocol_read_buffer();
  const ssize_t n = read_retrying(fd_, buffer, max_protocol_read);
  if (n < 0) {
    if (would_block(errno)) return;
    if (tls_->handshake_done()) {
      fatal_os_error(errno, "recv", "Fatal read error on socket transport");
    } else {
      handshake_failed(os_error_ptr(errno, "recv"));
    }
    return;
  }
  if (n == 0) {
    if (!tls_->handshake_done()) {
      handshake_failed(std::make_exception_ptr(ConnectionResetError(ECONNRESET, "Connection lost")));
    } else {
      on_eof();
    }
    return;
  }
  tls_->feed(buffer, static_cast<std::size_t>(n));
  if (!tls_->handshake_done()) {
    advance_handshake();
    if (!tls_->handshake_done() || closing_) return;
  }
  plain_.clear();
  try {
    tls_->read_into(plain_, buffer, max_protocol_read);  // the ciphertext is in the session: the buffer is free
  } catch (...) {
    std::exception_ptr error = std::current_exception();
    send_tls_output();
    fatal_error(error, "Fatal error on SSL protocol");
    return;
  }
  send_tls_output();  // what the peer's messages ask for (a key update's answer)
  if (!plain_.empty()) deliver(plain_);
  if (tls_->peer_closed() && !closing_) on_eof();
}

void protocol_transport::await_close_notify() noexcept {
  std::weak_ptr<protocol_transport> weak = weak_from_this();
  try {
    shutdown_timer_ = loop_.call_later(shutdown_timeout_, [weak] {
      auto t = weak.lock();
      if (t == nullptr || !t->awaiting_close_notify_) return;
      // asyncio's _check_shutdown_timeout(): the transport's _force_close(), no report.
      t->force_close(std::make_exception_ptr(TimeoutError("SSL shutdown timed out")));
    });
    // The reader runs even if the protocol paused reading: its data is dropped now anyway.
    if (!reader_added_) add_reader();
    awaiting_close_notify_ = true;
  } catch (...) {
    // Out of memory: close without waiting, as before the peer's answer was awaited.
    if (shutdown_timer_) shutdown_timer_->cancel();
    shutdown_timer_.reset();
    end_close_notify_wait(nullptr);
  }
}

void protocol_transport::read_until_close_notify() {
  if (fd_ < 0 || lost_) return;
  char* buffer = protocol_read_buffer();
  const ssize_t n = read_retrying(fd_, buffer, max_protocol_read);
  if (n < 0) {
    if (!would_block(errno)) end_close_notify_wait(os_error_ptr(errno, "recv"));
    return;
  }
  if (n == 0) {
    // EOF without close_notify ends the shutdown as well, cleanly (asyncio's eof_received() in
    // its SHUTDOWN state).
    end_close_notify_wait(nullptr);
    return;
  }
  try {
    tls_->feed(buffer, static_cast<std::size_t>(n));
    // Application data before the peer's close_notify is read and dropped: the protocol closed
    // (asyncio's unwrap() discards it).
    plain_.clear();
    tls_->read_into(plain_, buffer, max_protocol_read);
    plain_.clear();
  } catch (...) {
    end_close_notify_wait(std::current_exception());
    return;
  }
  send_tls_output();
  if (tls_->peer_closed()) end_close_notify_wait(nullptr);
}

void protocol_transport::end_close_notify_wait(std::exception_ptr error) noexcept {
  awaiting_close_notify_ = false;
  if (shutdown_timer_) shutdown_timer_->cancel();
  shutdown_timer_.reset();
  if (error != nullptr) {
    // asyncio's _on_shutdown_complete(exc): _fatal_error(), which reports nothing for an OSError
    // (an SSLError is one).
    fatal_error(std::move(error), "Fatal error on SSL protocol");
    return;
  }
  if (lost_ || fd_ < 0) return;
  if (reader_added_) {
    loop_.remove_reader(fd_);
    reader_added_ = false;
  }
  // As asyncio's _do_shutdown(): the protocol hears of the peer's end (eof_received()) before
  // the connection is lost.
  if (app_connected_ && !peer_ended_) {
    peer_ended_ = true;
    auto protocol = protocol_;
    try {
      if (plain_protocol_ != nullptr) plain_protocol_->eof_received();
      if (buffered_protocol_ != nullptr) buffered_protocol_->eof_received();
    } catch (...) {
      fatal_error(std::current_exception(), "Error calling eof_received()");
      return;
    }
  }
  if (buffered() == 0) {
    ++conn_lost_;
    schedule_connection_lost(nullptr);
  }
  // Otherwise on_writable() loses the connection once the rest is sent.
}

void protocol_transport::deliver(std::string_view data) {
  const char* failed_call = "Fatal error: protocol.data_received() call failed.";
  try {
    if (plain_protocol_ != nullptr) {
      plain_protocol_->data_received(data);
      return;
    }
    if (buffered_protocol_ == nullptr) throw_no_data_receiver(data.size());
    while (!data.empty() && buffered_protocol_ != nullptr && !closing_) {
      failed_call = "Fatal error: protocol.get_buffer() call failed.";
      std::span<char> into = buffered_protocol_->get_buffer(data.size());
      if (into.empty()) throw RuntimeError(asyncio_errc::invalid_state, "get_buffer() returned an empty buffer");
      const std::size_t count = std::min(into.size(), data.size());
      std::memcpy(into.data(), data.data(), count);
      data.remove_prefix(count);
      failed_call = "Fatal error: protocol.buffer_updated() call failed.";
      buffered_protocol_->buffer_updated(count);
    }
  } catch (...) {
    fatal_error(std::current_exception(), failed_call);
  }
}

}  // namespace greenlet::asyncio::detail
