// connect_errors_test.cpp: a failed connect names the address it tried, as
// Python's "[Errno 111] Connect call failed ('127.0.0.1', 1)": with several
// connections (or several addresses of a host) the bare "connect: Connection
// refused" did not say which one failed.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using ConnectErrors = greenlet_test::GreenletTest;

// A loopback port nobody listens on: bound, noted, closed.
int closed_port() {
  const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(probe);
  return ntohs(addr.sin_port);
}

TEST_F(ConnectErrors, OpenConnectionNamesTheAddressRefused) {
  const int port = closed_port();
  std::string what;
  asyncio::run([&] {
    try {
      asyncio::open_connection("127.0.0.1", port);
      ADD_FAILURE() << "connected to a closed port";
    } catch (const asyncio::ConnectionRefusedError& e) {
      what = e.what();
    }
  });
  EXPECT_EQ(what, "connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST_F(ConnectErrors, SockConnectNamesTheAddressRefused) {
  const int port = closed_port();
  std::string by_name;
  std::string by_address;
  asyncio::run([&] {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    try {
      asyncio::sock_connect(fd, "127.0.0.1", port);
    } catch (const asyncio::ConnectionRefusedError& e) {
      by_name = e.what();
    }
    ::close(fd);
    const int fd2 = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    try {
      asyncio::sock_connect(fd2, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    } catch (const asyncio::ConnectionRefusedError& e) {
      by_address = e.what();
    }
    ::close(fd2);
  });
  const std::string expected = "connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused";
  EXPECT_EQ(by_name, expected);
  EXPECT_EQ(by_address, expected);
}

// A Unix socket's error names its path (it fails at once, not after a wait).
TEST_F(ConnectErrors, OpenUnixConnectionNamesThePath) {
  const std::string path = "/tmp/greenlet-connect-errors-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  std::string what;
  int code = 0;
  asyncio::run([&] {
    try {
      asyncio::open_unix_connection(path);
      ADD_FAILURE() << "connected to a missing socket";
    } catch (const asyncio::OSError& e) {
      what = e.what();
      code = e.code().value();
    }
  });
  EXPECT_EQ(code, ENOENT);
  EXPECT_EQ(what, "connect to " + path + ": No such file or directory");
}

}  // namespace
