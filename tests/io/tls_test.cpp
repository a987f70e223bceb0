// tls_test.cpp: TLS streams (include/greenlet/io/tls.hpp): open_connection() and start_server()
// with ssl, StreamWriter::start_tls(), certificate and host name checks, errors as Python's ssl
// module words them. After CPython's test_ssl.py and test_asyncio/test_sslproto.py /
// test_streams.py SSL cases (names cited above each case); certificates are made at run time
// (tls_test_certs.hpp); 127.0.0.1 and Unix sockets only.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <greenlet/io.hpp>

#include "io/tls_test_fixture.hpp"
#include "support/greenlet_test.hpp"

namespace tls_test_cases {

namespace asyncio = greenlet::asyncio;

using TlsTest = tls_test::Fixture;

using TlsStreams = TlsTest;
using TlsVerification = TlsTest;
using TlsContext = TlsTest;
using TlsStartTls = TlsTest;
using tls_test::client_context;
using tls_test::server_context;

// An echo handler: each line comes back, until EOF.
void echo_lines(asyncio::StreamReader r, asyncio::StreamWriter w) {
  for (;;) {
    std::string line = r.readline();
    if (line.empty()) break;
    w.write(line);
    w.drain();
  }
  w.close();
}

// test_streams.py test_open_connection_no_loop_ssl / test_sslproto.py test_start_tls_client_reg_proto:
// a line goes through the TLS stream and back, and both sides see what was negotiated.
TEST_F(TlsStreams, EchoOverTlsAndNegotiatedInfo) {
  std::vector<std::string> events;
  asyncio::run([&] {
    std::optional<asyncio::tls_info> server_info;
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          server_info = w.tls();
          echo_lines(std::move(r), std::move(w));
        },
        "127.0.0.1", 0, {.ssl = server_context()});
    auto [r, w] =
        asyncio::open_connection("127.0.0.1", server.port(), client_context(), {.server_hostname = "localhost"});
    w.write("hello over tls\n");
    events.push_back(r.readline());
    std::optional<asyncio::tls_info> info = w.tls();
    ASSERT_TRUE(info.has_value());
    events.push_back(info->version);
    events.push_back(info->server_hostname);
    events.push_back(info->peer_subject);
    EXPECT_FALSE(info->server_side);
    EXPECT_FALSE(info->cipher.empty());
    EXPECT_FALSE(w.can_write_eof());
    w.close();
    w.wait_closed();
    server.close();
    server.wait_closed();
    ASSERT_TRUE(server_info.has_value());
    EXPECT_TRUE(server_info->server_side);
    EXPECT_EQ(server_info->version, "TLSv1.3");
    EXPECT_EQ(server_info->peer_subject, "");  // no client certificate was asked for
  });
  EXPECT_EQ(events, (std::vector<std::string>{"hello over tls\n", "TLSv1.3", "localhost",
                                              "CN=localhost,O=greenlet-cpp tests"}));
}

// open_connection(host, port, ssl=ctx) checks the certificate against host itself when no
// server_hostname is given: here an IP address, matched against the certificate's IP SAN.
TEST_F(TlsStreams, ServerHostnameDefaultsToTheHostConnectedTo) {
  std::string echoed;
  std::string checked;
  asyncio::run([&] {
    auto server = asyncio::start_server(echo_lines, "127.0.0.1", 0, {.ssl = server_context()});
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), client_context());
    w.write("ip\n");
    echoed = r.readline();
    checked = w.tls()->server_hostname;
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(echoed, "ip\n");
  EXPECT_EQ(checked, "127.0.0.1");
}

