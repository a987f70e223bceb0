// cpython_unix_server_cleanup_port_test.cpp: CPython 3.13's UnixServerCleanupTests
// (Lib/test/test_asyncio/test_server.py), the socket file a Unix-domain server removes as it
// closes (server_config::cleanup_socket), method by method; then the cases beyond them: a server
// let go of unclosed, a protocol server, an abstract socket, and the option refused for TCP.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "cpython_test_utils.hpp"
#include "support/greenlet_test.hpp"

namespace cpython_unix_server_cleanup_port {

namespace asyncio = greenlet::asyncio;
using UnixServerCleanupTests = greenlet_test::GreenletTest;
using cpython_test_utils::unix_socket_path;

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// A Unix-domain stream socket bound to path (Python's socket.socket(AF_UNIX).bind(addr)); -1 if
// it cannot be made.
int bound_unix_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

// serve(*args): pass
void serve(asyncio::StreamReader, asyncio::StreamWriter) {}

// test_unix_server_addr_cleanup: default scenario.
TEST_F(UnixServerCleanupTests, test_unix_server_addr_cleanup) {
  asyncio::run([] {
    unix_socket_path addr;
    asyncio::Server srv = asyncio::start_unix_server(serve, addr.path);
    EXPECT_TRUE(exists(addr.path));

    srv.close();
    EXPECT_FALSE(exists(addr.path));
  });
}

// test_unix_server_sock_cleanup: using an already bound socket.
TEST_F(UnixServerCleanupTests, test_unix_server_sock_cleanup) {
  asyncio::run([] {
    unix_socket_path addr;
    const int sock = bound_unix_socket(addr.path);
    ASSERT_GE(sock, 0);

    asyncio::Server srv = asyncio::start_unix_server(serve, asyncio::listening_socket{sock});

    srv.close();
    EXPECT_FALSE(exists(addr.path));
  });
}

// test_unix_server_cleanup_gone: someone else has already cleaned up the socket.
TEST_F(UnixServerCleanupTests, test_unix_server_cleanup_gone) {
  asyncio::run([] {
    unix_socket_path addr;
    const int sock = bound_unix_socket(addr.path);
    ASSERT_GE(sock, 0);

    asyncio::Server srv = asyncio::start_unix_server(serve, asyncio::listening_socket{sock});

    ::unlink(addr.path.c_str());

    srv.close();
    EXPECT_FALSE(exists(addr.path));
  });
}

// test_unix_server_cleanup_replaced: someone else has replaced the socket with their own.
TEST_F(UnixServerCleanupTests, test_unix_server_cleanup_replaced) {
  asyncio::run([] {
    unix_socket_path addr;
    asyncio::Server srv = asyncio::start_unix_server(serve, addr.path);

    ::unlink(addr.path.c_str());
    const int sock = bound_unix_socket(addr.path);
    ASSERT_GE(sock, 0);

    srv.close();
    EXPECT_TRUE(exists(addr.path));
    ::close(sock);
  });
}

// test_unix_server_cleanup_prevented: cleanup_socket=False.
TEST_F(UnixServerCleanupTests, test_unix_server_cleanup_prevented) {
  asyncio::run([] {
    unix_socket_path addr;
    asyncio::Server srv = asyncio::start_unix_server(serve, addr.path, {.cleanup_socket = false});

    srv.close();
    EXPECT_TRUE(exists(addr.path));
  });
}

// Beyond CPython: a server nobody closed removes its file when the last reference goes; a
// regular file put in the socket's place stays; create_unix_server() (protocols) cleans up too.
TEST_F(UnixServerCleanupTests, AServerLetGoOfUnclosedRemovesItsFile) {
  unix_socket_path addr;
  asyncio::run([&] {
    asyncio::Server srv = asyncio::start_unix_server(serve, addr.path);
    EXPECT_TRUE(exists(addr.path));
  });
  EXPECT_FALSE(exists(addr.path));
}

TEST_F(UnixServerCleanupTests, AFileReplacingTheSocketStays) {
  asyncio::run([] {
    unix_socket_path addr;
    asyncio::Server srv = asyncio::start_unix_server(serve, addr.path);
    ::unlink(addr.path.c_str());
    std::ofstream(addr.path) << "replacement";

    srv.close();
    srv.wait_closed();
    std::ifstream in(addr.path);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "replacement");
  });
}

TEST_F(UnixServerCleanupTests, AProtocolServerRemovesItsFileToo) {
  asyncio::run([] {
    unix_socket_path addr;
    asyncio::Server srv = asyncio::create_unix_server<asyncio::Protocol>(addr.path);
    EXPECT_TRUE(exists(addr.path));
    srv.close();
    EXPECT_FALSE(exists(addr.path));

    asyncio::Server kept = asyncio::create_unix_server<asyncio::Protocol>(addr.path, {.cleanup_socket = false});
    kept.close();
    EXPECT_TRUE(exists(addr.path));
  });
}

// An abstract socket (a name starting with NUL, Linux) has no file: closing its server touches
// nothing.
TEST_F(UnixServerCleanupTests, AnAbstractSocketHasNoFileToRemove) {
  asyncio::run([] {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const char name[] = "\0greenlet-cleanup-abstract";
    std::memcpy(addr.sun_path, name, sizeof name - 1);
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + sizeof name - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len), 0);
    asyncio::Server srv = asyncio::start_unix_server(serve, asyncio::listening_socket{fd});
    srv.close();
    srv.wait_closed();
    EXPECT_FALSE(srv.is_serving());
  });
}

// cleanup_socket is a Unix-domain option: a TCP server refuses it, as its other options refuse
// what does not apply.
TEST_F(UnixServerCleanupTests, ATcpServerRefusesCleanupSocket) {
  asyncio::run([] {
    try {
      asyncio::start_server(serve, "127.0.0.1", 0, {.cleanup_socket = true});
      ADD_FAILURE() << "cleanup_socket accepted for a TCP server";
    } catch (const asyncio::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("cleanup_socket"), std::string::npos) << e.what();
    }
    // A TCP listening_socket refuses it before taking the socket, as the other TCP options: the
    // fd is still the caller's.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_THROW(asyncio::start_server(serve, asyncio::listening_socket{fd}, {.cleanup_socket = false}),
                 asyncio::ValueError);
    EXPECT_NE(::fcntl(fd, F_GETFD), -1) << "the refused socket was closed";
    ::close(fd);
  });
}

}  // namespace cpython_unix_server_cleanup_port
