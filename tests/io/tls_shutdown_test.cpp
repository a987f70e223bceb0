// tls_shutdown_test.cpp: ssl_shutdown_timeout (asyncio 3.11) for TLS protocols and streams. As
// asyncio's SSLProtocol (_start_shutdown, _do_shutdown, _check_shutdown_timeout), closing a TLS
// connection sends close_notify after the buffered bytes and then keeps the socket open, reading
// and dropping what comes, until the peer's close_notify (or EOF): then connection_lost(nullptr) /
// wait_closed() returns. A peer that never answers has the connection aborted after
// ssl_shutdown_timeout seconds with TimeoutError("SSL shutdown timed out"). The peers are plain
// OpenSSL sessions in threads (tls_test_peer.hpp). The timeouts that are the expected outcome are
// short real ones (0.2 s): the peers are threads, which virtual time would not wait for; the
// bounds asserted on the clock are generous (a loaded CI machine).
#include <sys/socket.h>

#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <string>
#include <string_view>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "io/tls_test_fixture.hpp"
#include "io/tls_test_peer.hpp"
#include "io/value_error_text.hpp"
#include "support/greenlet_test.hpp"

namespace tls_shutdown_test {

namespace asyncio = greenlet::asyncio;
namespace peer = tls_test_peer;

using TlsShutdown = tls_test::Fixture;
using clock_type = std::chrono::steady_clock;

asyncio::ssl_context trusting_nobody_client() {
  asyncio::ssl_context ctx(asyncio::ssl_protocol::tls_client);
  ctx.set_check_hostname(false);
  ctx.set_verify_mode(asyncio::ssl_verify_mode::cert_none);
  return ctx;
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

std::string what_of(const std::exception_ptr& e) {
  if (e == nullptr) return "";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  }
}

bool is_timeout_error(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const asyncio::TimeoutError&) {
    return true;
  } catch (...) {
    return false;
  }
}

// recorder is the protocol: what it received, and how the connection ended.
struct recorder : asyncio::Protocol {
  explicit recorder(asyncio::Future<void> lost_future) : lost_future(std::move(lost_future)) {}
  void connection_made(asyncio::Transport& t) override { transport = t; }
  void data_received(std::string_view data) override { received += data; }
  bool eof_received() override {
    ++eofs;
    return false;
  }
  void connection_lost(std::exception_ptr exc) override {
    ++losts;
    lost_with = exc;
    transport = {};  // the transport holds this protocol until it is lost
    if (!lost_future.done()) lost_future.set_result();
  }
  asyncio::Transport transport;
  std::string received;
  int eofs = 0;
  int losts = 0;
  std::exception_ptr lost_with;
  asyncio::Future<void> lost_future;
};

// wait_for_our_close_notify(sock) is a peer's read of everything until our close_notify: "" at it.
void wait_for_our_close_notify(peer::peer_socket& sock, const std::string& expected) {
  peer::require(sock.recv_all(expected.size()) == expected, "peer: " + expected + " expected");
  peer::require(sock.recv(1024).empty(), "peer: close_notify expected");
}

// wait_for_socket_close(sock) waits for the TCP EOF our side's close of the socket makes.
void wait_for_socket_close(peer::peer_socket& sock) {
  char byte;
  peer::require(::recv(sock.fd(), &byte, 1, 0) == 0, "peer: the socket was not closed");
}

// late_answer is a peer that, after our close_notify, sends "late data" (which must be dropped),
// tells the test (sent_late), waits for the test's go, then answers with its close_notify and
// waits for the socket to close.
struct late_answer {
  peer::ssl_ctx_ptr sslctx = peer::peer_server_context();
  std::promise<void> go;
  std::shared_future<void> go_future = go.get_future().share();

