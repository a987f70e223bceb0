// sync_bench.cpp: the synchronization primitives' costs, named to line up
// with the Python peers in bench/peers/asyncio_sync.py:
//   queue_handoff     ns per item passed from one task to another through a
//                     Queue(maxsize=1): put() and get() each wait in turn,
//                     as py_asyncio_queue_handoff
//   lock_uncontended  ns per acquire()+release() of a free Lock in one task,
//                     as py_asyncio_lock_uncontended
#include <benchmark/benchmark.h>

#include <greenlet/asyncio.hpp>

namespace asyncio = greenlet::asyncio;

namespace {

void BM_queue_handoff(benchmark::State& state) {
  const int items = 10000;
  for (auto _ : state) {
    asyncio::run([&] {
      asyncio::Queue<int> q(1);
      auto producer = asyncio::create_task([&] {
        for (int i = 0; i < items; ++i) q.put(i);
      });
      long sum = 0;
      for (int i = 0; i < items; ++i) sum += q.get();
      asyncio::await(producer);
      benchmark::DoNotOptimize(sum);
    });
  }
  state.SetItemsProcessed(state.iterations() * items);
}
BENCHMARK(BM_queue_handoff);

void BM_lock_uncontended(benchmark::State& state) {
  asyncio::run([&] {
    asyncio::Lock lock;
    for (auto _ : state) {
      lock.acquire();
      lock.release();
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_lock_uncontended);

}  // namespace
