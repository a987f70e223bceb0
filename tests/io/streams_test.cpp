// streams_test.cpp: open_connection/start_server and the stream reader and
// writer, after CPython's Lib/test/test_asyncio/test_streams.py. 127.0.0.1
// only; sizes and counts are bounded so the suite stays quick.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include <cstdio>
#include <string>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"
#include "support/process_stats.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using StreamTests = greenlet_test::GreenletTest;

asyncio::event_loop::options small_stacks() {
  asyncio::event_loop::options opts;
  opts.task_stack.size = 64 * 1024;
  opts.task_stack.guard_page = false;
  return opts;
}

void echo_handler(asyncio::StreamReader r, asyncio::StreamWriter w) {
  for (;;) {
    std::string data = r.read(65536);
    if (data.empty()) break;
    w.write(data);
    w.drain();
  }
  w.close();
}

// Payload of client i: distinct bytes, so a mixed-up stream shows.
std::string payload(int i, std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t k = 0; k < size; ++k) s[k] = static_cast<char>((i * 131 + k * 7) & 0xff);
  return s;
}

TEST_F(StreamTests, EchoThousandConcurrentClients) {
  constexpr int clients = 1000;
  int ok = 0;
  asyncio::run(
      [&] {
        auto server = asyncio::start_server(echo_handler, "127.0.0.1", 0);
        std::vector<asyncio::Task<void>> tasks;
        for (int i = 0; i < clients; ++i) {
          tasks.push_back(asyncio::create_task([&, i] {
            auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
            const std::string data = payload(i, 1000 + static_cast<std::size_t>(i) * 13);
            // Two writes and a half-close: every byte must come back in order.
            w.write(std::string_view(data).substr(0, data.size() / 2));
            w.drain();
            w.write(std::string_view(data).substr(data.size() / 2));
            w.write_eof();
            std::string back = r.read();
            EXPECT_EQ(back, data) << "client " << i;
            if (back == data) ++ok;
            w.close();
            w.wait_closed();
          }));
        }
        asyncio::gather(tasks);
        server.close();
        server.wait_closed();
      },
      small_stacks());
  EXPECT_EQ(ok, clients);
}

// test_streams.py test_readline/readexactly/readuntil over a real socket.
TEST_F(StreamTests, ReaderCalls) {
  asyncio::run([] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader, asyncio::StreamWriter w) {
          w.write("line one\nline two\nAB--CD--tail");
          w.close();
        },
        "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    EXPECT_EQ(r.readline(), "line one\n");
    EXPECT_EQ(r.readuntil("\n"), "line two\n");
    EXPECT_EQ(r.readexactly(2), "AB");
    EXPECT_EQ(r.readuntil("--"), "--");
    EXPECT_EQ(r.readuntil("--"), "CD--");
    try {
      r.readexactly(10);
      ADD_FAILURE() << "no IncompleteReadError";
    } catch (const asyncio::IncompleteReadError& e) {
      EXPECT_EQ(e.partial(), "tail");
      EXPECT_EQ(e.expected(), 10u);
    }
    EXPECT_TRUE(r.at_eof());
    EXPECT_EQ(r.read(10), "");
    EXPECT_EQ(r.readline(), "");
    server.close();
    server.wait_closed();
  });
}

TEST_F(StreamTests, ReaduntilLimitOverrun) {
  asyncio::run([] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader, asyncio::StreamWriter w) {
          // Appended, not `std::string(100, 'x') + "..."`: g++ 12's false
          // -Warray-bounds on that expression (GCC PR 105651) shows once it is inlined
          // further, as in a unity build.
          std::string line(100, 'x');
          line += "\nok\n";
          w.write(line);
          w.close();
        },
        "127.0.0.1", 0);
    asyncio::stream_config config;
    config.limit = 10;
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port(), config);
    EXPECT_THROW(r.readuntil("\n"), asyncio::LimitOverrunError);
    // readline() drops the overlong line and raises ValueError, as asyncio's.
    EXPECT_THROW(r.readline(), asyncio::ValueError);
    EXPECT_EQ(r.readline(), "ok\n");
    server.close();
    server.wait_closed();
  });
}

