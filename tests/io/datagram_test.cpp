// datagram_test.cpp: UDP and Unix-domain datagrams: sock_recvfrom()/
// sock_sendto() and create_datagram_endpoint() with DatagramProtocol, after
// CPython's test_sock_lowlevel.py (sock_recvfrom/sock_sendto), test_events.py
// (test_create_datagram_endpoint*) and test_selector_events.py
// (SelectorDatagramTransportTests). 127.0.0.1 and /tmp paths only.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using DatagramTests = greenlet_test::GreenletTest;

// A UDP socket bound to 127.0.0.1 on an ephemeral port, non-blocking.
struct udp_socket {
  int fd = -1;
  int port = 0;
  udp_socket() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port = ntohs(a.sin_port);
  }
  udp_socket(const udp_socket&) = delete;
  udp_socket& operator=(const udp_socket&) = delete;
  ~udp_socket() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

// A path for a Unix-domain socket, removed at the end.
struct socket_path {
  std::string path;
  explicit socket_path(const std::string& name)
      : path("/tmp/greenlet_dgram_" + std::to_string(::getpid()) + "_" + name) {
    ::unlink(path.c_str());
  }
  ~socket_path() { ::unlink(path.c_str()); }
};

// A Unix-domain datagram socket bound to path.
int bound_unix_socket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, path.c_str());
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// The first datagram read of a thread makes its receive buffer; the first
// loop makes one-time statics: made up front, so the fixture does not count
// them as the first test's leak.
class warm_up : public ::testing::Environment {
 public:
  void SetUp() override {
    struct counter : asyncio::DatagramProtocol {
      int received = 0;
      void datagram_received(std::string, asyncio::address) override { ++received; }
    };
    udp_socket a, b;
    asyncio::run([&] {
      auto [t, p] = asyncio::create_datagram_endpoint<counter>({.sock = a.release()});
      asyncio::sock_sendto(b.fd, "x", asyncio::address{"127.0.0.1", a.port});
      while (p->received == 0) asyncio::sleep(0.001);
      t.close();
      asyncio::sleep(0);
    });
  }
};

TEST_F(DatagramTests, SockSendtoAndRecvfromCarryDatagramsAndTheSendersAddress) {
  udp_socket a, b;
  asyncio::run([&] {
    EXPECT_EQ(asyncio::sock_sendto(a.fd, "ping", asyncio::address{"127.0.0.1", b.port}), 4u);
    auto [data, from] = asyncio::sock_recvfrom(b.fd, 1024);
    EXPECT_EQ(data, "ping");
    EXPECT_EQ(from, (asyncio::address{"127.0.0.1", a.port}));
    EXPECT_EQ(asyncio::sock_sendto(b.fd, "pong!", from), 5u);
    std::vector<std::byte> buf(16);
    auto [n, back] = asyncio::sock_recvfrom_into(a.fd, buf);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), n), "pong!");
    EXPECT_EQ(back.port, b.port);
  });
}

TEST_F(DatagramTests, SockRecvfromCutsALongDatagramAndKeepsBoundaries) {
  udp_socket a, b;
  asyncio::run([&] {
    asyncio::sock_sendto(a.fd, "0123456789", asyncio::address{"127.0.0.1", b.port});
    asyncio::sock_sendto(a.fd, "", asyncio::address{"127.0.0.1", b.port});
    asyncio::sock_sendto(a.fd, "abc", asyncio::address{"127.0.0.1", b.port});
    EXPECT_EQ(asyncio::sock_recvfrom(b.fd, 4).first, "0123");  // the rest of that datagram is gone
    EXPECT_EQ(asyncio::sock_recvfrom(b.fd, 4).first, "");      // an empty datagram is one too
    EXPECT_EQ(asyncio::sock_recvfrom(b.fd, 4).first, "abc");
  });
}

