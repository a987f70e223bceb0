// cpython_sslproto_port_test.cpp: CPython's TLS stream tests, method by method, as C++ twins over
// our streams (TLS in include/greenlet/io/tls.hpp, docs/io.md "TLS"):
// - Lib/test/test_asyncio/test_sslproto.py. The python/cpython copy the index stores under that
//   path (09c91a1a38ff2dec6a42d6186174f2eecd7cf63c) is the 3.5 file; the methods ported here are
//   from the index's later stored copy (file id 8921488, no commit shown: the 3.9-era file with
//   SslProtoHandshakeTests' ssl_handshake_timeout cases and BaseStartTLS, whose methods 3.12 keeps,
//   without the loop= arguments).
// - the SSL methods of Lib/test/test_asyncio/test_streams.py (7565b076cc6bd7c128116f38bd310089908aea91;
//   test_start_tls is 3.11's, from the 3.12 branch, as that commit predates it);
// - the SSL methods of Lib/test/test_asyncio/test_events.py (3d9562e98e1454443da3704391afa7ed14c671b4),
//   with create_connection()/create_server() and a protocol as open_connection()/start_server().
//
// Python's test peers are threads with blocking sockets (tcp_server / tcp_client, wrapping them
// with SSLContext.wrap_socket); here they are std::threads using OpenSSL directly on the
// native_handle() of an ssl_context, or our own streams where the peer is an asyncio server.
// Loopback and Unix sockets only. Certificates are made at run time (tls_test_certs.hpp; the
// certificate for "localhost" only, test_utils.SIGNED_CERTFILE, is made here).
//
// Ported: 30 methods. SslProtoHandshakeTests 8 (test_handshake_timeout_zero,
// test_handshake_timeout_negative, test_eof_received_waiter, test_connection_lost,
// test_close_during_handshake, test_get_extra_info_on_closed_connection,
// test_data_received_after_closing, test_write_after_closing); BaseStartTLS/SelectorStartTLSTests
// 10 (test_start_tls_client_reg_proto_1, test_create_connection_memory_leak,
// test_start_tls_client_buf_proto_1, test_start_tls_slow_client_cancel, test_start_tls_server_1,
// test_start_tls_wrong_args, test_handshake_timeout, test_create_connection_ssl_slow_handshake,
// test_create_connection_ssl_failed_certificate, test_start_tls_client_corrupted_ssl); StreamTests
// 3 (test_open_connection_no_loop_ssl, test_open_unix_connection_no_loop_ssl, test_start_tls);
// EventLoopTestsMixin 9 (test_create_ssl_connection, test_create_ssl_unix_connection,
// test_create_server_ssl, test_create_unix_server_ssl, test_create_server_ssl_verify_failed,
// test_create_unix_server_ssl_verify_failed, test_create_server_ssl_match_failed,
// test_create_unix_server_ssl_verified, test_create_server_ssl_verified).
//
// Not ported:
// - test_fatal_error_no_name_error (a NameError in sslproto.py's _fatal_error), test_set_new_app_protocol
//   (transport.set_protocol()), test_buf_feed_data (protocols._feed_data_to_buffered_proto, a
//   BufferedProtocol internal): protocol internals with no stream twin.
// - test_ssl_connect_accepted_socket (loop.connect_accepted_socket(ssl=)): the streams have no
//   constructor from an accepted socket.
// - ProactorStartTLSTests: Windows only, the same methods on another loop.
//
// Deliberate differences the tests assert:
// - The weakref checks that the SSLContext is freed (test_start_tls_client_reg_proto_1,
//   test_create_connection_memory_leak, test_handshake_timeout) are the fixture's check that the
//   test leaves no allocation behind.
// - loop.start_tls(transport, protocol, ctx) is StreamWriter::start_tls(ctx): upgraded in place,
//   so the "new transport" is the same writer; Python's data_received()/eof_received() callbacks are
//   reads (readexactly(), read() to EOF).
// - get_extra_info('sslcontext'/'ssl_object'/'cipher'/'peercert') is writer.tls(): nullopt before
//   the handshake; peercert's subject is tls_info::peer_subject, empty as Python's {} when the
//   certificate was not validated (cert_none).
// - test_start_tls_wrong_args's TypeErrors (None for the context or transport) cannot be written in
//   C++; the checks that remain are an empty writer (RuntimeError) and a context of the wrong side
//   (ValueError, Python's "is not supported" for a server context given to a client).
// - test_close_during_handshake: Python checks that transport.abort() was called (a mock); here
//   start_tls() raises ConnectionAbortedError, the peer sees the connection end, and wait_closed()
//   returns normally (the close was the caller's own, not a failure).
// - Python's timeouts of 0.5 / 1.0 s run on virtual time here (event_loop::options::virtual_time)
//   where the peer never answers, so no test waits for the clock.
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "io/tls_test_certs.hpp"
#include "io/tls_test_peer.hpp"
#include "support/greenlet_test.hpp"

namespace cpython_sslproto_port {

namespace asyncio = greenlet::asyncio;

// test_utils.SIGNED_CERTFILE / SIGNING_CA: a certificate for "localhost" only (no IP address), signed
// by a CA of its own.
struct signed_files {
  std::string ca, cert, key;
};

const signed_files& signed_cert() {
  static const signed_files made = [] {
    namespace d = tls_test::detail;
    char dir_template[] = "/tmp/greenlet-sslproto-XXXXXX";
    if (mkdtemp(dir_template) == nullptr) throw std::runtime_error("mkdtemp failed");
    static std::string dir = dir_template;
    signed_files f{dir + "/ca.pem", dir + "/signed.pem", dir + "/signed.key"};
    EVP_PKEY* ca_key = d::make_key();
    X509* ca = d::make_cert(ca_key, "greenlet-cpp sslproto CA", nullptr, nullptr, 11, true, nullptr);
    EVP_PKEY* key = d::make_key();
    X509* cert = d::make_cert(key, "localhost", ca, ca_key, 12, false, "DNS:localhost");
    d::write_cert(f.ca, ca);
    d::write_cert(f.cert, cert);
    d::write_key(f.key, key);
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    });
    return f;
  }();
  return made;
}

