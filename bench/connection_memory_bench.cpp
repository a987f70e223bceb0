// connection_memory_bench.cpp: what an idle connection costs a server, the
// two ways this library serves one:
//   IdleConnectionMemory/N/0  streams: start_server(), a handler task per
//                             connection waiting in readline() (64 KiB
//                             unguarded task stacks, as examples/http_hello)
//   IdleConnectionMemory/N/1  protocols: create_server() with a Protocol
//                             that waits for data_received(), no task
// N clients connect over 127.0.0.1 (their sockets are kernel objects, not
// resident memory of the process) and stay idle. Counters:
//   bytes_per_connection  the process's RSS delta (/proc/self/statm, after
//                         malloc_trim) divided by N, taken while all wait
//   accept_ns_per         connecting, accepting and starting one (wall time)
// One iteration, one repetition: a run opens 2N descriptors (RLIMIT_NOFILE
// is raised to its hard limit first).
#include <benchmark/benchmark.h>

#include <malloc.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <greenlet/io.hpp>

#include "resident_bytes.hpp"

namespace asyncio = greenlet::asyncio;

namespace {

// raise_fd_limit() raises RLIMIT_NOFILE's soft limit to the hard one and returns it.
long raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
  if (r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
  return r.rlim_cur == RLIM_INFINITY ? 1L << 30 : static_cast<long>(r.rlim_cur);
}

struct Idle : asyncio::Protocol {
  long* connected;
  asyncio::Transport transport;
  explicit Idle(long* c) : connected(c) {}
  void connection_made(asyncio::Transport& t) override {
    transport = t;
    ++*connected;
  }
  void connection_lost(std::exception_ptr) override { transport = {}; }
};

void BM_IdleConnectionMemory(benchmark::State& state) {
  const long limit = raise_fd_limit();
  const long n = state.range(0);
  if (limit < 2 * n + 64) {
    state.SkipWithError(("needs " + std::to_string(2 * n + 64) + " descriptors, RLIMIT_NOFILE allows " +
                         std::to_string(limit) + " (raise it: ulimit -n)")
                            .c_str());
    return;
  }
  const bool protocols = state.range(1) == 1;
  asyncio::event_loop::options opts;
  opts.task_stack = {.size = 64 * 1024, .guard_page = false};
  long bytes = 0;
  double accept_s = 0;
  for (auto _ : state) {
    asyncio::run(
        [&] {
          long connected = 0;
          const long before = resident_bytes();
          asyncio::server_config config{.backlog = 4096};
          asyncio::Server server =
              protocols
                  ? asyncio::create_server([&] { return std::make_shared<Idle>(&connected); }, "127.0.0.1", 0, config)
                  : asyncio::start_server(
                        [&](asyncio::StreamReader r, asyncio::StreamWriter) {
                          ++connected;
                          r.readline();  // the client sends nothing until it closes
                        },
                        "127.0.0.1", 0, config);
          sockaddr_in addr{};
          addr.sin_family = AF_INET;
          addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
          addr.sin_port = htons(static_cast<std::uint16_t>(server.port()));
          std::vector<int> clients;
          clients.reserve(static_cast<std::size_t>(n));
          const auto start = std::chrono::steady_clock::now();
          for (long i = 0; i < n; ++i) {
            const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
            asyncio::sock_connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
            clients.push_back(fd);
          }
          while (connected < n) asyncio::sleep(0.001);
          asyncio::sleep(0.01);  // every connection reaches its wait; the loop waits once
          accept_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          bytes = resident_bytes() - before;
          for (int fd : clients) ::close(fd);
          server.close();
          server.wait_closed();
        },
        opts);
  }
  state.counters["bytes_per_connection"] = static_cast<double>(bytes) / static_cast<double>(n);
  state.counters["accept_ns_per"] = accept_s * 1e9 / static_cast<double>(n);
}
BENCHMARK(BM_IdleConnectionMemory)
    ->Args({5000, 0})
    ->Args({5000, 1})
    ->Iterations(1)
    ->Repetitions(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