TEST_F(DatagramTests, SockRecvfromWaitsWhileOtherTasksRun) {
  udp_socket a, b;
  std::vector<std::string> events;
  asyncio::run([&] {
    auto receiver = asyncio::create_task([&] {
      events.push_back("waiting");
      auto [data, from] = asyncio::sock_recvfrom(b.fd, 100);
      events.push_back("got " + data);
    });
    asyncio::sleep(0.01);
    events.push_back("sending");
    asyncio::sock_sendto(a.fd, "late", asyncio::address{"127.0.0.1", b.port});
    asyncio::await(receiver);
  });
  EXPECT_EQ(events, (std::vector<std::string>{"waiting", "sending", "got late"}));
}

TEST_F(DatagramTests, SockSendtoResolvesANameAndReportsABadOne) {
  udp_socket a, b;
  asyncio::run([&] {
    asyncio::sock_sendto(a.fd, "by name", asyncio::address{"localhost", b.port});
    EXPECT_EQ(asyncio::sock_recvfrom(b.fd, 100).first, "by name");
    EXPECT_THROW(asyncio::sock_sendto(a.fd, "x", asyncio::address{"127.0.0.1", 70000}), std::out_of_range);
  });
}

TEST_F(DatagramTests, SockSendtoAndRecvfromWorkOnUnixDomainSockets) {
  socket_path path("plain");
  const int server = bound_unix_socket(path.path);
  socket_path client_path("plain_client");
  const int client = bound_unix_socket(client_path.path);
  asyncio::run([&] {
    asyncio::sock_sendto(client, "hello", asyncio::address{path.path, 0});
    auto [data, from] = asyncio::sock_recvfrom(server, 100);
    EXPECT_EQ(data, "hello");
    EXPECT_EQ(from.host, client_path.path);
    EXPECT_EQ(from.port, 0);
  });
  ::close(server);
  ::close(client);
}

// The echo server and client of asyncio's documentation, in one loop:
// the same lines, in the same order, as the Python twin prints.
struct EchoServerProtocol : asyncio::DatagramProtocol {
  std::vector<std::string>& out;
  asyncio::DatagramTransport transport;
  explicit EchoServerProtocol(std::vector<std::string>& o) : out(o) {}
  void connection_made(asyncio::DatagramTransport& t) override {
    out.push_back("server connection_made");
    transport = t;
  }
  void datagram_received(std::string data, asyncio::address addr) override {
    out.push_back("Received '" + data + "' from client");
    out.push_back("Send '" + data + "' to client");
    transport.sendto(data, addr);
  }
  void connection_lost(std::exception_ptr exc) override {
    out.push_back(std::string("server connection_lost ") + (exc ? "error" : "None"));
  }
};

struct EchoClientProtocol : asyncio::DatagramProtocol {
  std::string message;
  asyncio::Future<bool> on_con_lost;
  std::vector<std::string>& out;
  asyncio::DatagramTransport transport;
  EchoClientProtocol(std::string m, asyncio::Future<bool> f, std::vector<std::string>& o)
      : message(std::move(m)), on_con_lost(std::move(f)), out(o) {}
  void connection_made(asyncio::DatagramTransport& t) override {
    transport = t;
    out.push_back("Send: " + message);
    transport.sendto(message);
  }
  void datagram_received(std::string data, asyncio::address) override {
    out.push_back("Received: " + data);
    out.push_back("Close the socket");
    transport.close();
  }
  void error_received(const asyncio::OSError& exc) override {
    out.push_back(std::string("Error received: ") + exc.what());
  }
  void connection_lost(std::exception_ptr) override {
    out.push_back("Connection closed");
    on_con_lost.set_result(true);
  }
};

