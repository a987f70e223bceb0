// cpython_ssl_port_test.cpp: CPython's Lib/test/test_asyncio/test_ssl.py (class TestSSL, the 3.11+
// file from uvloop) method by method, as read at python/cpython commit
// 4c549b4421073e50ed4f6365e09ded704c33338e. tls_test.cpp holds the hand-written TLS cases.
//
// Python's peers are ssl.SSLSocket objects in threads (tcp_server()/tcp_client(): blocking sockets
// with a timeout, one client at a time per server thread). Here they are blocking OpenSSL sessions
// over a socket in a std::thread (tls_test_peer.hpp: peer_socket, threaded_server, threaded_client),
// with their own SSL_CTX made from the same certificates (tls_test_certs.hpp), so the library meets
// a plain OpenSSL peer, not itself. The asyncio side is our streams API: Python's protocol-based clients
// and servers (create_connection/create_server with a Protocol, loop.start_tls(tr, proto, ...))
// become open_connection()/start_server() and StreamWriter::start_tls(), with the same bytes in the
// same order. test_utils.ONLYCERT/ONLYKEY is tls_test::files().server_cert/server_key;
// _create_client_ssl_context() and simple_client_sslcontext() are a client context with
// check_hostname off and CERT_NONE.
//
// Ported: 18 of 23 methods. Not ported (5):
// - test_ssl_connect_accepted_socket, test_connect_accepted_socket: loop.connect_accepted_socket()
//   with a Protocol is not in our API (streams only; docs/io.md "Not yet"); in this version the
//   former does not even call the latter.
// - test_start_tls_client_buf_proto_1: asyncio.BufferedProtocol and transport.set_protocol() (protocol
//   only).
// - test_create_server_ssl_over_ssl: TLS inside TLS (loop.start_tls() over an SSL transport, with a
//   protocol that pauses its transport); StreamWriter::start_tls() on a TLS stream is refused with
//   RuntimeError (tls_test.cpp TlsStartTls.UpgradeAPlainConnection asserts it).
// - test_connect_timeout_warning: a ResourceWarning found by gc (Python objects).
// Parts left out of ported methods:
// - test_create_connection_ssl_1's second round (client_sock: open_connection(sock=...)):
//   open_connection() takes no ready-made socket here; the first round (client) is ported.
// - The weakref checks of test_shutdown_timeout_handler_leak, test_handshake_timeout_handler_leak
//   and test_create_connection_memory_leak: the fixture's allocation count checks the same here.
//
// Defects found and fixed (tls_close_notify_test.cpp has their focused tests): a close_notify read
// with the peer's last bytes was not EOF until another readiness edge (test_start_tls_server_1
// hung now and then); the peer's close_notify or EOF was not answered with ours
// (test_remote_shutdown_receives_trailing_data hung).
//
// Deliberate differences the tests assert:
// - asyncio.sleep(0.5) at the start of Python's start_tls clients (a guard against a slow thread
//   start) is left out: the peer's listening socket exists before the client connects.
// - Timeouts that are the expected outcome (test_create_connection_ssl_slow_handshake,
//   test_start_tls_slow_client_cancel, test_handshake_timeout_handler_leak) run on virtual time: nothing waits for the
//   real clock. There, Python's outer wait_for(..., SHORT_TIMEOUT) guards are left out (virtual time would jump to them
//   while the loop waits for the peer's thread); the peers' socket timeouts remain.
// - test_flush_before_shutdown pauses the SSL protocol's writing (internals) while it writes;
//   here the writes go without drain() right before close(), which leaves them as much buffered.
// - test_remote_shutdown_receives_trailing_data fills the SSL write backlog with an internal hook
//   (_test__append_write_backlog); here the same bytes are written without drain(); the _on_slow_socket
//   variant mocks the socket's send() to take half: here SO_SNDBUF is made small.
// - test_shutdown_timeout_handler_not_set pauses the protocol's reading; a stream that is not read
//   leaves the bytes unread the same way.
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "io/tls_test_certs.hpp"
#include "io/tls_test_peer.hpp"
#include "support/greenlet_test.hpp"

