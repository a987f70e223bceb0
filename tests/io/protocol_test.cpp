// protocol_test.cpp: protocols and transports (io/protocols.hpp) over TCP,
// Unix-domain sockets and pipes, after CPython's test_events.py (MyProto,
// MyReadPipeProto, MyWritePipeProto and the create_connection /
// create_server / connect_*_pipe cases) and test_selector_events.py
// (SelectorSocketTransportTests: flow control, write_eof, fatal errors).
// 127.0.0.1 and /tmp paths only.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace protocol_test {

namespace asyncio = greenlet::asyncio;
using ProtocolTests = greenlet_test::GreenletTest;

// MyProto is test_events.py's: it records the state it went through and the bytes it got.
struct MyProto : asyncio::Protocol {
  std::string state = "INITIAL";
  std::string received;
  std::vector<std::string> events;
  asyncio::Transport transport;
  std::exception_ptr lost_with;
  bool keep_open_at_eof = false;

  void connection_made(asyncio::Transport& t) override {
    EXPECT_EQ("INITIAL", state);
    transport = t;
    state = "CONNECTED";
    events.push_back("made");
  }
  void data_received(std::string_view data) override {
    EXPECT_EQ("CONNECTED", state);
    received.append(data);
    events.push_back("data");
  }
  bool eof_received() override {
    EXPECT_EQ("CONNECTED", state);
    state = "EOF";
    events.push_back("eof");
    return keep_open_at_eof;
  }
  void connection_lost(std::exception_ptr exc) override {
    state = "CLOSED";
    lost_with = exc;
    events.push_back("lost");
    transport = {};  // drop the cycle protocol -> transport -> protocol
  }
};

// EchoProto writes back what it gets.
struct EchoProto : asyncio::Protocol {
  asyncio::Transport transport;
  void connection_made(asyncio::Transport& t) override { transport = t; }
  void data_received(std::string_view data) override { transport.write(data); }
  void connection_lost(std::exception_ptr) override { transport = {}; }
};

// until(pred) lets the loop run until pred() holds (bounded: a broken case fails, not hangs).
template <class Pred>
void until(Pred pred) {
  for (int i = 0; i < 5000 && !pred(); ++i) asyncio::sleep(0.001);
  ASSERT_TRUE(pred());
}

struct os_pipe {
  int read_end = -1, write_end = -1;
  os_pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read_end = fds[0];
    write_end = fds[1];
  }
  os_pipe(const os_pipe&) = delete;
  os_pipe& operator=(const os_pipe&) = delete;
  ~os_pipe() {
    if (read_end >= 0) ::close(read_end);
    if (write_end >= 0) ::close(write_end);
  }
};

std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  }
}

