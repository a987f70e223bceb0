// resolve_bench.cpp: the cost of one name lookup from a task, asyncio::getaddrinfo(), the three
// ways it can be answered:
//   getaddrinfo_numeric        "127.0.0.1": answered inline, no thread involved
//   getaddrinfo_system         "localhost": the system's getaddrinfo() on the loop's default
//                              executor (/etc/hosts; no DNS), the task awaiting meanwhile, as
//                              asyncio's loop.getaddrinfo()
//   getaddrinfo_loop_resolver  "localhost" answered by a loop resolver (asyncio::set_resolver())
//                              from a table in memory: what a DNS cache's hit costs
// One loop per benchmark; each iteration is one lookup of one answer (AF_INET, SOCK_STREAM).
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include <greenlet/io.hpp>

namespace {

namespace asyncio = greenlet::asyncio;

constexpr asyncio::addrinfo_hints ipv4_stream{.family = AF_INET, .type = SOCK_STREAM};

// run_lookups(state, host, resolver) looks host up once per iteration inside one asyncio::run(),
// with `resolver` as the loop's if it is set.
void run_lookups(benchmark::State& state, const std::string& host, const asyncio::resolver_fn& resolver) {
  asyncio::run([&] {
    if (resolver) asyncio::set_resolver(asyncio::get_running_loop(), resolver);
    for (auto _ : state) benchmark::DoNotOptimize(asyncio::getaddrinfo(host, 80, ipv4_stream));
  });
  state.SetItemsProcessed(state.iterations());
}

void BM_getaddrinfo_numeric(benchmark::State& state) { run_lookups(state, "127.0.0.1", nullptr); }
BENCHMARK(BM_getaddrinfo_numeric)->UseRealTime();

void BM_getaddrinfo_system(benchmark::State& state) { run_lookups(state, "localhost", nullptr); }
BENCHMARK(BM_getaddrinfo_system)->UseRealTime();

void BM_getaddrinfo_loop_resolver(benchmark::State& state) {
  run_lookups(state, "localhost", [](const std::string&, const std::string& service, const asyncio::addrinfo_hints&) {
    return std::vector<asyncio::addrinfo_entry>{
        {AF_INET, SOCK_STREAM, IPPROTO_TCP, "", {"127.0.0.1", std::stoi(service)}}};
  });
}
BENCHMARK(BM_getaddrinfo_loop_resolver)->UseRealTime();

}  // namespace
