// tls_transport.cpp: the stream transport's TLS side. The socket still
// moves every byte as for a plain stream (the same read buffer, write
// buffer, writer callback and close); a tls_session stands between:
// ciphertext read from the socket is fed in and the plaintext lands in the
// read buffer, and write() puts the session's ciphertext in the write
// buffer. The handshake runs in the task that asked for it.
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <memory>

#include "asyncio/poller.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/timeout.hpp"
#include "io/stream_transport.hpp"
#include "io/tls_session.hpp"
#include "io/wait.hpp"

namespace greenlet::asyncio::detail {

void stream_transport::fail_tls(std::exception_ptr e) noexcept {
  if (failure_ == nullptr && error_ == 0) failure_ = std::move(e);
  fail(EPROTO, "tls");
}

void stream_transport::send_tls_output() {
  if (fd_ < 0 || error_ != 0) {
    // Closed (a close() while the handshake waited) or failed: nothing
    // more can go, and flush() must not meet fd -1.
    std::string dropped;
    tls_->take_output(dropped);
    return;
  }
  if (tls_->take_output(wbuf_) && !writer_registered_) flush();
}

void stream_transport::queue_close_notify() noexcept {
  try {
    tls_->shutdown();
    send_tls_output();
  } catch (...) {
    // Out of memory: the peer sees the connection end without close_notify.
  }
}

void stream_transport::await_close_notify() noexcept {
  try {
    shutdown_timer_ = loop_.facade->call_later(shutdown_timeout_, [this] {
      if (!awaiting_close_notify_) return;
      // asyncio's _check_shutdown_timeout(): the transport is force-closed with TimeoutError, which
      // the stream's reader and closed future (wait_closed()) get.
      stop_close_notify_wait();
      fail_tls(std::make_exception_ptr(TimeoutError("SSL shutdown timed out")));
    });
  } catch (...) {
    // Out of memory: close without waiting, as before the peer's answer was awaited.
    end_close_notify_wait();
    return;
  }
  read_until_close_notify();
}

void stream_transport::read_until_close_notify() noexcept {
  shutdown_step_.reset();
  if (!awaiting_close_notify_ || fd_ < 0) return;
  try {
    char* scratch = read_scratch();
    std::string dropped;
    // At most read_budget bytes a turn, so that a peer flooding us cannot keep the loop; the
    // rest in a later turn (an edge-triggered fd may not signal it again).
    for (std::size_t taken = 0;;) {
      // Application data before the peer's close_notify is read and dropped: the stream is
      // closed (asyncio's unwrap() discards it).
      dropped.clear();
      try {
        tls_->read_into(dropped, scratch, read_chunk);
        send_tls_output();
      } catch (const std::bad_alloc&) {
        throw;
      } catch (...) {
        stop_close_notify_wait();
        fail_tls(std::current_exception());
        return;
      }
      if (tls_->peer_closed() || fd_ < 0 || error_ != 0) break;
      if (taken >= read_budget) {
        shutdown_step_ = loop_.facade->call_soon([this] { read_until_close_notify(); });
        return;
      }
      const ssize_t n = ::recv(fd_, scratch, read_chunk, 0);
      const int err = errno;
      if (n > 0) {
        tls_->feed(scratch, static_cast<std::size_t>(n));
        taken += static_cast<std::size_t>(n);
        continue;
      }
      if (n == 0) break;  // EOF without close_notify ends the shutdown too, cleanly (asyncio's)
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        if (!close_notify_reader_) {
          loop_.io->add_callback(fd_, io_direction::read, io_caller::owner, [this] { read_until_close_notify(); });
          close_notify_reader_ = true;
        }
        return;
      }
      stop_close_notify_wait();
      fail(err, "recv");
      return;
    }
  } catch (...) {
    // Out of memory (or the poller refused the fd): close without waiting further.
  }
  if (error_ != 0) {
    stop_close_notify_wait();
    return;
  }
  end_close_notify_wait();
}

void stream_transport::end_close_notify_wait() noexcept {
  stop_close_notify_wait();
  // The session ended on both sides: a send failing now (the peer went) is no error (see fail()).
  peer_ended_tls_ = true;
  if (write_buffered() == 0) finish_close();
}

void stream_transport::stop_close_notify_wait() noexcept {
  awaiting_close_notify_ = false;
  if (shutdown_timer_) shutdown_timer_->cancel();
  shutdown_timer_.reset();
  if (shutdown_step_) shutdown_step_->cancel();
  shutdown_step_.reset();
  if (close_notify_reader_ && fd_ >= 0) loop_.io->remove(fd_, io_direction::read);
  close_notify_reader_ = false;
}