// The certificates are made before the fixture counts allocations: they live for the process.
class SslPortTest : public greenlet_test::GreenletTest {
 protected:
  void SetUp() override {
    tls_test::files();
    signed_cert();
    greenlet_test::GreenletTest::SetUp();
  }
};

using CPythonSslProtoHandshakeTests = SslPortTest;
using CPythonSelectorStartTLSTests = SslPortTest;
using CPythonStreamTestsSsl = SslPortTest;
using CPythonEventLoopTestsSsl = SslPortTest;

const std::string HELLO_MSG(1024 * 100, '1');  // BaseStartTLS.PAYLOAD_SIZE

// test_utils.simple_server_sslcontext() (ONLYCERT/ONLYKEY).
asyncio::ssl_context simple_server_sslcontext() {
  asyncio::ssl_context ctx(asyncio::ssl_protocol::tls_server);
  ctx.load_cert_chain(tls_test::files().server_cert, tls_test::files().server_key);
  return ctx;
}

// test_utils.simple_client_sslcontext(disable_verify=...): create_default_context() without the
// host name check, and without verification unless asked.
asyncio::ssl_context simple_client_sslcontext(bool disable_verify = true) {
  auto ctx = asyncio::ssl_context::create_default_context();
  ctx.set_check_hostname(false);
  if (disable_verify) ctx.set_verify_mode(asyncio::ssl_verify_mode::cert_none);
  return ctx;
}

// test_utils.dummy_ssl_context(): SSLContext(PROTOCOL_TLS_CLIENT) checking nothing.
asyncio::ssl_context dummy_ssl_context() {
  asyncio::ssl_context ctx(asyncio::ssl_protocol::tls_client);
  ctx.set_check_hostname(false);
  ctx.set_verify_mode(asyncio::ssl_verify_mode::cert_none);
  return ctx;
}

// _create_ssl_context(certfile): the server context of test_events' _make_ssl_server().
asyncio::ssl_context server_context_for(const std::string& cert, const std::string& key) {
  asyncio::ssl_context ctx(asyncio::ssl_protocol::tls_server);
  ctx.load_cert_chain(cert, key);
  return ctx;
}

// The client context of test_events' *_verify_failed / *_match_failed / *_verified: CERT_REQUIRED
// and check_hostname, trusting cafile (none when empty).
asyncio::ssl_context verifying_client(const std::string& cafile) {
  asyncio::ssl_context ctx(asyncio::ssl_protocol::tls_client);
  ctx.set_verify_mode(asyncio::ssl_verify_mode::cert_required);
  if (!cafile.empty()) ctx.load_verify_locations(cafile);
  ctx.set_check_hostname(true);
  return ctx;
}

std::vector<std::string>* collect_messages(std::vector<std::string>& messages) {
  asyncio::get_running_loop().set_exception_handler(
      [&messages](asyncio::event_loop*, const asyncio::exception_context& ctx) { messages.push_back(ctx.message); });
  return &messages;
}

asyncio::event_loop::options virtual_time() {
  asyncio::event_loop::options opts;
  opts.virtual_time = true;
  return opts;
}

std::string unix_path(const char* tag) {
  return "/tmp/greenlet-sslproto-" + std::string(tag) + "-" + std::to_string(::getpid()) + ".sock";
}

// ---- The peer threads: blocking sockets (10 s timeouts), OpenSSL on them directly.

// peer_aborted is what test_utils' recv_all() raises when the connection ends first
// (ConnectionAbortedError); tls_socket's recv_all() raises it too.
using tls_test_peer::peer_aborted;
using tls_test_peer::recv_all;
using tls_test_peer::set_timeouts;
using tls_test_peer::thread_server;
using tls_test_peer::tls_socket;

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t sent = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent <= 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    data.remove_prefix(static_cast<std::size_t>(sent));
  }
}

// ---- SslProtoHandshakeTests