// open_connection(host, port, connect_options{...}, ssl): the race, then the handshake, with the
// host connected to as the name checked.
TEST_F(TlsStreams, ConnectOptionsThenTheHandshake) {
  std::string echoed;
  std::string checked;
  asyncio::run([&] {
    auto server = asyncio::start_server(echo_lines, "127.0.0.1", 0, {.ssl = server_context()});
    auto [r, w] = asyncio::open_connection(
        "127.0.0.1", server.port(),
        asyncio::connect_options{.local = asyncio::local_addr{"127.0.0.1", 0}, .happy_eyeballs_delay = 0.25},
        client_context());
    w.write("raced\n");
    echoed = r.readline();
    checked = w.tls()->server_hostname;
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(echoed, "raced\n");
  EXPECT_EQ(checked, "127.0.0.1");
}

// Session resumption (Python's SSLSocket.session / session_reused, test_ssl.py test_session): the
// first connection's session, taken once it has read, resumes the second; the server sees it too.
TEST_F(TlsStreams, ASessionIsResumedOnTheNextConnection) {
  std::vector<bool> server_saw_reused;
  asyncio::tls_info first;
  asyncio::tls_info second;
  asyncio::tls_info third;
  std::string echoed;
  std::string refused;
  asyncio::run([&] {
    auto handler = [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
      std::string line = r.readline();
      server_saw_reused.push_back(w.tls()->session_reused);
      EXPECT_FALSE(w.tls()->session) << "a server has no session to hand out";
      w.write(line);
      w.drain();
      w.close();
    };
    auto server = asyncio::start_server(handler, "127.0.0.1", 0, {.ssl = server_context()});
    const asyncio::ssl_context client = client_context();
    const auto round_trip = [&](const asyncio::tls_options& tls) {
      auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), client, tls);
      w.write("line\n");
      echoed += r.readline();
      asyncio::tls_info info = *w.tls();
      w.close();
      w.wait_closed();
      return info;
    };
    first = round_trip({});
    second = round_trip({.session = first.session});
    third = round_trip({});
    try {
      asyncio::open_connection("127.0.0.1", server.port(), client_context(), {.session = first.session});
    } catch (const asyncio::ValueError& e) {
      refused = e.what();
    }
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(echoed, "line\nline\nline\n");
  ASSERT_TRUE(first.session);
  EXPECT_TRUE(first.session.has_ticket());
  EXPECT_GT(first.session.timeout(), 0);
  EXPECT_FALSE(first.session_reused);
  EXPECT_TRUE(second.session_reused);
  EXPECT_FALSE(third.session_reused);
  EXPECT_EQ(server_saw_reused, (std::vector<bool>{false, true, false}));
  EXPECT_EQ(refused,
            "tls_options.session comes from a connection made with another ssl_context: a session resumes only with "
            "the context it was made with");
}

// Back-pressure through TLS: 4 MiB each way with drain(), every byte in order.
TEST_F(TlsStreams, LargeTransferBothWays) {
  std::string pattern;
  for (int i = 0; i < 4 * 1024 * 1024 / 16; ++i) pattern += "0123456789abcde\n";
  std::size_t server_got = 0;
  std::string client_got;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          std::string all = r.readexactly(pattern.size());
          server_got = all == pattern ? all.size() : 0;
          w.write(all);
          w.drain();
          w.close();
        },
        "127.0.0.1", 0, {.ssl = server_context()});
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), client_context());
    w.write(pattern);
    w.drain();
    client_got = r.read();  // to EOF: the server's close_notify
    EXPECT_TRUE(r.at_eof());
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(server_got, pattern.size());
  EXPECT_TRUE(client_got == pattern) << client_got.size() << " bytes";
}

// TLS on small task stacks: the handshake's public-key work and the decryption run on the task's
// stack (decrypted bytes go through the thread's heap buffer, not a stack array), so 32 KiB
// stacks, as a server with very many connections might choose, are enough.
TEST_F(TlsStreams, SmallTaskStacks) {
  std::string echoed;
  asyncio::event_loop::options opts;
  opts.task_stack = {.size = 32 * 1024, .guard_page = true};
  asyncio::Runner runner(opts);
  runner.run([&] {
    auto server = asyncio::start_server(echo_lines, "127.0.0.1", 0, {.ssl = server_context()});
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), client_context());
    w.write(std::string(50000, 'y') + "\n");
    echoed = r.readline();
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(echoed.size(), 50001u);
}