TEST_F(DatagramTests, EchoServerAndClientPrintWhatPythonsPrint) {
  std::vector<std::string> out;
  std::weak_ptr<EchoServerProtocol> server_protocol;
  std::weak_ptr<EchoClientProtocol> client_protocol;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    auto [st, sp] = asyncio::create_datagram_endpoint([&] { return std::make_shared<EchoServerProtocol>(out); },
                                                      {.local_addr = asyncio::address{"127.0.0.1", 0}});
    out.push_back("server endpoint made");
    const int port = st.get_extra_info("sockname").port;
    auto on_con_lost = loop.create_future<bool>();
    auto [transport, protocol] = asyncio::create_datagram_endpoint(
        [&] { return std::make_shared<EchoClientProtocol>("Hello World!", on_con_lost, out); },
        {.remote_addr = asyncio::address{"127.0.0.1", port}});
    out.push_back("client endpoint made");
    EXPECT_EQ(transport.get_extra_info("peername"), (asyncio::address{"127.0.0.1", port}));
    asyncio::await(on_con_lost);
    transport.close();
    st.close();
    out.push_back(std::string("server closing ") + (st.is_closing() ? "True" : "False"));
    server_protocol = sp;
    client_protocol = protocol;
    asyncio::sleep(0);
    out.push_back("done");
  });
  EXPECT_EQ(
      out, (std::vector<std::string>{
               "server connection_made", "server endpoint made", "Send: Hello World!", "client endpoint made",
               "Received 'Hello World!' from client", "Send 'Hello World!' to client", "Received: Hello World!",
               "Close the socket", "Connection closed", "server closing True", "server connection_lost None", "done"}));
  // Each protocol held its transport: connection_lost() broke the cycle.
  EXPECT_TRUE(server_protocol.expired());
  EXPECT_TRUE(client_protocol.expired());
}

struct recorder : asyncio::DatagramProtocol {
  std::vector<std::string> events;
  asyncio::DatagramTransport transport;
  void connection_made(asyncio::DatagramTransport& t) override {
    transport = t;
    events.push_back("made");
  }
  void datagram_received(std::string data, asyncio::address) override { events.push_back("data " + data); }
  void error_received(const asyncio::OSError& exc) override {
    events.push_back("error " + std::to_string(exc.errno_()) +
                     (dynamic_cast<const asyncio::ConnectionRefusedError*>(&exc) != nullptr ? " refused" : ""));
  }
  void connection_lost(std::exception_ptr exc) override { events.push_back(exc ? "lost error" : "lost"); }
  void pause_writing() override { events.push_back("pause"); }
  void resume_writing() override { events.push_back("resume"); }
};

TEST_F(DatagramTests, DatagramsQueuedBeforeReadingStartsArriveAfterConnectionMade) {
  udp_socket a, sender;
  const int port = a.port;
  asyncio::run([&] {
    asyncio::sock_sendto(sender.fd, "early", asyncio::address{"127.0.0.1", port});
    asyncio::sock_sendto(sender.fd, "second", asyncio::address{"127.0.0.1", port});
    auto [t, p] = asyncio::create_datagram_endpoint<recorder>({.sock = a.release()});
    EXPECT_EQ(p->events, (std::vector<std::string>{"made"}));  // returned once connection_made() ran
    EXPECT_EQ(t.get_extra_info("sockname").port, port);
    while (p->events.size() < 3) asyncio::sleep(0.001);
    t.close();
    asyncio::sleep(0);
    EXPECT_EQ(p->events, (std::vector<std::string>{"made", "data early", "data second", "lost"}));
  });
}

TEST_F(DatagramTests, ConnectedEndpointReportsARefusedPortToErrorReceived) {
  int closed_port = 0;
  {
    udp_socket gone;
    closed_port = gone.port;
  }
  asyncio::run([&] {
    auto [t, p] =
        asyncio::create_datagram_endpoint<recorder>({.remote_addr = asyncio::address{"127.0.0.1", closed_port}});
    t.sendto("anyone?");  // the ICMP port-unreachable comes back as the next read's error
    for (int i = 0; i < 100 && p->events.size() < 2; ++i) asyncio::sleep(0.001);
    t.close();
    asyncio::sleep(0);
    EXPECT_EQ(p->events,
              (std::vector<std::string>{"made", "error " + std::to_string(ECONNREFUSED) + " refused", "lost"}));
  });
}

