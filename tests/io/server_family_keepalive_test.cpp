// server_family_keepalive_test.cpp: server_config's family= and keep_alive=, asyncio's create_server
// arguments of the same names (keep_alive since 3.13). family picks which of the host's addresses
// are bound; keep_alive sets SO_KEEPALIVE on the listening sockets, which the accepted connections
// inherit. Both are TCP options: a Unix-domain server or a listening_socket refuses them.
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

#include "echo_line.hpp"
#include "ipv6_loopback.hpp"
#include "value_error_text.hpp"

namespace server_family_keepalive_test {

namespace asyncio = greenlet::asyncio;
using ServerFamilyKeepAlive = greenlet_test::GreenletTest;

int family_of(int fd) {
  sockaddr_storage s{};
  socklen_t len = sizeof s;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&s), &len);
  return s.ss_family;
}

int keepalive_of(int fd) {
  int on = -1;
  socklen_t len = sizeof on;
  if (::getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, &len) < 0) return -1;
  return on;
}

std::vector<int> families_of(const asyncio::Server& server) {
  std::vector<int> out;
  for (int fd : server.sockets()) out.push_back(family_of(fd));
  return out;
}

// "" is every interface: family=AF_INET binds 0.0.0.0 alone, AF_INET6 :: alone, AF_UNSPEC both.
TEST_F(ServerFamilyKeepAlive, FamilyChoosesWhichAddressesOfTheHostAreBound) {
  const bool ipv6 = io_test::ipv6_loopback_available();
  asyncio::run([&] {
    auto v4 = asyncio::start_server(io_test::echo_line, "", 0, {.family = AF_INET});
    EXPECT_EQ(families_of(v4), std::vector<int>{AF_INET});
    auto [r, w] = asyncio::open_connection("127.0.0.1", v4.port());
    w.write("four\n");
    EXPECT_EQ(r.readline(), "four\n");
    w.close();
    v4.close();
    v4.wait_closed();

    if (ipv6) {
      auto v6 = asyncio::create_server<asyncio::Protocol>("", 0, {.family = AF_INET6});
      EXPECT_EQ(families_of(v6), std::vector<int>{AF_INET6});
      v6.close();
      v6.wait_closed();
      auto both = asyncio::start_server(io_test::echo_line, "", 0);
      EXPECT_EQ(both.sockets().size(), 2u);
      both.close();
      both.wait_closed();
    }
  });
}

// A host without an address of the family is gaierror EAI_FAMILY, as getaddrinfo's; a family that
// is not an IP one is ValueError naming the choices.
TEST_F(ServerFamilyKeepAlive, AFamilyTheHostLacksOrNoIpFamilyIsRefused) {
  asyncio::run([] {
    try {
      asyncio::start_server(io_test::echo_line, "127.0.0.1", 0, {.family = AF_INET6});
      ADD_FAILURE() << "an IPv4 host was bound for AF_INET6";
    } catch (const asyncio::gaierror& e) {
      EXPECT_EQ(e.eai(), EAI_FAMILY);
      EXPECT_NE(std::string(e.what()).find("127.0.0.1"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("AF_INET6"), std::string::npos) << e.what();
    }
    const std::string unix_family = io_test::value_error_text(
        [] { asyncio::start_server(io_test::echo_line, "127.0.0.1", 0, {.family = AF_UNIX}); });
    EXPECT_NE(unix_family.find("start_server(): server_config.family must be AF_INET, AF_INET6 or AF_UNSPEC"),
              std::string::npos)
        << unix_family;
    EXPECT_NE(unix_family.find("start_unix_server()"), std::string::npos) << unix_family;
    const std::string other =
        io_test::value_error_text([] { asyncio::create_server<asyncio::Protocol>("127.0.0.1", 0, {.family = 12345}); });
    EXPECT_NE(other.find("create_server(): server_config.family must be"), std::string::npos) << other;
  });
}

// keep_alive=true: the listening sockets and every connection they accept have SO_KEEPALIVE;
// unset, neither has (the system's default).
TEST_F(ServerFamilyKeepAlive, KeepAliveReachesTheAcceptedConnections) {
  asyncio::run([] {
    for (const bool on : {true, false}) {
      std::vector<int> accepted;
      asyncio::server_config config;
      if (on) config.keep_alive = true;
      auto server = asyncio::start_server(
          [&](asyncio::StreamReader r, asyncio::StreamWriter w) {
            accepted.push_back(keepalive_of(w.fileno()));
            w.write(r.readline());
            w.close();
          },
          "127.0.0.1", 0, config);
      for (int fd : server.sockets()) EXPECT_EQ(keepalive_of(fd) != 0, on) << "listening socket, keep_alive " << on;
      auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
      w.write("ping\n");
      EXPECT_EQ(r.readline(), "ping\n");
      w.close();
      server.close();
      server.wait_closed();
      ASSERT_EQ(accepted.size(), 1u);
      EXPECT_EQ(accepted.front() != 0, on) << "accepted connection, keep_alive " << on;
    }
    auto protocols = asyncio::create_server<asyncio::Protocol>("127.0.0.1", 0, {.keep_alive = true});
    for (int fd : protocols.sockets()) EXPECT_NE(keepalive_of(fd), 0);
    protocols.close();
    protocols.wait_closed();
  });
}

// keep_alive and family are TCP options: a Unix-domain server refuses them, and so does a server
// given its listening socket (whose family is its own, and whose options are the caller's to set).
TEST_F(ServerFamilyKeepAlive, UnixServersAndGivenSocketsRefuseThem) {
  const std::string path = "/tmp/greenlet-keepalive-" + std::to_string(::getpid()) + ".sock";
  asyncio::run([&] {
    const std::string unix_keepalive =
        io_test::value_error_text([&] { asyncio::start_unix_server(io_test::echo_line, path, {.keep_alive = true}); });
    EXPECT_NE(unix_keepalive.find("start_unix_server(): server_config.reuse_address and reuse_port are TCP options"),
              std::string::npos)
        << unix_keepalive;
    EXPECT_NE(unix_keepalive.find("keep_alive (SO_KEEPALIVE)"), std::string::npos) << unix_keepalive;
    const std::string unix_family =
        io_test::value_error_text([&] { asyncio::create_unix_server<asyncio::Protocol>(path, {.family = AF_INET}); });
    EXPECT_NE(unix_family.find("family (AF_INET, AF_INET6)"), std::string::npos) << unix_family;

    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    const std::string given = io_test::value_error_text(
        [&] { asyncio::start_server(io_test::echo_line, asyncio::listening_socket{fd}, {.keep_alive = true}); });
    EXPECT_NE(given.find("with a listening_socket, leave server_config.reuse_address and reuse_port unset (and "
                         "keep_alive and family)"),
              std::string::npos)
        << given;
    EXPECT_EQ(keepalive_of(fd), 0);  // a refusal leaves the caller's socket as it was
    ::close(fd);
  });
  ::unlink(path.c_str());
}

}  // namespace server_family_keepalive_test