// Many clients at once, each on its own TLS session.
TEST_F(TlsStreams, ConcurrentClients) {
  constexpr int clients = 40;
  int answered = 0;
  asyncio::run([&] {
    auto server = asyncio::start_server(echo_lines, "127.0.0.1", 0, {.ssl = server_context()});
    auto ctx = client_context();
    std::vector<asyncio::Task<void>> tasks;
    for (int i = 0; i < clients; ++i) {
      tasks.push_back(asyncio::create_task([&, i] {
        auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), ctx);
        const std::string line = "client " + std::to_string(i) + "\n";
        w.write(line);
        if (r.readline() == line) ++answered;
        w.close();
        w.wait_closed();
      }));
    }
    for (auto& t : tasks) asyncio::await(t);
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(answered, clients);
}

// Python's SSL transport cannot half-close: write_eof() raises, and close() still works.
TEST_F(TlsStreams, WriteEofIsRefused) {
  std::string what;
  asyncio::run([&] {
    auto server = asyncio::start_server(echo_lines, "127.0.0.1", 0, {.ssl = server_context()});
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), client_context());
    try {
      w.write_eof();
    } catch (const asyncio::RuntimeError& e) {
      what = e.what();
    }
    w.write("still open\n");
    EXPECT_EQ(r.readline(), "still open\n");
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_NE(what.find("cannot half-close"), std::string::npos) << what;
}

// test_ssl.py test_alpn_protocols: the server picks its first protocol the client offers.
TEST_F(TlsStreams, AlpnPicksTheServersFirstCommonProtocol) {
  std::string client_saw, server_saw;
  asyncio::run([&] {
    auto sctx = server_context();
    sctx.set_alpn_protocols({"http/1.1", "h2"});
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          server_saw = w.tls()->alpn_protocol;
          echo_lines(std::move(r), std::move(w));
        },
        "127.0.0.1", 0, {.ssl = sctx});
    auto cctx = client_context();
    cctx.set_alpn_protocols({"h2", "http/1.1"});
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), cctx);
    client_saw = w.tls()->alpn_protocol;
    w.write("x\n");
    r.readline();
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(client_saw, "http/1.1");
  EXPECT_EQ(server_saw, "http/1.1");
}

// StreamWriter::sendfile() over TLS reads the file and writes it through the session; with
// fallback off it is SendfileNotAvailableError (asyncio: "sendfile syscall is not supported").
TEST_F(TlsStreams, SendfileGoesThroughTheSession) {
  std::string data;
  for (int i = 0; i < 20000; ++i) data += "file line " + std::to_string(i) + "\n";
  char path[] = "/tmp/greenlet_tls_sendfile_XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ::lseek(fd, 0, SEEK_SET);  // offset 0 reads from the file's position, as asyncio's fallback
  ::unlink(path);
  std::string received;
  std::size_t sent = 0;
  bool refused = false;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          try {
            w.sendfile(fd, 0, {}, false);
          } catch (const asyncio::SendfileNotAvailableError&) {
            refused = true;
          }
          try {
            sent = w.sendfile(fd, 0);
          } catch (const std::exception& e) {
            ADD_FAILURE() << e.what();
          }
          w.close();
          (void)r;
        },
        "127.0.0.1", 0, {.ssl = server_context()});
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), client_context());
    received = r.read();
    w.close();
    server.close();
    server.wait_closed();
  });
  ::close(fd);
  EXPECT_TRUE(refused);
  EXPECT_EQ(sent, data.size());
  EXPECT_TRUE(received == data) << received.size();
}

// TLS over a Unix-domain socket: server_hostname names the certificate's host.
TEST_F(TlsStreams, UnixSocket) {
  char dir[] = "/tmp/greenlet_tls_unix_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/sock";
  std::string echoed, refused;
  asyncio::run([&] {
    auto server = asyncio::start_unix_server(echo_lines, path, {.ssl = server_context()});
    try {
      asyncio::open_unix_connection(path, client_context());
    } catch (const asyncio::ValueError& e) {
      refused = e.what();
    }
    auto [r, w] = asyncio::open_unix_connection(path, client_context(), {.server_hostname = "localhost"});
    w.write("unix\n");
    echoed = r.readline();
    w.close();
    server.close();
    server.wait_closed();
  });
  ::unlink(path.c_str());
  ::rmdir(dir);
  EXPECT_EQ(echoed, "unix\n");
  EXPECT_EQ(refused.rfind("You must set server_hostname when using ssl without a host", 0), 0u) << refused;
}