TEST_F(DatagramTests, SendtoMisuseRaisesClearErrors) {
  udp_socket peer;
  asyncio::run([&] {
    auto [unconnected, p1] =
        asyncio::create_datagram_endpoint<recorder>({.local_addr = asyncio::address{"127.0.0.1", 0}});
    try {
      unconnected.sendto("x");
      ADD_FAILURE() << "sendto() without an address on an unconnected endpoint";
    } catch (const asyncio::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("remote_addr"), std::string::npos) << e.what();
    }
    try {
      unconnected.sendto("x", asyncio::address{"localhost", peer.port});
      ADD_FAILURE() << "sendto() to a name";
    } catch (const asyncio::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("resolve it first"), std::string::npos) << e.what();
    }
    auto [connected, p2] =
        asyncio::create_datagram_endpoint<recorder>({.remote_addr = asyncio::address{"127.0.0.1", peer.port}});
    connected.sendto("same", asyncio::address{"127.0.0.1", peer.port});  // the remote address itself is fine
    EXPECT_EQ(asyncio::sock_recvfrom(peer.fd, 100).first, "same");
    EXPECT_THROW(connected.sendto("x", asyncio::address{"127.0.0.1", peer.port + 1}), asyncio::ValueError);
    connected.close();
    try {
      connected.sendto("x");
      ADD_FAILURE() << "sendto() after close()";
    } catch (const asyncio::RuntimeError& e) {
      EXPECT_NE(std::string(e.what()).find("closing"), std::string::npos) << e.what();
    }
    asyncio::DatagramTransport empty;
    EXPECT_THROW(empty.sendto("x"), asyncio::RuntimeError);
    EXPECT_TRUE(empty.is_closing());
    unconnected.close();
    asyncio::sleep(0);
  });
}

TEST_F(DatagramTests, EndpointCreationErrorsSayWhatToDo) {
  udp_socket taken;
  asyncio::run([&] {
    EXPECT_THROW(asyncio::create_datagram_endpoint<recorder>({}), asyncio::ValueError);
    int stream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_THROW(asyncio::create_datagram_endpoint<recorder>({.sock = stream}), asyncio::ValueError);
    ::close(stream);
    udp_socket spare;
    EXPECT_THROW(
        asyncio::create_datagram_endpoint<recorder>({.local_addr = asyncio::address{"127.0.0.1", 0}, .sock = spare.fd}),
        asyncio::ValueError);
    try {
      asyncio::create_datagram_endpoint<recorder>({.local_addr = asyncio::address{"127.0.0.1", taken.port}});
      ADD_FAILURE() << "bound a port in use";
    } catch (const asyncio::OSError& e) {
      EXPECT_EQ(e.errno_(), EADDRINUSE);
      EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(taken.port)), std::string::npos) << e.what();
    }
    EXPECT_THROW(asyncio::create_datagram_endpoint([] { return std::shared_ptr<recorder>(); },
                                                   {.local_addr = asyncio::address{"127.0.0.1", 0}}),
                 asyncio::ValueError);
  });
}

TEST_F(DatagramTests, ReusePortLetsTwoEndpointsBindOnePort) {
  asyncio::run([&] {
    auto [a, pa] = asyncio::create_datagram_endpoint<recorder>(
        {.local_addr = asyncio::address{"127.0.0.1", 0}, .reuse_port = true});
    const int port = a.get_extra_info("sockname").port;
    auto [b, pb] = asyncio::create_datagram_endpoint<recorder>(
        {.local_addr = asyncio::address{"127.0.0.1", port}, .reuse_port = true});
    EXPECT_EQ(b.get_extra_info("sockname").port, port);
    a.close();
    b.close();
    asyncio::sleep(0);
  });
}