TEST_F(StreamTests, HalfClose) {
  asyncio::run([] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader r, asyncio::StreamWriter w) {
          std::string all = r.read();  // until the client's write_eof()
          EXPECT_TRUE(r.at_eof());
          w.write("received " + std::to_string(all.size()));
          w.close();
        },
        "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    w.write(std::string(200000, 'h'));
    w.write_eof();
    EXPECT_EQ(r.read(), "received 200000");
    w.close();
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
}

TEST_F(StreamTests, PeerResetIsConnectionResetError) {
  asyncio::run([] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader r, asyncio::StreamWriter w) {
          r.readexactly(1);
          // SO_LINGER 0: close() sends RST instead of FIN.
          linger l{1, 0};
          ::setsockopt(w.fileno(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
          w.close();
        },
        "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    w.write("x");
    // Unread data on our side makes sure the reset reaches the reader.
    EXPECT_THROW(
        {
          for (int i = 0; i < 100; ++i) r.read(100);
        },
        asyncio::ConnectionResetError);
    server.close();
    server.wait_closed();
  });
}

// A writer whose peer reads slowly: drain() holds the buffer near the
// high-water mark, and every byte still arrives.
TEST_F(StreamTests, SlowReaderDrainBackPressure) {
  constexpr std::size_t total = 8 << 20;
  std::size_t max_buffered = 0;
  std::size_t received = 0;
  asyncio::server_config config;
  config.stream.high_water = 64 * 1024;
  config.stream.low_water = 16 * 1024;
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader, asyncio::StreamWriter w) {
          const std::string chunk = payload(7, 32 * 1024);
          for (std::size_t sent = 0; sent < total; sent += chunk.size()) {
            w.write(chunk);
            w.drain();
            max_buffered = std::max(max_buffered, w.transport_buffer_size());
          }
          w.close();
          w.wait_closed();
        },
        "127.0.0.1", 0, config);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    const std::string chunk = payload(7, 32 * 1024);
    for (;;) {
      std::string data = r.read(4096);
      if (data.empty()) break;
      for (std::size_t k = 0; k < data.size(); ++k) {
        ASSERT_EQ(data[k], chunk[(received + k) % chunk.size()]) << "at byte " << received + k;
      }
      received += data.size();
      if (received % (256 * 1024) < 4096) asyncio::sleep(0.001);  // be slow
    }
    server.close();
    server.wait_closed();
  });
  EXPECT_EQ(received, total);
  EXPECT_LE(max_buffered, config.stream.high_water);
}