// A plain client at a TLS server: its handshake fails, the handler never runs, the connection
// is closed without a report (asyncio logs it only in debug mode), and the server goes on.
TEST_F(TlsStreams, PlainClientAtTlsServerIsDroppedQuietly) {
  int handled = 0;
  int reports = 0;
  std::string plain_got = "unset";
  std::string tls_got;
  asyncio::run([&] {
    asyncio::get_running_loop().set_exception_handler(
        [&](asyncio::event_loop*, const asyncio::exception_context&) { ++reports; });
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          ++handled;
          echo_lines(std::move(r), std::move(w));
        },
        "127.0.0.1", 0, {.ssl = server_context()});
    {
      auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
      w.write("GET / HTTP/1.0\r\n\r\n");
      try {
        plain_got = r.read();  // the alert, then EOF
      } catch (const asyncio::ConnectionResetError&) {
        plain_got = "reset";
      }
    }
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), client_context());
    w.write("after\n");
    tls_got = r.readline();
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_NE(plain_got, "unset");
  EXPECT_EQ(plain_got.find("GET"), std::string::npos);
  EXPECT_EQ(handled, 1);
  EXPECT_EQ(reports, 0);
  EXPECT_EQ(tls_got, "after\n");
}

// test_ssl.py test_wrong_cert / test_sslproto.py: a certificate nobody trusts fails the
// client's handshake with SSLCertVerificationError in Python's words; the handler never runs.
TEST_F(TlsVerification, SelfSignedServerIsRejected) {
  long code = 0;
  std::string message, what, reason;
  int handled = 0;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader, asyncio::StreamWriter) { ++handled; }, "127.0.0.1", 0,
        {.ssl = server_context(tls_test::files().self_signed_cert, tls_test::files().self_signed_key)});
    try {
      asyncio::open_connection("127.0.0.1", server.port(), client_context(), {.server_hostname = "localhost"});
    } catch (const asyncio::SSLCertVerificationError& e) {
      code = e.verify_code();
      message = e.verify_message();
      what = e.what();
      reason = e.reason();
    }
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(code, 18);  // X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
  EXPECT_EQ(message, "self-signed certificate");
  EXPECT_EQ(what, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate");
  EXPECT_EQ(reason, "CERTIFICATE_VERIFY_FAILED");
  EXPECT_EQ(handled, 0);
}

// test_ssl.py test_check_hostname: a certificate for another name, or another address.
TEST_F(TlsVerification, HostnameAndAddressMismatch) {
  std::vector<std::string> messages;
  asyncio::run([&] {
    auto server = asyncio::start_server(echo_lines, "127.0.0.1", 0, {.ssl = server_context()});
    for (const char* name : {"example.org", "127.0.0.2"}) {
      try {
        asyncio::open_connection("127.0.0.1", server.port(), client_context(), {.server_hostname = name});
        messages.push_back("connected");
      } catch (const asyncio::SSLCertVerificationError& e) {
        messages.push_back(e.verify_message());
      }
    }
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(messages, (std::vector<std::string>{"Hostname mismatch, certificate is not valid for 'example.org'.",
                                                "IP address mismatch, certificate is not valid for '127.0.0.2'."}));
}

// A client that checks nothing (check_hostname off, CERT_NONE) connects to anyone.
TEST_F(TlsVerification, CertNoneAcceptsAnyCertificate) {
  std::string echoed;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        echo_lines, "127.0.0.1", 0,
        {.ssl = server_context(tls_test::files().self_signed_cert, tls_test::files().self_signed_key)});
    asyncio::ssl_context ctx(asyncio::ssl_protocol::tls_client);
    ctx.set_check_hostname(false);
    ctx.set_verify_mode(asyncio::ssl_verify_mode::cert_none);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), ctx);
    w.write("trusting\n");
    echoed = r.readline();
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(echoed, "trusting\n");
}