namespace cpython_ssl_port {

namespace asyncio = greenlet::asyncio;
using namespace tls_test_peer;  // NOLINT: the peers are this file's vocabulary

// The certificates are made before the fixture counts allocations: they live for the process.
class CPythonTestSSL : public greenlet_test::GreenletTest {
 protected:
  void SetUp() override {
    tls_test::files();
    greenlet_test::GreenletTest::SetUp();
  }
};

constexpr std::size_t BUF_MULTIPLIER = 1024;
constexpr std::size_t PAYLOAD_SIZE = 1024 * 100;
constexpr double SHORT_TIMEOUT = 30.0;  // support.SHORT_TIMEOUT
constexpr double LONG_TIMEOUT = 300.0;  // support.LONG_TIMEOUT

// ---------------------------------------------------------------------------------------------
// The asyncio side's contexts.

// _create_server_ssl_context(ONLYCERT, ONLYKEY) / simple_server_sslcontext().
asyncio::ssl_context create_server_ssl_context() {
  asyncio::ssl_context ctx(asyncio::ssl_protocol::tls_server);
  ctx.load_cert_chain(tls_test::files().server_cert, tls_test::files().server_key);
  return ctx;
}

// _create_client_ssl_context(disable_verify) / simple_client_sslcontext(): the system's CAs (which
// do not include the test CA), no host name check, and no check at all with disable_verify.
asyncio::ssl_context create_client_ssl_context(bool disable_verify = true) {
  auto ctx = asyncio::ssl_context::create_default_context();
  ctx.set_check_hostname(false);
  if (disable_verify) ctx.set_verify_mode(asyncio::ssl_verify_mode::cert_none);
  return ctx;
}

// Python's wait_closed(writer) helper: BrokenPipeError and ConnectionError are ignored.
void wait_closed(asyncio::StreamWriter& writer) {
  try {
    writer.wait_closed();
  } catch (const asyncio::ConnectionError&) {
  }
}

// ---------------------------------------------------------------------------------------------

// test_create_server_ssl_1
TEST_F(CPythonTestSSL, test_create_server_ssl_1) {
  int CNT = 0;               // number of clients that were successful
  const int TOTAL_CNT = 25;  // bigmemtest's size
  const std::string A_DATA(1024 * BUF_MULTIPLIER, 'A');
  const std::string B_DATA(1024 * BUF_MULTIPLIER, 'B');

  auto sslctx = create_server_ssl_context();
  ssl_ctx_ptr client_sslctx = peer_client_context();

  std::vector<std::unique_ptr<threaded_client>> clients;
  std::vector<std::unique_ptr<loop_signal>> futs;
  asyncio::event_loop loop;

  auto handle_client = [&](asyncio::StreamReader reader, asyncio::StreamWriter writer) {
    std::string data = reader.readexactly(A_DATA.size());
    EXPECT_TRUE(data == A_DATA) << data.size();
    writer.write("OK");

    data = reader.readexactly(B_DATA.size());
    EXPECT_TRUE(data == B_DATA) << data.size();
    writer.writelines({"SP", "A", "M"});

    writer.drain();
    writer.close();

    ++CNT;
  };

  auto test_client = [&](int port) {
    futs.push_back(std::make_unique<loop_signal>(loop));
    loop_signal& fut = *futs.back();
    clients.push_back(std::make_unique<threaded_client>(fut.wrap([&, port](peer_socket& sock) {
      sock.connect(port);
      sock.starttls(client_sslctx.get(), false);
      sock.send(A_DATA);

      require(sock.recv_all(2) == "OK", "client: OK expected");

      sock.send(B_DATA);
      require(sock.recv_all(4) == "SPAM", "client: SPAM expected");

      sock.close();
    })));
    fut.await();
  };

  loop.run_until_complete([&] {
    auto srv =
        asyncio::start_server(handle_client, "127.0.0.1", 0, {.ssl = sslctx, .ssl_handshake_timeout = SHORT_TIMEOUT});
    try {
      EXPECT_FALSE(srv.sockets().empty());
      const int port = srv.port();
      std::vector<asyncio::Task<void>> tasks;
      for (int i = 0; i < TOTAL_CNT; ++i) tasks.push_back(asyncio::create_task([&, port] { test_client(port); }));
      asyncio::wait_for(
          [&] {
            for (auto& t : tasks) asyncio::await(t);
          },
          LONG_TIMEOUT);
    } catch (...) {
      srv.close();
      srv.wait_closed();
      throw;
    }
    srv.close();
    srv.wait_closed();
  });

  EXPECT_EQ(CNT, TOTAL_CNT);
  clients.clear();
  loop.close();
}

// test_create_connection_ssl_1
TEST_F(CPythonTestSSL, test_create_connection_ssl_1) {
  int CNT = 0;
  const int TOTAL_CNT = 25;
  const std::string A_DATA(1024 * BUF_MULTIPLIER, 'A');
  const std::string B_DATA(1024 * BUF_MULTIPLIER, 'B');

  ssl_ctx_ptr sslctx = peer_server_context();
  auto client_sslctx = create_client_ssl_context();

  auto server = [&](peer_socket& sock) {
    sock.starttls(sslctx.get(), true);

    require(sock.recv_all(A_DATA.size()) == A_DATA, "server: A_DATA expected");
    sock.send("OK");

    require(sock.recv_all(B_DATA.size()) == B_DATA, "server: B_DATA expected");
    sock.send("SPAM");

    sock.close();
  };

  auto client = [&](int port) {
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", port, client_sslctx,
                                                     {.server_hostname = "", .ssl_handshake_timeout = SHORT_TIMEOUT});

    writer.write(A_DATA);
    EXPECT_EQ(reader.readexactly(2), "OK");

    writer.write(B_DATA);
    EXPECT_EQ(reader.readexactly(4), "SPAM");

    ++CNT;

    writer.close();
    wait_closed(writer);
  };