  std::function<void(peer::peer_socket&)> prog(peer::loop_signal& sent_late) {
    return [this, &sent_late](peer::peer_socket& sock) {
      sock.starttls(sslctx.get(), true);
      sock.sendall("hello");
      wait_for_our_close_notify(sock, "ping");
      sock.sendall("late data");  // TLS 1.3 lets a peer write after the other's close_notify
      sent_late.set_result();
      peer::require(go_future.wait_for(std::chrono::seconds(10)) == std::future_status::ready, "peer: no go");
      peer::require(sock.send_close_notify() == 1, "peer: our close_notify was not received");
      wait_for_socket_close(sock);
      sock.close();
    };
  }
};

// ---- Protocols

// A closed protocol transport keeps its socket open until the peer's close_notify answers ours;
// what the peer sends meanwhile is dropped, then connection_lost(None) comes. Before, the socket
// closed at once and connection_lost() came without waiting.
TEST_F(TlsShutdown, ProtocolCloseWaitsForThePeersCloseNotify) {
  asyncio::event_loop loop;
  peer::loop_signal sent_late(loop);
  late_answer answer;
  std::shared_ptr<recorder> proto;
  {
    peer::threaded_server srv(answer.prog(sent_late));
    loop.run_until_complete([&] {
      auto [transport, p] =
          asyncio::create_connection([&] { return std::make_shared<recorder>(loop.create_future<void>()); },
                                     "127.0.0.1", srv.port(), trusting_nobody_client());
      proto = p;
      while (proto->received.size() < 5) asyncio::sleep(0.01);
      transport.write("ping");
      transport.close();
      EXPECT_TRUE(transport.is_closing());
      sent_late.await();
      asyncio::sleep(0.1);  // the late data arrives meanwhile
      EXPECT_EQ(proto->losts, 0) << "connection_lost() came before the peer's close_notify";
      EXPECT_NE(transport.fileno(), -1) << "the socket was closed before the peer's close_notify";
      answer.go.set_value();
      asyncio::wait_for([&] { asyncio::await(proto->lost_future); }, 10.0);
    });
  }
  loop.close();
  EXPECT_EQ(proto->received, "hello");  // not "late data"
  EXPECT_EQ(proto->losts, 1);
  EXPECT_EQ(what_of(proto->lost_with), "");
  EXPECT_EQ(proto->eofs, 1);  // asyncio's _do_shutdown() calls eof_received() at the peer's close_notify
}

// A peer that answers at once (SSLSocket.unwrap()): the connection is lost cleanly, long before
// the default 30 s timeout.
TEST_F(TlsShutdown, ProtocolClosesPromptlyWhenThePeerAnswers) {
  peer::ssl_ctx_ptr sslctx = peer::peer_server_context();
  asyncio::event_loop loop;
  std::shared_ptr<recorder> proto;
  double took = -1;
  {
    peer::threaded_server srv([&](peer::peer_socket& sock) {
      sock.starttls(sslctx.get(), true);
      wait_for_our_close_notify(sock, "ping");
      peer::require(sock.send_close_notify() == 1, "peer: our close_notify was not received");
      wait_for_socket_close(sock);
      sock.close();
    });
    loop.run_until_complete([&] {
      auto [transport, p] =
          asyncio::create_connection([&] { return std::make_shared<recorder>(loop.create_future<void>()); },
                                     "127.0.0.1", srv.port(), trusting_nobody_client());
      proto = p;
      transport.write("ping");
      const auto start = clock_type::now();
      transport.close();
      asyncio::wait_for([&] { asyncio::await(proto->lost_future); }, 20.0);
      took = seconds_since(start);
    });
  }
  loop.close();
  EXPECT_LT(took, 10.0);
  EXPECT_EQ(proto->losts, 1);
  EXPECT_EQ(what_of(proto->lost_with), "");
}

