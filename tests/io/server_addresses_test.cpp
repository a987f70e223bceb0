// server_addresses_test.cpp: start_server() binds every address its host
// resolves to, as asyncio's create_server does (test_base_events.py
// test_create_server_dual_stack, test_create_server_ipv6_v6only): "" is
// every interface, IPv4 and IPv6, on one port; Server::sockets() lists the
// listening sockets; a bind that fails names the address and leaves no
// socket open. Connections go to 127.0.0.1 and ::1 only.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

#include "echo_line.hpp"
#include "ipv6_loopback.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using ServerAddresses = greenlet_test::GreenletTest;

using io_test::echo_line;
using io_test::ipv6_loopback_available;

struct bound {
  int family;
  int port;
};

bound bound_of(int fd) {
  sockaddr_storage s{};
  socklen_t len = sizeof s;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&s), &len);
  if (s.ss_family == AF_INET6) return {AF_INET6, ntohs(reinterpret_cast<sockaddr_in6*>(&s)->sin6_port)};
  return {AF_INET, ntohs(reinterpret_cast<sockaddr_in*>(&s)->sin_port)};
}

std::string echo_through(const std::string& host, int port, const std::string& line) {
  auto [r, w] = asyncio::open_connection(host, port);
  w.write(line);
  std::string back = r.readline();
  w.close();
  return back;
}

int open_descriptors() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n;
}

TEST_F(ServerAddresses, EveryInterfaceIsBothFamiliesOnOnePort) {
  const bool v6 = ipv6_loopback_available();
  asyncio::run([v6] {
    auto server = asyncio::start_server(echo_line, "", 0);
    const std::vector<int> fds = server.sockets();
    ASSERT_FALSE(fds.empty());
    EXPECT_EQ(server.fileno(), fds.front());
    std::set<int> families;
    for (int fd : fds) {
      const bound b = bound_of(fd);
      families.insert(b.family);
      EXPECT_EQ(b.port, server.port()) << "every address shares the port picked for the first";
    }
    EXPECT_TRUE(families.count(AF_INET));
    EXPECT_EQ(echo_through("127.0.0.1", server.port(), "over IPv4\n"), "over IPv4\n");
    if (v6) {
      EXPECT_EQ(fds.size(), 2u);
      EXPECT_TRUE(families.count(AF_INET6));
      EXPECT_EQ(echo_through("::1", server.port(), "over IPv6\n"), "over IPv6\n");
    }
    server.close();
    EXPECT_FALSE(server.is_serving());
    EXPECT_TRUE(server.sockets().empty());
    server.wait_closed();
  });
}

// The IPv6 socket is IPv6-only, so it does not take the IPv4 port: an IPv4
// listener elsewhere on the same port keeps it, and a server on ::1 alone
// still binds.
TEST_F(ServerAddresses, AnIpv6SocketLeavesTheIpv4PortAlone) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  asyncio::run([] {
    auto v4 = asyncio::start_server(echo_line, "127.0.0.1", 0);
    auto v6 = asyncio::start_server(echo_line, "::1", v4.port());
    EXPECT_EQ(v6.port(), v4.port());
    EXPECT_EQ(echo_through("127.0.0.1", v4.port(), "four\n"), "four\n");
    EXPECT_EQ(echo_through("::1", v6.port(), "six\n"), "six\n");
    v4.close();
    v6.close();
    v4.wait_closed();
    v6.wait_closed();
  });
}

// A port held on one address: the error names that address, and the
// sockets already bound for the other addresses are closed again.
TEST_F(ServerAddresses, AFailedBindNamesTheAddressAndLeavesNothingOpen) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  // The kernel picks a port free on IPv6 only; its IPv4 side may be taken by
  // someone else (a connection of a test running beside this one took it on
  // a CI run). Then the IPv4 bind fails first, naming 0.0.0.0, and the test
  // tries another port.
  for (int attempt = 0; attempt < 20; ++attempt) {
    // Hold a port on the IPv6 wildcard only: 0.0.0.0 (bound first) succeeds,
    // :: fails.
    const int holder = ::socket(AF_INET6, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(holder, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(holder, 1), 0);
    const int port = bound_of(holder).port;

    bool ipv4_side_taken = false;
    asyncio::run([port, &ipv4_side_taken] {
      const int before = open_descriptors();
      try {
        asyncio::start_server(echo_line, "", port);
        ADD_FAILURE() << "start_server should have failed: port " << port << " is held on ::";
      } catch (const asyncio::OSError& e) {
        EXPECT_EQ(e.errno_(), EADDRINUSE);
        ipv4_side_taken = std::string(e.what()).find("0.0.0.0:" + std::to_string(port)) != std::string::npos;
        if (!ipv4_side_taken) {
          EXPECT_NE(std::string(e.what()).find("[::]:" + std::to_string(port)), std::string::npos) << e.what();
        }
      }
      EXPECT_EQ(open_descriptors(), before) << "the IPv4 socket bound first must be closed again";
      if (ipv4_side_taken) return;
      // The IPv4 side is free: nothing kept it.
      auto v4 = asyncio::start_server(echo_line, "0.0.0.0", port);
      EXPECT_EQ(v4.sockets().size(), 1u);
      v4.close();
      v4.wait_closed();
    });
    ::close(holder);
    if (!ipv4_side_taken) return;
  }
  FAIL() << "20 ports in a row had their IPv4 side taken";
}

// A host name that resolves to one address binds one socket, as before.
TEST_F(ServerAddresses, ANumericHostBindsOneSocket) {
  asyncio::run([] {
    auto server = asyncio::start_server(echo_line, "127.0.0.1", 0);
    ASSERT_EQ(server.sockets().size(), 1u);
    EXPECT_EQ(bound_of(server.sockets().front()).family, AF_INET);
    EXPECT_EQ(echo_through("127.0.0.1", server.port(), "one\n"), "one\n");
    server.close();
    server.wait_closed();
  });
}

}  // namespace