  asyncio::event_loop loop;
  {
    threaded_server srv(server, TOTAL_CNT, TOTAL_CNT);
    loop.run_until_complete([&] {
      std::vector<asyncio::Task<void>> tasks;
      for (int i = 0; i < TOTAL_CNT; ++i) tasks.push_back(asyncio::create_task([&] { client(srv.port()); }));
      for (auto& t : tasks) asyncio::await(t);
    });
  }
  EXPECT_EQ(CNT, TOTAL_CNT);
  loop.close();
}

// test_create_connection_ssl_slow_handshake
TEST_F(CPythonTestSSL, test_create_connection_ssl_slow_handshake) {
  auto client_sslctx = create_client_ssl_context();
  asyncio::event_loop loop(virtual_time());
  // silence error logger
  loop.set_exception_handler([](asyncio::event_loop*, const asyncio::exception_context&) {});

  auto server = [](peer_socket& sock) {
    try {
      sock.recv_all(1024 * 1024);
    } catch (const peer_aborted&) {
    }
    sock.close();
  };

  threaded_server srv(server, 1, 1);
  try {
    loop.run_until_complete([&] {
      auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.port(), client_sslctx,
                                                       {.server_hostname = "", .ssl_handshake_timeout = 1.0});
      writer.close();
      wait_closed(writer);
    });
    ADD_FAILURE() << "no ConnectionAbortedError";
  } catch (const asyncio::ConnectionAbortedError& e) {
    EXPECT_NE(std::string(e.what()).find("SSL handshake is taking longer"), std::string::npos) << e.what();
  }
  srv.stop();
  loop.close();
}

