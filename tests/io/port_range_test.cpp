// port_range_test.cpp: a port outside 0-65535 and a host holding a NUL are
// refused before any lookup. getaddrinfo takes the port as text and wraps
// it modulo 65536 (start_server(..., 70000) listened on 4464, and
// open_connection to 70000 connected there) and stops the host at the NUL.
// CPython's asyncio raises OverflowError('bind(): port must be 0-65535.')
// (connect() for a client) and ValueError('embedded null character'); here
// std::out_of_range and asyncio::ValueError.
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using PortRange = greenlet_test::GreenletTest;

void ignore(asyncio::StreamReader, asyncio::StreamWriter w) { w.close(); }

// out_of_range_message(call) is what() of the std::out_of_range call()
// throws, or "" if it throws nothing or something else.
template <class F>
std::string out_of_range_message(F call) {
  try {
    call();
  } catch (const std::out_of_range& e) {
    return e.what();
  } catch (...) {
  }
  return "";
}

TEST_F(PortRange, StartServerRefusesPortsOutside16Bits) {
  asyncio::run([] {
    for (int port : {70000, 65536, -1}) {
      const std::string what = out_of_range_message([&] { asyncio::start_server(ignore, "127.0.0.1", port); });
      EXPECT_EQ(what, "bind(): port " + std::to_string(port) + " must be 0-65535");
    }
    // A name is refused the same, before its lookup.
    EXPECT_NE(out_of_range_message([] { asyncio::start_server(ignore, "localhost", 70000); }), "");
    auto edge = asyncio::start_server(ignore, "127.0.0.1", 0);  // 0 still means any port
    EXPECT_GT(edge.port(), 0);
    edge.close();
    edge.wait_closed();
  });
}

TEST_F(PortRange, OpenConnectionRefusesPortsOutside16Bits) {
  asyncio::run([] {
    auto server = asyncio::start_server(ignore, "127.0.0.1", 0);
    // Wrapped, this reached the server above.
    const int wrapped = 65536 + server.port();
    EXPECT_EQ(out_of_range_message([&] { asyncio::open_connection("127.0.0.1", wrapped); }),
              "connect(): port " + std::to_string(wrapped) + " must be 0-65535");
    EXPECT_NE(out_of_range_message([] { asyncio::open_connection("127.0.0.1", -1); }), "");
    EXPECT_NE(out_of_range_message([] { asyncio::open_connection("localhost", 70000); }), "");
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());  // in range: connects
    w.close();
    server.close();
    server.wait_closed();
  });
}

TEST_F(PortRange, SockConnectRefusesPortsOutside16Bits) {
  asyncio::run([] {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(out_of_range_message([&] { asyncio::sock_connect(fd, "127.0.0.1", 70000); }),
              "connect(): port 70000 must be 0-65535");
    ::close(fd);
  });
}

TEST_F(PortRange, HostWithANulIsValueError) {
  asyncio::run([] {
    const std::string host("127.0.0.1\0x", 11);
    for (int server = 0; server < 2; ++server) {
      try {
        if (server != 0) {
          asyncio::start_server(ignore, host, 0);
        } else {
          asyncio::open_connection(host, 1);
        }
        ADD_FAILURE() << "no exception (the host was cut at its NUL)";
      } catch (const asyncio::ValueError& e) {
        EXPECT_STREQ(e.what(), "embedded null character");
      } catch (const std::exception& e) {
        ADD_FAILURE() << "not ValueError: " << e.what();
      }
    }
  });
}

}  // namespace