// A read cancelled by wait_for() loses nothing: buffered bytes stay.
TEST_F(StreamTests, WaitForTimeoutAroundReadLosesNoBytes) {
  asyncio::run([] {
    auto release = asyncio::get_running_loop().create_future<void>();
    auto server = asyncio::start_server(
        [&](asyncio::StreamReader, asyncio::StreamWriter w) {
          w.write("12345");
          w.drain();
          asyncio::await(release);
          w.write("67890");
          w.close();
        },
        "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    EXPECT_THROW(asyncio::wait_for([r = r]() mutable { return r.readexactly(10); }, 0.05), asyncio::TimeoutError);
    release.set_result();
    EXPECT_EQ(r.readexactly(10), "1234567890");
    server.close();
    server.wait_closed();
  });
}

TEST_F(StreamTests, UnixDomainEcho) {
  const std::string path = "/tmp/greenlet-io-test-" + std::to_string(::getpid()) + ".sock";
  asyncio::run([&] {
    auto server = asyncio::start_unix_server(echo_handler, path);
    auto [r, w] = asyncio::open_unix_connection(path);
    w.writelines({"hello ", "unix\n"});
    EXPECT_EQ(r.readline(), "hello unix\n");
    w.close();
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
  ::unlink(path.c_str());
}

TEST_F(StreamTests, PeernameAndServeForever) {
  asyncio::run([] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader r, asyncio::StreamWriter w) {
          auto peer = w.get_extra_info("peername");
          w.write(peer.host + "\n");
          r.read();
          w.close();
        },
        "127.0.0.1", 0);
    EXPECT_GT(server.port(), 0);
    EXPECT_TRUE(server.is_serving());
    auto forever = asyncio::create_task([server]() mutable { server.serve_forever(); });
    auto [r, w] = asyncio::open_connection("localhost", server.port());
    EXPECT_EQ(w.get_extra_info("peername").port, server.port());
    EXPECT_EQ(r.readline(), w.get_extra_info("sockname").host + "\n");
    w.close();
    forever.cancel();
    EXPECT_THROW(asyncio::await(forever), asyncio::CancelledError);
    EXPECT_FALSE(server.is_serving());
    server.wait_closed();
    EXPECT_THROW(asyncio::open_connection("127.0.0.1", server.port()), asyncio::ConnectionRefusedError);
  });
}

using greenlet_test::open_fd_count;

// Out of descriptors (EMFILE) the server reports it, pauses accepting and
// serves everyone once descriptors are free again.
TEST_F(StreamTests, EmfileKeepsServing) {
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  std::vector<std::string> reports;
  std::vector<int> errnos;
  int served = 0, served_while_short = 0;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    loop.set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context& c) {
      reports.push_back(c.message);
      try {
        std::rethrow_exception(c.exception);
      } catch (const asyncio::OSError& e) {
        errnos.push_back(e.errno_());
      } catch (...) {
        errnos.push_back(-1);
      }
    });
    asyncio::server_config config;
    config.accept_retry_delay = 0.01;
    auto server = asyncio::start_server(echo_handler, "127.0.0.1", 0, config);
    // Five clients connect without yielding (loopback completes the
    // handshake at once), so they wait in the backlog; then room is left
    // for two more descriptors only: the server accepts two, hits EMFILE.
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(server.port()));
    std::vector<int> fds;
    for (int i = 0; i < 5; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      EXPECT_TRUE(rc == 0 || errno == EINPROGRESS);
      fds.push_back(fd);
    }
    rlimit tight = saved;
    tight.rlim_cur = static_cast<rlim_t>(open_fd_count() + 2);
    ::setrlimit(RLIMIT_NOFILE, &tight);
    for (int i = 0; i < 50 && reports.empty(); ++i) asyncio::sleep(0.002);
    // Still out of descriptors: the connections accepted before (at least
    // the first two, the backlog is FIFO) are served meanwhile.
    for (int i = 0; i < 2; ++i) {
      asyncio::sock_sendall(fds[i], "early\n");
      if (asyncio::sock_recv(fds[i], 100) == "early\n") ++served_while_short;
    }
    ::setrlimit(RLIMIT_NOFILE, &saved);
    for (int fd : fds) {
      asyncio::sock_sendall(fd, "ping\n");
      if (asyncio::sock_recv(fd, 100) == "ping\n") ++served;
      ::close(fd);
    }
    server.close();
    server.wait_closed();
  });
  ::setrlimit(RLIMIT_NOFILE, &saved);
  EXPECT_EQ(served_while_short, 2);
  EXPECT_EQ(served, 5);
  ASSERT_FALSE(reports.empty());
  EXPECT_NE(reports[0].find("out of system resource"), std::string::npos) << reports[0];
  EXPECT_NE(reports[0].find("ulimit -n"), std::string::npos) << reports[0];
  ASSERT_FALSE(errnos.empty());
  EXPECT_EQ(errnos[0], EMFILE);
}

}  // namespace
