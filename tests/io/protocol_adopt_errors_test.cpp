// protocol_adopt_errors_test.cpp: create_connection(factory, connected_socket{fd}),
// connect_accepted_socket(), connect_read_pipe() and connect_write_pipe() take
// the descriptor only once they return: when the call throws (the factory
// throws or returns null), fd is still open and the caller's, as a ValueError
// for a wrong kind of fd leaves it (and as asyncio, which closes nothing the
// caller gave when protocol_factory() raises). Closing it was a double close
// for a caller that then closes it too.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace protocol_adopt_errors_test {

namespace asyncio = greenlet::asyncio;
using ProtocolAdoptErrors = greenlet_test::GreenletTest;

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

auto throwing_factory() {
  return []() -> std::shared_ptr<asyncio::Protocol> { throw std::runtime_error("no protocol today"); };
}
auto null_factory() {
  return [] { return std::shared_ptr<asyncio::Protocol>(); };
}

TEST_F(ProtocolAdoptErrors, AFailingFactoryLeavesTheCallersSocketOpen) {
  asyncio::run([] {
    int sv[2];
    ASSERT_EQ(0, ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    EXPECT_THROW(asyncio::create_connection(throwing_factory(), asyncio::connected_socket{sv[0]}), std::runtime_error);
    EXPECT_TRUE(is_open(sv[0]));
    EXPECT_THROW(asyncio::create_connection(null_factory(), asyncio::connected_socket{sv[0]}), asyncio::ValueError);
    EXPECT_TRUE(is_open(sv[0]));
    EXPECT_THROW(asyncio::connect_accepted_socket(throwing_factory(), sv[0]), std::runtime_error);
    EXPECT_TRUE(is_open(sv[0]));
    EXPECT_THROW(asyncio::connect_accepted_socket(null_factory(), sv[0]), asyncio::ValueError);
    EXPECT_TRUE(is_open(sv[0]));
    // Still the caller's, and still works: a transport can take it now.
    auto proto = std::make_shared<asyncio::Protocol>();
    asyncio::Transport t = asyncio::connect_accepted_socket([&] { return proto; }, sv[0]).first;
    t.write("ok");
    char buf[2];
    ASSERT_EQ(2, ::recv(sv[1], buf, 2, 0));
    t.close();
    asyncio::sleep(0);
    ::close(sv[1]);
  });
}

TEST_F(ProtocolAdoptErrors, AFailingFactoryLeavesTheCallersPipeOpen) {
  asyncio::run([] {
    int fds[2];
    ASSERT_EQ(0, ::pipe2(fds, O_CLOEXEC));
    EXPECT_THROW(asyncio::connect_read_pipe(throwing_factory(), fds[0]), std::runtime_error);
    EXPECT_TRUE(is_open(fds[0]));
    EXPECT_THROW(asyncio::connect_write_pipe(null_factory(), fds[1]), asyncio::ValueError);
    EXPECT_TRUE(is_open(fds[1]));
    ::close(fds[0]);
    ::close(fds[1]);
  });
}

}  // namespace protocol_adopt_errors_test