// test_create_connection_ssl_failed_certificate
TEST_F(CPythonTestSSL, test_create_connection_ssl_failed_certificate) {
  asyncio::event_loop loop;
  // silence error logger
  loop.set_exception_handler([](asyncio::event_loop*, const asyncio::exception_context&) {});

  ssl_ctx_ptr sslctx = peer_server_context();
  auto client_sslctx = create_client_ssl_context(false);

  auto server = [&](peer_socket& sock) {
    try {
      sock.starttls(sslctx.get(), true);
    } catch (const peer_error&) {
    }
    sock.close();
  };

  threaded_server srv(server, 1, 1);
  EXPECT_THROW(loop.run_until_complete([&] {
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.port(), client_sslctx,
                                                     {.server_hostname = "", .ssl_handshake_timeout = SHORT_TIMEOUT});
    writer.close();
    wait_closed(writer);
  }),
               asyncio::SSLCertVerificationError);
  srv.stop();
  loop.close();
}

// test_ssl_handshake_timeout
TEST_F(CPythonTestSSL, test_ssl_handshake_timeout) {
  // bpo-29970: a connection whose handshake does not complete in time is aborted, instead of
  // remaining open indefinitely.
  auto client_sslctx = create_client_ssl_context();
  // Real time, as Python's: on virtual time the 0.5 s could pass before the server's thread
  // accepted the connection, and server_side_aborted would stay false.
  asyncio::event_loop loop;

  // silence error logger
  int messages = 0;
  loop.set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context&) { ++messages; });

  std::atomic<bool> server_side_aborted = false;

  auto server = [&](peer_socket& sock) {
    try {
      sock.recv_all(1024 * 1024);
    } catch (const peer_aborted&) {
      server_side_aborted = true;
    }
    sock.close();
  };

  {
    threaded_server srv(server, 1, 1);
    EXPECT_THROW(loop.run_until_complete([&] {
      asyncio::wait_for(
          [&] {
            asyncio::open_connection("127.0.0.1", srv.port(), client_sslctx,
                                     {.server_hostname = "", .ssl_handshake_timeout = 10.0});
          },
          0.5);
    }),
                 asyncio::TimeoutError);
  }

  EXPECT_TRUE(server_side_aborted);

  // Python issue #23197: cancelling a handshake must not raise an exception or log an error,
  // even if the handshake failed.
  EXPECT_EQ(messages, 0);
  loop.close();
}

// test_ssl_handshake_connection_lost
TEST_F(CPythonTestSSL, test_ssl_handshake_connection_lost) {
  // Python's check that connection_lost() does not come without connection_made() is protocol
  // only; the streams raise the error from open_connection() and make nothing.
  auto client_sslctx = create_client_ssl_context();
  asyncio::event_loop loop;
  loop.set_exception_handler([](asyncio::event_loop*, const asyncio::exception_context&) {});

  auto server = [](peer_socket& sock) {
    sock.recv(1024);
    // break the connection during handshake
    sock.close();
  };

  threaded_server srv(server, 1, 1);
  EXPECT_THROW(loop.run_until_complete(
                   [&] { asyncio::open_connection("127.0.0.1", srv.port(), client_sslctx, {.server_hostname = ""}); }),
               asyncio::ConnectionResetError);
  srv.stop();
  loop.close();
}

// test_start_tls_client_corrupted_ssl
TEST_F(CPythonTestSSL, test_start_tls_client_corrupted_ssl) {
  asyncio::event_loop loop;
  loop.set_exception_handler([](asyncio::event_loop*, const asyncio::exception_context&) {});

  ssl_ctx_ptr sslctx = peer_server_context();
  auto client_sslctx = create_client_ssl_context();

  auto server = [&](peer_socket& sock) {
    const int orig_sock = ::dup(sock.fd());
    try {
      sock.starttls(sslctx.get(), true);
      sock.sendall("A\n");
      sock.recv_all(1);
      const std::string garbage = "please corrupt the SSL connection";
      (void)!::send(orig_sock, garbage.data(), garbage.size(), MSG_NOSIGNAL);
    } catch (const peer_error&) {
    }
    sock.close();
    ::close(orig_sock);
  };

  std::string res;
  {
    threaded_server srv(server, 1, 1);
    res = loop.run_until_complete([&] {
      auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.port(), client_sslctx, {.server_hostname = ""});

      EXPECT_EQ(reader.readline(), "A\n");
      writer.write("B");
      EXPECT_THROW(reader.readline(), asyncio::SSLError);
      writer.close();
      try {
        wait_closed(writer);
      } catch (const asyncio::SSLError&) {
      }
      return std::string("OK");
    });
  }
  EXPECT_EQ(res, "OK");
  loop.close();
}