// test_handshake_timeout_zero: SSLProtocol(ssl_handshake_timeout=0) is ValueError('... a positive
// number'); here every call that takes the timeout refuses it before connecting.
TEST_F(CPythonSslProtoHandshakeTests, test_handshake_timeout_zero) {
  std::vector<std::string> messages;
  asyncio::run([&] {
    auto check = [&](auto&& call) {
      try {
        call();
        ADD_FAILURE() << "no ValueError";
      } catch (const asyncio::ValueError& e) {
        messages.push_back(e.what());
      }
    };
    check([] { asyncio::open_connection("127.0.0.1", 1, dummy_ssl_context(), {.ssl_handshake_timeout = 0}); });
    check([] {
      asyncio::start_server([](asyncio::StreamReader, asyncio::StreamWriter) {}, "127.0.0.1", 0,
                            {.ssl = simple_server_sslcontext(), .ssl_handshake_timeout = 0});
    });
    auto server = asyncio::start_server([](asyncio::StreamReader, asyncio::StreamWriter) {}, "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    check([&, w = w]() mutable { w.start_tls(dummy_ssl_context(), {.ssl_handshake_timeout = 0}); });
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(messages, std::vector<std::string>(3, "ssl_handshake_timeout should be a positive number, got 0"));
}

// test_handshake_timeout_negative: the same for -10.
TEST_F(CPythonSslProtoHandshakeTests, test_handshake_timeout_negative) {
  std::vector<std::string> messages;
  asyncio::run([&] {
    auto check = [&](auto&& call) {
      try {
        call();
        ADD_FAILURE() << "no ValueError";
      } catch (const asyncio::ValueError& e) {
        messages.push_back(e.what());
      }
    };
    check([] { asyncio::open_connection("127.0.0.1", 1, dummy_ssl_context(), {.ssl_handshake_timeout = -10}); });
    check([] {
      asyncio::start_server([](asyncio::StreamReader, asyncio::StreamWriter) {}, "127.0.0.1", 0,
                            {.ssl = simple_server_sslcontext(), .ssl_handshake_timeout = -10});
    });
    auto server = asyncio::start_server([](asyncio::StreamReader, asyncio::StreamWriter) {}, "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    check([&, w = w]() mutable { w.start_tls(dummy_ssl_context(), {.ssl_handshake_timeout = -10}); });
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(messages, std::vector<std::string>(3, "ssl_handshake_timeout should be a positive number, got -10"));
}

// test_eof_received_waiter: EOF from the peer during the handshake completes it with
// ConnectionResetError.
TEST_F(CPythonSslProtoHandshakeTests, test_eof_received_waiter) {
  bool reset = false;
  thread_server srv([](int fd) {
    char hello[1024];
    (void)::recv(fd, hello, sizeof hello, 0);  // the ClientHello, then EOF
  });
  asyncio::run([&] {
    try {
      asyncio::open_connection("127.0.0.1", srv.port(), dummy_ssl_context());
    } catch (const asyncio::ConnectionResetError&) {
      reset = true;
    }
  });
  srv.join();
  EXPECT_TRUE(reset);
  EXPECT_EQ(srv.error(), "");
}

// test_connection_lost: the connection lost with an error during the handshake (here the peer's
// reset) fails the handshake with that error, instead of leaving it waiting.
TEST_F(CPythonSslProtoHandshakeTests, test_connection_lost) {
  std::optional<int> error;
  thread_server srv([](int fd) {
    char hello[1024];
    (void)::recv(fd, hello, sizeof hello, 0);
    linger hard{1, 0};  // close() sends RST
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  });
  asyncio::run([&] {
    try {
      asyncio::open_connection("127.0.0.1", srv.port(), dummy_ssl_context());
    } catch (const asyncio::OSError& e) {
      error = e.code().value();
    }
  });
  srv.join();
  EXPECT_EQ(error, ECONNRESET);
}

// test_close_during_handshake (bpo-29743): closing the transport during the handshake aborts it and
// leaks no socket: the peer sees the connection end at once.
TEST_F(CPythonSslProtoHandshakeTests, test_close_during_handshake) {
  std::string what;
  bool closed = false;
  std::atomic<bool> peer_saw_eof{false};
  thread_server srv([&](int fd) {
    char buf[4096];
    while (::recv(fd, buf, sizeof buf, 0) > 0) {
    }
    peer_saw_eof = true;
  });
  asyncio::run([&] {
    auto [r, w] = asyncio::open_connection("127.0.0.1", srv.port());
    auto upgrade = asyncio::create_task([&, w = w]() mutable {
      try {
        w.start_tls(dummy_ssl_context());
      } catch (const asyncio::ConnectionAbortedError& e) {
        what = e.what();
      }
    });
    asyncio::sleep(0);
    asyncio::sleep(0);
    w.close();
    asyncio::await(upgrade);
    // The close was the caller's own: the stream is closed, not failed.
    EXPECT_NO_THROW(w.wait_closed());
    closed = w.fileno() == -1;
  });
  srv.join();
  EXPECT_EQ(what.rfind("the stream was closed during the TLS handshake", 0), 0u) << what;
  EXPECT_TRUE(closed);
  EXPECT_TRUE(peer_saw_eof);
}

// test_get_extra_info_on_closed_connection: the extra info before the connection is made (none),
// while open, and after connection_lost(). Here: tls() is nullopt on the plain stream, set once
// the handshake is done, and kept after close() as the peer's address is (asyncio keeps the SSL
// extras it collected at the handshake).
TEST_F(CPythonSslProtoHandshakeTests, test_get_extra_info_on_closed_connection) {
  std::vector<std::string> seen;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader r, asyncio::StreamWriter w) {
          r.read();
          w.close();
        },
        "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    seen.push_back(w.tls() ? "tls" : "none");
    w.close();
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
  ASSERT_EQ(seen, std::vector<std::string>{"none"});
  seen.clear();
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader r, asyncio::StreamWriter w) {
          r.read();
          w.close();
        },
        "127.0.0.1", 0, {.ssl = simple_server_sslcontext()});
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), dummy_ssl_context());
    seen.push_back(w.tls() ? w.tls()->version : "none");
    const asyncio::address peer = w.get_extra_info("peername");
    w.close();
    w.wait_closed();
    seen.push_back(w.tls() ? w.tls()->version : "none");
    seen.push_back(w.get_extra_info("peername") == peer ? "same peer" : "peer lost");
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"TLSv1.3", "TLSv1.3", "same peer"}));
}

// test_data_received_after_closing: data arriving after close() is dropped without an error.
TEST_F(CPythonSslProtoHandshakeTests, test_data_received_after_closing) {
  std::string after_close;
  std::vector<std::string> messages;
  asyncio::run([&] {
    collect_messages(messages);
    auto server = asyncio::start_server(
        [](asyncio::StreamReader r, asyncio::StreamWriter w) {
          r.readexactly(1);
          w.write("data");  // arrives after the client's close()
          w.close();
        },
        "127.0.0.1", 0, {.ssl = simple_server_sslcontext()});
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), dummy_ssl_context());
    w.write("x");
    w.close();
    after_close = r.read();  // the reader sees EOF, not the data nor an error
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(after_close, "");
  EXPECT_EQ(messages, std::vector<std::string>{});
}