int stream_transport::fill_tls_nowait() {
  for (;;) {
    check_error();
    if (fd_ < 0 || eof_ || closing_) return 0;
    compact_read_buffer();
    std::size_t got = 0;
    char* scratch = read_scratch();
    try {
      got = tls_->read_into(rbuf_, scratch, read_chunk);
      send_tls_output();  // what the peer's messages ask for (a key update's answer)
    } catch (const std::bad_alloc&) {
      throw;
    } catch (...) {
      fail_tls(std::current_exception());
      raise_error();
    }
    if (got > 0) {
      count_read(got);
      // The close_notify came in the same read as these bytes: EOF now. The next fill() would
      // otherwise wait for a readiness edge after a short read, and none comes from a peer
      // that waits for our close_notify (unwrap()) without closing the socket.
      if (tls_->peer_closed()) end_tls_at_eof();
      return 1;
    }
    if (tls_->peer_closed()) {
      end_tls_at_eof();
      return 0;
    }
    const ssize_t n = ::recv(fd_, scratch, read_chunk, 0);
    const int err = errno;
    drained_ = adopted_ && n > 0 && static_cast<std::size_t>(n) < read_chunk;
    drained_at_ = loop_.io->waits();
    if (n > 0) {
      tls_->feed(scratch, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) {
      // The connection ended without close_notify: EOF all the same, as
      // asyncio's SSL protocol (and Python's suppress_ragged_eofs) take it.
      end_tls_at_eof();
      return 0;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) return -1;
    if (err != EINTR) {
      fail(err, "recv");
      raise_error();
    }
  }
}

void stream_transport::end_tls_at_eof() {
  eof_ = true;
  peer_ended_tls_ = true;
  // A peer that sent close_notify may wait for ours (SSLSocket.unwrap())
  // and still read what we had buffered: as asyncio's SSL protocol, flush
  // it, answer, and close; later writes are dropped as on any closing
  // stream. TLS 1.3 would allow writing on, but asyncio does not.
  close();
}

void stream_transport::write_tls(std::string_view data) {
  if (handshaking_) {
    throw RuntimeError(asyncio_errc::invalid_state,
                       "write() during the TLS handshake: wait for start_tls() to return before writing");
  }
  try {
    tls_->write(data);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (...) {
    fail_tls(std::current_exception());
    return;  // drain() reports it, as for a failed send
  }
  send_tls_output();
}

void stream_transport::run_handshake() {
  for (;;) {
    bool done = false;
    try {
      done = tls_->handshake();
    } catch (const std::bad_alloc&) {
      throw;
    } catch (...) {
      // The alert telling the peer why goes out first, as far as the
      // socket takes it now.
      std::exception_ptr error = std::current_exception();
      send_tls_output();
      fail_tls(error);
      std::rethrow_exception(error);
    }
    send_tls_output();
    check_error();
    if (done) return;
    if (closing_ || fd_ < 0) {
      throw ConnectionAbortedError(ECONNABORTED, "the stream was closed during the TLS handshake");
    }
    char* scratch = read_scratch();
    const ssize_t n = ::recv(fd_, scratch, read_chunk, 0);
    const int err = errno;
    if (n > 0) {
      tls_->feed(scratch, static_cast<std::size_t>(n));
    } else if (n == 0) {
      // asyncio's SSL protocol completes the handshake with ConnectionResetError at EOF.
      eof_ = true;
      throw ConnectionResetError(ECONNRESET, "TLS handshake: the peer closed the connection");
    } else if (err == EAGAIN || err == EWOULDBLOCK) {
      wait_fd(fd_, io_direction::read, io_caller::owner, &read_waiter_);
    } else if (err != EINTR) {
      fail(err, "recv");
      raise_error();
    }
  }
}

void stream_transport::start_tls(const ssl_context& ctx, const tls_options& options,
                                 const std::string& default_hostname) {
  if (kind_ != transport_kind::socket) {
    throw RuntimeError(asyncio_errc::invalid_state, "start_tls(): TLS needs a socket; this stream is a pipe");
  }
  if (tls_ != nullptr) {
    throw RuntimeError(asyncio_errc::invalid_state, "start_tls(): the stream already uses TLS");
  }
  check_error();
  if (closing_ || fd_ < 0) throw RuntimeError(asyncio_errc::invalid_state, "start_tls(): Transport is closing");
  const double limit = options.ssl_handshake_timeout;
  check_handshake_timeout(limit);
  check_shutdown_timeout(options.ssl_shutdown_timeout);
  shutdown_timeout_ = options.ssl_shutdown_timeout;
  tls_ = std::make_unique<tls_session>(context_state(ctx), accepted_,
                                       options.server_hostname.value_or(default_hostname), options.session);
  handshaking_ = true;
  struct end_handshake {
    bool& flag;
    ~end_handshake() { flag = false; }
  } guard{handshaking_};
  try {
    timeout(limit, [this] { run_handshake(); });
  } catch (const TimeoutError&) {
    char text[160];
    std::snprintf(text, sizeof text, "SSL handshake is taking longer than %g seconds: aborting the connection", limit);
    std::exception_ptr aborted = std::make_exception_ptr(ConnectionAbortedError(ECONNABORTED, text));
    fail_tls(aborted);
    std::rethrow_exception(aborted);
  } catch (...) {
    // Cancelled, or the peer went: a half-done handshake leaves nothing usable.
    std::exception_ptr error = std::current_exception();
    // A close() that ended the handshake is the caller's own: the stream is
    // closed, not failed, and wait_closed() returns normally.
    if (error_ == 0 && !closing_) {
      fail_tls(is_cancellation(error) ? std::make_exception_ptr(ConnectionAbortedError(
                                            ECONNABORTED, "the TLS handshake was cancelled before it completed"))
                                      : error);
    }
    throw;
  }
}

std::optional<tls_info> stream_transport::tls() const {
  if (tls_ == nullptr || !tls_->handshake_done()) return std::nullopt;
  return tls_->info();
}

}  // namespace greenlet::asyncio::detail