// test_start_tls_client_reg_proto_1
TEST_F(CPythonTestSSL, test_start_tls_client_reg_proto_1) {
  const std::string HELLO_MSG(PAYLOAD_SIZE, '1');

  ssl_ctx_ptr server_context = peer_server_context();
  auto client_context = create_client_ssl_context();

  auto serve = [&](peer_socket& sock) {
    require(sock.recv_all(HELLO_MSG.size()).size() == HELLO_MSG.size(), "serve: HELLO_MSG expected");

    sock.starttls(server_context.get(), true);

    sock.sendall("O");
    require(sock.recv_all(HELLO_MSG.size()).size() == HELLO_MSG.size(), "serve: HELLO_MSG expected after TLS");

    sock.unwrap();
    sock.close();
  };

  asyncio::event_loop loop;
  {
    threaded_server srv(serve);
    loop.run_until_complete([&] {
      asyncio::wait_for(
          [&] {
            auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.port());

            writer.write(HELLO_MSG);
            writer.start_tls(client_context, {.server_hostname = ""});

            EXPECT_EQ(reader.read(1), "O");
            writer.write(HELLO_MSG);
            EXPECT_EQ(reader.read(), "");  // eof_received: the server's close_notify

            writer.close();
          },
          SHORT_TIMEOUT);
    });
  }
  loop.close();
}

// test_create_connection_memory_leak
TEST_F(CPythonTestSSL, test_create_connection_memory_leak) {
  const std::string HELLO_MSG(PAYLOAD_SIZE, '1');

  ssl_ctx_ptr server_context = peer_server_context();

  auto serve = [&](peer_socket& sock) {
    sock.starttls(server_context.get(), true);

    sock.sendall("O");
    require(sock.recv_all(HELLO_MSG.size()).size() == HELLO_MSG.size(), "serve: HELLO_MSG expected");

    sock.unwrap();
    sock.close();
  };

  asyncio::event_loop loop;
  {
    threaded_server srv(serve);
    loop.run_until_complete([&] {
      asyncio::wait_for(
          [&] {
            auto client_context = create_client_ssl_context();
            auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.port(), client_context);

            EXPECT_EQ(reader.read(1), "O");
            writer.write(HELLO_MSG);
            EXPECT_EQ(reader.read(), "");

            writer.close();
          },
          SHORT_TIMEOUT);
    });
  }
  loop.close();
  // No garbage is left for the SSL client: the fixture checks that every allocation (the
  // context's and the session's included) is freed.
}

// test_start_tls_slow_client_cancel
TEST_F(CPythonTestSSL, test_start_tls_slow_client_cancel) {
  const std::string HELLO_MSG(PAYLOAD_SIZE, '1');

  auto client_context = create_client_ssl_context();
  asyncio::event_loop loop(virtual_time());
  loop_signal server_waits_on_handshake(loop);

  auto serve = [&](peer_socket& sock) {
    require(sock.recv_all(HELLO_MSG.size()).size() == HELLO_MSG.size(), "serve: HELLO_MSG expected");

    try {
      server_waits_on_handshake.set_result();
      sock.recv_all(1024 * 1024);
    } catch (const peer_aborted&) {
    }
    sock.close();
  };

  {
    threaded_server srv(serve);
    loop.run_until_complete([&] {
      auto streams = asyncio::open_connection("127.0.0.1", srv.port());
      auto& writer = streams.second;

      writer.write(HELLO_MSG);

      server_waits_on_handshake.await();

      EXPECT_THROW(asyncio::wait_for([&] { writer.start_tls(client_context, {.server_hostname = ""}); }, 0.5),
                   asyncio::TimeoutError);
    });
  }
  loop.close();
}