TEST_F(ProtocolTests, EchoOverTcpGoesThroughEveryStateInOrder) {
  asyncio::run([] {
    asyncio::Server server = asyncio::create_server<EchoProto>("127.0.0.1", 0);
    auto conn = asyncio::create_connection<MyProto>("127.0.0.1", server.port());
    auto& transport = conn.first;
    auto& client = conn.second;
    // create_connection returns once connection_made() has run, as asyncio's waiter.
    EXPECT_EQ("CONNECTED", client->state);
    EXPECT_EQ("127.0.0.1", transport.get_extra_info("peername").host);
    EXPECT_EQ(server.port(), transport.get_extra_info("peername").port);
    EXPECT_EQ("127.0.0.1", transport.get_extra_info("sockname").host);
    EXPECT_TRUE(transport.is_reading());
    EXPECT_TRUE(transport.can_write_eof());
    transport.write("hello ");
    transport.writelines({"pro", "to", "cols"});
    until([&] { return client->received.size() == 15; });
    EXPECT_EQ("hello protocols", client->received);
    transport.close();
    EXPECT_TRUE(transport.is_closing());
    EXPECT_FALSE(transport.is_reading());
    until([&] { return client->state == "CLOSED"; });
    EXPECT_EQ(nullptr, client->lost_with);
    EXPECT_EQ(-1, transport.fileno());
    EXPECT_EQ(nullptr, transport.get_protocol());
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTests, ThePeersEofCallsEofReceivedThenClosesUnlessItSaysKeepOpen) {
  asyncio::run([] {
    std::shared_ptr<MyProto> served;
    asyncio::Server server = asyncio::create_server(
        [&] {
          served = std::make_shared<MyProto>();
          served->keep_open_at_eof = true;
          return served;
        },
        "127.0.0.1", 0);
    auto conn = asyncio::create_connection<MyProto>("127.0.0.1", server.port());
    auto& transport = conn.first;
    auto& client = conn.second;
    transport.write("request");
    transport.write_eof();
    EXPECT_THROW(
        {
          try {
            transport.write("more");
          } catch (const asyncio::RuntimeError& e) {
            EXPECT_STREQ("Cannot call write() after write_eof()", e.what());
            throw;
          }
        },
        asyncio::RuntimeError);
    until([&] { return served != nullptr && served->state == "EOF"; });
    EXPECT_EQ("request", served->received);
    // Kept open: the server still writes its answer, then closes.
    served->transport.write("answer");
    served->transport.close();
    until([&] { return client->state == "CLOSED"; });
    EXPECT_EQ("answer", client->received);
    // The client said nothing at EOF: its transport closed itself.
    EXPECT_EQ((std::vector<std::string>{"made", "data", "eof", "lost"}), client->events);
    until([&] { return served->state == "CLOSED"; });
    EXPECT_EQ((std::vector<std::string>{"made", "data", "eof", "lost"}), served->events);
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTests, CreateConnectionToAClosedPortRaisesConnectionRefused) {
  asyncio::run([] {
    int port;
    {
      asyncio::Server probe = asyncio::create_server<EchoProto>("127.0.0.1", 0);
      port = probe.port();
      probe.close();
      probe.wait_closed();
    }
    EXPECT_THROW(asyncio::create_connection<MyProto>("127.0.0.1", port), asyncio::ConnectionRefusedError);
  });
}

// A peer that reads nothing until told: the client's writes pile up past the high-water mark.
struct FlowProto : asyncio::Protocol {
  asyncio::Transport transport;
  std::vector<std::string> events;
  void connection_made(asyncio::Transport& t) override { transport = t; }
  void pause_writing() override { events.push_back("pause " + std::to_string(transport.get_write_buffer_size())); }
  void resume_writing() override { events.push_back("resume " + std::to_string(transport.get_write_buffer_size())); }
  void connection_lost(std::exception_ptr) override { transport = {}; }
};

struct SinkProto : asyncio::Protocol {
  asyncio::Transport transport;
  std::size_t received = 0;
  void connection_made(asyncio::Transport& t) override {
    transport = t;
    transport.pause_reading();
  }
  void data_received(std::string_view data) override { received += data.size(); }
  void connection_lost(std::exception_ptr) override { transport = {}; }
};

TEST_F(ProtocolTests, WritesPastTheHighWaterMarkPauseTheProtocolAndDrainingResumesIt) {
  asyncio::run([] {
    std::shared_ptr<SinkProto> sink;
    asyncio::Server server = asyncio::create_server(
        [&] {
          sink = std::make_shared<SinkProto>();
          return sink;
        },
        "127.0.0.1", 0);
    auto [transport, client] = asyncio::create_connection<FlowProto>("127.0.0.1", server.port());
    EXPECT_EQ((std::pair<std::size_t, std::size_t>{16 * 1024, 64 * 1024}), transport.get_write_buffer_limits());
    transport.set_write_buffer_limits(4096);
    EXPECT_EQ((std::pair<std::size_t, std::size_t>{1024, 4096}), transport.get_write_buffer_limits());
    EXPECT_THROW(transport.set_write_buffer_limits(10, 20), asyncio::ValueError);
    until([&] { return sink != nullptr && !sink->transport.is_reading(); });
    const std::string chunk(64 * 1024, 'x');
    std::size_t sent = 0;
    while (client->events.empty()) {
      transport.write(chunk);
      sent += chunk.size();
      ASSERT_LT(sent, 512u * 1024 * 1024) << "the kernel never filled up";
    }
    ASSERT_EQ(1u, client->events.size());
    EXPECT_EQ(0u, client->events[0].rfind("pause ", 0));
    EXPECT_GT(transport.get_write_buffer_size(), 4096u);
    sink->transport.resume_reading();
    until([&] { return sink->received == sent; });
    ASSERT_EQ(2u, client->events.size());
    EXPECT_EQ(0u, client->events[1].rfind("resume ", 0));
    EXPECT_EQ(0u, transport.get_write_buffer_size());
    transport.close();
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTests, PauseReadingHoldsDataUntilResumeReading) {
  asyncio::run([] {
    std::shared_ptr<MyProto> served;
    asyncio::Server server = asyncio::create_server(
        [&] {
          served = std::make_shared<MyProto>();
          return served;
        },
        "127.0.0.1", 0);
    auto [transport, client] = asyncio::create_connection<MyProto>("127.0.0.1", server.port());
    until([&] { return served != nullptr && served->state == "CONNECTED"; });
    served->transport.pause_reading();
    served->transport.pause_reading();  // idempotent
    EXPECT_FALSE(served->transport.is_reading());
    transport.write("held");
    for (int i = 0; i < 20; ++i) asyncio::sleep(0.001);
    EXPECT_EQ("", served->received);
    served->transport.resume_reading();
    EXPECT_TRUE(served->transport.is_reading());
    until([&] { return served->received == "held"; });
    transport.close();
    until([&] { return served->state == "CLOSED"; });
    server.close();
    server.wait_closed();
  });
}

// BufferedProtocol: reads land in the protocol's own buffer, 5 bytes at a time here.
struct SmallBufferProto : asyncio::BufferedProtocol {
  char buffer[5];
  std::string received;
  std::vector<std::size_t> hints;
  bool lost = false;
  std::span<char> get_buffer(std::size_t sizehint) override {
    hints.push_back(sizehint);
    return buffer;
  }
  void buffer_updated(std::size_t nbytes) override { received.append(buffer, nbytes); }
  void connection_lost(std::exception_ptr) override { lost = true; }
};

TEST_F(ProtocolTests, BufferedProtocolReadsIntoItsOwnBuffer) {
  asyncio::run([] {
    asyncio::Server server = asyncio::create_server<EchoProto>("127.0.0.1", 0);
    auto conn = asyncio::create_connection<SmallBufferProto>("127.0.0.1", server.port());
    auto& transport = conn.first;
    auto& client = conn.second;
    transport.write("0123456789abcdefghij!");
    until([&] { return client->received.size() == 21; });
    EXPECT_EQ("0123456789abcdefghij!", client->received);
    ASSERT_FALSE(client->hints.empty());
    EXPECT_EQ(256u * 1024, client->hints.front());
    transport.close();
    until([&] { return client->lost; });
    server.close();
    server.wait_closed();
  });
}

struct ThrowingProto : MyProto {
  void data_received(std::string_view data) override {
    MyProto::data_received(data);
    throw std::runtime_error("bad data: " + std::string(data));
  }
};

TEST_F(ProtocolTests, ADataReceivedThatThrowsIsReportedAndClosesTheConnectionWithIt) {
  asyncio::run([] {
    std::vector<std::string> reports;
    asyncio::get_running_loop().set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context& c) {
      reports.push_back(c.message + " | " + message_of(c.exception));
    });
    asyncio::Server server = asyncio::create_server<EchoProto>("127.0.0.1", 0);
    auto conn = asyncio::create_connection<ThrowingProto>("127.0.0.1", server.port());
    auto& transport = conn.first;
    auto& client = conn.second;
    transport.write("x");
    until([&] { return client->state == "CLOSED"; });
    ASSERT_EQ(1u, reports.size());
    EXPECT_EQ("Fatal error: protocol.data_received() call failed. | bad data: x", reports[0]);
    ASSERT_NE(nullptr, client->lost_with);
    EXPECT_EQ("bad data: x", message_of(client->lost_with));
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTests, ACallbackThatWaitsGetsRuntimeErrorAndTheConnectionClosesWithIt) {
  asyncio::run([] {
    std::vector<std::string> reports;
    asyncio::get_running_loop().set_exception_handler(
        [&](asyncio::event_loop*, const asyncio::exception_context& c) { reports.push_back(c.message); });
    struct SleepyProto : MyProto {
      void data_received(std::string_view data) override {
        MyProto::data_received(data);
        asyncio::sleep(0);  // callbacks run on the loop, not in a task
      }
    };
    asyncio::Server server = asyncio::create_server<EchoProto>("127.0.0.1", 0);
    auto conn = asyncio::create_connection<SleepyProto>("127.0.0.1", server.port());
    auto& transport = conn.first;
    auto& client = conn.second;
    transport.write("x");
    until([&] { return client->state == "CLOSED"; });
    EXPECT_EQ((std::vector<std::string>{"Fatal error: protocol.data_received() call failed."}), reports);
    ASSERT_NE(nullptr, client->lost_with);
    EXPECT_THROW(std::rethrow_exception(client->lost_with), asyncio::RuntimeError);
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTests, APeerResetIsConnectionLostWithConnectionResetErrorAndNotReported) {
  asyncio::run([] {
    int reports = 0;
    asyncio::get_running_loop().set_exception_handler(
        [&](asyncio::event_loop*, const asyncio::exception_context&) { ++reports; });
    struct ResetProto : asyncio::Protocol {
      void connection_made(asyncio::Transport& t) override {
        // SO_LINGER 0: close() sends RST instead of FIN.
        linger l{1, 0};
        ::setsockopt(t.fileno(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
        t.abort();
      }
    };
    asyncio::Server server = asyncio::create_server<ResetProto>("127.0.0.1", 0);
    auto conn = asyncio::create_connection<MyProto>("127.0.0.1", server.port());
    auto& client = conn.second;
    until([&] { return client->state == "CLOSED"; });
    // A reset shows as ECONNRESET on the read, or as EOF if the RST came before we read.
    if (client->lost_with != nullptr) {
      EXPECT_THROW(std::rethrow_exception(client->lost_with), asyncio::ConnectionResetError);
    }
    EXPECT_EQ(0, reports);
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTests, AbortDropsBufferedBytesAndCallsConnectionLostOnce) {
  asyncio::run([] {
    std::shared_ptr<SinkProto> sink;
    asyncio::Server server = asyncio::create_server(
        [&] {
          sink = std::make_shared<SinkProto>();
          return sink;
        },
        "127.0.0.1", 0);
    auto conn = asyncio::create_connection<MyProto>("127.0.0.1", server.port());
    auto& transport = conn.first;
    auto& client = conn.second;
    const std::string chunk(1024 * 1024, 'y');
    while (transport.get_write_buffer_size() == 0) transport.write(chunk);
    transport.abort();
    EXPECT_EQ(0u, transport.get_write_buffer_size());
    transport.abort();
    transport.close();
    until([&] { return client->state == "CLOSED"; });
    EXPECT_EQ(1, std::count(client->events.begin(), client->events.end(), "lost"));
    // Writes after the connection was lost are dropped, as asyncio's.
    transport.write("dropped");
    // The server's side reads nothing (paused): it would never see the reset, so it closes too.
    sink->transport.close();
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTests, WaitClosedWaitsForEveryProtocolConnection) {
  asyncio::run([] {
    asyncio::Server server = asyncio::create_server<EchoProto>("127.0.0.1", 0);
    auto conn = asyncio::create_connection<MyProto>("127.0.0.1", server.port());
    auto& transport = conn.first;
    auto& client = conn.second;
    transport.write("ping");
    until([&] { return client->received == "ping"; });
    server.close();
    EXPECT_FALSE(server.is_serving());
    bool closed = false;
    auto waiter = asyncio::create_task([&] {
      server.wait_closed();
      closed = true;
    });
    for (int i = 0; i < 10; ++i) asyncio::sleep(0.001);
    EXPECT_FALSE(closed) << "the connection is still open";
    // The connection accepted before close() is still served.
    transport.write("pong");
    until([&] { return client->received == "pingpong"; });
    transport.close();
    asyncio::await(waiter);
    EXPECT_TRUE(closed);
  });
}

TEST_F(ProtocolTests, AFactoryThatThrowsIsReportedAndThatConnectionClosed) {
  asyncio::run([] {
    std::vector<std::string> reports;
    asyncio::get_running_loop().set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context& c) {
      reports.push_back(c.message + " | " + message_of(c.exception));
    });
    int made = 0;
    asyncio::Server server = asyncio::create_server(
        [&]() -> std::shared_ptr<EchoProto> {
          if (made++ == 0) throw std::runtime_error("no protocol for you");
          return std::make_shared<EchoProto>();
        },
        "127.0.0.1", 0);
    auto first_conn = asyncio::create_connection<MyProto>("127.0.0.1", server.port());
    auto& first_client = first_conn.second;
    until([&] { return first_client->state == "CLOSED"; });
    ASSERT_EQ(1u, reports.size());
    EXPECT_EQ("Error on transport creation for incoming connection | no protocol for you", reports[0]);
    // The server goes on serving.
    auto second_conn = asyncio::create_connection<MyProto>("127.0.0.1", server.port());
    auto& second = second_conn.first;
    auto& second_client = second_conn.second;
    second.write("still here");
    until([&] { return second_client->received == "still here"; });
    second.close();
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTests, UnixSocketsCarryProtocolsToo) {
  const std::string path = "/tmp/greenlet_proto_" + std::to_string(::getpid());
  asyncio::run([&] {
    asyncio::Server server = asyncio::create_unix_server<EchoProto>(path);
    auto conn = asyncio::create_unix_connection<MyProto>(path);
    auto& transport = conn.first;
    auto& client = conn.second;
    EXPECT_TRUE(transport.can_write_eof());
    transport.write("over a path");
    until([&] { return client->received == "over a path"; });
    transport.close();
    server.close();
    server.wait_closed();
  });
  ::unlink(path.c_str());
}

TEST_F(ProtocolTests, ConnectAcceptedSocketWrapsASocketTheProgramMade) {
  int fds[2];
  ASSERT_EQ(0, ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
  asyncio::run([&] {
    auto left_conn = asyncio::connect_accepted_socket<EchoProto>(fds[0]);
    auto& left = left_conn.first;
    auto right_conn = asyncio::connect_accepted_socket<MyProto>(fds[1]);
    auto& right = right_conn.first;
    auto& right_proto = right_conn.second;
    right.write("paired");
    until([&] { return right_proto->received == "paired"; });
    left.close();
    until([&] { return right_proto->state == "CLOSED"; });
    EXPECT_EQ((std::vector<std::string>{"made", "data", "eof", "lost"}), right_proto->events);
  });
}

TEST_F(ProtocolTests, ConnectAcceptedSocketRefusesADatagramSocketAndAnEmptyTransportRaises) {
  const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(udp, 0);
  asyncio::run([&] {
    try {
      asyncio::connect_accepted_socket<MyProto>(udp);
      ADD_FAILURE() << "a datagram socket was accepted";
    } catch (const asyncio::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("A Stream Socket was expected"), std::string::npos) << e.what();
    }
  });
  ::close(udp);
  asyncio::Transport empty;
  EXPECT_FALSE(empty);
  EXPECT_TRUE(empty.is_closing());
  EXPECT_EQ(-1, empty.fileno());
  EXPECT_THROW(empty.write("x"), asyncio::RuntimeError);
  EXPECT_THROW(empty.get_extra_info("peername"), asyncio::RuntimeError);
  empty.close();  // no-op
}

TEST_F(ProtocolTests, CreateServerOnAListeningSocketAndCreateConnectionFromALocalAddressOrASocket) {
  asyncio::run([] {
    // A socket the program bound itself, served by create_server(sock=).
    const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(0, ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a));
    std::shared_ptr<MyProto> served;
    asyncio::Server server = asyncio::create_server(
        [&] {
          served = std::make_shared<MyProto>();
          return served;
        },
        asyncio::listening_socket{l});
    const int port = server.port();
    ASSERT_NE(0, port);
    // From a chosen local port (create_connection(local_addr=)): the server sees it.
    int local_port;
    {
      asyncio::Server probe = asyncio::create_server<EchoProto>("127.0.0.1", 0);
      local_port = probe.port();
      probe.close();
      probe.wait_closed();
    }
    auto [t1, c1] =
        asyncio::create_connection<MyProto>("127.0.0.1", port, asyncio::local_addr{"127.0.0.1", local_port});
    EXPECT_EQ(local_port, t1.get_extra_info("sockname").port);
    until([&] { return served != nullptr; });
    EXPECT_EQ(local_port, served->transport.get_extra_info("peername").port);
    t1.close();
    // Over a socket the program connected (create_connection(sock=)).
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    asyncio::sock_connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    auto [t2, c2] =
        asyncio::create_connection([] { return std::make_shared<MyProto>(); }, asyncio::connected_socket{s});
    EXPECT_EQ(port, t2.get_extra_info("peername").port);
    t2.write("via sock");
    until([&] { return served->received == "via sock"; });
    t2.close();
    until([&] { return served->state == "CLOSED"; });
    server.close();
    server.wait_closed();
  });
}

// repr() as asyncio's _SelectorSocketTransport.__repr__ and the pipe transports' (after
// test_selector_events.py's test_repr / test_unix_events.py's repr cases).
TEST_F(ProtocolTests, ReprSaysWhatTheTransportWatchesAndHolds) {
  asyncio::run([] {
    std::shared_ptr<SinkProto> sink;
    asyncio::Server server = asyncio::create_server(
        [&] {
          sink = std::make_shared<SinkProto>();
          return sink;
        },
        "127.0.0.1", 0);
    auto conn = asyncio::create_connection<MyProto>("127.0.0.1", server.port());
    auto& transport = conn.first;
    auto& client = conn.second;
    const std::string fd = std::to_string(transport.fileno());
    EXPECT_EQ("<_SelectorSocketTransport fd=" + fd + " read=polling write=<idle, bufsize=0>>", transport.repr());
    transport.pause_reading();
    EXPECT_EQ("<_SelectorSocketTransport fd=" + fd + " read=idle write=<idle, bufsize=0>>", transport.repr());
    transport.resume_reading();
    until([&] { return sink != nullptr && !sink->transport.is_reading(); });
    const std::string chunk(1024 * 1024, 'r');
    while (transport.get_write_buffer_size() == 0) transport.write(chunk);
    const std::string size = std::to_string(transport.get_write_buffer_size());
    EXPECT_EQ("<_SelectorSocketTransport fd=" + fd + " read=polling write=<polling, bufsize=" + size + ">>",
              transport.repr());
    transport.abort();
    EXPECT_EQ("<_SelectorSocketTransport closing fd=" + fd + " read=idle write=<idle, bufsize=0>>", transport.repr());
    until([&] { return client->state == "CLOSED"; });
    EXPECT_EQ("<_SelectorSocketTransport closed fd=" + fd + ">", transport.repr());
    sink->transport.close();
    server.close();
    server.wait_closed();

    os_pipe p;
    const int read_fd = p.read_end;
    const int write_fd = p.write_end;
    auto read_conn =
        asyncio::connect_read_pipe([] { return std::make_shared<MyProto>(); }, std::exchange(p.read_end, -1));
    auto& reader = read_conn.first;
    auto& reader_proto = read_conn.second;
    auto write_conn =
        asyncio::connect_write_pipe([] { return std::make_shared<MyProto>(); }, std::exchange(p.write_end, -1));
    auto& writer = write_conn.first;
    EXPECT_EQ("<_UnixReadPipeTransport fd=" + std::to_string(read_fd) + " polling>", reader.repr());
    EXPECT_EQ("<_UnixWritePipeTransport fd=" + std::to_string(write_fd) + " idle bufsize=0>", writer.repr());
    writer.close();
    until([&] { return reader_proto->state == "CLOSED"; });
    EXPECT_EQ("<_UnixReadPipeTransport closed fd=" + std::to_string(read_fd) + ">", reader.repr());
  });
  EXPECT_EQ("<Transport empty>", asyncio::Transport().repr());
}

// Many connections at once, each a conversation of its own: every byte comes back to the
// connection that sent it, in order (as streams_test's 1,000 echo clients).
TEST_F(ProtocolTests, FiveHundredConcurrentConversations) {
  struct Talker : asyncio::Protocol {
    int id;
    int rounds_left = 10;
    std::string expected;
    std::string received;
    asyncio::Transport transport;
    bool done = false;
    explicit Talker(int i) : id(i) {}
    void send() {
      expected = "conn " + std::to_string(id) + " round " + std::to_string(rounds_left) + "\n";
      transport.write(expected);
    }
    void connection_made(asyncio::Transport& t) override {
      transport = t;
      send();
    }
    void data_received(std::string_view data) override {
      received.append(data);
      if (received.size() < expected.size()) return;
      EXPECT_EQ(expected, received);
      received.clear();
      if (--rounds_left == 0) {
        transport.close();
        return;
      }
      send();
    }
    void connection_lost(std::exception_ptr exc) override {
      EXPECT_EQ(nullptr, exc);
      done = rounds_left == 0;
      transport = {};
    }
  };
  asyncio::run([] {
    asyncio::Server server = asyncio::create_server<EchoProto>("127.0.0.1", 0, {.backlog = 1024});
    std::vector<std::shared_ptr<Talker>> talkers;
    std::vector<asyncio::Task<void>> connecting;
    for (int i = 0; i < 500; ++i) {
      auto talker = std::make_shared<Talker>(i);
      talkers.push_back(talker);
      connecting.push_back(asyncio::create_task([talker, port = server.port()] {
        asyncio::create_connection([talker] { return talker; }, "127.0.0.1", port);
      }));
    }
    asyncio::gather(connecting);
    until([&] { return std::all_of(talkers.begin(), talkers.end(), [](const auto& t) { return t->done; }); });
    server.close();
    server.wait_closed();
  });
}

// MyReadPipeProto is test_events.py's.
struct MyReadPipeProto : asyncio::Protocol {
  std::vector<std::string> state{"INITIAL"};
  std::string received;
  asyncio::Transport transport;
  void connection_made(asyncio::Transport& t) override {
    transport = t;
    state.push_back("CONNECTED");
  }
  void data_received(std::string_view data) override { received.append(data); }
  bool eof_received() override {
    state.push_back("EOF");
    return true;  // a read pipe closes anyway
  }
  void connection_lost(std::exception_ptr) override {
    state.push_back("CLOSED");
    transport = {};
  }
};

TEST_F(ProtocolTests, ReadPipeDeliversDataThenEofThenClosed) {
  os_pipe p;
  asyncio::run([&] {
    auto conn =
        asyncio::connect_read_pipe([] { return std::make_shared<MyReadPipeProto>(); }, std::exchange(p.read_end, -1));
    auto& transport = conn.first;
    auto& proto = conn.second;
    EXPECT_EQ((std::vector<std::string>{"INITIAL", "CONNECTED"}), proto->state);
    EXPECT_FALSE(transport.can_write_eof());
    EXPECT_THROW(transport.write("x"), asyncio::RuntimeError);
    ASSERT_EQ(1, ::write(p.write_end, "1", 1));
    until([&] { return proto->received == "1"; });
    ASSERT_EQ(4, ::write(p.write_end, "2345", 4));
    until([&] { return proto->received == "12345"; });
    ::close(std::exchange(p.write_end, -1));
    until([&] { return proto->state.size() == 4; });
    EXPECT_EQ((std::vector<std::string>{"INITIAL", "CONNECTED", "EOF", "CLOSED"}), proto->state);
  });
}

TEST_F(ProtocolTests, ConnectReadPipeRefusesARegularFile) {
  char path[] = "/tmp/greenlet_proto_file_XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  asyncio::run([&] {
    try {
      asyncio::connect_read_pipe([] { return std::make_shared<MyReadPipeProto>(); }, fd);
      ADD_FAILURE() << "a regular file was accepted";
    } catch (const asyncio::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("Pipe transport is for pipes/sockets only."), std::string::npos);
    }
  });
  ::close(fd);
}

// MyWritePipeProto is test_events.py's.
struct MyWritePipeProto : asyncio::BaseProtocol {
  std::string state = "INITIAL";
  asyncio::Transport transport;
  std::exception_ptr lost_with;
  void connection_made(asyncio::Transport& t) override {
    transport = t;
    state = "CONNECTED";
  }
  void connection_lost(std::exception_ptr exc) override {
    state = "CLOSED";
    lost_with = exc;
    transport = {};
  }
};

std::string read_some(int fd) {
  char buf[1024];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n >= 0) return std::string(buf, static_cast<std::size_t>(n));
    if (errno != EAGAIN && errno != EINTR) return "<error>";
    asyncio::sleep(0.001);
  }
}

TEST_F(ProtocolTests, WritePipeWritesAndClosesAfterTheBufferIsSent) {
  os_pipe p;
  asyncio::set_nonblocking(p.read_end);
  asyncio::run([&] {
    auto conn = asyncio::connect_write_pipe([] { return std::make_shared<MyWritePipeProto>(); },
                                            std::exchange(p.write_end, -1));
    auto& transport = conn.first;
    auto& proto = conn.second;
    EXPECT_EQ("CONNECTED", proto->state);
    EXPECT_TRUE(transport.can_write_eof());
    EXPECT_THROW(transport.pause_reading(), asyncio::RuntimeError);
    transport.write("1");
    EXPECT_EQ("1", read_some(p.read_end));
    transport.write("2345");
    EXPECT_EQ("2345", read_some(p.read_end));
    transport.close();
    until([&] { return proto->state == "CLOSED"; });
    EXPECT_EQ(nullptr, proto->lost_with);
    EXPECT_EQ("", read_some(p.read_end)) << "EOF";
  });
}

TEST_F(ProtocolTests, WritePipeNoticesItsReaderGoingAway) {
  // test_write_pipe_disconnect_on_close: nothing buffered, so connection_lost(None).
  int fds[2];
  ASSERT_EQ(0, ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
  asyncio::run([&] {
    auto conn = asyncio::connect_write_pipe([] { return std::make_shared<MyWritePipeProto>(); }, fds[1]);
    auto& transport = conn.first;
    auto& proto = conn.second;
    transport.write("1");
    char c;
    bool got = false;
    until([&] { return got = got || ::recv(fds[0], &c, 1, MSG_DONTWAIT) == 1; });
    ::close(fds[0]);
    until([&] { return proto->state == "CLOSED"; });
    EXPECT_EQ(nullptr, proto->lost_with);
    EXPECT_TRUE(transport.is_closing());
  });
}

TEST_F(ProtocolTests, WritePipeWhoseReaderGoesWithBytesBufferedLosesTheConnectionWithBrokenPipe) {
  os_pipe p;
  asyncio::run([&] {
    auto conn = asyncio::connect_write_pipe([] { return std::make_shared<MyWritePipeProto>(); },
                                            std::exchange(p.write_end, -1));
    auto& transport = conn.first;
    auto& proto = conn.second;
    const std::string chunk(64 * 1024, 'z');
    while (transport.get_write_buffer_size() == 0) transport.write(chunk);
    ::close(std::exchange(p.read_end, -1));
    until([&] { return proto->state == "CLOSED"; });
    ASSERT_NE(nullptr, proto->lost_with);
    EXPECT_THROW(std::rethrow_exception(proto->lost_with), asyncio::BrokenPipeError);
  });
}

// SwitchProto takes over a connection mid-way (asyncio's set_protocol()).
TEST_F(ProtocolTests, SetProtocolSwitchesWhoGetsTheNextBytes) {
  asyncio::run([] {
    std::shared_ptr<MyProto> served;
    asyncio::Server server = asyncio::create_server(
        [&] {
          served = std::make_shared<MyProto>();
          return served;
        },
        "127.0.0.1", 0);
    auto [transport, client] = asyncio::create_connection<MyProto>("127.0.0.1", server.port());
    transport.write("first");
    until([&] { return served != nullptr && served->received == "first"; });
    auto second = std::make_shared<MyProto>();
    second->state = "CONNECTED";
    second->transport = served->transport;
    served->transport.set_protocol(second);
    EXPECT_EQ(second, served->transport.get_protocol());
    EXPECT_THROW(served->transport.set_protocol(nullptr), asyncio::ValueError);
    transport.write("second");
    until([&] { return second->received == "second"; });
    EXPECT_EQ("first", served->received);
    transport.close();
    until([&] { return second->state == "CLOSED"; });
    served->transport = {};
    server.close();
    server.wait_closed();
  });
}

TEST_F(ProtocolTests, ALoopClosedWithConnectionsOpenLetsGoOfTheirProtocols) {
  std::weak_ptr<MyProto> kept;
  asyncio::run([&] {
    asyncio::Server server = asyncio::create_server<EchoProto>("127.0.0.1", 0);
    auto conn = asyncio::create_connection<MyProto>("127.0.0.1", server.port());
    auto& transport = conn.first;
    auto& client = conn.second;
    kept = client;
    transport.write("left open");
    until([&] { return client->received == "left open"; });
  });
  EXPECT_TRUE(kept.expired());
}

}  // namespace protocol_test