// A peer that never answers: after ssl_shutdown_timeout the transport is aborted and
// connection_lost() gets TimeoutError("SSL shutdown timed out"), without a report to the loop's
// exception handler (asyncio's _check_shutdown_timeout() force-closes the transport).
TEST_F(TlsShutdown, ProtocolCloseTimesOutWhenThePeerNeverAnswers) {
  peer::ssl_ctx_ptr sslctx = peer::peer_server_context();
  asyncio::event_loop loop;
  std::shared_ptr<recorder> proto;
  int reports = 0;
  double took = -1;
  loop.set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context&) { ++reports; });
  {
    peer::threaded_server srv([&](peer::peer_socket& sock) {
      sock.starttls(sslctx.get(), true);
      wait_for_our_close_notify(sock, "ping");
      wait_for_socket_close(sock);  // no answer
      sock.close();
    });
    loop.run_until_complete([&] {
      auto [transport, p] =
          asyncio::create_connection([&] { return std::make_shared<recorder>(loop.create_future<void>()); },
                                     "127.0.0.1", srv.port(), trusting_nobody_client(), {.ssl_shutdown_timeout = 0.2});
      proto = p;
      transport.write("ping");
      const auto start = clock_type::now();
      transport.close();
      asyncio::wait_for([&] { asyncio::await(proto->lost_future); }, 20.0);
      took = seconds_since(start);
    });
  }
  loop.close();
  EXPECT_GE(took, 0.15);
  EXPECT_LT(took, 10.0);
  EXPECT_EQ(proto->losts, 1);
  EXPECT_TRUE(is_timeout_error(proto->lost_with));
  EXPECT_EQ(what_of(proto->lost_with), "SSL shutdown timed out");
  EXPECT_EQ(reports, 0);
}

// server_config.ssl_shutdown_timeout reaches create_server()'s connections: the server's
// protocol closes, the client never answers.
TEST_F(TlsShutdown, ServerConnectionsUseTheConfiguredTimeout) {
  peer::ssl_ctx_ptr client_ctx = peer::peer_client_context();
  asyncio::event_loop loop;
  std::shared_ptr<recorder> proto;
  loop.run_until_complete([&] {
    asyncio::Future<void> made = loop.create_future<void>();
    asyncio::Server server = asyncio::create_server(
        [&] {
          proto = std::make_shared<recorder>(loop.create_future<void>());
          return proto;
        },
        "127.0.0.1", 0, {.ssl = tls_test::server_context(), .ssl_shutdown_timeout = 0.2});
    const int port = server.port();
    peer::threaded_client client([&](peer::peer_socket& sock) {
      sock.connect(port);
      sock.starttls(client_ctx.get(), false);
      sock.sendall("ping");
      peer::require(sock.recv(1024).empty(), "client: close_notify expected");
      wait_for_socket_close(sock);  // no answer
    });
    while (proto == nullptr || proto->received != "ping") asyncio::sleep(0.01);
    proto->transport.close();
    asyncio::wait_for([&] { asyncio::await(proto->lost_future); }, 20.0);
    server.close();
    server.wait_closed();
  });
  loop.close();
  EXPECT_EQ(what_of(proto->lost_with), "SSL shutdown timed out");
}

// ---- Streams

// writer.close() on a TLS stream: wait_closed() returns once the peer's close_notify came; what
// the peer sent after ours is dropped (the reader is at EOF).
TEST_F(TlsShutdown, StreamWaitClosedWaitsForThePeersCloseNotify) {
  asyncio::event_loop loop;
  peer::loop_signal sent_late(loop);
  late_answer answer;
  std::string after_close = "unset";
  {
    peer::threaded_server srv(answer.prog(sent_late));
    loop.run_until_complete([&] {
      auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.port(), trusting_nobody_client());
      EXPECT_EQ(reader.readexactly(5), "hello");
      writer.write("ping");
      writer.close();
      asyncio::Task<void> closed = asyncio::create_task([w = writer]() mutable { w.wait_closed(); });
      sent_late.await();
      asyncio::sleep(0.1);  // the late data arrives meanwhile
      EXPECT_FALSE(closed.done()) << "wait_closed() returned before the peer's close_notify";
      after_close = reader.read();
      answer.go.set_value();
      asyncio::wait_for([&] { asyncio::await(closed); }, 10.0);  // no exception: a clean close
    });
  }
  loop.close();
  EXPECT_EQ(after_close, "");
}

