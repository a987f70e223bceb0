// scale_bench.cpp: a million suspended fibers at once.
//   scale_tasks/N       N asyncio tasks (16 KiB unguarded stacks), each
//                       awaiting one shared Event: the time to create them
//                       and run each to its wait, the resident bytes per
//                       suspended task, the time to wake and finish them all
//   scale_greenlets/N   N plain greenlets (16 KiB unguarded stacks), each
//                       switched into once and suspended: the same figures
// One iteration and one repetition each, whatever --benchmark_repetitions
// says (bench/run_all.sh asks for 5): a run takes 10-30 s and ~5 GB.
// Run each benchmark in its own process (--benchmark_filter=tasks, =greenlets)
// for clean figures: stacks one leaves pooled serve the next.
// Counters:
//   create_ns_per       creating and starting one, until it is suspended
//                       (wall time; *_cpu_ns_per: this thread's CPU time,
//                       user + system, steadier on a loaded machine)
//   bytes_per           resident bytes per suspended fiber (RSS delta from
//                       /proc/self/statm divided by N, taken while all wait)
//   finish_ns_per       waking one and running it to completion
//   mappings            kernel mappings of the process while all wait
//                       (vm.max_map_count is 65530 by default)
//   retained_per        resident bytes per fiber still held once all are
//                       finished and gone and (tasks) the loop has waited
//                       once (pooled stacks; see the warm budget,
//                       GREENLET_STACK_WARM_BUDGET)
//   recreate_ns_per     creating and starting N again, on pooled stacks
// The figures and how they depend on the warm budget are in bench/README.md
// (section Scale).
#include <benchmark/benchmark.h>

#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/greenlet.hpp>

#include "resident_bytes.hpp"

namespace asyncio = greenlet::asyncio;

namespace {

constexpr std::size_t stack_bytes = 16 * 1024;
constexpr greenlet::stack_options small_stack{.size = stack_bytes, .guard_page = false};

long kernel_mappings() {
  std::ifstream maps("/proc/self/maps");
  long lines = 0;
  std::string line;
  while (std::getline(maps, line)) ++lines;
  return lines;
}

// stopwatch measures wall time and this thread's CPU time (user + system,
// page faults included): on a loaded machine the CPU time is the steadier.
struct stopwatch {
  static double cpu_now() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
  }
  std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
  double cpu = cpu_now();
  double wall_s() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count(); }
  double cpu_s() const { return cpu_now() - cpu; }
};

struct figures {
  double create_s = 0, finish_s = 0, recreate_s = 0;
  double create_cpu_s = 0, finish_cpu_s = 0, recreate_cpu_s = 0;
  long bytes = 0, retained = 0, mappings = 0;
};

void record_create(figures* f, const stopwatch& w, bool first, long before) {
  if (first) {
    f->create_s = w.wall_s();
    f->create_cpu_s = w.cpu_s();
    f->bytes = resident_bytes() - before;
    f->mappings = kernel_mappings();
  } else {
    f->recreate_s = w.wall_s();
    f->recreate_cpu_s = w.cpu_s();
  }
}

void record_finish(figures* f, const stopwatch& w, bool first) {
  if (first) {
    f->finish_s = w.wall_s();
    f->finish_cpu_s = w.cpu_s();
  }
}

void report(benchmark::State& state, const figures& f, long n) {
  const double per = static_cast<double>(n);
  state.counters["create_ns_per"] = f.create_s * 1e9 / per;
  state.counters["finish_ns_per"] = f.finish_s * 1e9 / per;
  state.counters["recreate_ns_per"] = f.recreate_s * 1e9 / per;
  state.counters["create_cpu_ns_per"] = f.create_cpu_s * 1e9 / per;
  state.counters["finish_cpu_ns_per"] = f.finish_cpu_s * 1e9 / per;
  state.counters["recreate_cpu_ns_per"] = f.recreate_cpu_s * 1e9 / per;
  state.counters["bytes_per"] = static_cast<double>(f.bytes) / per;
  state.counters["retained_per"] = static_cast<double>(f.retained) / per;
  state.counters["mappings"] = static_cast<double>(f.mappings);
  state.counters["create_s"] = f.create_s;
  state.counters["finish_s"] = f.finish_s;
  state.SetItemsProcessed(state.iterations() * n);
}

// One round of the task workload inside a running loop: N tasks wait on one
// Event; returns the sum of their results (checked by the caller).
long task_round(long n, figures* f, bool first) {
  asyncio::Event event;
  std::vector<asyncio::Task<long>> tasks;
  tasks.reserve(static_cast<std::size_t>(n));
  const long before = resident_bytes();
  const stopwatch create;
  for (long i = 0; i < n; ++i) {
    tasks.push_back(asyncio::create_task([&event, i] {
      event.wait();
      return i;
    }));
  }
  // Every task runs to its wait and suspends; the loop, with nothing left to
  // run, then waits once (for this timer) and trims its callback-node cache.
  asyncio::sleep(0.001);
  record_create(f, create, first, before);
  const stopwatch finish;
  event.set();
  long sum = 0;
  for (long v : asyncio::gather(tasks)) sum += v;
  record_finish(f, finish, first);
  return sum;
}

void BM_scale_tasks(benchmark::State& state) {
  const long n = state.range(0);
  const long expected = n * (n - 1) / 2;
  figures f;
  for (auto _ : state) {
    asyncio::run(
        [&] {
          const long before = resident_bytes();
          if (task_round(n, &f, true) != expected) state.SkipWithError("wrong results");
          // A pause, as a server has after a burst: the loop waits once for a
          // timer, and an idle loop trims its cache of callback nodes.
          asyncio::sleep(0.001);
          f.retained = resident_bytes() - before;
          if (task_round(n, &f, false) != expected) state.SkipWithError("wrong results");
        },
        asyncio::event_loop::options{.task_stack = small_stack});
  }
  report(state, f, n);
}
BENCHMARK(BM_scale_tasks)->Arg(1000000)->Iterations(1)->Repetitions(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// One round of the greenlet workload: N greenlets switched into once, each
// suspends by switching back; then each is resumed and finishes.
long greenlet_round(long n, figures* f, bool first) {
  std::vector<greenlet::greenlet> all;
  all.reserve(static_cast<std::size_t>(n));
  const long before = resident_bytes();
  const stopwatch create;
  for (long i = 0; i < n; ++i) {
    all.emplace_back(
        [i] {
          greenlet::getcurrent().parent().switch_();
          return i;
        },
        small_stack);
    all.back().switch_();
  }
  record_create(f, create, first, before);
  const stopwatch finish;
  long sum = 0;
  for (auto& g : all) sum += g.switch_().get<long>();
  all.clear();
  record_finish(f, finish, first);
  return sum;
}

void BM_scale_greenlets(benchmark::State& state) {
  const long n = state.range(0);
  const long expected = n * (n - 1) / 2;
  figures f;
  for (auto _ : state) {
    const long before = resident_bytes();
    if (greenlet_round(n, &f, true) != expected) state.SkipWithError("wrong results");
    f.retained = resident_bytes() - before;
    if (greenlet_round(n, &f, false) != expected) state.SkipWithError("wrong results");
  }
  report(state, f, n);
}
BENCHMARK(BM_scale_greenlets)
    ->Arg(1000000)
    ->Iterations(1)
    ->Repetitions(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
