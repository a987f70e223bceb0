// resolve_test.cpp: name resolution through the loop's default executor
// (open_connection, start_server and sock_connect with a host name), after
// CPython's test_asyncio base_events tests of getaddrinfo. Connections go
// to 127.0.0.1 only: "localhost" is the one name resolved.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <greenlet/asyncio/executor.hpp>
#include <greenlet/io.hpp>

#include "io/counting_executor.hpp"
#include "support/greenlet_test.hpp"

#include "echo_line.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using Resolve = greenlet_test::GreenletTest;

// gate blocks a pool thread until opened.
struct gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock lock(m);
    cv.wait(lock, [this] { return open; });
  }
  void release() {
    {
      std::lock_guard lock(m);
      open = true;
    }
    cv.notify_all();
  }
};

using io_test::echo_line;

// A numeric host never goes to the executor; a name does, once, and the
// connection reaches the server.
TEST_F(Resolve, NumericInlineNameThroughDefaultExecutor) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    auto pool = std::make_shared<io_test::counting_executor>(2);
    asyncio::set_default_executor(loop, pool);
    auto server = asyncio::start_server(echo_line, "127.0.0.1", 0);

    auto [r1, w1] = asyncio::open_connection("127.0.0.1", server.port());
    EXPECT_EQ(pool->submitted.load(), 0);
    w1.write("numeric\n");
    EXPECT_EQ(r1.readline(), "numeric\n");

    auto [r2, w2] = asyncio::open_connection("localhost", server.port());
    EXPECT_EQ(pool->submitted.load(), 1);
    EXPECT_EQ(w2.get_extra_info("peername").host, "127.0.0.1");
    w2.write("by name\n");
    EXPECT_EQ(r2.readline(), "by name\n");
    w1.close();
    w2.close();
    server.close();
    server.wait_closed();
  });
}

// The loop keeps running other tasks while a name is being resolved.
TEST_F(Resolve, LoopRunsWhileResolving) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    auto pool = std::make_shared<io_test::counting_executor>(1);
    asyncio::set_default_executor(loop, pool);
    auto g = std::make_shared<gate>();
    // The only worker is busy until the ticker opens the gate: the lookup
    // queued behind it can only finish if the loop keeps running.
    auto busy = pool->submit([g] { g->wait(); });
    std::vector<std::string> events;
    auto ticker = asyncio::create_task([&] {
      asyncio::sleep(0.01);
      events.push_back("ticker");
      g->release();
    });
    auto server = asyncio::start_server(echo_line, "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("localhost", server.port());
    events.push_back("connected");
    asyncio::await(ticker);
    EXPECT_EQ(events, (std::vector<std::string>{"ticker", "connected"}));
    w.close();
    server.close();
    server.wait_closed();
  });
}

TEST_F(Resolve, SockConnectWithHostName) {
  asyncio::run([] {
    auto server = asyncio::start_server(echo_line, "127.0.0.1", 0);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    asyncio::sock_connect(fd, "localhost", server.port());
    asyncio::sock_sendall(fd, "hi\n");
    EXPECT_EQ(asyncio::sock_recv(fd, 100), "hi\n");
    ::close(fd);

    // Numeric too; and a name with no address of the socket's family.
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    asyncio::sock_connect(fd, "127.0.0.1", server.port());
    ::close(fd);
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    try {
      asyncio::sock_connect(fd, "::1", server.port());
      ADD_FAILURE() << "expected gaierror";
    } catch (const asyncio::gaierror& e) {
      EXPECT_NE(std::string(e.what()).find("'::1'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("AF_INET"), std::string::npos) << e.what();
    }
    ::close(fd);
    server.close();
    server.wait_closed();
  });
}

// An unknown host is a gaierror whose message names the host and says
// what to check; the loop goes on.
TEST_F(Resolve, UnknownHostIsGaierrorNamingTheHost) {
  asyncio::run([] {
    try {
      asyncio::open_connection("no-such-host.invalid", 80);
      ADD_FAILURE() << "expected gaierror";
    } catch (const asyncio::gaierror& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("no-such-host.invalid"), std::string::npos) << what;
      EXPECT_NE(what.find("check"), std::string::npos) << what;
      EXPECT_EQ(e.code(), asyncio::io_errc::unknown_host);
      EXPECT_NE(e.eai(), 0);
    }
    EXPECT_THROW(asyncio::start_server(echo_line, "no-such-host.invalid", 0), asyncio::gaierror);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    EXPECT_THROW(asyncio::sock_connect(fd, "no-such-host.invalid", 80), asyncio::gaierror);
    ::close(fd);
    // A malformed numeric-looking address is a name too, and unknown.
    EXPECT_THROW(asyncio::open_connection("127.0.0.256", 80), asyncio::gaierror);
  });
}

// Cancelled while the lookup waits for a worker: the task ends with
// CancelledError (TimeoutError from wait_for), the job never runs, and the
// next lookup works.
TEST_F(Resolve, CancelWhileQueued) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    auto pool = std::make_shared<io_test::counting_executor>(1);
    asyncio::set_default_executor(loop, pool);
    auto g = std::make_shared<gate>();
    auto busy = pool->submit([g] { g->wait(); });
    auto server = asyncio::start_server(echo_line, "127.0.0.1", 0);
    const double start = loop.time();
    EXPECT_THROW(asyncio::wait_for([&] { asyncio::open_connection("localhost", server.port()); }, 0.02),
                 asyncio::TimeoutError);
    EXPECT_LT(loop.time() - start, 1.0);
    EXPECT_EQ(pool->submitted.load(), 2);
    g->release();
    auto [r, w] = asyncio::open_connection("localhost", server.port());
    w.write("after\n");
    EXPECT_EQ(r.readline(), "after\n");
    w.close();
    server.close();
    server.wait_closed();
  });
}

// Many lookups cancelled at assorted moments (queued, running, delivered):
// nothing crashes, nothing leaks (the fixture counts allocations, ASan
// watches the rest), and the survivors connect.
TEST_F(Resolve, CancelAtAssortedMoments) {
  int connected = 0, timed_out = 0;
  asyncio::run([&] {
    auto server = asyncio::start_server(echo_line, "127.0.0.1", 0);
    std::vector<asyncio::Task<void>> tasks;
    for (int i = 0; i < 40; ++i) {
      tasks.push_back(asyncio::create_task([&, i] {
        try {
          asyncio::wait_for(
              [&] {
                auto [r, w] = asyncio::open_connection("localhost", server.port());
                w.close();
              },
              i % 10 == 9 ? 5.0 : 0.0002 * (i % 10));
          ++connected;
        } catch (const asyncio::TimeoutError&) {
          ++timed_out;
        }
      }));
    }
    asyncio::gather(tasks);
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(connected + timed_out, 40);
  EXPECT_GE(connected, 4);  // the 5 s ones
  EXPECT_GE(timed_out, 4);  // the zero timeouts
}

}  // namespace