// A peer that answers at once: wait_closed() returns promptly.
TEST_F(TlsShutdown, StreamClosesPromptlyWhenThePeerAnswers) {
  peer::ssl_ctx_ptr sslctx = peer::peer_server_context();
  asyncio::event_loop loop;
  double took = -1;
  {
    peer::threaded_server srv([&](peer::peer_socket& sock) {
      sock.starttls(sslctx.get(), true);
      wait_for_our_close_notify(sock, "ping");
      peer::require(sock.send_close_notify() == 1, "peer: our close_notify was not received");
      wait_for_socket_close(sock);
      sock.close();
    });
    loop.run_until_complete([&] {
      auto streams = asyncio::open_connection("127.0.0.1", srv.port(), trusting_nobody_client());
      auto& writer = streams.second;
      writer.write("ping");
      const auto start = clock_type::now();
      writer.close();
      asyncio::wait_for([&] { writer.wait_closed(); }, 20.0);
      took = seconds_since(start);
    });
  }
  loop.close();
  EXPECT_LT(took, 10.0);
}

// A peer that never answers: wait_closed() raises TimeoutError("SSL shutdown timed out") after
// ssl_shutdown_timeout, as asyncio's StreamReaderProtocol.connection_lost(exc) fails the closed
// future with it.
TEST_F(TlsShutdown, StreamWaitClosedRaisesTimeoutErrorWhenThePeerNeverAnswers) {
  peer::ssl_ctx_ptr sslctx = peer::peer_server_context();
  asyncio::event_loop loop;
  std::string raised = "nothing";
  double took = -1;
  {
    peer::threaded_server srv([&](peer::peer_socket& sock) {
      sock.starttls(sslctx.get(), true);
      wait_for_our_close_notify(sock, "ping");
      wait_for_socket_close(sock);  // no answer
      sock.close();
    });
    loop.run_until_complete([&] {
      auto streams =
          asyncio::open_connection("127.0.0.1", srv.port(), trusting_nobody_client(), {.ssl_shutdown_timeout = 0.2});
      auto& writer = streams.second;
      writer.write("ping");
      const auto start = clock_type::now();
      writer.close();
      try {
        asyncio::wait_for([&] { writer.wait_closed(); }, 20.0);
      } catch (const asyncio::TimeoutError& e) {
        raised = e.what();
      }
      took = seconds_since(start);
    });
  }
  loop.close();
  EXPECT_EQ(raised, "SSL shutdown timed out");
  EXPECT_GE(took, 0.15);
  EXPECT_LT(took, 10.0);
}

// start_server()'s server_config.ssl_shutdown_timeout reaches the handler's streams.
TEST_F(TlsShutdown, StreamServerConnectionsUseTheConfiguredTimeout) {
  peer::ssl_ctx_ptr client_ctx = peer::peer_client_context();
  asyncio::event_loop loop;
  std::string raised = "nothing";
  loop.run_until_complete([&] {
    asyncio::Future<void> handled = loop.create_future<void>();
    asyncio::Server server = asyncio::start_server(
        [&](asyncio::StreamReader reader, asyncio::StreamWriter writer) {
          EXPECT_EQ(reader.readexactly(4), "ping");
          writer.close();
          try {
            writer.wait_closed();
          } catch (const asyncio::TimeoutError& e) {
            raised = e.what();
          }
          handled.set_result();
        },
        "127.0.0.1", 0, {.ssl = tls_test::server_context(), .ssl_shutdown_timeout = 0.2});
    const int port = server.port();
    peer::threaded_client client([&](peer::peer_socket& sock) {
      sock.connect(port);
      sock.starttls(client_ctx.get(), false);
      sock.sendall("ping");
      peer::require(sock.recv(1024).empty(), "client: close_notify expected");
      wait_for_socket_close(sock);  // no answer
    });
    asyncio::wait_for([&] { asyncio::await(handled); }, 20.0);
    server.close();
    server.wait_closed();
  });
  loop.close();
  EXPECT_EQ(raised, "SSL shutdown timed out");
}

// ---- Validation: asyncio's ValueErrors.