// test_write_after_closing: write() after close() on a TLS stream is ignored, without raising.
TEST_F(CPythonSslProtoHandshakeTests, test_write_after_closing) {
  std::string server_got;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          server_got = r.read();
          w.close();
        },
        "127.0.0.1", 0, {.ssl = simple_server_sslcontext()});
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), dummy_ssl_context());
    w.write("before");
    w.close();
    EXPECT_NO_THROW(w.write("data"));
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(server_got, "before");
}

// ---- BaseStartTLS / SelectorStartTLSTests

// test_start_tls_client_reg_proto_1: plain bytes, then STARTTLS from the client: the peer reads
// HELLO_MSG in clear, takes the server side of the handshake, sends "O", reads HELLO_MSG through
// TLS and closes without close_notify (an EOF for the client).
TEST_F(CPythonSelectorStartTLSTests, test_start_tls_client_reg_proto_1) {
  auto server_context = simple_server_sslcontext();
  std::string on_data;
  bool on_eof = false;
  thread_server srv([&](int fd) {
    EXPECT_EQ(recv_all(fd, HELLO_MSG.size()).size(), HELLO_MSG.size());
    tls_socket sock(fd, server_context, true);
    sock.sendall("O");
    EXPECT_EQ(sock.recv_all(HELLO_MSG.size()).size(), HELLO_MSG.size());
    ::shutdown(fd, SHUT_RDWR);
  });
  asyncio::run([&] {
    asyncio::wait_for(
        [&] {
          auto [r, w] = asyncio::open_connection("127.0.0.1", srv.port());
          w.write(HELLO_MSG);
          w.start_tls(simple_client_sslcontext());
          on_data = r.readexactly(1);
          w.write(HELLO_MSG);
          on_eof = r.read().empty() && r.at_eof();
          w.close();
        },
        10);
  });
  srv.join();
  EXPECT_EQ(srv.error(), "");
  EXPECT_EQ(on_data, "O");
  EXPECT_TRUE(on_eof);
}

// test_create_connection_memory_leak: the same with ssl= at connect; nothing is left behind
// (the fixture's allocation check stands for Python's weakref one).
TEST_F(CPythonSelectorStartTLSTests, test_create_connection_memory_leak) {
  auto server_context = simple_server_sslcontext();
  std::string on_data;
  bool on_eof = false;
  thread_server srv([&](int fd) {
    tls_socket sock(fd, server_context, true);
    sock.sendall("O");
    EXPECT_EQ(sock.recv_all(HELLO_MSG.size()).size(), HELLO_MSG.size());
    ::shutdown(fd, SHUT_RDWR);
  });
  asyncio::run([&] {
    asyncio::wait_for(
        [&] {
          auto [r, w] = asyncio::open_connection("127.0.0.1", srv.port(), simple_client_sslcontext());
          on_data = r.readexactly(1);
          w.write(HELLO_MSG);
          on_eof = r.read().empty();
          w.close();
        },
        10);
  });
  srv.join();
  EXPECT_EQ(srv.error(), "");
  EXPECT_EQ(on_data, "O");
  EXPECT_TRUE(on_eof);
}

// test_start_tls_client_buf_proto_1: after STARTTLS, two exchanges ("O", then "2") on the same
// streams (Python swaps the protocol between them; connection_made() runs once, as here the streams
// are made once).
TEST_F(CPythonSelectorStartTLSTests, test_start_tls_client_buf_proto_1) {
  auto server_context = simple_server_sslcontext();
  std::vector<std::string> got;
  thread_server srv([&](int fd) {
    EXPECT_EQ(recv_all(fd, HELLO_MSG.size()).size(), HELLO_MSG.size());
    tls_socket sock(fd, server_context, true);
    sock.sendall("O");
    EXPECT_EQ(sock.recv_all(HELLO_MSG.size()).size(), HELLO_MSG.size());
    sock.sendall("2");
    EXPECT_EQ(sock.recv_all(HELLO_MSG.size()).size(), HELLO_MSG.size());
    ::shutdown(fd, SHUT_RDWR);
  });
  asyncio::run([&] {
    asyncio::wait_for(
        [&] {
          auto [r, w] = asyncio::open_connection("127.0.0.1", srv.port());
          w.write(HELLO_MSG);
          w.start_tls(simple_client_sslcontext());
          got.push_back(r.readexactly(1));
          w.write(HELLO_MSG);
          got.push_back(r.readexactly(1));
          w.write(HELLO_MSG);
          got.push_back(r.read());
          w.close();
        },
        10);
  });
  srv.join();
  EXPECT_EQ(srv.error(), "");
  EXPECT_EQ(got, (std::vector<std::string>{"O", "2", ""}));
}

// test_start_tls_slow_client_cancel: the peer reads the plain bytes and never answers the
// ClientHello; wait_for(start_tls(), 0.5) raises TimeoutError (virtual time).
TEST_F(CPythonSelectorStartTLSTests, test_start_tls_slow_client_cancel) {
  bool timed_out = false;
  std::atomic<bool> peer_saw_eof{false};
  std::optional<asyncio::Future<void>> server_waits_on_handshake;
  asyncio::event_loop* loop = nullptr;
  std::optional<asyncio::event_loop::external_work_guard> guard;
  thread_server srv([&](int fd) {
    EXPECT_EQ(recv_all(fd, HELLO_MSG.size()).size(), HELLO_MSG.size());
    asyncio::event_loop::external_work_guard mine = std::move(*guard);
    loop->call_soon_threadsafe([&] { server_waits_on_handshake->set_result(); });
    try {
      recv_all(fd, 1024 * 1024);
    } catch (const peer_aborted&) {
      peer_saw_eof = true;
    }
  });
  asyncio::Runner runner(virtual_time());
  runner.run([&] {
    loop = &asyncio::get_running_loop();
    server_waits_on_handshake = loop->create_future<void>();
    auto [r, w] = asyncio::open_connection("127.0.0.1", srv.port());
    // The peer thread posts to the loop: deadlock detection stays off until it has.
    guard.emplace(*loop);
    w.write(HELLO_MSG);
    asyncio::await(*server_waits_on_handshake);
    try {
      asyncio::wait_for([&, w = w]() mutable { w.start_tls(simple_client_sslcontext()); }, 0.5);
    } catch (const asyncio::TimeoutError&) {
      timed_out = true;
    }
    w.close();
    server_waits_on_handshake.reset();
  });
  srv.join();
  EXPECT_TRUE(timed_out);
  EXPECT_TRUE(peer_saw_eof);
}