TEST_F(DatagramTests, ACallbackThatThrowsIsReportedAndTheEndpointKeepsReceiving) {
  struct fussy : recorder {
    void datagram_received(std::string data, asyncio::address addr) override {
      if (data == "bad") throw std::runtime_error("cannot parse 'bad'");
      recorder::datagram_received(std::move(data), std::move(addr));
    }
  };
  udp_socket sender;
  std::vector<std::string> reported;
  asyncio::run([&] {
    asyncio::get_running_loop().set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context& c) {
      try {
        std::rethrow_exception(c.exception);
      } catch (const std::exception& e) {
        reported.push_back(e.what());
      }
    });
    auto [t, p] = asyncio::create_datagram_endpoint<fussy>({.local_addr = asyncio::address{"127.0.0.1", 0}});
    const asyncio::address to = t.get_extra_info("sockname");
    asyncio::sock_sendto(sender.fd, "bad", to);
    asyncio::sock_sendto(sender.fd, "good", to);
    for (int i = 0; i < 100 && p->events.size() < 2; ++i) asyncio::sleep(0.001);
    t.close();
    asyncio::sleep(0);
    EXPECT_EQ(p->events, (std::vector<std::string>{"made", "data good", "lost"}));
  });
  EXPECT_EQ(reported, (std::vector<std::string>{"cannot parse 'bad'"}));
}

// Unix-domain datagram sockets make a sender wait while the receiver's queue
// is full, which UDP on loopback never does: the queueing and flow control
// are tested there.
struct full_receiver {
  socket_path path{"full"};
  int fd = bound_unix_socket(path.path);
  ~full_receiver() { ::close(fd); }
};