TEST_F(TlsShutdown, TimeoutMustBePositive) {
  asyncio::run([&] {
    EXPECT_EQ(io_test::value_error_text([] {
                asyncio::open_connection("127.0.0.1", 1, trusting_nobody_client(), {.ssl_shutdown_timeout = 0});
              }),
              "ssl_shutdown_timeout should be a positive number, got 0");
    EXPECT_EQ(io_test::value_error_text([] {
                asyncio::create_connection<asyncio::Protocol>("127.0.0.1", 1, trusting_nobody_client(),
                                                              {.ssl_shutdown_timeout = -1});
              }),
              "ssl_shutdown_timeout should be a positive number, got -1");
    EXPECT_EQ(io_test::value_error_text([] {
                asyncio::start_server([](asyncio::StreamReader, asyncio::StreamWriter) {}, "127.0.0.1", 0,
                                      {.ssl = tls_test::server_context(), .ssl_shutdown_timeout = 0});
              }),
              "ssl_shutdown_timeout should be a positive number, got 0");
    EXPECT_EQ(io_test::value_error_text([] {
                asyncio::create_server<asyncio::Protocol>(
                    "127.0.0.1", 0, {.ssl = tls_test::server_context(), .ssl_shutdown_timeout = -0.5});
              }),
              "ssl_shutdown_timeout should be a positive number, got -0.5");
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    EXPECT_EQ(io_test::value_error_text([&] {
                asyncio::connect_accepted_socket<asyncio::Protocol>(fds[0], tls_test::server_context(), 60.0, 0.0);
              }),
              "ssl_shutdown_timeout should be a positive number, got 0");
    auto streams = asyncio::open_connection(asyncio::connected_socket{fds[1]});
    auto& writer = streams.second;
    EXPECT_EQ(
        io_test::value_error_text([&] { writer.start_tls(trusting_nobody_client(), {.ssl_shutdown_timeout = 0}); }),
        "ssl_shutdown_timeout should be a positive number, got 0");
    writer.close();
    ::close(fds[0]);
  });
}

TEST_F(TlsShutdown, TimeoutWithoutSslIsRefused) {
  asyncio::run([&] {
    const std::string refused = "ssl_shutdown_timeout is only meaningful with ssl";
    EXPECT_NE(io_test::value_error_text([] {
                asyncio::start_server([](asyncio::StreamReader, asyncio::StreamWriter) {}, "127.0.0.1", 0,
                                      {.ssl_shutdown_timeout = 1.0});
              }).find(refused),
              std::string::npos);
    EXPECT_NE(io_test::value_error_text([] {
                asyncio::create_server<asyncio::Protocol>("127.0.0.1", 0, {.ssl_shutdown_timeout = 1.0});
              }).find(refused),
              std::string::npos);
  });
}

// ssl_handshake_timeout without ssl: asyncio's create_server() raises ValueError("ssl_handshake_timeout
// is only meaningful with ssl"); ours accepted it and ignored it.
TEST_F(TlsShutdown, HandshakeTimeoutWithoutSslIsRefused) {
  asyncio::run([&] {
    const std::string refused = "ssl_handshake_timeout is only meaningful with ssl";
    EXPECT_NE(io_test::value_error_text([] {
                asyncio::start_server([](asyncio::StreamReader, asyncio::StreamWriter) {}, "127.0.0.1", 0,
                                      {.ssl_handshake_timeout = 5.0});
              }).find(refused),
              std::string::npos);
    EXPECT_NE(io_test::value_error_text([] {
                asyncio::create_server<asyncio::Protocol>("127.0.0.1", 0, {.ssl_handshake_timeout = 5.0});
              }).find(refused),
              std::string::npos);
    // Left unset, a plain server starts as before.
    auto plain = asyncio::start_server([](asyncio::StreamReader, asyncio::StreamWriter) {}, "127.0.0.1", 0);
    EXPECT_NE(plain.port(), 0);
    plain.close();
    plain.wait_closed();
  });
}

}  // namespace tls_shutdown_test
