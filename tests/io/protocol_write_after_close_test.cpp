// protocol_write_after_close_test.cpp: a socket transport that close() was
// called on and whose buffer is sent has ended: a write() between that and
// connection_lost() is dropped, as once the connection is lost, not sent on
// the socket about to close (asyncio calls connection_lost() in the same
// turn, so there is no such moment).
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace protocol_write_after_close_test {

namespace asyncio = greenlet::asyncio;
using ProtocolWriteAfterClose = greenlet_test::GreenletTest;

struct LateWriter : asyncio::Protocol {
  asyncio::Transport transport;
  int lost = 0;
  void connection_made(asyncio::Transport& t) override { transport = t; }
  // resume_writing() comes as the last buffered bytes go; the write it queues runs after the
  // drain, before connection_lost().
  void resume_writing() override {
    asyncio::get_running_loop().call_soon([t = transport]() mutable { t.write("late"); });
  }
  void connection_lost(std::exception_ptr) override {
    ++lost;
    transport = {};
  }
};

TEST_F(ProtocolWriteAfterClose, AWriteAfterCloseHasSentTheBufferIsDropped) {
  asyncio::run([] {
    int sv[2];
    ASSERT_EQ(0, ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    asyncio::set_nonblocking(sv[1]);
    auto proto = std::make_shared<LateWriter>();
    asyncio::Transport tr = asyncio::connect_accepted_socket([&] { return proto; }, sv[0]).first;
    tr.set_write_buffer_limits(1, 0);
    const std::string big(1 << 20, 'b');
    tr.write(big);  // more than the socket takes: buffered, the protocol paused
    ASSERT_GT(tr.get_write_buffer_size(), 0u);
    tr.close();
    std::string got;
    for (;;) {
      std::string more = asyncio::sock_recv(sv[1], 1 << 20);
      if (more.empty()) break;
      got += more;
    }
    EXPECT_EQ(big.size(), got.size());  // not "late" after them
    EXPECT_EQ(1, proto->lost);
    ::close(sv[1]);
  });
}

}  // namespace protocol_write_after_close_test
