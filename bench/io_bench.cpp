// io_bench.cpp: echo round trips on 127.0.0.1 TCP: a client task and a
// server task on one loop exchange 64-byte messages, through streams and
// through the raw sock_* calls; the peer is two threads with blocking
// sockets (the kernel's floor for a round trip with two context switches).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <string>
#include <thread>

#include <greenlet/io.hpp>

namespace {

namespace asyncio = greenlet::asyncio;
constexpr std::size_t message = 64;

// A connected TCP pair on loopback, both ends blocking.
void tcp_pair(int out[2]) {
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(l, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(l, 1);
  socklen_t len = sizeof addr;
  ::getsockname(l, reinterpret_cast<sockaddr*>(&addr), &len);
  out[0] = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ::connect(out[0], reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  out[1] = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(l);
  int one = 1;
  for (int i = 0; i < 2; ++i) ::setsockopt(out[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void BM_StreamsEcho(benchmark::State& state) {
  asyncio::run([&] {
    auto server = asyncio::start_server(
        [](asyncio::StreamReader r, asyncio::StreamWriter w) {
          for (;;) {
            std::string data = r.read(65536);
            if (data.empty()) break;
            w.write(data);
            w.drain();
          }
          w.close();
        },
        "127.0.0.1", 0);
    auto [r, w] = asyncio::open_connection("127.0.0.1", server.port());
    const std::string msg(message, 'x');
    for (auto _ : state) {
      w.write(msg);
      w.drain();
      benchmark::DoNotOptimize(r.readexactly(message));
    }
    w.close();
    w.wait_closed();
    server.close();
    server.wait_closed();
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StreamsEcho)->UseRealTime();

void BM_SockEcho(benchmark::State& state) {
  int fds[2];
  tcp_pair(fds);
  asyncio::set_nonblocking(fds[0]);
  asyncio::set_nonblocking(fds[1]);
  asyncio::run([&] {
    auto echo = asyncio::create_task([&] {
      char buf[4096];
      for (;;) {
        std::size_t n = asyncio::sock_recv_into(fds[1], buf, sizeof buf);
        if (n == 0) break;
        asyncio::sock_sendall(fds[1], std::string_view(buf, n));
      }
    });
    const std::string msg(message, 'x');
    char buf[message];
    for (auto _ : state) {
      asyncio::sock_sendall(fds[0], msg);
      std::size_t got = 0;
      while (got < message) got += asyncio::sock_recv_into(fds[0], buf + got, message - got);
    }
    ::shutdown(fds[0], SHUT_WR);
    asyncio::await(echo);
  });
  ::close(fds[0]);
  ::close(fds[1]);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SockEcho)->UseRealTime();

// Peer: blocking sockets, an echo thread.
void BM_BlockingThreadsEcho(benchmark::State& state) {
  int fds[2];
  tcp_pair(fds);
  std::thread echo([fd = fds[1]] {
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      ::send(fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL);
    }
  });
  const std::string msg(message, 'x');
  char buf[message];
  for (auto _ : state) {
    ::send(fds[0], msg.data(), msg.size(), MSG_NOSIGNAL);
    std::size_t got = 0;
    while (got < message) got += static_cast<std::size_t>(::recv(fds[0], buf + got, message - got, 0));
  }
  ::shutdown(fds[0], SHUT_WR);
  echo.join();
  ::close(fds[0]);
  ::close(fds[1]);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BlockingThreadsEcho)->UseRealTime();

}  // namespace
