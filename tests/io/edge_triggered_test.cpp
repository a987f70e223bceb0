// edge_triggered_test.cpp: the loop watches its own streams' sockets
// edge-triggered (src/asyncio/epoll_poller.cpp): a wait costs no epoll_ctl,
// and after a short read a stream waits for the next edge without the recv
// that would answer EAGAIN. These tests count those system calls, and check
// the cases where an edge could be lost: bytes or EOF that came while no
// one waited, a descriptor number reused after close.
#include <dlfcn.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace {

std::atomic<long> epoll_ctl_calls{0};
std::atomic<long> recv_eagain{0};
std::atomic<long> recv_calls{0};

}  // namespace

// Interposed for this test binary: the library's calls land here first.
extern "C" int epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) noexcept {
  using fn = int (*)(int, int, int, struct epoll_event*);
  static const fn real = reinterpret_cast<fn>(dlsym(RTLD_NEXT, "epoll_ctl"));
  epoll_ctl_calls.fetch_add(1, std::memory_order_relaxed);
  return real(epfd, op, fd, event);
}

extern "C" ssize_t recv(int fd, void* buf, size_t len, int flags) {
  using fn = ssize_t (*)(int, void*, size_t, int);
  static const fn real = reinterpret_cast<fn>(dlsym(RTLD_NEXT, "recv"));
  const ssize_t n = real(fd, buf, len, flags);
  recv_calls.fetch_add(1, std::memory_order_relaxed);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) recv_eagain.fetch_add(1, std::memory_order_relaxed);
  return n;
}

