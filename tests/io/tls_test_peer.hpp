// tls_test_peer.hpp: the other end of a TLS test as Python's test_asyncio/test_ssl.py writes it:
// a blocking OpenSSL session over a socket in a std::thread (TestSocketWrapper, TestThreadedServer,
// TestThreadedClient), with its own SSL_CTX made from tls_test_certs.hpp's certificates, so that
// the library meets a plain OpenSSL peer, not itself; and loop_signal, a loop future such a thread
// completes (call_soon_threadsafe(fut.set_result)); and tls_socket, the lighter peer of the
// cpython_*ssl* ports: OpenSSL over a blocking fd with an ssl_context's own SSL_CTX.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "io/tls_test_certs.hpp"

namespace tls_test_peer {

namespace asyncio = greenlet::asyncio;

// The peers' socket timeout: Python's is SHORT_TIMEOUT (30 s); shorter here so that a broken case
// fails in seconds rather than hangs.
constexpr int PEER_TIMEOUT_SECONDS = 10;

// ---------------------------------------------------------------------------------------------
// The peers: blocking OpenSSL sessions in threads (Python's TestSocketWrapper, TestThreadedServer,
// TestThreadedClient).

using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

inline ssl_ctx_ptr peer_server_context() {
  ssl_ctx_ptr ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (ctx == nullptr || SSL_CTX_use_certificate_chain_file(ctx.get(), tls_test::files().server_cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), tls_test::files().server_key.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw std::runtime_error("peer_server_context() failed");
  }
  return ctx;
}

inline ssl_ctx_ptr peer_client_context() {
  ssl_ctx_ptr ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (ctx == nullptr) throw std::runtime_error("peer_client_context() failed");
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  return ctx;
}

// peer_error is what a peer's assertion or call raises; peer_aborted is recv_all()'s
// ConnectionAbortedError (EOF before n bytes).
struct peer_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct peer_aborted : peer_error {
  using peer_error::peer_error;
};

inline void require(bool ok, const std::string& what) {
  if (!ok) throw peer_error(what);
}

// peer_socket is TestSocketWrapper: a blocking socket with a timeout, plain until starttls().
class peer_socket {
 public:
  explicit peer_socket(int fd) : fd_(fd) {
    timeval timeout{PEER_TIMEOUT_SECONDS, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  }
  peer_socket(const peer_socket&) = delete;
  peer_socket& operator=(const peer_socket&) = delete;
  ~peer_socket() { close(); }

  int fd() const noexcept { return fd_; }

  void connect(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail_errno("connect");
  }

  // starttls(ctx, server_side): ssl_context.wrap_socket() and the handshake.
  void starttls(SSL_CTX* ctx, bool server_side) {
    ssl_ = SSL_new(ctx);
    if (ssl_ == nullptr) throw peer_error("SSL_new failed");
    SSL_set_fd(ssl_, fd_);
    const int ret = server_side ? SSL_accept(ssl_) : SSL_connect(ssl_);
    if (ret != 1) fail_ssl("handshake", ret);
  }

  // recv(n): up to n bytes; "" at EOF (a close_notify, or a ragged EOF: suppress_ragged_eofs).
  std::string recv(std::size_t n) {
    std::string buf(n, '\0');
    if (ssl_ == nullptr) {
      const ssize_t got = ::recv(fd_, buf.data(), n, 0);
      if (got < 0) fail_errno("recv");
      buf.resize(static_cast<std::size_t>(got));
      return buf;
    }
    ERR_clear_error();
    const int got = SSL_read(ssl_, buf.data(), static_cast<int>(n));
    if (got > 0) {
      buf.resize(static_cast<std::size_t>(got));
      return buf;
    }
    const int kind = SSL_get_error(ssl_, got);
    if (kind == SSL_ERROR_ZERO_RETURN) return "";
    if (kind == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return "";
    fail_ssl("recv", got);
  }

  std::string recv_all(std::size_t n) {
    std::string buf;
    while (buf.size() < n) {
      std::string data = recv(n - buf.size());
      if (data.empty()) {
        throw peer_aborted("recv_all(" + std::to_string(n) + "): EOF after " + std::to_string(buf.size()) + " bytes");
      }
      buf += data;
    }
    return buf;
  }

  void sendall(std::string_view data) {
    while (!data.empty()) {
      if (ssl_ == nullptr) {
        const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) fail_errno("send");
        data.remove_prefix(static_cast<std::size_t>(n));
      } else {
        ERR_clear_error();
        const int n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
        if (n <= 0) fail_ssl("send", n);
        data.remove_prefix(static_cast<std::size_t>(n));
      }
    }
  }
  void send(std::string_view data) { sendall(data); }

  // send_close_notify() is the first half of unwrap(): close_notify goes, the peer's is not
  // awaited (Python's unwrap() raising SSLWantReadError on a MemoryBIO). Returns SSL_shutdown()'s
  // result: 0 when the peer's close_notify has not come yet.
  int send_close_notify() {
    ERR_clear_error();
    const int ret = SSL_shutdown(ssl_);
    if (ret < 0) fail_ssl("unwrap", ret);
    return ret;
  }

  // unwrap(): close_notify both ways (SSLSocket.unwrap()).
  void unwrap() {
    if (send_close_notify() == 1) return;
    ERR_clear_error();
    const int ret = SSL_shutdown(ssl_);
    if (ret != 1) fail_ssl("unwrap: waiting for the peer's close_notify", ret);
  }

  void shutdown_wr() { ::shutdown(fd_, SHUT_WR); }

  void close() noexcept {
    if (ssl_ != nullptr) SSL_free(ssl_);
    ssl_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  [[noreturn]] void fail_errno(const char* call) {
    throw peer_error(std::string("peer ") + call + ": " + std::strerror(errno));
  }
  [[noreturn]] void fail_ssl(const char* call, int ret) {
    const int err = errno;
    const int kind = SSL_get_error(ssl_, ret);
    char text[256] = "";
    if (const unsigned long code = ERR_peek_error()) ERR_error_string_n(code, text, sizeof text);
    throw peer_error(std::string("peer ") + call + ": SSL_get_error " + std::to_string(kind) + " " + text +
                     (kind == SSL_ERROR_WANT_READ || kind == SSL_ERROR_WANT_WRITE ? " (timed out)" : "") +
                     (kind == SSL_ERROR_SYSCALL ? std::string(" errno ") + std::strerror(err) : ""));
  }

  int fd_;
  SSL* ssl_ = nullptr;
};

// tls_socket is a test peer's sock.start_tls(ctx, server_side=) over a blocking fd the test owns
// (the thread_server / client threads of the cpython_*ssl* ports): SSL_accept or SSL_connect with
// the ssl_context's own SSL_CTX; a failed handshake raises std::runtime_error. Its destructor frees
// the SSL without SSL_shutdown(): closing the fd afterwards is Python's SSLSocket.close() (no
// close_notify). recv_all() raises peer_aborted when the connection ends first.
class tls_socket {
 public:
  tls_socket(int fd, const asyncio::ssl_context& ctx, bool server_side) : ssl_(SSL_new(ctx.native_handle())) {
    SSL_set_fd(ssl_, fd);
    if ((server_side ? SSL_accept(ssl_) : SSL_connect(ssl_)) != 1) {
      ERR_clear_error();
      SSL_free(ssl_);
      throw std::runtime_error("peer's TLS handshake failed");
    }
  }
  ~tls_socket() {
    SSL_free(ssl_);
    ERR_clear_error();
  }
  tls_socket(const tls_socket&) = delete;
  tls_socket& operator=(const tls_socket&) = delete;

  void sendall(std::string_view data) {
    if (SSL_write(ssl_, data.data(), static_cast<int>(data.size())) != static_cast<int>(data.size())) {
      throw std::runtime_error("SSL_write failed");
    }
  }
  std::string recv_all(std::size_t n) {
    std::string buf(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      const int r = SSL_read(ssl_, buf.data() + got, static_cast<int>(n - got));
      if (r <= 0) throw peer_aborted("tls_socket::recv_all(" + std::to_string(n) + "): the connection ended first");
      got += static_cast<std::size_t>(r);
    }
    return buf;
  }

 private:
  SSL* ssl_;
};

// block_sigpipe() keeps a peer thread's writes to a closed connection from killing the process:
// OpenSSL's socket BIO writes without MSG_NOSIGNAL (Python ignores SIGPIPE). A signal left pending
// on the thread goes with it.
inline void block_sigpipe() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// first_error keeps the first failure of a peer thread, for the test's thread to report.
class first_error {
 public:
  void set(const std::string& what) {
    std::lock_guard lock(mutex_);
    if (what_.empty()) what_ = what;
  }
  std::string get() {
    std::lock_guard lock(mutex_);
    return what_;
  }

 private:
  std::mutex mutex_;
  std::string what_;
};

// threaded_server is tcp_server(prog, max_clients, backlog): a thread accepting on 127.0.0.1 and
// running prog for one client after the other, until max_clients were served or stop(). A failing
// prog ends the thread (Python's _abort_socket_test); stop() reports it.
class threaded_server {
 public:
  explicit threaded_server(std::function<void(peer_socket&)> prog, int max_clients = 10, int backlog = 1)
      : prog_(std::move(prog)), max_clients_(max_clients) {
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listen_ < 0 || ::bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_, backlog) != 0 || ::getsockname(listen_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        ::pipe2(stop_, O_CLOEXEC) != 0) {
      throw std::runtime_error("threaded_server: cannot listen");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  threaded_server(const threaded_server&) = delete;
  threaded_server& operator=(const threaded_server&) = delete;
  ~threaded_server() { stop(); }

  int port() const noexcept { return port_; }

  void stop() {
    if (!thread_.joinable()) return;
    (void)!::write(stop_[1], "x", 1);
    thread_.join();
    ::close(listen_);
    ::close(stop_[0]);
    ::close(stop_[1]);
    EXPECT_EQ(error_.get(), "") << "the server thread failed";
  }

 private:
  void run() {
    block_sigpipe();
    for (int clients = 0; clients < max_clients_;) {
      pollfd fds[2] = {{listen_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (::poll(fds, 2, PEER_TIMEOUT_SECONDS * 1000) <= 0) {
        error_.set("threaded_server: no client within the timeout");
        return;
      }
      if (fds[1].revents != 0) return;
      const int conn = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      ++clients;
      try {
        peer_socket sock(conn);
        prog_(sock);
      } catch (const std::exception& e) {
        error_.set(e.what());
        return;
      }
    }
  }

  std::function<void(peer_socket&)> prog_;
  int max_clients_;
  int listen_ = -1;
  int stop_[2] = {-1, -1};
  int port_ = 0;
  first_error error_;
  std::thread thread_;
};

// threaded_client is tcp_client(prog): prog runs on its own thread with a fresh TCP socket; the
// destructor joins it and reports its failure.
class threaded_client {
 public:
  explicit threaded_client(std::function<void(peer_socket&)> prog)
      : thread_([this, prog = std::move(prog)] {
          block_sigpipe();
          try {
            peer_socket sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
            prog(sock);
          } catch (const std::exception& e) {
            error_.set(e.what());
          }
        }) {}
  threaded_client(const threaded_client&) = delete;
  threaded_client& operator=(const threaded_client&) = delete;
  ~threaded_client() {
    thread_.join();
    EXPECT_EQ(error_.get(), "") << "the client thread failed";
  }

 private:
  first_error error_;
  std::thread thread_;
};

// loop_signal is a future of the loop that a peer thread completes with
// loop.call_soon_threadsafe(fut.set_result / fut.set_exception): Python's run(meth) wrapper. It
// holds an external_work_guard until the thread has posted, so that the loop waiting for it is not
// taken for a deadlock.
class loop_signal {
 public:
  explicit loop_signal(asyncio::event_loop& loop)
      : loop_(loop), fut_(loop.create_future<void>()), guard_(std::in_place, loop) {}
  // from the peer's thread
  void set_result() {
    post([this] {
      if (!fut_.done()) fut_.set_result();
    });
  }
  void set_exception(const std::string& what) {
    post([this, what] {
      if (!fut_.done()) fut_.set_exception(std::make_exception_ptr(std::runtime_error(what)));
    });
  }
  // run(meth): meth's outcome completes the future.
  std::function<void(peer_socket&)> wrap(std::function<void(peer_socket&)> meth) {
    return [this, meth = std::move(meth)](peer_socket& sock) {
      try {
        meth(sock);
      } catch (const std::exception& e) {
        set_exception(e.what());
        return;
      }
      set_result();
    };
  }
  // await fut (loop thread)
  void await() { asyncio::await(fut_); }

 private:
  void post(std::function<void()> fn) {
    std::lock_guard lock(mutex_);
    if (!guard_) return;  // posted already
    loop_.call_soon_threadsafe(std::move(fn));
    guard_.reset();
  }

  asyncio::event_loop& loop_;
  asyncio::Future<void> fut_;
  std::mutex mutex_;
  std::optional<asyncio::event_loop::external_work_guard> guard_;
};

inline asyncio::event_loop::options virtual_time() {
  asyncio::event_loop::options opts;
  opts.virtual_time = true;
  return opts;
}

// set_timeouts(fd): 10 s send and receive timeouts, so a peer that stops answering fails a test
// instead of hanging it.
inline void set_timeouts(int fd) {
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

// recv_all(fd, n) reads exactly n bytes; peer_aborted if the connection ends first.
inline std::string recv_all(int fd, std::size_t n) {
  std::string buf;
  char chunk[64 * 1024];
  while (buf.size() < n) {
    const ssize_t got = ::recv(fd, chunk, std::min(sizeof chunk, n - buf.size()), 0);
    if (got <= 0) throw peer_aborted("recv_all(" + std::to_string(n) + "): the connection ended first");
    buf.append(chunk, static_cast<std::size_t>(got));
  }
  return buf;
}

// thread_server is test_utils' tcp_server(serve): a socket listening on 127.0.0.1 and a thread
// that accepts one connection and runs serve(fd). The thread's failures are collected in error().
class thread_server {
 public:
  explicit thread_server(std::function<void(int)> serve) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(listen_fd_, 1) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("listen failed");
    }
    port_ = ntohs(addr.sin_port);
    set_timeouts(listen_fd_);
    thread_ = std::thread([this, serve = std::move(serve)] {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        error_ = "accept failed";
        return;
      }
      set_timeouts(fd);
      try {
        serve(fd);
      } catch (const peer_aborted&) {
        error_ = "the connection ended early (ConnectionAbortedError)";
      } catch (const std::exception& e) {
        error_ = e.what();
      }
      ::close(fd);
    });
  }
  ~thread_server() {
    join();
    ::close(listen_fd_);
  }
  thread_server(const thread_server&) = delete;
  thread_server& operator=(const thread_server&) = delete;

  int port() const { return port_; }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  const std::string& error() const { return error_; }

 private:
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::string error_;
};

}  // namespace tls_test_peer
