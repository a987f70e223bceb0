// protocol_tls_test.cpp: protocols over TLS (io/protocols.hpp with an ssl_context): create_server
// with server_config.ssl, create_connection / create_unix_connection with a client context. After
// CPython's test_sslproto.py (test_create_connection_ssl*, the handshake timeout and failure
// cases) and test_events.py's test_create_server_ssl*; certificates made at run time
// (tls_test_certs.hpp).
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <greenlet/io.hpp>

#include "io/tls_test_fixture.hpp"
#include "support/greenlet_test.hpp"

namespace protocol_tls_test {

namespace asyncio = greenlet::asyncio;

using ProtocolTls = tls_test::Fixture;
using tls_test::client_context;
using tls_test::server_context;

template <class Pred>
void until(Pred pred) {
  for (int i = 0; i < 5000 && !pred(); ++i) asyncio::sleep(0.001);
  ASSERT_TRUE(pred());
}

// Records what happens to it, as test_events.py's MyProto.
struct Recorder : asyncio::Protocol {
  std::vector<std::string> events;
  std::string received;
  asyncio::Transport transport;
  std::exception_ptr lost_with;
  void connection_made(asyncio::Transport& t) override {
    transport = t;
    events.push_back("made");
  }
  void data_received(std::string_view data) override {
    received.append(data);
    if (events.back() != "data") events.push_back("data");
  }
  bool eof_received() override {
    events.push_back("eof");
    return true;  // no effect over TLS: the transport closes anyway, as asyncio's
  }
  void connection_lost(std::exception_ptr exc) override {
    events.push_back("lost");
    lost_with = exc;
    transport = {};
  }
};

struct EchoProto : asyncio::Protocol {
  asyncio::Transport transport;
  std::vector<std::string>* log = nullptr;
  void connection_made(asyncio::Transport& t) override {
    transport = t;
    if (log != nullptr) log->push_back("server made");
  }
  void data_received(std::string_view data) override { transport.write(data); }
  void connection_lost(std::exception_ptr) override {
    if (log != nullptr) log->push_back("server lost");
    transport = {};
  }
};

// create_connection<P>(host, port, connect_options{...}, ssl, tls): the options, then the handshake.
TEST_F(ProtocolTls, ConnectOptionsThenTheHandshake) {
  asyncio::run([] {
    asyncio::Server server =
        asyncio::create_server([] { return std::make_shared<EchoProto>(); }, "127.0.0.1", 0, {.ssl = server_context()});
    auto conn = asyncio::create_connection<Recorder>("127.0.0.1", server.port(),
                                                     {.family = AF_INET, .happy_eyeballs_delay = 0.25},
                                                     client_context(), {.server_hostname = "localhost"});
    auto& transport = conn.first;
    auto& client = conn.second;
    EXPECT_EQ((std::vector<std::string>{"made"}), client->events);
    EXPECT_EQ("localhost", transport.tls()->server_hostname);
    transport.write("raced");
    until([&] { return client->received == "raced"; });
    transport.close();
    server.close();
    server.wait_closed();
  });
}

// tls_options::session with create_connection(): the second connection resumes the first's.
TEST_F(ProtocolTls, ASessionIsResumedOnTheNextConnection) {
  std::vector<bool> reused;
  asyncio::run([&] {
    asyncio::Server server =
        asyncio::create_server([] { return std::make_shared<EchoProto>(); }, "127.0.0.1", 0, {.ssl = server_context()});
    const asyncio::ssl_context client = client_context();
    asyncio::ssl_session session;
    for (int i = 0; i < 2; ++i) {
      auto conn = asyncio::create_connection<Recorder>("127.0.0.1", server.port(), client,
                                                       {.server_hostname = "localhost", .session = session});
      auto& transport = conn.first;
      auto& recorder = conn.second;
      transport.write("ping");
      until([&] { return recorder->received == "ping"; });  // the ticket came before the echo
      reused.push_back(transport.tls()->session_reused);
      session = transport.tls()->session;
      EXPECT_TRUE(session);
      transport.close();
    }
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(reused, (std::vector<bool>{false, true}));
}

TEST_F(ProtocolTls, EchoOverTlsWithTheHandshakeBeforeConnectionMade) {
  asyncio::run([] {
    std::shared_ptr<EchoProto> served;
    asyncio::Server server = asyncio::create_server(
        [&] {
          served = std::make_shared<EchoProto>();
          return served;
        },
        "127.0.0.1", 0, {.ssl = server_context()});
    auto conn = asyncio::create_connection<Recorder>("127.0.0.1", server.port(), client_context(),
                                                     {.server_hostname = "localhost"});
    auto& transport = conn.first;
    auto& client = conn.second;
    // create_connection returns after the handshake and connection_made().
    EXPECT_EQ((std::vector<std::string>{"made"}), client->events);
    std::optional<asyncio::tls_info> info = transport.tls();
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ("TLSv1.3", info->version);
    EXPECT_EQ("localhost", info->server_hostname);
    EXPECT_FALSE(info->server_side);
    EXPECT_FALSE(transport.can_write_eof());
    EXPECT_THROW(transport.write_eof(), asyncio::RuntimeError);
    transport.write("hello ");
    transport.write("tls");
    until([&] { return client->received == "hello tls"; });
    ASSERT_NE(nullptr, served);
    std::optional<asyncio::tls_info> server_info = served->transport.tls();
    ASSERT_TRUE(server_info.has_value());
    EXPECT_TRUE(server_info->server_side);
    // The server closes: its close_notify is the client's EOF; the client closes in turn.
    served->transport.close();
    until([&] { return client->events.back() == "lost"; });
    EXPECT_EQ((std::vector<std::string>{"made", "data", "eof", "lost"}), client->events);
    EXPECT_EQ(nullptr, client->lost_with);
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTls, AMegabyteEachWayThroughTlsWithFlowControl) {
  asyncio::run([] {
    asyncio::Server server = asyncio::create_server<EchoProto>("127.0.0.1", 0, {.ssl = server_context()});
    auto conn = asyncio::create_connection<Recorder>("127.0.0.1", server.port(), client_context());
    auto& transport = conn.first;
    auto& client = conn.second;
    std::string blob;
    for (int i = 0; blob.size() < 1024 * 1024; ++i) blob += std::to_string(i) + ",";
    transport.write(blob);
    until([&] { return client->received.size() == blob.size(); });
    EXPECT_TRUE(client->received == blob);
    transport.close();
    until([&] { return client->events.back() == "lost"; });
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTls, AHostnameMismatchFailsCreateConnectionAndTheServerProtocolIsNeverCalled) {
  asyncio::run([] {
    int reports = 0;
    asyncio::get_running_loop().set_exception_handler(
        [&](asyncio::event_loop*, const asyncio::exception_context&) { ++reports; });
    std::vector<std::string> server_log;
    asyncio::Server server = asyncio::create_server(
        [&] {
          auto p = std::make_shared<EchoProto>();
          p->log = &server_log;
          return p;
        },
        "127.0.0.1", 0, {.ssl = server_context()});
    try {
      asyncio::create_connection<Recorder>("127.0.0.1", server.port(), client_context(),
                                           {.server_hostname = "example.org"});
      ADD_FAILURE() << "the handshake succeeded";
    } catch (const asyncio::SSLCertVerificationError& e) {
      EXPECT_NE(std::string(e.what()).find("Hostname mismatch"), std::string::npos) << e.what();
    }
    for (int i = 0; i < 20; ++i) asyncio::sleep(0.001);
    EXPECT_TRUE(server_log.empty());
    EXPECT_EQ(0, reports);
    server.close();
    server.wait_closed();  // the failed connection is gone
  });
}

TEST_F(ProtocolTls, APlainClientAtATlsServerIsDroppedSilently) {
  asyncio::run([] {
    int reports = 0;
    asyncio::get_running_loop().set_exception_handler(
        [&](asyncio::event_loop*, const asyncio::exception_context&) { ++reports; });
    asyncio::Server server = asyncio::create_server<EchoProto>("127.0.0.1", 0, {.ssl = server_context()});
    auto conn = asyncio::create_connection<Recorder>("127.0.0.1", server.port());
    auto& transport = conn.first;
    auto& client = conn.second;
    transport.write("GET / HTTP/1.0\r\n\r\n");
    // The server closes (its EOF, or a reset if our bytes were unread); this plain client keeps
    // its side open at EOF (eof_received() says so), then closes.
    until([&] { return client->events.back() == "eof" || client->events.back() == "lost"; });
    transport.close();
    until([&] { return client->events.back() == "lost"; });
    EXPECT_EQ("made", client->events.front());
    EXPECT_EQ(0, reports);
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTls, ATlsClientAtAPlainServerFailsCreateConnection) {
  asyncio::run([] {
    struct Talker : asyncio::Protocol {
      asyncio::Transport transport;
      void connection_made(asyncio::Transport& t) override { transport = t; }
      void data_received(std::string_view) override {
        transport.write("HTTP/1.0 400 Bad Request\r\n\r\n");
        transport.close();
      }
      void connection_lost(std::exception_ptr) override { transport = {}; }
    };
    asyncio::Server server = asyncio::create_server<Talker>("127.0.0.1", 0);
    EXPECT_THROW(asyncio::create_connection<Recorder>("127.0.0.1", server.port(), client_context()), asyncio::OSError);
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTls, AServerThatNeverAnswersTimesTheHandshakeOut) {
  std::string what;
  asyncio::Runner runner([] {
    asyncio::event_loop::options opts;
    opts.virtual_time = true;
    return opts;
  }());
  runner.run([&] {
    struct Silent : asyncio::Protocol {};
    asyncio::Server server = asyncio::create_server<Silent>("127.0.0.1", 0);
    try {
      asyncio::create_connection<Recorder>("127.0.0.1", server.port(), client_context(),
                                           {.ssl_handshake_timeout = 0.5});
      ADD_FAILURE() << "the handshake succeeded";
    } catch (const asyncio::ConnectionAbortedError& e) {
      what = e.what();
    }
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(0u, what.rfind("SSL handshake is taking longer than 0.5 seconds: aborting the connection", 0)) << what;
}

TEST_F(ProtocolTls, AUnixConnectionNeedsAServerHostnameToCheck) {
  const std::string path = "/tmp/greenlet_proto_tls_" + std::to_string(::getpid());
  asyncio::run([&] {
    asyncio::Server server = asyncio::create_unix_server<EchoProto>(path, {.ssl = server_context()});
    try {
      asyncio::create_unix_connection([] { return std::make_shared<Recorder>(); }, path, client_context());
      ADD_FAILURE() << "no server_hostname was accepted";
    } catch (const asyncio::ValueError& e) {
      EXPECT_EQ(0u, std::string(e.what()).rfind("You must set server_hostname when using ssl without a host", 0));
    }
    auto conn = asyncio::create_unix_connection([] { return std::make_shared<Recorder>(); }, path, client_context(),
                                                {.server_hostname = "localhost"});
    auto& transport = conn.first;
    auto& client = conn.second;
    transport.write("over a path");
    until([&] { return client->received == "over a path"; });
    transport.close();
    until([&] { return client->events.back() == "lost"; });
    server.close();
    server.wait_closed();
  });
  ::unlink(path.c_str());
}

// A BufferedProtocol gets the plaintext in its own buffer, however small.
TEST_F(ProtocolTls, BufferedProtocolOverTls) {
  struct Small : asyncio::BufferedProtocol {
    char buffer[7];
    std::string received;
    std::span<char> get_buffer(std::size_t) override { return buffer; }
    void buffer_updated(std::size_t n) override { received.append(buffer, n); }
  };
  asyncio::run([] {
    asyncio::Server server = asyncio::create_server<EchoProto>("127.0.0.1", 0, {.ssl = server_context()});
    auto conn = asyncio::create_connection<Small>("127.0.0.1", server.port(), client_context());
    auto& transport = conn.first;
    auto& client = conn.second;
    transport.write("twenty-three bytes long");
    until([&] { return client->received.size() == 23; });
    EXPECT_EQ("twenty-three bytes long", client->received);
    transport.close();
    server.close();
    server.wait_closed();
  });
}

// connect_accepted_socket(ssl=) and create_connection(sock=, ssl=): both sides of one socketpair.
TEST_F(ProtocolTls, BothSidesOverSocketsTheProgramMade) {
  int fds[2];
  ASSERT_EQ(0, ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
  asyncio::run([&] {
    auto server_side = asyncio::create_task(
        [&] { return asyncio::connect_accepted_socket<EchoProto>(fds[0], server_context()).first; });
    auto conn = asyncio::create_connection<Recorder>(asyncio::connected_socket{fds[1]}, client_context(),
                                                     {.server_hostname = "localhost"});
    auto& transport = conn.first;
    auto& client = conn.second;
    asyncio::Transport served = asyncio::await(server_side);
    ASSERT_TRUE(served.tls().has_value());
    EXPECT_TRUE(served.tls()->server_side);
    transport.write("paired");
    until([&] { return client->received == "paired"; });
    transport.close();
    until([&] { return client->events.back() == "lost"; });
    until([&] { return served.is_closing(); });
  });
}

// STARTTLS: a plain exchange, then both sides start TLS in place (asyncio's loop.start_tls(), after
// test_sslproto.py's test_start_tls_client_reg_proto_1 / test_start_tls_server_1).
struct StartTlsServer : asyncio::Protocol {
  asyncio::Transport transport;
  std::string received;
  std::vector<std::string> events;
  std::optional<asyncio::Task<void>> upgrade;
  void connection_made(asyncio::Transport& t) override {
    transport = t;
    events.push_back("made");
  }
  void data_received(std::string_view data) override {
    received.append(data);
    if (received == "STARTTLS\n") {
      received.clear();
      transport.pause_reading();  // the client's ClientHello must wait for start_tls()
      transport.write("READY\n");
      upgrade = asyncio::create_task([this] {
        transport = asyncio::start_tls(transport, nullptr, server_context(), {}, true);
        events.push_back("tls");
      });
      return;
    }
    if (received.size() >= 6) {
      events.push_back("secret: " + received);
      transport.write("got " + received);
      received.clear();
    }
  }
  void connection_lost(std::exception_ptr) override {
    events.push_back("lost");
    transport = {};
  }
};

TEST_F(ProtocolTls, StartTlsUpgradesAPlainConnectionInPlace) {
  asyncio::run([] {
    std::shared_ptr<StartTlsServer> served;
    asyncio::Server server = asyncio::create_server(
        [&] {
          served = std::make_shared<StartTlsServer>();
          return served;
        },
        "127.0.0.1", 0);
    auto conn = asyncio::create_connection<Recorder>("127.0.0.1", server.port());
    auto& transport = conn.first;
    auto& client = conn.second;
    transport.write("STARTTLS\n");
    until([&] { return client->received == "READY\n"; });
    client->received.clear();
    EXPECT_FALSE(transport.tls().has_value());
    transport = asyncio::start_tls(transport, nullptr, client_context(), {.server_hostname = "localhost"});
    ASSERT_TRUE(transport.tls().has_value());
    EXPECT_EQ("TLSv1.3", transport.tls()->version);
    EXPECT_FALSE(transport.can_write_eof());
    transport.write("secret");
    until([&] { return client->received == "got secret"; });
    EXPECT_EQ((std::vector<std::string>{"made", "data"}), client->events) << "connection_made() came once";
    asyncio::await(*served->upgrade);
    // The server's start_tls() returns on a later turn than the handshake's end, so the secret
    // (which may come in the same read as the client's last handshake message) can be first.
    std::vector<std::string> server_events = served->events;
    std::sort(server_events.begin() + 1, server_events.end());
    EXPECT_EQ((std::vector<std::string>{"made", "secret: secret", "tls"}), server_events);
    // A second start_tls() on a TLS transport is refused.
    EXPECT_THROW(asyncio::start_tls(transport, nullptr, client_context(), {.server_hostname = "localhost"}),
                 asyncio::RuntimeError);
    transport.close();
    until([&] { return client->events.back() == "lost"; });
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTls, AStartTlsWhoseHandshakeFailsClosesTheConnectionAndRaises) {
  asyncio::run([] {
    std::shared_ptr<StartTlsServer> served;
    asyncio::Server server = asyncio::create_server(
        [&] {
          served = std::make_shared<StartTlsServer>();
          return served;
        },
        "127.0.0.1", 0);
    auto conn = asyncio::create_connection<Recorder>("127.0.0.1", server.port());
    auto& transport = conn.first;
    auto& client = conn.second;
    transport.write("STARTTLS\n");
    until([&] { return client->received == "READY\n"; });
    EXPECT_THROW(asyncio::start_tls(transport, nullptr, client_context(), {.server_hostname = "example.org"}),
                 asyncio::SSLCertVerificationError);
    EXPECT_TRUE(transport.is_closing());
    until([&] { return client->events.back() == "lost"; });
    EXPECT_THROW(asyncio::await(*served->upgrade), asyncio::OSError);
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTls, ContextsOnTheWrongSideAreRefused) {
  asyncio::run([] {
    EXPECT_THROW(asyncio::create_server<EchoProto>("127.0.0.1", 0, {.ssl = client_context()}), asyncio::ValueError);
    asyncio::Server server = asyncio::create_server<EchoProto>("127.0.0.1", 0);
    EXPECT_THROW(asyncio::create_connection<Recorder>("127.0.0.1", server.port(), server_context()),
                 asyncio::ValueError);
    int fds[2];
    ASSERT_EQ(0, ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
    EXPECT_THROW(asyncio::connect_accepted_socket<EchoProto>(fds[0], client_context()), asyncio::ValueError);
    EXPECT_THROW(asyncio::create_connection<Recorder>(asyncio::connected_socket{fds[1]}, client_context()),
                 asyncio::ValueError);  // no server_hostname to check
    ::close(fds[0]);
    ::close(fds[1]);
    server.close();
    server.wait_closed();
  });
}

}  // namespace protocol_tls_test
