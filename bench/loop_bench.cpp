// loop_bench.cpp: the event loop's costs, named to line up with the Python
// peers in bench/peers/asyncio_sleep0.py:
//   loop_call_soon        ns per call_soon() callback, scheduled and run
//   loop_sleep0_step      ns per task step: 100,000 tasks each sleep(0) ten
//                         times (creation amortized over the 11 steps), the
//                         same work as py_asyncio/py_uvloop_sleep0_step
//   task_create_finish    create a task, run it, await its result
//   future_resolve_await  a future resolved by a callback and awaited
//   loop_suspended_task_memory  resident bytes per suspended task (counter)
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <vector>

#include <greenlet/asyncio.hpp>

namespace asyncio = greenlet::asyncio;

namespace {

void BM_loop_call_soon(benchmark::State& state) {
  asyncio::event_loop loop;
  const int batch = 10000;
  long counter = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch - 1; ++i) loop.call_soon([&counter] { ++counter; });
    loop.call_soon([&loop] { loop.stop(); });
    loop.run_forever();
  }
  benchmark::DoNotOptimize(counter);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_loop_call_soon);

void BM_loop_sleep0_step(benchmark::State& state) {
  const int tasks = static_cast<int>(state.range(0));
  const int sleeps = static_cast<int>(state.range(1));
  // 100,000 guarded stacks would pass Linux's vm.max_map_count.
  const asyncio::event_loop::options unguarded{.task_stack = {.size = 64 * 1024, .guard_page = false}};
  for (auto _ : state) {
    asyncio::run(
        [&] {
          std::vector<asyncio::Task<>> all;
          all.reserve(tasks);
          for (int t = 0; t < tasks; ++t) {
            all.push_back(asyncio::create_task([sleeps] {
              for (int i = 0; i < sleeps; ++i) asyncio::sleep(0);
            }));
          }
          asyncio::gather(all);
        },
        unguarded);
  }
  state.SetItemsProcessed(state.iterations() * tasks * (sleeps + 1));
}
BENCHMARK(BM_loop_sleep0_step)
    ->Args({100000, 10})
    ->Args({1000, 1000})
    ->Args({10, 100000})
    ->Unit(benchmark::kMillisecond);

void BM_task_create_finish(benchmark::State& state) {
  asyncio::run([&] {
    for (auto _ : state) {
      benchmark::DoNotOptimize(asyncio::await(asyncio::create_task([] { return 1; })));
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_task_create_finish);

void BM_future_resolve_await(benchmark::State& state) {
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    for (auto _ : state) {
      auto fut = loop.create_future<int>();
      loop.call_soon([fut]() mutable { fut.set_result(7); });
      benchmark::DoNotOptimize(asyncio::await(fut));
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_future_resolve_await);

long resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// Memory: N tasks all suspended on one future at once; resident bytes per
// task measured while they wait (stacks, task and greenlet objects).
void BM_loop_suspended_task_memory(benchmark::State& state) {
  const int tasks = static_cast<int>(state.range(0));
  double per_task = 0;
  for (auto _ : state) {
    asyncio::run(
        [&] {
          auto& loop = asyncio::get_running_loop();
          auto gate = loop.create_future<>();
          const long before = resident_bytes();
          std::vector<asyncio::Task<>> all;
          all.reserve(tasks);
          for (int t = 0; t < tasks; ++t)
            all.push_back(asyncio::create_task([gate]() mutable { asyncio::await(gate); }));
          asyncio::sleep(0);  // every task starts and suspends
          per_task = static_cast<double>(resident_bytes() - before) / tasks;
          gate.set_result();
          asyncio::gather(all);
        },
        asyncio::event_loop::options{.task_stack = {.size = 64 * 1024, .guard_page = false}});
  }
  state.counters["bytes_per_task"] = per_task;
  state.SetItemsProcessed(state.iterations() * tasks);
}
BENCHMARK(BM_loop_suspended_task_memory)->Arg(100000)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