// test_start_tls_server_1: the server writes HELLO_MSG in clear, then takes the server side of
// STARTTLS on the accepted connection; the client thread reads the clear bytes, makes the client
// side, sends HELLO_MSG through TLS and gets ANSWER. Nothing was read before start_tls().
TEST_F(CPythonSelectorStartTLSTests, test_start_tls_server_1) {
  const std::string ANSWER = "answer";
  auto client_context = simple_client_sslcontext();
  std::string answer;
  std::string data;
  std::optional<std::string> lost;
  std::string client_error;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          w.write(HELLO_MSG);
          w.start_tls(simple_server_sslcontext(), {.ssl_handshake_timeout = 60});
          data = r.readexactly(HELLO_MSG.size());
          w.write(ANSWER);
          try {
            r.read();  // connection_lost(None): the client's close
            lost = "";
          } catch (const std::exception& e) {
            lost = e.what();
          }
          w.close();
        },
        "127.0.0.1", 0);
    const int port = server.port();
    std::thread client([&] {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      set_timeouts(fd);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<std::uint16_t>(port));
      try {
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("connect");
        EXPECT_EQ(recv_all(fd, HELLO_MSG.size()).size(), HELLO_MSG.size());
        tls_socket sock(fd, client_context, false);
        sock.sendall(HELLO_MSG);
        answer = sock.recv_all(ANSWER.size());
      } catch (const peer_aborted&) {
        client_error = "ConnectionAbortedError";
      } catch (const std::exception& e) {
        client_error = e.what();
      }
      ::close(fd);
    });
    try {
      asyncio::wait_for(
          [&] {
            while (!lost) asyncio::sleep(0.01);
          },
          10);
      asyncio::await(asyncio::to_thread([&] { client.join(); }));
    } catch (...) {
      ADD_FAILURE() << "exception";
      client.join();
      throw;
    }
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(client_error, "");
  EXPECT_EQ(data, HELLO_MSG);
  EXPECT_EQ(lost, "");
  EXPECT_EQ(answer, ANSWER);
}