TEST_F(DatagramTests, AFullSocketQueuesDatagramsInOrderWithFlowControlAndCloseFlushesThem) {
  full_receiver receiver;
  std::vector<std::string> received;
  asyncio::run([&] {
    auto [t, p] = asyncio::create_datagram_endpoint<recorder>(
        {.remote_addr = asyncio::address{receiver.path.path, 0}, .family = AF_UNIX});
    t.set_write_buffer_limits(4096, 1024);
    const std::string pad(500, '.');
    for (int i = 0; i < 200; ++i) t.sendto(std::to_string(i) + pad);
    EXPECT_GT(t.get_write_buffer_size(), 4096u);
    EXPECT_EQ(p->events, (std::vector<std::string>{"made", "pause"}));  // inside the sendto() that passed 4096
    t.close();                                                          // sends what is queued first
    EXPECT_TRUE(t.is_closing());
    while (received.size() < 200) {
      auto [data, from] = asyncio::sock_recvfrom(receiver.fd, 1000);
      received.push_back(data.substr(0, data.size() - pad.size()));
    }
    asyncio::sleep(0);
    EXPECT_EQ(t.get_write_buffer_size(), 0u);
    EXPECT_EQ(p->events, (std::vector<std::string>{"made", "pause", "resume", "lost"}));
  });
  ASSERT_EQ(received.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(received[i], std::to_string(i));
}

TEST_F(DatagramTests, AbortDropsQueuedDatagramsAndCallsConnectionLostOnce) {
  full_receiver receiver;
  asyncio::run([&] {
    auto [t, p] = asyncio::create_datagram_endpoint<recorder>(
        {.remote_addr = asyncio::address{receiver.path.path, 0}, .family = AF_UNIX});
    for (int i = 0; i < 200; ++i) t.sendto(std::string(500, 'x'));
    ASSERT_GT(t.get_write_buffer_size(), 0u);
    t.abort();
    t.abort();
    t.close();
    EXPECT_EQ(t.get_write_buffer_size(), 0u);
    asyncio::sleep(0);
    EXPECT_EQ(p->events.back(), "lost");
    EXPECT_EQ(std::count(p->events.begin(), p->events.end(), "lost"), 1);
    EXPECT_EQ(t.fileno(), -1);
  });
}

TEST_F(DatagramTests, ClosingTheLoopReleasesAnOpenEndpointAndItsProtocol) {
  std::weak_ptr<recorder> protocol;
  int fd = -1;
  auto loop = asyncio::new_event_loop();
  loop->run_until_complete([&] {
    auto [t, p] = asyncio::create_datagram_endpoint<recorder>({.local_addr = asyncio::address{"127.0.0.1", 0}});
    protocol = p;  // p holds t: a cycle only closing can break
    fd = t.fileno();
  });
  EXPECT_FALSE(protocol.expired());
  loop->close();
  EXPECT_TRUE(protocol.expired());
  errno = 0;
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST_F(DatagramTests, UnixEndpointReplacesAStaleSocketButNotAFile) {
  socket_path path("endpoint");
  ::close(bound_unix_socket(path.path));  // a stale socket file
  asyncio::run([&] {
    auto [t, p] =
        asyncio::create_datagram_endpoint<recorder>({.local_addr = asyncio::address{path.path, 0}, .family = AF_UNIX});
    EXPECT_EQ(t.get_extra_info("sockname").host, path.path);
    t.close();
    asyncio::sleep(0);
  });
  ::unlink(path.path.c_str());
  { std::ofstream(path.path) << "precious"; }
  asyncio::run([&] {
    try {
      asyncio::create_datagram_endpoint<recorder>({.local_addr = asyncio::address{path.path, 0}, .family = AF_UNIX});
      ADD_FAILURE() << "bound over a regular file";
    } catch (const asyncio::OSError& e) {
      EXPECT_EQ(e.errno_(), EADDRINUSE);
    }
  });
  std::ifstream in(path.path);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST_F(DatagramTests, StartUnixServerDoesNotDeleteARegularFile) {
  socket_path path("server_file");
  { std::ofstream(path.path) << "precious"; }
  asyncio::run([&] {
    EXPECT_THROW(asyncio::start_unix_server([](asyncio::StreamReader, asyncio::StreamWriter) {}, path.path),
                 asyncio::OSError);
  });
  std::ifstream in(path.path);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST_F(DatagramTests, CancellingTheCreatingTaskClosesTheEndpoint) {
  // The protocol reports to a log outside it: connection_lost() is called
  // before the cancelled creator's waiter resumes, and then lets go of it.
  struct logging : asyncio::DatagramProtocol {
    std::vector<std::string>& log;
    asyncio::DatagramTransport transport;
    explicit logging(std::vector<std::string>& l) : log(l) {}
    void connection_made(asyncio::DatagramTransport& t) override {
      transport = t;
      log.push_back("made");
    }
    void connection_lost(std::exception_ptr) override { log.push_back("lost"); }
  };
  std::weak_ptr<logging> protocol;
  std::vector<std::string> log;
  asyncio::run([&] {
    auto creator = asyncio::create_task([&] {
      asyncio::create_datagram_endpoint(
          [&] {
            auto made = std::make_shared<logging>(log);
            protocol = made;
            return made;
          },
          {.local_addr = asyncio::address{"127.0.0.1", 0}});
      ADD_FAILURE() << "create_datagram_endpoint() returned in a cancelled task";
    });
    asyncio::sleep(0);  // the creator is now waiting for connection_made()
    EXPECT_FALSE(protocol.expired());
    creator.cancel();
    EXPECT_THROW(asyncio::await(creator), asyncio::CancelledError);
    EXPECT_EQ(log, (std::vector<std::string>{"made", "lost"}));
    EXPECT_TRUE(protocol.expired());
  });
}

[[maybe_unused]] ::testing::Environment* const warm_up_env = ::testing::AddGlobalTestEnvironment(new warm_up);

}  // namespace