// start_client_cert_server(subjects) is an echo server that requires client certificates signed
// by the test CA and notes each client's subject in subjects.
asyncio::Server start_client_cert_server(std::vector<std::string>& subjects) {
  auto sctx = server_context();
  sctx.load_verify_locations(tls_test::files().ca);
  sctx.set_verify_mode(asyncio::ssl_verify_mode::cert_required);
  return asyncio::start_server(
      [&subjects](asyncio::StreamReader r, asyncio::StreamWriter w) {
        subjects.push_back(w.tls()->peer_subject);
        echo_lines(std::move(r), std::move(w));
      },
      "127.0.0.1", 0, {.ssl = sctx});
}

// client_context_with_cert() is client_context() presenting the test client certificate.
asyncio::ssl_context client_context_with_cert() {
  auto ctx = client_context();
  ctx.load_cert_chain(tls_test::files().client_cert, tls_test::files().client_key);
  return ctx;
}

// A server that checks client certificates resumes sessions too (it needs a session id context,
// which every server context sets), and still sees the client's subject on the resumed one.
TEST_F(TlsVerification, ClientCertificatesWithResumedSessions) {
  std::vector<std::string> subjects;
  std::vector<bool> reused;
  asyncio::run([&] {
    auto server = start_client_cert_server(subjects);
    const asyncio::ssl_context with_cert = client_context_with_cert();
    asyncio::ssl_session session;
    for (int i = 0; i < 2; ++i) {
      auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), with_cert, {.session = session});
      w.write("mine\n");
      EXPECT_EQ(r.readline(), "mine\n");
      reused.push_back(w.tls()->session_reused);
      session = w.tls()->session;
      w.close();
      w.wait_closed();
    }
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(reused, (std::vector<bool>{false, true}));
  ASSERT_EQ(subjects.size(), 2u);
  EXPECT_FALSE(subjects[0].empty());
  EXPECT_EQ(subjects[1], subjects[0]);
}

// A server asking for client certificates (CERT_REQUIRED): one signed by a CA it trusts gets in
// and its subject shows; a client without one is refused with TLS 1.3's alert, which it reads
// on its first read (its own handshake ended before the server checked).
TEST_F(TlsVerification, ClientCertificates) {
  std::vector<std::string> subjects;
  std::string refused_reason;
  asyncio::run([&] {
    auto server = start_client_cert_server(subjects);
    const asyncio::ssl_context with_cert = client_context_with_cert();
    {
      auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), with_cert);
      w.write("mine\n");
      EXPECT_EQ(r.readline(), "mine\n");
      w.close();
    }
    try {
      auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), client_context());
      w.write("no cert\n");
      r.readline();
    } catch (const asyncio::SSLError& e) {
      refused_reason = e.reason();
    }
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(subjects, (std::vector<std::string>{"CN=test-client,O=greenlet-cpp tests"}));
  EXPECT_EQ(refused_reason, "TLSV13_ALERT_CERTIFICATE_REQUIRED");
}

// A TLS client at a server that answers in plain text: SSLError, Python's "[SSL: ...]" form.
TEST_F(TlsVerification, PlainServerAnswerIsAnSslError) {
  std::string what, library;
  std::error_code code;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader r, asyncio::StreamWriter w) {
          r.read(1);
          w.write("HTTP/1.0 400 Bad Request\r\n\r\n");
          w.close();
        },
        "127.0.0.1", 0);
    try {
      asyncio::open_connection("127.0.0.1", server.port(), client_context());
    } catch (const asyncio::SSLError& e) {
      what = e.what();
      library = e.library();
      code = e.code();
    }
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(what.rfind("[SSL: ", 0), 0u) << what;
  EXPECT_EQ(library, "SSL");
  EXPECT_EQ(code, asyncio::ssl_errc::ssl);
}

// asyncio's ssl_handshake_timeout: a server that never answers the ClientHello aborts the
// connection with ConnectionAbortedError in asyncio's words (virtual time: no real wait).
TEST_F(TlsVerification, HandshakeTimeout) {
  std::string what;
  asyncio::Runner runner([] {
    asyncio::event_loop::options opts;
    opts.virtual_time = true;
    return opts;
  }());
  runner.run([&] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader r, asyncio::StreamWriter w) {
          r.read();  // reads the ClientHello and waits for more
          w.close();
        },
        "127.0.0.1", 0);
    try {
      asyncio::open_connection("127.0.0.1", server.port(), client_context(), {.ssl_handshake_timeout = 0.5});
    } catch (const asyncio::ConnectionAbortedError& e) {
      what = e.what();
    }
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(what.rfind("SSL handshake is taking longer than 0.5 seconds: aborting the connection", 0), 0u) << what;
}

