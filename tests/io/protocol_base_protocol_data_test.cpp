// protocol_base_protocol_data_test.cpp: a socket or read pipe whose protocol is
// a BaseProtocol only (neither Protocol nor BufferedProtocol) has nowhere to
// put the bytes it reads. asyncio fails there (AttributeError: no
// data_received, a reported fatal error that closes the connection); the bytes
// were dropped silently here. Now it is a reported RuntimeError that says
// what to derive from, and connection_lost() gets it.
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace protocol_base_protocol_data_test {

namespace asyncio = greenlet::asyncio;
using ProtocolBaseProtocolData = greenlet_test::GreenletTest;

std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  }
}

struct WriteOnly : asyncio::BaseProtocol {
  asyncio::Transport transport;
  std::exception_ptr lost_with;
  bool lost = false;
  void connection_made(asyncio::Transport& t) override { transport = t; }
  void connection_lost(std::exception_ptr exc) override {
    lost = true;
    lost_with = exc;
    transport = {};
  }
};

TEST_F(ProtocolBaseProtocolData, BytesForABaseProtocolAreAReportedErrorNotDroppedSilently) {
  asyncio::run([] {
    std::vector<std::string> reports;
    asyncio::get_running_loop().set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context& c) {
      reports.push_back(c.message + " | " + message_of(c.exception));
    });
    int sv[2];
    ASSERT_EQ(0, ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    auto proto = std::make_shared<WriteOnly>();
    asyncio::Transport t = asyncio::connect_accepted_socket([&] { return proto; }, sv[0]).first;
    t.write("a write-only protocol may write");
    char buf[64];
    ASSERT_EQ(31, ::recv(sv[1], buf, sizeof buf, 0));
    ASSERT_EQ(5, ::send(sv[1], "bytes", 5, 0));
    for (int i = 0; i < 1000 && !proto->lost; ++i) asyncio::sleep(0.001);
    ASSERT_TRUE(proto->lost);
    ASSERT_NE(nullptr, proto->lost_with);
    EXPECT_EQ(
        "Transport: 5 bytes arrived for a protocol that is neither a Protocol nor a BufferedProtocol; derive from "
        "asyncio::Protocol (data_received) or asyncio::BufferedProtocol to receive data",
        message_of(proto->lost_with));
    ASSERT_EQ(1u, reports.size());
    EXPECT_EQ("Fatal error: protocol.data_received() call failed. | " + message_of(proto->lost_with), reports[0]);
    ::close(sv[1]);
  });
}

}  // namespace protocol_base_protocol_data_test
