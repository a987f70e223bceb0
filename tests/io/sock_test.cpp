// sock_test.cpp: the reactor (add_reader/add_writer) and the low-level
// sock_* calls, after CPython's Lib/test/test_asyncio/test_sock_lowlevel.py
// and test_events.py's reader/writer cases. 127.0.0.1 only.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <memory>
#include <string>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using SockTests = greenlet_test::GreenletTest;

// The first loop of the process makes one-time allocations (statics) that
// the fixture would count as the first test's leak: make them up front.
class warm_up_sockets : public ::testing::Environment {
 public:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    asyncio::run([&] {
      ASSERT_EQ(::write(fds[1], "x", 1), 1);
      asyncio::sock_recv(fds[0], 1);
    });
    ::close(fds[0]);
    ::close(fds[1]);
  }
};
[[maybe_unused]] ::testing::Environment* const warm_up_sockets_env =
    ::testing::AddGlobalTestEnvironment(new warm_up_sockets);

struct fd_pair {
  int a = -1, b = -1;
  fd_pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    a = fds[0];
    b = fds[1];
  }
  ~fd_pair() {
    ::close(a);
    ::close(b);
  }
};

// A listening socket on 127.0.0.1 with an ephemeral port.
struct listener {
  int fd = -1;
  sockaddr_in addr{};
  listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd, 128), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  }
  ~listener() { ::close(fd); }
};

// test_events.py test_add_reader / test_remove_reader.
TEST_F(SockTests, AddReaderRunsUntilRemoved) {
  fd_pair p;
  std::vector<std::string> got;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    loop.add_reader(p.a, [&] {
      char buf[16];
      ssize_t n = ::read(p.a, buf, sizeof buf);
      got.emplace_back(buf, static_cast<std::size_t>(n > 0 ? n : 0));
      if (got.size() == 2) {
        EXPECT_TRUE(asyncio::get_running_loop().remove_reader(p.a));
      }
    });
    ASSERT_EQ(::write(p.b, "abc", 3), 3);
    asyncio::sleep(0.01);
    ASSERT_EQ(::write(p.b, "def", 3), 3);
    asyncio::sleep(0.01);
    ASSERT_EQ(::write(p.b, "ghi", 3), 3);
    asyncio::sleep(0.01);
    EXPECT_FALSE(loop.remove_reader(p.a));
  });
  EXPECT_EQ(got, (std::vector<std::string>{"abc", "def"}));
}

// A reader that leaves the bytes unread is called again on each turn (level-triggered, as
// asyncio's selector), once per turn however often the loop polls in between.
TEST_F(SockTests, AReaderThatLeavesBytesUnreadRunsOncePerTurn) {
  fd_pair p;
  int calls = 0;
  int turns = 0;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    ASSERT_EQ(::write(p.b, "x", 1), 1);
    loop.add_reader(p.a, [&] { ++calls; });
    for (; turns < 50; ++turns) asyncio::sleep(0);
    EXPECT_TRUE(loop.remove_reader(p.a));
  });
  EXPECT_GE(calls, 40);
  EXPECT_LE(calls, turns + 1);
}

// A number closed without remove_reader() and reused by a new file: a new add_reader() on it
// watches the new file (the kernel forgot the old one with its close).
TEST_F(SockTests, AddReaderOnANumberClosedAndReusedWatchesTheNewFile) {
  std::vector<std::string> got;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    auto first = std::make_unique<fd_pair>();
    loop.add_reader(first->a, [] {});
    const int number = first->a;
    asyncio::sleep(0);
    first.reset();  // closes both ends, the reader still registered
    fd_pair second;
    ASSERT_TRUE(second.a == number || second.b == number) << "the number was not reused";
    const int watched = number;
    const int peer = second.a == number ? second.b : second.a;
    loop.add_reader(watched, [&] {
      char buf[16];
      const ssize_t n = ::read(watched, buf, sizeof buf);
      got.emplace_back(buf, static_cast<std::size_t>(n > 0 ? n : 0));
      asyncio::get_running_loop().remove_reader(watched);
    });
    ASSERT_EQ(::write(peer, "new", 3), 3);
    for (int i = 0; i < 100 && got.empty(); ++i) asyncio::sleep(0.001);
  });
  EXPECT_EQ(got, (std::vector<std::string>{"new"}));
}

TEST_F(SockTests, AddWriterRunsWhileWritable) {
  fd_pair p;
  int calls = 0;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    loop.add_writer(p.a, [&] {
      if (++calls == 3) asyncio::get_running_loop().remove_writer(p.a);
    });
    asyncio::sleep(0.01);
  });
  EXPECT_EQ(calls, 3);
}

TEST_F(SockTests, ReaderAndWriterOnOneFd) {
  fd_pair p;
  std::vector<std::string> events;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    loop.add_writer(p.a, [&] {
      events.push_back("w");
      asyncio::get_running_loop().remove_writer(p.a);
    });
    loop.add_reader(p.a, [&] {
      char c;
      EXPECT_EQ(::read(p.a, &c, 1), 1);
      events.push_back("r");
      asyncio::get_running_loop().remove_reader(p.a);
    });
    asyncio::sleep(0.005);
    ASSERT_EQ(::write(p.b, "x", 1), 1);
    asyncio::sleep(0.005);
  });
  EXPECT_EQ(events, (std::vector<std::string>{"w", "r"}));
}

