// stream_options_test.cpp: asyncio's socket options of start_server() and
// open_connection() (base_events.py create_server / create_connection):
// reuse_port= and reuse_address= (server_config), sock= of a listening
// socket (listening_socket{fd}) and of a connected one (connected_socket{fd}),
// and local_addr= (local_addr{host, port}).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

#include "echo_line.hpp"
#include "tls_test_fixture.hpp"
#include "value_error_text.hpp"

namespace stream_options_test {

namespace asyncio = greenlet::asyncio;
using StreamOptions = greenlet_test::GreenletTest;

using StreamOptionsTls = tls_test::Fixture;
using tls_test::client_context;
using tls_test::server_context;

// socket_option(fd, name) is getsockopt(SOL_SOCKET, name) as an int.
int socket_option(int fd, int name) {
  int value = -1;
  socklen_t len = sizeof value;
  ::getsockopt(fd, SOL_SOCKET, name, &value, &len);
  return value;
}

// answer_with(name) is a handler that writes name and closes.
asyncio::client_connected answer_with(std::string name) {
  return [name](asyncio::StreamReader, asyncio::StreamWriter w) {
    w.write(name);
    w.close();
  };
}

// who_answers(port) connects to 127.0.0.1:port and reads what the server says until EOF.
std::string who_answers(int port) {
  auto [r, w] = asyncio::open_connection("127.0.0.1", port);
  std::string said = r.read();
  w.close();
  return said;
}

// loopback(port) is 127.0.0.1:port.
sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// bound_tcp_socket(type) is a blocking socket of type bound to 127.0.0.1 on a free port.
int bound_tcp_socket(int type = SOCK_STREAM) {
  const int fd = ::socket(AF_INET, type, 0);
  const sockaddr_in a = loopback(0);
  EXPECT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// port_of(fd) is the port fd is bound to.
int port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }
bool is_nonblocking(int fd) { return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

// unix_path(tag) is a socket path of this process's, removed first.
std::string unix_path(const std::string& tag) {
  std::string path = "/tmp/greenlet_stream_options_" + std::to_string(::getpid()) + "_" + tag + ".sock";
  ::unlink(path.c_str());
  return path;
}

// bound_unix_socket(path) is a blocking AF_UNIX stream socket bound to path.
int bound_unix_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  path.copy(a.sun_path, sizeof a.sun_path - 1);
  EXPECT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
  return fd;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---- reuse_port / reuse_address ----

TEST_F(StreamOptions, ReusePortLetsTwoServersBindOnePort) {
  asyncio::run([] {
    asyncio::Server a = asyncio::start_server(answer_with("a"), "127.0.0.1", 0, {.reuse_port = true});
    asyncio::Server b = asyncio::start_server(answer_with("b"), "127.0.0.1", a.port(), {.reuse_port = true});
    EXPECT_EQ(b.port(), a.port());
    EXPECT_EQ(socket_option(a.fileno(), SO_REUSEPORT), 1);
    EXPECT_EQ(socket_option(b.fileno(), SO_REUSEPORT), 1);
    const std::string first = who_answers(a.port());
    EXPECT_TRUE(first == "a" || first == "b") << first;
    // The kernel spreads connections by their addresses: close each in turn to see both accept.
    a.close();
    a.wait_closed();
    EXPECT_EQ(who_answers(b.port()), "b");
    asyncio::Server c = asyncio::start_server(answer_with("c"), "127.0.0.1", b.port(), {.reuse_port = true});
    b.close();
    b.wait_closed();
    EXPECT_EQ(who_answers(c.port()), "c");
    c.close();
    c.wait_closed();
  });
}

TEST_F(StreamOptions, WithoutReusePortTheSecondServerFailsNamingTheAddress) {
  asyncio::run([] {
    asyncio::Server a = asyncio::start_server(answer_with("a"), "127.0.0.1", 0, {.reuse_port = true});
    EXPECT_EQ(socket_option(a.fileno(), SO_REUSEPORT), 1);
    const std::string where = "127.0.0.1:" + std::to_string(a.port());
    try {
      asyncio::start_server(answer_with("b"), "127.0.0.1", a.port());
      ADD_FAILURE() << "a second server bound " << where << " without reuse_port";
    } catch (const asyncio::OSError& e) {
      EXPECT_EQ(e.errno_(), EADDRINUSE);
      EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
    }
    EXPECT_EQ(who_answers(a.port()), "a");
    a.close();
    a.wait_closed();
  });
}

TEST_F(StreamOptions, ReuseAddressIsOnByDefaultAndCanBeTurnedOff) {
  asyncio::run([] {
    asyncio::Server on = asyncio::start_server(answer_with("on"), "127.0.0.1", 0);
    asyncio::Server off = asyncio::start_server(answer_with("off"), "127.0.0.1", 0, {.reuse_address = false});
    asyncio::Server set = asyncio::start_server(answer_with("set"), "127.0.0.1", 0, {.reuse_address = true});
    EXPECT_EQ(socket_option(on.fileno(), SO_REUSEADDR), 1);
    EXPECT_EQ(socket_option(off.fileno(), SO_REUSEADDR), 0);
    EXPECT_EQ(socket_option(set.fileno(), SO_REUSEADDR), 1);
    EXPECT_EQ(socket_option(on.fileno(), SO_REUSEPORT), 0);
    EXPECT_EQ(who_answers(off.port()), "off");
    for (asyncio::Server* s : {&on, &off, &set}) {
      s->close();
      s->wait_closed();
    }
  });
}

TEST_F(StreamOptions, UnixServerRefusesTheTcpReuseOptions) {
  asyncio::run([] {
    const std::string path = "/tmp/greenlet_stream_options_" + std::to_string(::getpid()) + ".sock";
    for (const asyncio::server_config& config :
         {asyncio::server_config{.reuse_address = false}, asyncio::server_config{.reuse_port = true}}) {
      try {
        asyncio::start_unix_server(answer_with("u"), path, config);
        ADD_FAILURE() << "start_unix_server() took a TCP option";
      } catch (const asyncio::ValueError& e) {
        EXPECT_NE(std::string(e.what()).find("leave them unset"), std::string::npos) << e.what();
      }
    }
    EXPECT_NE(::access(path.c_str(), F_OK), 0);
  });
}

// ---- start_server(sock=): listening_socket ----

TEST_F(StreamOptions, ServesAListeningSocketTheCallerMade) {
  asyncio::run([] {
    const int fd = bound_tcp_socket();
    ASSERT_EQ(::listen(fd, 8), 0);
    asyncio::Server server = asyncio::start_server(answer_with("made"), asyncio::listening_socket{fd});
    EXPECT_EQ(server.port(), port_of(fd));
    EXPECT_EQ(server.sockets(), std::vector<int>{fd});
    EXPECT_EQ(server.fileno(), fd);
    EXPECT_TRUE(is_nonblocking(fd));
    EXPECT_EQ(who_answers(server.port()), "made");
    server.close();
    EXPECT_FALSE(is_open(fd));  // the server's from the call on
    server.wait_closed();
  });
}

TEST_F(StreamOptions, ABoundSocketNotYetListeningIsMadeToListen) {
  asyncio::run([] {
    const int fd = bound_tcp_socket();
    asyncio::Server server = asyncio::start_server(answer_with("bound"), asyncio::listening_socket{fd}, {.backlog = 5});
    EXPECT_EQ(socket_option(fd, SO_ACCEPTCONN), 1);
    EXPECT_EQ(who_answers(server.port()), "bound");
    server.close();
    server.wait_closed();
  });
}

TEST_F(StreamOptions, AUdpSocketIsRefusedAndLeftToTheCaller) {
  asyncio::run([] {
    const int fd = bound_tcp_socket(SOCK_DGRAM);
    const std::string what =
        io_test::value_error_text([fd] { asyncio::start_server(answer_with("udp"), asyncio::listening_socket{fd}); });
    EXPECT_TRUE(contains(
        what, "start_server(): A Stream Socket was expected, got fd " + std::to_string(fd) + " (AF_INET, SOCK_DGRAM)"))
        << what;
    EXPECT_TRUE(contains(what, "needs a bound SOCK_STREAM socket")) << what;
    EXPECT_TRUE(is_open(fd));
    EXPECT_FALSE(is_nonblocking(fd));
    ::close(fd);
  });
}

TEST_F(StreamOptions, ListeningSocketRefusalsSayWhatToPass) {
  asyncio::run([] {
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    const std::string not_socket = io_test::value_error_text(
        [&] { asyncio::start_server(answer_with("x"), asyncio::listening_socket{pipe_fds[0]}); });
    EXPECT_TRUE(contains(not_socket, " is not a socket: listening_socket{fd} needs a bound SOCK_STREAM socket"))
        << not_socket;
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);

    asyncio::Server server = asyncio::start_server(answer_with("s"), "127.0.0.1", 0);
    const int client = ::socket(AF_INET, SOCK_STREAM, 0);
    const sockaddr_in to = loopback(server.port());
    ASSERT_EQ(::connect(client, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
    const std::string connected =
        io_test::value_error_text([&] { asyncio::start_server(answer_with("x"), asyncio::listening_socket{client}); });
    EXPECT_TRUE(contains(connected, "is a connected socket, which cannot listen")) << connected;
    EXPECT_TRUE(contains(connected, "open_connection(connected_socket{fd})")) << connected;
    EXPECT_TRUE(is_open(client));
    ::close(client);
    server.close();
    server.wait_closed();

    const int fd = bound_tcp_socket();
    const std::string options = io_test::value_error_text(
        [fd] { asyncio::start_server(answer_with("x"), asyncio::listening_socket{fd}, {.reuse_port = true}); });
    EXPECT_TRUE(contains(options, "leave server_config.reuse_address and reuse_port unset")) << options;
    ::close(fd);

    try {
      asyncio::start_server(answer_with("x"), asyncio::listening_socket{1 << 20});
      ADD_FAILURE() << "a closed fd was served";
    } catch (const asyncio::OSError& e) {
      EXPECT_EQ(e.errno_(), EBADF);
    }
  });
}

TEST_F(StreamOptions, UnixServerServesAListeningSocket) {
  const std::string path = unix_path("listening");
  asyncio::run([&path] {
    const int fd = bound_unix_socket(path);
    ASSERT_EQ(::listen(fd, 8), 0);
    asyncio::Server server = asyncio::start_unix_server(answer_with("unix"), asyncio::listening_socket{fd});
    EXPECT_EQ(server.sockets(), std::vector<int>{fd});
    EXPECT_EQ(server.port(), 0);
    auto [r, w] = asyncio::open_unix_connection(path);
    EXPECT_EQ(r.read(), "unix");
    w.close();
    server.close();
    server.wait_closed();
  });
  ::unlink(path.c_str());
}

TEST_F(StreamOptions, StartServerServesAUnixSocketToo) {
  // As asyncio's create_server(sock=): any stream socket.
  const std::string path = unix_path("tcp_call");
  asyncio::run([&path] {
    asyncio::Server server =
        asyncio::start_server(answer_with("any"), asyncio::listening_socket{bound_unix_socket(path)});
    auto [r, w] = asyncio::open_unix_connection(path);
    EXPECT_EQ(r.read(), "any");
    w.close();
    server.close();
    server.wait_closed();
  });
  ::unlink(path.c_str());
}

TEST_F(StreamOptions, UnixServerRefusesATcpSocket) {
  asyncio::run([] {
    const int fd = bound_tcp_socket();
    const std::string what = io_test::value_error_text(
        [fd] { asyncio::start_unix_server(answer_with("x"), asyncio::listening_socket{fd}); });
    EXPECT_TRUE(contains(what, "start_unix_server(): A UNIX Domain Stream Socket was expected, got fd " +
                                   std::to_string(fd) + " (AF_INET, SOCK_STREAM)"))
        << what;
    EXPECT_TRUE(is_open(fd));
    ::close(fd);
  });
}

// ---- open_connection(sock=): connected_socket ----

// connected_to(port) is a blocking TCP socket connected by hand to 127.0.0.1:port.
int connected_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const sockaddr_in to = loopback(port);
  EXPECT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
  return fd;
}

// unix_connected_to(path) is a blocking AF_UNIX socket connected by hand to path.
int unix_connected_to(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  path.copy(a.sun_path, sizeof a.sun_path - 1);
  EXPECT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
  return fd;
}

TEST_F(StreamOptions, StreamsOverBothEndsOfASocketpair) {
  asyncio::run([] {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    auto [r0, w0] = asyncio::open_connection(asyncio::connected_socket{sv[0]});
    auto [r1, w1] = asyncio::open_unix_connection(asyncio::connected_socket{sv[1]}, {.limit = 16});
    EXPECT_EQ(w0.fileno(), sv[0]);
    EXPECT_TRUE(is_nonblocking(sv[0]));
    EXPECT_TRUE(is_nonblocking(sv[1]));
    w0.write("ping\n");
    EXPECT_EQ(r1.readline(), "ping\n");
    w1.write("pong\n");
    w1.write_eof();
    EXPECT_EQ(r0.read(), "pong\n");
    w0.close();
    w0.wait_closed();
    EXPECT_FALSE(is_open(sv[0]));  // the streams' from the call on
    EXPECT_EQ(r1.read(), "");
    w1.close();
    w1.wait_closed();
  });
}

TEST_F(StreamOptions, StreamsOverATcpSocketConnectedByHand) {
  asyncio::run([] {
    asyncio::Server server = asyncio::start_server(io_test::echo_line, "127.0.0.1", 0);
    const int fd = connected_to(server.port());
    auto [r, w] = asyncio::open_connection(asyncio::connected_socket{fd});
    EXPECT_EQ(w.get_extra_info("peername"), (asyncio::address{"127.0.0.1", server.port()}));
    int nodelay = 0;
    socklen_t len = sizeof nodelay;
    ::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len);
    EXPECT_EQ(nodelay, 1);
    w.write("by hand\n");
    EXPECT_EQ(r.readline(), "by hand\n");
    EXPECT_EQ(r.read(), "");
    w.close();
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
}

TEST_F(StreamOptions, ConnectedSocketRefusalsLeaveTheSocketToTheCaller) {
  asyncio::run([] {
    const int udp = bound_tcp_socket(SOCK_DGRAM);
    std::string what = io_test::value_error_text([udp] { asyncio::open_connection(asyncio::connected_socket{udp}); });
    EXPECT_TRUE(contains(what, "open_connection(): A Stream Socket was expected, got fd " + std::to_string(udp) +
                                   " (AF_INET, SOCK_DGRAM): connected_socket{fd} needs a connected SOCK_STREAM socket"))
        << what;
    EXPECT_TRUE(is_open(udp));
    ::close(udp);

    const int unconnected = bound_tcp_socket();
    what =
        io_test::value_error_text([unconnected] { asyncio::open_connection(asyncio::connected_socket{unconnected}); });
    EXPECT_TRUE(contains(what, "is not connected: connect it first (sock_connect())")) << what;
    EXPECT_TRUE(is_open(unconnected));
    EXPECT_FALSE(is_nonblocking(unconnected));

    ASSERT_EQ(::listen(unconnected, 1), 0);
    what =
        io_test::value_error_text([unconnected] { asyncio::open_connection(asyncio::connected_socket{unconnected}); });
    EXPECT_TRUE(contains(what, "it is listening; serve it with start_server(handler, listening_socket{fd})")) << what;
    ::close(unconnected);

    asyncio::Server server = asyncio::start_server(io_test::echo_line, "127.0.0.1", 0);
    const int tcp = connected_to(server.port());
    what = io_test::value_error_text([tcp] { asyncio::open_unix_connection(asyncio::connected_socket{tcp}); });
    EXPECT_TRUE(contains(what, "open_unix_connection(): A UNIX Domain Stream Socket was expected, got fd " +
                                   std::to_string(tcp) + " (AF_INET, SOCK_STREAM)"))
        << what;
    EXPECT_TRUE(is_open(tcp));
    ::close(tcp);
    server.close();
    server.wait_closed();
  });
}

TEST_F(StreamOptionsTls, TlsOverATcpSocketConnectedByHand) {
  asyncio::run([] {
    asyncio::Server server = asyncio::start_server(io_test::echo_line, "127.0.0.1", 0, {.ssl = server_context()});
    const int fd = connected_to(server.port());
    // No host to check the certificate against: asyncio's error, before fd is taken.
    const std::string what =
        io_test::value_error_text([fd] { asyncio::open_connection(asyncio::connected_socket{fd}, client_context()); });
    EXPECT_EQ(what.rfind("You must set server_hostname when using ssl without a host", 0), 0u) << what;
    EXPECT_TRUE(is_open(fd));
    EXPECT_FALSE(is_nonblocking(fd));
    auto [r, w] =
        asyncio::open_connection(asyncio::connected_socket{fd}, client_context(), {.server_hostname = "localhost"});
    ASSERT_TRUE(w.tls().has_value());
    EXPECT_EQ(w.tls()->server_hostname, "localhost");
    w.write("secret\n");
    EXPECT_EQ(r.readline(), "secret\n");
    w.close();
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
}

TEST_F(StreamOptionsTls, TlsOverAUnixSocketConnectedByHand) {
  const std::string path = unix_path("tls");
  asyncio::run([&path] {
    asyncio::Server server = asyncio::start_unix_server(io_test::echo_line, path, {.ssl = server_context()});
    auto [r, w] = asyncio::open_unix_connection(asyncio::connected_socket{unix_connected_to(path)}, client_context(),
                                                {.server_hostname = "localhost"});
    w.write("unix secret\n");
    EXPECT_EQ(r.readline(), "unix secret\n");
    w.close();
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
  ::unlink(path.c_str());
}

TEST_F(StreamOptionsTls, AFailedHandshakeClosesTheTakenSocket) {
  asyncio::run([] {
    asyncio::Server server = asyncio::start_server(io_test::echo_line, "127.0.0.1", 0, {.ssl = server_context()});
    const int fd = connected_to(server.port());
    EXPECT_THROW(asyncio::open_connection(asyncio::connected_socket{fd}, client_context(),
                                          {.server_hostname = "not-the-name.example"}),
                 asyncio::SSLCertVerificationError);
    EXPECT_FALSE(is_open(fd));
    server.close();
    server.wait_closed();
  });
}

// ---- open_connection(local_addr=): local_addr ----

// free_port() is a TCP port of 127.0.0.1 nobody is bound to (it was a moment ago).
int free_port() {
  const int fd = bound_tcp_socket();
  const int port = port_of(fd);
  ::close(fd);
  return port;
}

// tell_peer answers with the connection's peer address as the server sees it, "host:port".
void tell_peer(asyncio::StreamReader, asyncio::StreamWriter w) {
  const asyncio::address peer = w.get_extra_info("peername");
  w.write(peer.host + ":" + std::to_string(peer.port));
  w.close();
}

TEST_F(StreamOptions, ConnectsFromTheChosenLocalAddress) {
  asyncio::run([] {
    asyncio::Server server = asyncio::start_server(tell_peer, "127.0.0.1", 0);
    const int chosen = free_port();
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), asyncio::local_addr{"127.0.0.1", chosen});
    EXPECT_EQ(w.get_extra_info("sockname"), (asyncio::address{"127.0.0.1", chosen}));
    EXPECT_EQ(r.read(), "127.0.0.1:" + std::to_string(chosen));
    w.close();
    w.wait_closed();

    // Port 0: any free one; the stream config still comes last.
    auto [r0, w0] = asyncio::open_connection("127.0.0.1", server.port(), {"127.0.0.1", 0}, {.limit = 8});
    const asyncio::address own = w0.get_extra_info("sockname");
    EXPECT_EQ(own.host, "127.0.0.1");
    EXPECT_NE(own.port, 0);
    EXPECT_EQ(r0.read(), "127.0.0.1:" + std::to_string(own.port));
    w0.close();
    w0.wait_closed();
    server.close();
    server.wait_closed();
  });
}

TEST_F(StreamOptions, ExistingCallsStillMeanAStreamConfig) {
  asyncio::run([] {
    asyncio::Server server = asyncio::start_server(tell_peer, "127.0.0.1", 0);
    for (int i = 0; i < 2; ++i) {
      auto [r, w] = i == 0 ? asyncio::open_connection("127.0.0.1", server.port(), {})
                           : asyncio::open_connection("127.0.0.1", server.port(), {.limit = 8});
      EXPECT_EQ(r.read().rfind("127.0.0.1:", 0), 0u);
      w.close();
      w.wait_closed();
    }
    server.close();
    server.wait_closed();
  });
}

TEST_F(StreamOptions, ALocalAddressOfAnotherFamilyIsSkipped) {
  asyncio::run([] {
    asyncio::Server server = asyncio::start_server(tell_peer, "127.0.0.1", 0);
    const std::string target = "127.0.0.1:" + std::to_string(server.port());
    try {
      asyncio::open_connection("127.0.0.1", server.port(), asyncio::local_addr{"::1", 0});
      ADD_FAILURE() << "connected from an IPv6 address to an IPv4 one";
    } catch (const asyncio::OSError& e) {
      EXPECT_EQ(e.errno_(), EAFNOSUPPORT);
      EXPECT_TRUE(contains(e.what(), "no matching local address with family=AF_INET found to connect to " + target +
                                         ": local_addr has no address of that family"))
          << e.what();
    }
    server.close();
    server.wait_closed();
  });
}

TEST_F(StreamOptions, ALocalAddressInUseIsNamed) {
  asyncio::run([] {
    asyncio::Server server = asyncio::start_server(tell_peer, "127.0.0.1", 0);
    const std::string local = "127.0.0.1:" + std::to_string(server.port());
    try {
      asyncio::open_connection("127.0.0.1", server.port(), asyncio::local_addr{"127.0.0.1", server.port()});
      ADD_FAILURE() << "bound to the server's own address";
    } catch (const asyncio::OSError& e) {
      EXPECT_EQ(e.errno_(), EADDRINUSE);
      EXPECT_TRUE(contains(e.what(), "error while attempting to bind on address " + local + " (local_addr)"))
          << e.what();
    }
    EXPECT_THROW(asyncio::open_connection("127.0.0.1", server.port(), asyncio::local_addr{"127.0.0.1", 70000}),
                 std::out_of_range);
    server.close();
    server.wait_closed();
  });
}

TEST_F(StreamOptionsTls, TlsFromTheChosenLocalAddress) {
  asyncio::run([] {
    asyncio::Server server = asyncio::start_server(tell_peer, "127.0.0.1", 0, {.ssl = server_context()});
    const int chosen = free_port();
    // server_hostname defaults to the host, 127.0.0.1, which the test certificate names.
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), asyncio::local_addr{"127.0.0.1", chosen},
                                           client_context());
    ASSERT_TRUE(w.tls().has_value());
    EXPECT_EQ(w.tls()->server_hostname, "127.0.0.1");
    EXPECT_EQ(r.read(), "127.0.0.1:" + std::to_string(chosen));
    w.close();
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
}

}  // namespace stream_options_test