// test_start_tls_wrong_args: start_tls() with what cannot work: an empty writer (Python's None
// transport) is RuntimeError, a server context on a client connection ValueError.
TEST_F(CPythonSelectorStartTLSTests, test_start_tls_wrong_args) {
  std::vector<std::string> errors;
  asyncio::run([&] {
    asyncio::StreamWriter none;
    try {
      none.start_tls(dummy_ssl_context());
    } catch (const asyncio::RuntimeError&) {
      errors.push_back("RuntimeError");
    }
    auto server = asyncio::start_server([](asyncio::StreamReader, asyncio::StreamWriter) {}, "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    try {
      w.start_tls(simple_server_sslcontext());
    } catch (const asyncio::ValueError& e) {
      errors.push_back(e.what());
    }
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(errors, (std::vector<std::string>{"RuntimeError",
                                              "a client TLS connection needs an ssl_context(ssl_protocol::tls_client) "
                                              "(create_default_context())"}));
}

// test_handshake_timeout (bpo-29970): wait_for(open_connection(ssl, timeout 10), 0.5) raises
// TimeoutError; the connection is aborted (the peer sees it end), no error reaches the exception
// handler, and the 10 s handshake timer is not left behind.
TEST_F(CPythonSelectorStartTLSTests, test_handshake_timeout) {
  std::vector<std::string> messages;
  std::atomic<bool> server_side_aborted{false};
  bool timed_out = false;
  thread_server srv([&](int fd) {
    try {
      recv_all(fd, 1024 * 1024);
    } catch (const peer_aborted&) {
      server_side_aborted = true;
    }
  });
  asyncio::Runner runner(virtual_time());
  runner.run([&] {
    collect_messages(messages);
    const double start = asyncio::get_running_loop().time();
    try {
      asyncio::wait_for(
          [&] {
            asyncio::open_connection("127.0.0.1", srv.port(), simple_client_sslcontext(),
                                     {.ssl_handshake_timeout = 10.0});
          },
          0.5);
    } catch (const asyncio::TimeoutError&) {
      timed_out = true;
    }
    EXPECT_DOUBLE_EQ(asyncio::get_running_loop().time() - start, 0.5);
  });
  srv.join();
  EXPECT_TRUE(timed_out);
  EXPECT_TRUE(server_side_aborted);
  EXPECT_EQ(messages, std::vector<std::string>{});
}

// test_create_connection_ssl_slow_handshake: open_connection(ssl, ssl_handshake_timeout=1.0) at a
// peer that never answers: ConnectionAbortedError 'SSL handshake.*is taking longer'.
TEST_F(CPythonSelectorStartTLSTests, test_create_connection_ssl_slow_handshake) {
  std::vector<std::string> messages;
  std::string what;
  thread_server srv([&](int fd) {
    try {
      recv_all(fd, 1024 * 1024);
    } catch (const peer_aborted&) {
    }
  });
  asyncio::Runner runner(virtual_time());
  runner.run([&] {
    collect_messages(messages);
    try {
      asyncio::open_connection("127.0.0.1", srv.port(), simple_client_sslcontext(), {.ssl_handshake_timeout = 1.0});
    } catch (const asyncio::ConnectionAbortedError& e) {
      what = e.what();
    }
  });
  srv.join();
  EXPECT_EQ(what.rfind("SSL handshake is taking longer than 1 seconds: aborting the connection", 0), 0u) << what;
  EXPECT_EQ(messages, std::vector<std::string>{});
}

// test_create_connection_ssl_failed_certificate: a client that verifies (no CA for the server's)
// gets SSLCertVerificationError.
TEST_F(CPythonSelectorStartTLSTests, test_create_connection_ssl_failed_certificate) {
  auto sslctx = simple_server_sslcontext();
  std::optional<long> verify_code;
  thread_server srv([&](int fd) {
    try {
      tls_socket sock(fd, sslctx, true);
    } catch (const std::runtime_error&) {
      // the client refused the certificate: expected
    }
  });
  asyncio::run([&] {
    try {
      asyncio::open_connection("127.0.0.1", srv.port(), simple_client_sslcontext(false),
                               {.server_hostname = "", .ssl_handshake_timeout = 1.0});
    } catch (const asyncio::SSLCertVerificationError& e) {
      verify_code = e.verify_code();
    }
  });
  srv.join();
  EXPECT_EQ(verify_code, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

// test_start_tls_client_corrupted_ssl: after a good record ("A\n"), the peer writes plain bytes
// on the TLS connection: the client's next read raises SSLError.
TEST_F(CPythonSelectorStartTLSTests, test_start_tls_client_corrupted_ssl) {
  std::vector<std::string> messages;
  auto sslctx = simple_server_sslcontext();
  std::string first;
  std::string reason;
  std::string res;
  thread_server srv([&](int fd) {
    tls_socket sock(fd, sslctx, true);
    sock.sendall("A\n");
    sock.recv_all(1);
    send_all(fd, "please corrupt the SSL connection");
  });
  asyncio::run([&] {
    collect_messages(messages);
    auto [r, w] =
        asyncio::open_connection("127.0.0.1", srv.port(), simple_client_sslcontext(), {.server_hostname = ""});
    first = r.readline();
    w.write("B");
    try {
      r.readline();
    } catch (const asyncio::SSLError& e) {
      reason = e.reason();
    }
    w.close();
    res = "OK";
  });
  srv.join();
  EXPECT_EQ(srv.error(), "");
  EXPECT_EQ(first, "A\n");
  EXPECT_FALSE(reason.empty());
  EXPECT_EQ(res, "OK");
}

// ---- test_streams.py

// run_test_server(use_ssl=True): an HTTP/1.0 server answering "Test message" to any request.
void http_handler(asyncio::StreamReader r, asyncio::StreamWriter w) {
  r.readuntil("\r\n\r\n");
  w.write("HTTP/1.0 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 12\r\n\r\nTest message");
  w.drain();
  w.close();
}

// _basetest_open_connection_no_loop_ssl
void basetest_open_connection_no_loop_ssl(asyncio::StreamReader r, asyncio::StreamWriter w) {
  w.write("GET / HTTP/1.0\r\n\r\n");
  std::string data = r.read();
  EXPECT_TRUE(data.ends_with("\r\n\r\nTest message")) << data;
  w.close();
}

// test_open_connection_no_loop_ssl
TEST_F(CPythonStreamTestsSsl, test_open_connection_no_loop_ssl) {
  std::vector<std::string> messages;
  asyncio::run([&] {
    collect_messages(messages);
    auto httpd = asyncio::start_server(http_handler, "127.0.0.1", 0, {.ssl = simple_server_sslcontext()});
    auto [r, w] = asyncio::open_connection("127.0.0.1", httpd.port(), dummy_ssl_context());
    basetest_open_connection_no_loop_ssl(r, w);
    httpd.close();
    httpd.wait_closed();
  });
  EXPECT_EQ(messages, std::vector<std::string>{});
}

// test_open_unix_connection_no_loop_ssl: server_hostname='' (no host to check, none sent).
TEST_F(CPythonStreamTestsSsl, test_open_unix_connection_no_loop_ssl) {
  std::vector<std::string> messages;
  const std::string path = unix_path("noloop");
  asyncio::run([&] {
    collect_messages(messages);
    auto httpd = asyncio::start_unix_server(http_handler, path, {.ssl = simple_server_sslcontext()});
    auto [r, w] = asyncio::open_unix_connection(path, dummy_ssl_context(), {.server_hostname = ""});
    basetest_open_connection_no_loop_ssl(r, w);
    httpd.close();
    httpd.wait_closed();
  });
  ::unlink(path.c_str());
  EXPECT_EQ(messages, std::vector<std::string>{});
}

// test_start_tls: a line in clear each way, STARTTLS on both sides, a line through TLS each way;
// get_extra_info('sslcontext') is None before and set after, on both sides.
TEST_F(CPythonStreamTestsSsl, test_start_tls) {
  std::vector<std::string> messages;
  std::string msg1, msg2;
  std::vector<bool> server_tls;
  std::vector<bool> client_tls;
  asyncio::run([&] {
    collect_messages(messages);
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          w.write(r.readline());
          w.drain();
          server_tls.push_back(w.tls().has_value());
          w.start_tls(simple_server_sslcontext());
          server_tls.push_back(w.tls().has_value());
          w.write(r.readline());
          w.drain();
          w.close();
          w.wait_closed();
        },
        "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    w.write("hello world 1!\n");
    w.drain();
    msg1 = r.readline();
    client_tls.push_back(w.tls().has_value());
    w.start_tls(simple_client_sslcontext());
    client_tls.push_back(w.tls().has_value());
    w.write("hello world 2!\n");
    w.drain();
    msg2 = r.readline();
    w.close();
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(messages, std::vector<std::string>{});
  EXPECT_EQ(msg1, "hello world 1!\n");
  EXPECT_EQ(msg2, "hello world 2!\n");
  EXPECT_EQ(server_tls, (std::vector<bool>{false, true}));
  EXPECT_EQ(client_tls, (std::vector<bool>{false, true}));
}

// ---- test_events.py (EventLoopTestsMixin, SelectorEventLoopTests)

// check_ssl_extra_info(client, check_sockname, peername, peercert): sockname and peername known,
// the peer certificate as validated ({} / "" when not), a cipher and a version.
void check_ssl_extra_info(const asyncio::StreamWriter& client, bool check_sockname,
                          const std::optional<asyncio::address>& peername, const std::string& peercert) {
  if (check_sockname) {
    EXPECT_NE(client.get_extra_info("sockname"), asyncio::address{});
  }
  if (peername) {
    EXPECT_EQ(client.get_extra_info("peername"), *peername);
  } else {
    EXPECT_NE(client.get_extra_info("peername"), asyncio::address{});
  }
  std::optional<asyncio::tls_info> info = client.tls();
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->peer_subject, peercert);
  EXPECT_FALSE(info->cipher.empty());
  EXPECT_FALSE(info->version.empty());
}

// _basetest_create_ssl_connection with MyProto: the request on connect, the answer to EOF.
void basetest_create_ssl_connection(asyncio::StreamReader r, asyncio::StreamWriter w, bool check_sockname,
                                    const std::optional<asyncio::address>& peername) {
  w.write("GET / HTTP/1.0\r\nHost: example.com\r\n\r\n");
  check_ssl_extra_info(w, check_sockname, peername, "");
  EXPECT_GT(r.read().size(), 0u);
  w.close();
}

// _test_create_ssl_connection(create_connection): with dummy_ssl_context(), then ssl=True (the
// real create_default_context(): the test CA is not trusted, CERTIFICATE_VERIFY_FAILED).
template <class Connect>
void test_create_ssl_connection(Connect create_connection, bool check_sockname,
                                const std::optional<asyncio::address>& peername) {
  auto [r, w] = create_connection(dummy_ssl_context());
  basetest_create_ssl_connection(r, w, check_sockname, peername);
  std::string reason;
  try {
    create_connection(asyncio::ssl_context::create_default_context());
  } catch (const asyncio::SSLError& e) {
    reason = e.reason();
  }
  EXPECT_EQ(reason, "CERTIFICATE_VERIFY_FAILED");
}

// test_create_ssl_connection
TEST_F(CPythonEventLoopTestsSsl, test_create_ssl_connection) {
  asyncio::run([&] {
    auto httpd = asyncio::start_server(http_handler, "127.0.0.1", 0, {.ssl = simple_server_sslcontext()});
    const int port = httpd.port();
    test_create_ssl_connection(
        [port](const asyncio::ssl_context& ssl) { return asyncio::open_connection("127.0.0.1", port, ssl); }, true,
        asyncio::address{"127.0.0.1", port});
    httpd.close();
    httpd.wait_closed();
  });
}

// test_create_ssl_unix_connection: server_hostname='127.0.0.1'.
TEST_F(CPythonEventLoopTestsSsl, test_create_ssl_unix_connection) {
  const std::string path = unix_path("sslconn");
  asyncio::run([&] {
    auto httpd = asyncio::start_unix_server(http_handler, path, {.ssl = simple_server_sslcontext()});
    test_create_ssl_connection(
        [&](const asyncio::ssl_context& ssl) {
          return asyncio::open_unix_connection(path, ssl, {.server_hostname = "127.0.0.1"});
        },
        false, asyncio::address{path, 0});
    httpd.close();
    httpd.wait_closed();
  });
  ::unlink(path.c_str());
}

// my_proto is test_events' MyProto on the server side: the handler writes a request when the
// connection is made, counts the bytes it gets (nbytes) until EOF, and records its states.
struct my_proto {
  std::string state = "INITIAL";
  std::size_t nbytes = 0;
  std::optional<asyncio::StreamWriter> transport;
  std::optional<asyncio::Future<void>> connected, done;

  my_proto()
      : connected(asyncio::get_running_loop().create_future<void>()),
        done(asyncio::get_running_loop().create_future<void>()) {}

  asyncio::client_connected handler() {
    return [this](asyncio::StreamReader r, asyncio::StreamWriter w) {
      transport = w;
      state = "CONNECTED";
      connected->set_result();
      w.write("GET / HTTP/1.0\r\nHost: example.com\r\n\r\n");
      for (;;) {
        std::string data = r.read(1024);
        if (data.empty()) break;
        nbytes += data.size();
      }
      state = "CLOSED";
      transport.reset();
      done->set_result();
    };
  }
};

// test_create_server_ssl: a TLS server, a client with dummy_ssl_context() writing "xxx"; the
// server sees 3 bytes, the client the extra info; the server closes its side.
TEST_F(CPythonEventLoopTestsSsl, test_create_server_ssl) {
  asyncio::run([&] {
    my_proto proto;
    auto server = asyncio::start_server(proto.handler(), "127.0.0.1", 0, {.ssl = simple_server_sslcontext()});
    const int port = server.port();
    auto [r, client] = asyncio::open_connection("127.0.0.1", port, dummy_ssl_context());
    client.write("xxx");
    asyncio::await(*proto.connected);
    EXPECT_EQ(proto.state, "CONNECTED");
    while (proto.nbytes == 0) asyncio::sleep(0.001);
    EXPECT_EQ(proto.nbytes, 3u);
    check_ssl_extra_info(client, true, asyncio::address{"127.0.0.1", port}, "");
    proto.transport->close();
    client.close();  // Python closes the client after the server's side; here EOF ends the handler's read
    asyncio::await(*proto.done);
    EXPECT_EQ(proto.state, "CLOSED");
    server.close();
    server.wait_closed();
  });
}

// test_create_unix_server_ssl: the same over a Unix socket, server_hostname=''.
TEST_F(CPythonEventLoopTestsSsl, test_create_unix_server_ssl) {
  const std::string path = unix_path("sslsrv");
  asyncio::run([&] {
    my_proto proto;
    auto server = asyncio::start_unix_server(proto.handler(), path, {.ssl = simple_server_sslcontext()});
    auto [r, client] = asyncio::open_unix_connection(path, dummy_ssl_context(), {.server_hostname = ""});
    client.write("xxx");
    asyncio::await(*proto.connected);
    EXPECT_EQ(proto.state, "CONNECTED");
    while (proto.nbytes == 0) asyncio::sleep(0.001);
    EXPECT_EQ(proto.nbytes, 3u);
    proto.transport->close();
    client.close();
    asyncio::await(*proto.done);
    EXPECT_EQ(proto.state, "CLOSED");
    server.close();
    server.wait_closed();
  });
  ::unlink(path.c_str());
}

// verify_failed(connect): the client's handshake raises SSLError matching
// '(?i)certificate.verify.failed', and the server's handler never ran (proto.transport is None).
template <class Connect>
void expect_verify_failed(my_proto& proto, Connect connect) {
  std::string what;
  try {
    connect();
  } catch (const asyncio::SSLError& e) {
    what = e.what();
  }
  EXPECT_NE(what.find("CERTIFICATE_VERIFY_FAILED"), std::string::npos) << what;
  EXPECT_NE(what.find("certificate verify failed"), std::string::npos) << what;
  asyncio::sleep(0);  // test_utils.run_briefly(): let the server's side end
  EXPECT_FALSE(proto.transport.has_value());
  EXPECT_EQ(proto.state, "INITIAL");
}

// test_create_server_ssl_verify_failed: the client has no CA for the server's certificate.
TEST_F(CPythonEventLoopTestsSsl, test_create_server_ssl_verify_failed) {
  asyncio::run([&] {
    my_proto proto;
    auto server = asyncio::start_server(proto.handler(), "127.0.0.1", 0,
                                        {.ssl = server_context_for(signed_cert().cert, signed_cert().key)});
    const int port = server.port();
    expect_verify_failed(proto, [&] { asyncio::open_connection("127.0.0.1", port, verifying_client("")); });
    server.close();
    server.wait_closed();
  });
}

// test_create_unix_server_ssl_verify_failed: the same over a Unix socket, server_hostname='invalid'.
TEST_F(CPythonEventLoopTestsSsl, test_create_unix_server_ssl_verify_failed) {
  const std::string path = unix_path("sslvf");
  asyncio::run([&] {
    my_proto proto;
    auto server = asyncio::start_unix_server(proto.handler(), path,
                                             {.ssl = server_context_for(signed_cert().cert, signed_cert().key)});
    expect_verify_failed(
        proto, [&] { asyncio::open_unix_connection(path, verifying_client(""), {.server_hostname = "invalid"}); });
    server.close();
    server.wait_closed();
  });
  ::unlink(path.c_str());
}

// test_create_server_ssl_match_failed: the CA is trusted but the certificate names localhost, not
// 127.0.0.1: CertificateError (SSLCertVerificationError) "IP address mismatch, certificate is not
// valid for '127.0.0.1'"; the TLS alert ended the handshake before the handler ran.
TEST_F(CPythonEventLoopTestsSsl, test_create_server_ssl_match_failed) {
  std::string what;
  asyncio::run([&] {
    my_proto proto;
    auto server = asyncio::start_server(proto.handler(), "127.0.0.1", 0,
                                        {.ssl = server_context_for(signed_cert().cert, signed_cert().key)});
    try {
      asyncio::open_connection("127.0.0.1", server.port(), verifying_client(signed_cert().ca));
    } catch (const asyncio::SSLCertVerificationError& e) {
      what = e.what();
    }
    asyncio::sleep(0);
    EXPECT_FALSE(proto.transport.has_value());
    server.close();
    server.wait_closed();
  });
  EXPECT_NE(what.find("IP address mismatch, certificate is not valid for '127.0.0.1'"), std::string::npos) << what;
}

// test_create_unix_server_ssl_verified: the right CA and server_hostname='localhost' connect.
TEST_F(CPythonEventLoopTestsSsl, test_create_unix_server_ssl_verified) {
  const std::string path = unix_path("sslok");
  asyncio::run([&] {
    my_proto proto;
    auto server = asyncio::start_unix_server(proto.handler(), path,
                                             {.ssl = server_context_for(signed_cert().cert, signed_cert().key)});
    auto [r, client] =
        asyncio::open_unix_connection(path, verifying_client(signed_cert().ca), {.server_hostname = "localhost"});
    asyncio::await(*proto.connected);
    proto.transport->close();
    client.close();
    server.close();
    asyncio::await(*proto.done);
    server.wait_closed();
  });
  ::unlink(path.c_str());
}

// test_create_server_ssl_verified: over TCP, with the extra info: the validated certificate's
// subject (test_utils.PEERCERT).
TEST_F(CPythonEventLoopTestsSsl, test_create_server_ssl_verified) {
  asyncio::run([&] {
    my_proto proto;
    auto server = asyncio::start_server(proto.handler(), "127.0.0.1", 0,
                                        {.ssl = server_context_for(signed_cert().cert, signed_cert().key)});
    const int port = server.port();
    auto [r, client] = asyncio::open_connection("127.0.0.1", port, verifying_client(signed_cert().ca),
                                                {.server_hostname = "localhost"});
    asyncio::await(*proto.connected);
    check_ssl_extra_info(client, true, asyncio::address{"127.0.0.1", port}, "CN=localhost,O=greenlet-cpp tests");
    proto.transport->close();
    client.close();
    server.close();
    asyncio::await(*proto.done);
    server.wait_closed();
  });
}

}  // namespace cpython_sslproto_port