// test_start_tls_server_1
TEST_F(CPythonTestSSL, test_start_tls_server_1) {
  const std::string HELLO_MSG(PAYLOAD_SIZE, '1');

  auto server_context = create_server_ssl_context();
  ssl_ctx_ptr client_context = peer_client_context();

  auto client = [&](peer_socket& sock, int port) {
    sock.connect(port);
    require(sock.recv_all(HELLO_MSG.size()).size() == HELLO_MSG.size(), "client: HELLO_MSG expected");

    sock.starttls(client_context.get(), false);
    sock.sendall(HELLO_MSG);

    sock.unwrap();
    sock.close();
  };

  asyncio::event_loop loop;
  loop.run_until_complete([&] {
    auto on_con_lost = asyncio::get_running_loop().create_future<void>();
    std::string data;

    // main(): the protocol's connection_made / data_received / eof_received / connection_lost as
    // the handler's steps.
    auto main = [&](asyncio::StreamReader reader, asyncio::StreamWriter writer) {
      try {
        writer.write(HELLO_MSG);

        EXPECT_EQ(reader.at_eof(), false);  // proto.data == b'': nothing read before the handshake

        writer.start_tls(server_context, {.ssl_handshake_timeout = SHORT_TIMEOUT});

        data = reader.read();  // to eof_received
        writer.close();
        writer.wait_closed();  // connection_lost(None)
        on_con_lost.set_result();
      } catch (...) {
        on_con_lost.set_exception(std::current_exception());
      }
    };

    auto server = asyncio::start_server(main, "127.0.0.1", 0);
    const int port = server.port();
    {
      threaded_client c([&](peer_socket& sock) { client(sock, port); });
      asyncio::wait_for(on_con_lost, SHORT_TIMEOUT);
      EXPECT_TRUE(data == HELLO_MSG) << data.size();
    }

    server.close();
    server.wait_closed();
  });
  loop.close();
}

// test_shutdown_cleanly
TEST_F(CPythonTestSSL, test_shutdown_cleanly) {
  int CNT = 0;
  const int TOTAL_CNT = 25;
  const std::string A_DATA(1024 * BUF_MULTIPLIER, 'A');

  ssl_ctx_ptr sslctx = peer_server_context();
  auto client_sslctx = create_client_ssl_context();

  auto server = [&](peer_socket& sock) {
    sock.starttls(sslctx.get(), true);

    require(sock.recv_all(A_DATA.size()) == A_DATA, "server: A_DATA expected");
    sock.send("OK");

    sock.unwrap();

    sock.close();
  };

  auto client = [&](int port) {
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", port, client_sslctx,
                                                     {.server_hostname = "", .ssl_handshake_timeout = SHORT_TIMEOUT});

    writer.write(A_DATA);
    EXPECT_EQ(reader.readexactly(2), "OK");

    EXPECT_EQ(reader.read(), "");

    ++CNT;

    writer.close();
    wait_closed(writer);
  };

  asyncio::event_loop loop;
  {
    threaded_server srv(server, TOTAL_CNT, TOTAL_CNT);
    loop.run_until_complete([&] {
      std::vector<asyncio::Task<void>> tasks;
      for (int i = 0; i < TOTAL_CNT; ++i) tasks.push_back(asyncio::create_task([&] { client(srv.port()); }));
      for (auto& t : tasks) asyncio::await(t);
    });
  }
  EXPECT_EQ(CNT, TOTAL_CNT);
  loop.close();
}