// test_sock_lowlevel.py test_sock_client_ops / _basetest_sock_recv_into.
TEST_F(SockTests, AcceptConnectSendallRecv) {
  listener l;
  std::string received;
  asyncio::run([&] {
    auto server = asyncio::create_task([&] {
      int c = asyncio::sock_accept(l.fd);
      std::string all;
      for (;;) {
        std::string chunk = asyncio::sock_recv(c, 1000);
        if (chunk.empty()) break;
        all += chunk;
      }
      asyncio::sock_sendall(c, "got " + std::to_string(all.size()));
      ::close(c);
      return all;
    });
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    asyncio::sock_connect(fd, reinterpret_cast<sockaddr*>(&l.addr), sizeof l.addr);
    std::string big(1 << 20, 'x');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    asyncio::sock_sendall(fd, big);
    ::shutdown(fd, SHUT_WR);
    char buf[64];
    std::size_t n = asyncio::sock_recv_into(fd, buf, sizeof buf);
    received.assign(buf, n);
    ::close(fd);
    EXPECT_EQ(asyncio::await(server), big);
  });
  EXPECT_EQ(received, "got 1048576");
}

TEST_F(SockTests, ConnectRefused) {
  asyncio::run([] {
    sockaddr_in addr;
    {
      listener l;  // a port nobody listens on once it closes
      addr = l.addr;
    }
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    EXPECT_THROW(asyncio::sock_connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr),
                 asyncio::ConnectionRefusedError);
    ::close(fd);
  });
}

// Cancelling a task blocked in sock_recv removes its registration: another
// task can then wait on the same fd, and nothing is lost.
TEST_F(SockTests, CancelledRecvUnregisters) {
  fd_pair p;
  asyncio::run([&] {
    auto t = asyncio::create_task([&] { return asyncio::sock_recv(p.a, 10); });
    asyncio::sleep(0);
    t.cancel();
    EXPECT_THROW(asyncio::await(t), asyncio::CancelledError);
    auto t2 = asyncio::create_task([&] { return asyncio::sock_recv(p.a, 10); });
    asyncio::sleep(0);
    ASSERT_EQ(::write(p.b, "hello", 5), 5);
    EXPECT_EQ(asyncio::await(t2), "hello");
  });
}

TEST_F(SockTests, WaitForTimesOutARecv) {
  fd_pair p;
  asyncio::run([&] {
    EXPECT_THROW(asyncio::wait_for([&] { return asyncio::sock_recv(p.a, 10); }, 0.01), asyncio::TimeoutError);
    ASSERT_EQ(::write(p.b, "late", 4), 4);
    EXPECT_EQ(asyncio::sock_recv(p.a, 10), "late");
  });
}

TEST_F(SockTests, SecondWaiterOnOneFdIsAnError) {
  fd_pair p;
  asyncio::run([&] {
    auto t = asyncio::create_task([&] { return asyncio::sock_recv(p.a, 10); });
    asyncio::sleep(0);
    EXPECT_THROW(asyncio::sock_recv(p.a, 10), asyncio::RuntimeError);
    ASSERT_EQ(::write(p.b, "x", 1), 1);
    EXPECT_EQ(asyncio::await(t), "x");
  });
}

// A task waits on fd N; another closes N and a new socket takes the number.
// The kernel forgot the old registration, so the first waiter would wait for
// ever and the new socket's reader was refused ("fd N already has a reader").
// Now the new reader waits normally and the stale one fails with EBADF,
// without touching the new socket's data.
TEST_F(SockTests, WaiterOnAClosedAndReusedFdFailsAndTheNewSocketWorks) {
  fd_pair old_pair, new_pair;
  const int reused = old_pair.a;
  asyncio::run([&] {
    auto stale = asyncio::create_task([&] { return asyncio::sock_recv(reused, 10); });
    asyncio::sleep(0);
    // The number now names new_pair's socket (dup2 closes the old file first).
    ASSERT_EQ(::dup2(new_pair.a, reused), reused);
    auto fresh = asyncio::create_task([&] { return asyncio::sock_recv(reused, 10); });
    asyncio::sleep(0);
    ASSERT_EQ(::write(new_pair.b, "new", 3), 3);
    EXPECT_EQ(asyncio::await(fresh), "new");
    try {
      asyncio::await(stale);
      ADD_FAILURE() << "the waiter on the closed file returned";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
      EXPECT_NE(std::string(e.what()).find("was closed while this task waited to read it"), std::string::npos)
          << e.what();
    }
  });
}

// A task blocked on I/O is not a deadlock: the loop waits for the fd.
TEST_F(SockTests, BlockedOnIoIsNotDeadlock) {
  fd_pair p;
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_EQ(::write(p.b, "x", 1), 1);
  });
  std::string got = asyncio::run([&] { return asyncio::sock_recv(p.a, 1); });
  writer.join();
  EXPECT_EQ(got, "x");
}

TEST_F(SockTests, RegularFileIsRefused) {
  asyncio::run([] {
    int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    EXPECT_THROW(asyncio::get_running_loop().add_reader(fd, [] {}), std::system_error);
    ::close(fd);
  });
}

}  // namespace