// A task cancelled in the handshake gets CancelledError; the connection is dropped.
TEST_F(TlsVerification, CancelledDuringHandshake) {
  bool cancelled = false;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader r, asyncio::StreamWriter w) {
          r.read();
          w.close();
        },
        "127.0.0.1", 0);
    auto client = asyncio::create_task([&] {
      try {
        asyncio::open_connection("127.0.0.1", server.port(), client_context());
      } catch (const asyncio::CancelledError&) {
        cancelled = true;
        throw;
      }
    });
    asyncio::sleep(0.05);
    client.cancel();
    try {
      asyncio::await(client);
    } catch (const asyncio::CancelledError&) {
    }
    server.close();
    server.wait_closed();
  });
  EXPECT_TRUE(cancelled);
}

// close() from another task while start_tls() waits for the server: the handshake ends with
// ConnectionAbortedError, and the closed stream stays closed.
TEST_F(TlsVerification, CloseDuringHandshake) {
  std::string what;
  bool closed_at_end = false;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader r, asyncio::StreamWriter w) {
          r.read();
          w.close();
        },
        "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    auto upgrade = asyncio::create_task([&, w = w]() mutable {
      try {
        w.start_tls(client_context(), {.server_hostname = "localhost"});
      } catch (const asyncio::ConnectionAbortedError& e) {
        what = e.what();
      }
    });
    asyncio::sleep(0.02);
    w.close();
    asyncio::await(upgrade);
    closed_at_end = w.is_closing() && w.fileno() == -1;
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(what.rfind("the stream was closed during the TLS handshake", 0), 0u) << what;
  EXPECT_TRUE(closed_at_end);
}

// Arguments refused before connecting, with what to do.
TEST_F(TlsVerification, WrongSideContextsAndBadTimeouts) {
  std::vector<std::string> errors;
  asyncio::run([&] {
    auto record = [&](auto&& fn) {
      try {
        fn();
        errors.push_back("no error");
      } catch (const asyncio::ValueError& e) {
        errors.push_back(std::string(e.what()).substr(0, 40));
      }
    };
    record([&] { asyncio::open_connection("127.0.0.1", 1, server_context()); });
    record([&] { asyncio::open_connection("127.0.0.1", 1, client_context(), {.ssl_handshake_timeout = 0}); });
    record([&] { asyncio::start_server(echo_lines, "127.0.0.1", 0, {.ssl = client_context()}); });
    record([&] {
      asyncio::start_server(echo_lines, "127.0.0.1", 0, {.ssl = server_context(), .ssl_handshake_timeout = -1});
    });
  });
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "open_connection(): a client connection n", "ssl_handshake_timeout should be a positi",
                        "start_server(): server_config.ssl must b", "ssl_handshake_timeout should be a positi"}));
}

// test_ssl.py ContextTests: check_hostname and verify_mode move together as Python's.
TEST_F(TlsContext, CheckHostnameAndVerifyMode) {
  asyncio::ssl_context client(asyncio::ssl_protocol::tls_client);
  EXPECT_TRUE(client.check_hostname());
  EXPECT_EQ(client.verify_mode(), asyncio::ssl_verify_mode::cert_required);
  std::string what;
  try {
    client.set_verify_mode(asyncio::ssl_verify_mode::cert_none);
  } catch (const asyncio::ValueError& e) {
    what = e.what();
  }
  EXPECT_EQ(what, "Cannot set verify_mode to CERT_NONE when check_hostname is enabled.");
  client.set_check_hostname(false);
  client.set_verify_mode(asyncio::ssl_verify_mode::cert_none);
  EXPECT_EQ(client.verify_mode(), asyncio::ssl_verify_mode::cert_none);
  client.set_check_hostname(true);  // turns verification back on
  EXPECT_EQ(client.verify_mode(), asyncio::ssl_verify_mode::cert_required);

  asyncio::ssl_context server(asyncio::ssl_protocol::tls_server);
  EXPECT_FALSE(server.check_hostname());
  EXPECT_EQ(server.verify_mode(), asyncio::ssl_verify_mode::cert_none);
  server.set_verify_mode(asyncio::ssl_verify_mode::cert_optional);
  EXPECT_EQ(server.verify_mode(), asyncio::ssl_verify_mode::cert_optional);
  EXPECT_EQ(server.protocol(), asyncio::ssl_protocol::tls_server);
  EXPECT_NE(server.native_handle(), nullptr);
  // Copies share one context, as a Python object.
  asyncio::ssl_context copy = server;
  copy.set_verify_mode(asyncio::ssl_verify_mode::cert_required);
  EXPECT_EQ(server.verify_mode(), asyncio::ssl_verify_mode::cert_required);
}