// test_flush_before_shutdown
TEST_F(CPythonTestSSL, test_flush_before_shutdown) {
  const std::size_t CHUNK = 1024 * 128;
  const std::size_t SIZE = 32;

  ssl_ctx_ptr sslctx = peer_server_context();
  auto client_sslctx = create_client_ssl_context();

  asyncio::event_loop loop;
  loop_signal future(loop);

  auto server = [&](peer_socket& sock) {
    sock.starttls(sslctx.get(), true);
    require(sock.recv_all(4) == "ping", "server: ping expected");
    sock.send("pong");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // hopefully stuck the TCP buffer
    require(sock.recv_all(CHUNK * SIZE).size() == CHUNK * SIZE, "server: all the data expected");
    sock.close();
  };

  {
    threaded_server srv(future.wrap(server));
    loop.run_until_complete([&] {
      auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.port(), client_sslctx, {.server_hostname = ""});
      writer.write("ping");
      EXPECT_EQ(reader.readexactly(4), "pong");

      // Python pauses the SSL protocol's writing here: the writes stay buffered either way.
      for (std::size_t i = 0; i < SIZE; ++i) writer.write(std::string(CHUNK, 'x'));

      writer.close();

      wait_closed(writer);
      try {
        EXPECT_EQ(reader.read(), "");
      } catch (const asyncio::ConnectionResetError&) {
      }
      future.await();
    });
  }
  loop.close();
}

// remote_shutdown_receives_trailing_data(size, slow_socket) is the body of
// test_remote_shutdown_receives_trailing_data (size SIZE) and its _on_slow_socket variant.
void remote_shutdown_receives_trailing_data(std::size_t size, bool slow_socket) {
  const std::size_t CHUNK = 1024 * 128;

  ssl_ctx_ptr sslctx = peer_server_context();
  auto client_sslctx = create_client_ssl_context();

  // server: close_notify first, then every byte the client had buffered, then its close_notify.
  auto server = [&](peer_socket& sock) {
    sock.starttls(sslctx.get(), true);

    require(sock.recv(4) == "ping", "server: ping expected");
    sock.send("pong");

    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // wait for the peer to fill its backlog

    // send close_notify but don't wait for response
    require(sock.send_close_notify() == 0, "server: the client's close_notify came before the server's");

    // should receive all data
    std::size_t data_len = 0;
    for (;;) {
      std::string chunk = sock.recv(16384);  // "" at SSLZeroReturnError
      if (chunk.empty()) break;
      data_len += chunk.size();
    }
    require(data_len == CHUNK * size,
            "server: " + std::to_string(data_len) + " bytes received, " + std::to_string(CHUNK * size) + " expected");

    // verify that close_notify is received
    require(sock.send_close_notify() == 1, "server: no close_notify from the client");

    sock.close();
  };

  // eof_server: a TCP EOF without close_notify.
  auto eof_server = [&](peer_socket& sock) {
    sock.starttls(sslctx.get(), true);
    require(sock.recv_all(4) == "ping", "eof_server: ping expected");
    sock.send("pong");

    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // wait for the peer to fill its backlog

    // send EOF
    sock.shutdown_wr();

    // should receive all data
    require(sock.recv_all(CHUNK * size).size() == CHUNK * size, "eof_server: all the data expected");

    sock.close();
  };

  for (const auto& prog : std::vector<std::function<void(peer_socket&)>>{server, eof_server}) {
    asyncio::event_loop loop;
    loop_signal future(loop);
    {
      threaded_server srv(future.wrap(prog));
      loop.run_until_complete([&] {
        auto [reader, writer] =
            asyncio::open_connection("127.0.0.1", srv.port(), client_sslctx, {.server_hostname = ""});
        if (slow_socket) {
          // A socket that cannot take the data in time (Python mocks send() to take half).
          const int small = 64 * 1024;
          ::setsockopt(writer.fileno(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        }
        writer.write("ping");
        EXPECT_EQ(reader.readexactly(4), "pong");

        // fill the write backlog (Python: transport._test__append_write_backlog)
        for (std::size_t i = 0; i < size; ++i) writer.write(std::string(CHUNK, 'x'));

        try {
          EXPECT_EQ(reader.read(), "");
        } catch (const asyncio::BrokenPipeError&) {
        } catch (const asyncio::ConnectionResetError&) {
        }

        future.await();

        writer.close();
        wait_closed(writer);
      });
    }
    loop.close();
  }
}

// test_remote_shutdown_receives_trailing_data
TEST_F(CPythonTestSSL, test_remote_shutdown_receives_trailing_data) {
  remote_shutdown_receives_trailing_data(32, false);
}

// test_remote_shutdown_receives_trailing_data_on_slow_socket
TEST_F(CPythonTestSSL, test_remote_shutdown_receives_trailing_data_on_slow_socket) {
  // The same with twice the data over a socket with a small send buffer (gh-115514: the socket
  // transport's delayed write path after close).
  remote_shutdown_receives_trailing_data(64, true);
}

// test_handshake_timeout_handler_leak
TEST_F(CPythonTestSSL, test_handshake_timeout_handler_leak) {
  // A listening socket that never accepts: the handshake waits until wait_for() gives up.
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(s, 1), 0);
  ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  asyncio::event_loop loop(virtual_time());
  loop.run_until_complete([&] {
    auto ctx = asyncio::ssl_context::create_default_context();
    try {
      asyncio::wait_for([&] { asyncio::open_connection("127.0.0.1", port, ctx); }, 0.1);
      ADD_FAILURE() << "TimeoutError is not raised";
    } catch (const asyncio::ConnectionRefusedError&) {
    } catch (const asyncio::TimeoutError&) {
    }
  });
  loop.close();
  ::close(s);
  // The SSL protocol's references are gone: the fixture's allocation count.
}

// test_shutdown_timeout_handler_leak
TEST_F(CPythonTestSSL, test_shutdown_timeout_handler_leak) {
  ssl_ctx_ptr sslctx = peer_server_context();
  auto server = [&](peer_socket& sock) {
    sock.starttls(sslctx.get(), true);
    sock.recv(32);
    sock.close();
  };

  asyncio::event_loop loop;
  {
    threaded_server srv(server);
    loop.run_until_complete([&] {
      auto ctx = create_client_ssl_context();
      auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.port(), ctx);
      writer.close();
      writer.wait_closed();  // connection_lost
    });
  }
  loop.close();
  // The SSL protocol's references are gone: the fixture's allocation count.
}

