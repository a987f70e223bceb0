// ipv6_scope_test.cpp: an IPv6 address keeps its scope id (and flow label),
// Python's (host, port, flowinfo, scope_id). A link-local address (fe80::/10)
// means something only on one interface: the kernel needs its scope id to
// reach such a peer on another host, and to bind to such an address (EINVAL
// without), so an address a socket received must carry it for a reply to get
// out, as a UDP server answering a link-local peer does. The link-local cases
// need an interface with such an address (a host's Ethernet interface has
// one; a bare container may not) and send only to the host's own address,
// which stays inside the host (and which the kernel reaches even without a
// scope: the tests check that the scope arrives, and that a wrong one fails).
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cstdint>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "io/cpython_test_utils.hpp"
#include "io/ipv6_loopback.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
// Not GreenletTest: the link-local case skips on hosts without such an address.
using Ipv6Scope = ::testing::Test;

struct link_local {
  std::string host;  // "fe80::..." without a zone
  std::string interface_name;
  std::uint32_t index = 0;
};

// find_link_local() is one of this host's link-local IPv6 addresses, if any.
std::optional<link_local> find_link_local() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  std::optional<link_local> found;
  for (ifaddrs* i = list; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET6) continue;
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
    if (!IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) continue;
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    found = link_local{text, i->ifa_name, ::if_nametoindex(i->ifa_name)};
  }
  ::freeifaddrs(list);
  return found;
}

// A non-blocking UDP socket bound to host (scope `scope`) on a free port; -1 if it cannot be.
int bound_udp6(const std::string& host, std::uint32_t scope) {
  const int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_scope_id = scope;
  if (::inet_pton(AF_INET6, host.c_str(), &a.sin6_addr) != 1 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

using cpython_test_utils::sockname;

TEST_F(Ipv6Scope, ALinkLocalPeersAddressKeepsItsScopeBothWays) {
  const std::optional<link_local> ll = find_link_local();
  if (!ll) GTEST_SKIP() << "this host has no IPv6 link-local address";
  const int server = bound_udp6("::", 0);  // a server on every address, as most are
  const int client = bound_udp6(ll->host, ll->index);
  if (server < 0 || client < 0) GTEST_SKIP() << "cannot bind to " << ll->host << "%" << ll->interface_name;
  const asyncio::address server_address{ll->host, sockname(server).port, 0, ll->index};
  asyncio::run([&] {
    asyncio::sock_sendto(client, "ping", server_address);
    auto [data, from] = asyncio::sock_recvfrom(server, 64);
    EXPECT_EQ(data, "ping");
    EXPECT_EQ(from, (asyncio::address{ll->host, sockname(client).port, 0, ll->index}));
    asyncio::sock_sendto(server, "pong", from);  // the reply, to the address as received
    auto [reply, replier] = asyncio::sock_recvfrom(client, 64);
    EXPECT_EQ(reply, "pong");
    EXPECT_EQ(replier, server_address);

    // The scope id reaches the kernel: an interface this host lacks has no route (ENETUNREACH).
    EXPECT_THROW(asyncio::sock_sendto(server, "lost", asyncio::address{ll->host, sockname(client).port, 0, 999999}),
                 asyncio::OSError);
    // The zone written in the host, by interface name and by index, as getaddrinfo() reads it.
    asyncio::sock_sendto(server, "by name",
                         asyncio::address{ll->host + "%" + ll->interface_name, sockname(client).port});
    EXPECT_EQ(asyncio::sock_recvfrom(client, 64).first, "by name");
    asyncio::sock_sendto(server, "by index",
                         asyncio::address{ll->host + "%" + std::to_string(ll->index), sockname(client).port});
    EXPECT_EQ(asyncio::sock_recvfrom(client, 64).first, "by index");
    EXPECT_THROW(asyncio::sock_sendto(server, "lost", asyncio::address{ll->host + "%999999", sockname(client).port}),
                 asyncio::OSError);
  });
  ::close(server);
  ::close(client);
}

// A datagram endpoint bound to a link-local address by its scope id answers
// a peer through the address datagram_received() got, as asyncio's UDP echo
// server does.
struct scoped_echo : asyncio::DatagramProtocol {
  asyncio::DatagramTransport transport;
  asyncio::address last_sender;
  void connection_made(asyncio::DatagramTransport& t) override { transport = t; }
  void datagram_received(std::string data, asyncio::address from) override {
    last_sender = from;
    transport.sendto("echo " + data, from);
  }
};

TEST_F(Ipv6Scope, ADatagramEndpointEchoesToALinkLocalPeer) {
  const std::optional<link_local> ll = find_link_local();
  if (!ll) GTEST_SKIP() << "this host has no IPv6 link-local address";
  const int client = bound_udp6(ll->host, ll->index);
  if (client < 0) GTEST_SKIP() << "cannot bind to " << ll->host << "%" << ll->interface_name;
  asyncio::run([&] {
    auto [transport, protocol] =
        asyncio::create_datagram_endpoint<scoped_echo>({.local_addr = asyncio::address{ll->host, 0, 0, ll->index}});
    const asyncio::address server = transport.get_extra_info("sockname");
    EXPECT_EQ(server.scope_id, ll->index);
    asyncio::sock_sendto(client, "hi", server);
    EXPECT_EQ(asyncio::sock_recvfrom(client, 64).first, "echo hi");
    EXPECT_EQ(protocol->last_sender, (asyncio::address{ll->host, sockname(client).port, 0, ll->index}));
    transport.close();
  });
  ::close(client);
}

// On a global or loopback address the scope id and flow label are zero, and
// an address compares all four fields.
TEST_F(Ipv6Scope, LoopbackAddressesCarryZerosAndTheScopeCountsInEquality) {
  EXPECT_NE((asyncio::address{"fe80::1", 53, 0, 2}), (asyncio::address{"fe80::1", 53}));
  EXPECT_NE((asyncio::address{"::1", 53, 7, 0}), (asyncio::address{"::1", 53}));
  EXPECT_EQ((asyncio::address{"::1", 53, 0, 0}), (asyncio::address{"::1", 53}));
  if (!io_test::ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback";
  const int server = bound_udp6("::1", 0);
  const int client = bound_udp6("::1", 0);
  ASSERT_GE(server, 0);
  ASSERT_GE(client, 0);
  asyncio::run([&] {
    asyncio::sock_sendto(client, "hello", asyncio::address{"::1", sockname(server).port});
    auto [data, from] = asyncio::sock_recvfrom(server, 64);
    EXPECT_EQ(data, "hello");
    EXPECT_EQ(from, (asyncio::address{"::1", sockname(client).port, 0, 0}));
  });
  ::close(server);
  ::close(client);
}

}  // namespace