// test_ssl.py test_load_cert_chain / test_load_verify_cadata: unreadable files and keys that do
// not match are SSLErrors naming the file.
TEST_F(TlsContext, LoadErrorsNameTheFile) {
  asyncio::ssl_context ctx(asyncio::ssl_protocol::tls_server);
  std::vector<std::string> errors;
  try {
    ctx.load_cert_chain("/nonexistent/cert.pem");
  } catch (const asyncio::SSLError& e) {
    errors.push_back(std::string(e.what()).substr(0, 38));
  }
  try {
    ctx.load_cert_chain(tls_test::files().server_cert, tls_test::files().client_key);
  } catch (const asyncio::SSLError& e) {
    errors.push_back(std::string(e.what()).substr(0, 16));
  }
  try {
    ctx.load_verify_cadata("not a certificate");
  } catch (const asyncio::SSLError& e) {
    errors.push_back(e.reason());
  }
  try {
    ctx.load_verify_locations("");
  } catch (const asyncio::ValueError& e) {
    errors.push_back(e.what());
  }
  EXPECT_EQ(errors, (std::vector<std::string>{"load_cert_chain(/nonexistent/cert.pem)", "load_cert_chain(",
                                              "NO_CERTIFICATE_OR_CRL_FOUND",
                                              "load_verify_locations(): cafile and capath cannot be both empty"}));
  // A PEM text of the CA is as good as its file.
  std::string pem;
  {
    FILE* f = std::fopen(tls_test::files().ca.c_str(), "r");
    ASSERT_NE(f, nullptr);
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) pem.append(buf, n);
    std::fclose(f);
  }
  std::string echoed;
  asyncio::run([&] {
    auto server = asyncio::start_server(echo_lines, "127.0.0.1", 0, {.ssl = server_context()});
    asyncio::ssl_context client(asyncio::ssl_protocol::tls_client);
    client.load_verify_cadata(pem);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), client);
    w.write("cadata\n");
    echoed = r.readline();
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(echoed, "cadata\n");
}

// test_streams.py test_start_tls / test_sslproto.py test_start_tls_server_1: a plain connection
// upgraded in place (STARTTLS), plain bytes before, encrypted after, on the same streams.
TEST_F(TlsStartTls, UpgradeAPlainConnection) {
  std::vector<std::string> events;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
          events.push_back("server read " + r.readline());
          w.write("OK\n");
          w.start_tls(server_context());
          events.push_back("server read " + r.readline());
          w.write("secret reply\n");
          w.close();
        },
        "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    w.write("STARTTLS\n");
    events.push_back("client read " + r.readline());
    EXPECT_FALSE(w.tls().has_value());
    w.start_tls(client_context(), {.server_hostname = "localhost"});
    events.push_back(std::string("client tls ") + (w.tls().has_value() ? w.tls()->version : "none"));
    w.write("secret\n");
    events.push_back("client read " + r.readline());
    std::string what;
    try {
      w.start_tls(client_context(), {.server_hostname = "localhost"});
    } catch (const asyncio::RuntimeError& e) {
      what = e.what();
    }
    events.push_back(what);
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(events, (std::vector<std::string>{"server read STARTTLS\n", "client read OK\n", "client tls TLSv1.3",
                                              "server read secret\n", "client read secret reply\n",
                                              "start_tls(): the stream already uses TLS"}));
}

}  // namespace tls_test_cases