// test_shutdown_timeout_handler_not_set
TEST_F(CPythonTestSSL, test_shutdown_timeout_handler_not_set) {
  asyncio::event_loop loop;
  loop_signal eof(loop);
  std::string extra;

  ssl_ctx_ptr sslctx = peer_server_context();
  auto server = [&](peer_socket& sock) {
    sock.starttls(sslctx.get(), true);
    sock.send("hello");
    require(sock.recv(1024) == "world", "server: world expected");
    sock.send("extra bytes");
    // sending EOF here
    sock.shutdown_wr();
    eof.set_result();
    // make sure we have enough time to reproduce the issue
    require(sock.recv(1024).empty(), "server: EOF expected");
    sock.close();
  };

  {
    threaded_server srv(server);
    loop.run_until_complete([&] {
      auto ctx = create_client_ssl_context();
      auto [reader, writer] = asyncio::open_connection("127.0.0.1", srv.port(), ctx);
      EXPECT_EQ(reader.readexactly(5), "hello");
      writer.write("world");
      // Python pauses reading here, so that the incoming data stays in the SSL object; a stream
      // nobody reads leaves it there too.
      eof.await();
      extra = reader.read();  // resume_reading(); data_received(b'extra bytes'); EOF
      writer.close();
      writer.wait_closed();  // connection_lost(None)
    });
  }
  EXPECT_EQ(extra, "extra bytes");
  loop.close();
}

}  // namespace cpython_ssl_port