namespace {

namespace asyncio = greenlet::asyncio;
using EdgeTriggeredStreams = greenlet_test::GreenletTest;

void echo_lines(asyncio::StreamReader r, asyncio::StreamWriter w) {
  for (;;) {
    std::string line = r.readline();
    if (line.empty()) break;
    w.write(line);
  }
  w.close();
}

// A client and a server answering in turn, as an HTTP keep-alive exchange:
// once both streams are open, no round trip registers anything with the
// kernel, and no recv comes back EAGAIN (each side's reads are short, so
// each waits for the next edge directly).
TEST_F(EdgeTriggeredStreams, RequestResponseRoundsMakeNoEpollCtlAndNoEmptyRecv) {
  constexpr int rounds = 200;
  long ctl_during = -1, eagain_during = -1;
  int answered = 0;
  asyncio::run([&] {
    auto server = asyncio::start_server(echo_lines, "127.0.0.1", 0);
    auto connection = asyncio::open_connection("127.0.0.1", server.port());
    auto& r = connection.first;  // not a binding: clang 14 cannot capture those
    auto& w = connection.second;
    // The first round registers both sockets (and each side's first read
    // may find nothing yet).
    w.write("warm-up\n");
    ASSERT_EQ(r.readline(), "warm-up\n");
    const long ctl_before = epoll_ctl_calls.load();
    const long eagain_before = recv_eagain.load();
    for (int i = 0; i < rounds; ++i) {
      const std::string line = "request " + std::to_string(i) + "\n";
      w.write(line);
      if (r.readline() == line) ++answered;
    }
    ctl_during = epoll_ctl_calls.load() - ctl_before;
    eagain_during = recv_eagain.load() - eagain_before;
    w.close();
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(answered, rounds);
  EXPECT_EQ(ctl_during, 0) << "epoll_ctl calls during " << rounds << " round trips";
  EXPECT_EQ(eagain_during, 0) << "recv calls that answered EAGAIN during " << rounds << " round trips";
}

// Bytes that arrive while the reader is busy elsewhere (the loop polled and
// found them with nobody waiting) are still read: the short read before was
// taken before that poll, so the stream reads again instead of waiting for an
// edge that already came.
TEST_F(EdgeTriggeredStreams, BytesArrivingWhileTheReaderSleepsAreRead) {
  std::string second;
  asyncio::run([&] {
    auto release = asyncio::get_running_loop().create_future<void>();
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader, asyncio::StreamWriter w) {
          w.write("first\n");
          asyncio::sleep(0.01);
          w.write("second\n");
          asyncio::await(release);  // no EOF meanwhile, which would wake the reader anyway
          w.close();
        },
        "127.0.0.1", 0);
    auto connection = asyncio::open_connection("127.0.0.1", server.port());
    auto& r = connection.first;  // not a binding: clang 14 cannot capture those
    auto& w = connection.second;
    ASSERT_EQ(r.readline(), "first\n");
    asyncio::sleep(0.05);  // "second" arrives now, while nobody waits
    try {
      second = asyncio::wait_for([&] { return r.readline(); }, 2.0);
    } catch (const asyncio::TimeoutError&) {
      second = "(timed out)";
    }
    release.set_result();
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(second, "second\n");
}

// EOF that arrived together with the last bytes, while the reader was away:
// the read that takes the bytes is short, and the edge that said EOF came
// before it, so no later edge will. The next read must still see EOF.
TEST_F(EdgeTriggeredStreams, EofThatCameWithTheLastBytesIsSeen) {
  std::string last, after;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader, asyncio::StreamWriter w) {
          w.write("last\n");
          w.close();
        },
        "127.0.0.1", 0);
    auto connection = asyncio::open_connection("127.0.0.1", server.port());
    auto& r = connection.first;  // not a binding: clang 14 cannot capture those
    auto& w = connection.second;
    asyncio::sleep(0.05);  // the bytes and the FIN both arrive; the loop polls
    last = asyncio::wait_for([&] { return r.readline(); }, 5.0);
    after = asyncio::wait_for([&] { return r.readline(); }, 5.0);
    EXPECT_TRUE(r.at_eof());
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(last, "last\n");
  EXPECT_EQ(after, "");
}

// The peer sent three lines and closed while the reader was away: one short
// read takes the lines, and the FIN came with them. at_eof() must be true
// once the lines are consumed, as asyncio's (before: false, and the loop
// `while (!at_eof()) readline()` got an extra ""). Asking costs a recv only
// after the poller saw the hang-up: not while the peer is still connected.
TEST_F(EdgeTriggeredStreams, AtEofSeesTheFinThatCameWithTheLastBytes) {
  std::vector<std::string> lines;
  long recv_while_open = -1, recv_after_fin = -1;
  bool eof_while_open = false;
  asyncio::run([&] {
    auto release = asyncio::get_running_loop().create_future<void>();
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader, asyncio::StreamWriter w) {
          w.write("x\n");
          asyncio::await(release);
          w.write("a\nb\nc\n");
          w.close();
        },
        "127.0.0.1", 0);
    auto connection = asyncio::open_connection("127.0.0.1", server.port());
    auto& r = connection.first;  // not a binding: clang 14 cannot capture those
    auto& w = connection.second;
    EXPECT_EQ(r.readline(), "x\n");
    asyncio::sleep(0.02);
    const long before = recv_calls.load();
    for (int i = 0; i < 100; ++i) eof_while_open = eof_while_open || r.at_eof();
    recv_while_open = recv_calls.load() - before;
    release.set_result();
    asyncio::sleep(0.05);  // the lines and the FIN arrive; the loop polls
    const long start = recv_calls.load();
    while (!r.at_eof() && lines.size() < 10) lines.push_back(r.readline());
    recv_after_fin = recv_calls.load() - start;
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_FALSE(eof_while_open);
  EXPECT_EQ(recv_while_open, 0) << "at_eof() on an open, idle connection";
  EXPECT_EQ(lines, (std::vector<std::string>{"a\n", "b\n", "c\n"}));
  EXPECT_EQ(recv_after_fin, 2) << "one recv for the lines, one for the EOF";
}

// A user who awaits a stream's socket directly (wait_readable on fileno())
// has not found it empty as the stream's own waits have: the bytes may have
// come, and their edge gone, while nobody waited. The wait must still end:
// the fd goes back to one-shot registrations, which check its state.
TEST_F(EdgeTriggeredStreams, UserWaitOnAStreamsSocketSeesBytesThatAlreadyCame) {
  std::string got;
  asyncio::run([&] {
    auto release = asyncio::get_running_loop().create_future<void>();
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader, asyncio::StreamWriter w) {
          w.write("x");
          asyncio::await(release);
          w.close();
        },
        "127.0.0.1", 0);
    auto connection = asyncio::open_connection("127.0.0.1", server.port());
    auto& r = connection.first;  // not a binding: clang 14 cannot capture those
    auto& w = connection.second;
    asyncio::sleep(0.05);  // "x" arrives and the loop polls while nobody waits
    try {
      asyncio::wait_for([&] { asyncio::wait_readable(w.fileno()); }, 2.0);
      got = r.read(1);
    } catch (const asyncio::TimeoutError&) {
      got = "(timed out)";
    }
    // The stream keeps working on one-shot registrations.
    release.set_result();
    EXPECT_EQ(asyncio::wait_for([&] { return r.read(); }, 2.0), "");
    w.close();
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(got, "x");
}

// A closed stream's descriptor number comes back for the next socket, which
// must be watched afresh: the old registration went with forget().
TEST_F(EdgeTriggeredStreams, ReusedDescriptorNumbersAreWatchedAfresh) {
  int same_number = 0;
  int echoed = 0;
  asyncio::run([&] {
    auto server = asyncio::start_server(echo_lines, "127.0.0.1", 0);
    int previous_fd = -1;
    for (int i = 0; i < 20; ++i) {
      auto connection = asyncio::open_connection("127.0.0.1", server.port());
      auto& r = connection.first;  // not a binding: clang 14 cannot capture those
      auto& w = connection.second;
      const int fd = w.fileno();
      if (fd == previous_fd) ++same_number;
      previous_fd = fd;
      w.write("ping " + std::to_string(i) + "\n");
      if (asyncio::wait_for([&] { return r.readline(); }, 5.0) == "ping " + std::to_string(i) + "\n") ++echoed;
      w.close();
      w.wait_closed();
      // The same number as a plain socket, awaited through the one-shot path.
      int pair[2];
      ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
      ASSERT_EQ(::write(pair[1], "x", 1), 1);
      asyncio::wait_for([&] { asyncio::wait_readable(pair[0]); }, 5.0);
      ::close(pair[0]);
      ::close(pair[1]);
    }
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(echoed, 20);
  EXPECT_GT(same_number, 0) << "the test meant to see descriptor numbers reused";
}

}  // namespace
