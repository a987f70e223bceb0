// loop_bench.cpp: the event loop's costs, named to line up with the Python
// peers in bench/peers/asyncio_sleep0.py:
//   loop_call_soon        ns per call_soon() callback, scheduled and run
//   loop_sleep0_step      ns per task step: 100,000 tasks each sleep(0) ten
//                         times (creation amortized over the 11 steps), the
//                         same work as py_asyncio/py_uvloop_sleep0_step.
//                         100000/0, /1 and /40 split that figure: /0 is a
//                         task's life alone (one stack, reused), /1 adds the
//                         first suspension (100,000 stacks live: a page
//                         fault each beyond the pool's warm stacks), and
//                         (/40 - /1) / 3.9M is the step in steady state
//   loop_sleep0_waves     100000/10 as waves in one running loop, after a
//                         first untimed wave: stacks stay warm between them
//   task_create_finish    create a task, run it, await its result
//   task_create_fail      create a task whose function throws from three calls deep,
//                         await it and catch (its traceback recorded on the way)
//   task_create_cancelled the same with CancelledError: cancelled, no traceback
//   gather_tasks/1000     create 1,000 tasks and gather() their results,
//                         per task
//   gather_tasks_eager/1000  the same with eager_task_factory
//   gather_tasks_factory/1000/0, /1  the same through a custom task factory:
//                         /1 wraps each task's function (task_request::wrap())
//   await_function/0, /1  await(fn) of a function that returns at once, per
//                         call: default task factory / eager_task_factory
//   task_group_tasks/N    N tasks in a TaskGroup, joined, per task
//   shared_future_timeouts/100000  100,000 tasks wait() on one future with
//                         a timeout and give up, per task
//   future_resolve_await  a future resolved by a callback and awaited
//   loop_suspended_task_memory  resident bytes per suspended task (counter)
// and the C++ peers on the same work:
//   boost_fibers_sleep0_step  T Boost.Fiber fibers each yield() S times,
//                             joined: ns per fiber step, as loop_sleep0_step
//   boost_fibers_future_resolve_await  a boost::fibers::promise<int> set by
//                             another fiber, its future awaited
//   thread_future_resolve_await  a std::promise<int> set by another thread,
//                             its std::future awaited (real time)
#include <benchmark/benchmark.h>

#include <malloc.h>
#include <unistd.h>

#include <boost/fiber/all.hpp>

#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include <greenlet/asyncio.hpp>

#include "resident_bytes.hpp"

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

// 100,000 guarded stacks would pass Linux's vm.max_map_count.
const asyncio::event_loop::options unguarded_64k{.task_stack = {.size = 64 * 1024, .guard_page = false}};

// sleep0_wave() runs one wave from a task: `tasks` tasks each sleep(0)
// `sleeps` times, gathered.
void sleep0_wave(int tasks, int sleeps) {
  std::vector<asyncio::Task<>> all;
  all.reserve(tasks);
  for (int t = 0; t < tasks; ++t) {
    all.push_back(asyncio::create_task([sleeps] {
      for (int i = 0; i < sleeps; ++i) asyncio::sleep(0);
    }));
  }
  asyncio::gather(all);
}

void BM_loop_sleep0_step(benchmark::State& state) {
  const int tasks = static_cast<int>(state.range(0));
  const int sleeps = static_cast<int>(state.range(1));
  for (auto _ : state) asyncio::run([&] { sleep0_wave(tasks, sleeps); }, unguarded_64k);
  state.SetItemsProcessed(state.iterations() * tasks * (sleeps + 1));
}

// loop_sleep0_waves: the same work as loop_sleep0_step, as waves of tasks in
// one running loop after a first, untimed wave: a busy server's bursts, one
// after another. A running loop keeps finished tasks' stacks warm until it
// next waits (docs/asyncio.md), so later waves take no page faults.
void BM_loop_sleep0_waves(benchmark::State& state) {
  const int tasks = static_cast<int>(state.range(0));
  const int sleeps = static_cast<int>(state.range(1));
  asyncio::run(
      [&] {
        sleep0_wave(tasks, sleeps);
        for (auto _ : state) sleep0_wave(tasks, sleeps);
      },
      unguarded_64k);
  state.SetItemsProcessed(state.iterations() * tasks * (sleeps + 1));
}
BENCHMARK(BM_loop_sleep0_waves)->Args({100000, 10})->Unit(benchmark::kMillisecond);

BENCHMARK(BM_loop_sleep0_step)
    ->Args({100000, 10})
    ->Args({100000, 0})
    ->Args({100000, 1})
    ->Args({100000, 40})
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

// throws_from(depth) throws from depth calls down, as a task's error seldom comes from its own
// function: the traceback's walk goes through each frame.
template <class Exception>
[[gnu::noinline]] int throws_from(int depth) {
  if (depth == 0) throw Exception("failed");
  return throws_from<Exception>(depth - 1) + 1;
}

template <class Exception>
void BM_task_create_raise(benchmark::State& state) {
  asyncio::run([&] {
    for (auto _ : state) {
      try {
        asyncio::await(asyncio::create_task([] { return throws_from<Exception>(3); }));
      } catch (const Exception&) {
      }
    }
  });
  state.SetItemsProcessed(state.iterations());
}
void BM_task_create_fail(benchmark::State& state) { BM_task_create_raise<std::runtime_error>(state); }
void BM_task_create_cancelled(benchmark::State& state) { BM_task_create_raise<asyncio::CancelledError>(state); }
BENCHMARK(BM_task_create_fail);
BENCHMARK(BM_task_create_cancelled);

// gather_rounds(state, set_up) runs gather_tasks/N's timed loop under asyncio::run, after
// set_up(loop) (a task factory) in the running loop: each iteration creates N tasks, each returning
// its index, and gather()s them into a vector of results.
template <class SetUp>
void gather_rounds(benchmark::State& state, SetUp set_up) {
  const int n = static_cast<int>(state.range(0));
  asyncio::run([&] {
    set_up(asyncio::get_running_loop());
    std::vector<asyncio::Task<int>> tasks;
    tasks.reserve(n);
    for (auto _ : state) {
      tasks.clear();
      for (int i = 0; i < n; ++i) tasks.push_back(asyncio::create_task([i] { return i; }));
      const std::vector<int> results = asyncio::gather(tasks);
      if (results.back() != n - 1) state.SkipWithError("gather() lost a result");
    }
  });
  state.SetItemsProcessed(state.iterations() * n);
}

// gather(): N tasks created, each returning its index, and gathered into a
// vector of results; ns per task (creating, running and collecting it).
void BM_gather_tasks(benchmark::State& state) {
  gather_rounds(state, [](asyncio::event_loop&) {});
}
BENCHMARK(BM_gather_tasks)->Arg(1000);

// gather_tasks/1000 with the loop's task factory set to eager_task_factory: each task runs to its end
// inside create_task(), and gather() of children all done returns without suspending (3.12's rule).
void BM_gather_tasks_eager(benchmark::State& state) {
  gather_rounds(state, [](asyncio::event_loop& loop) { loop.set_task_factory(asyncio::eager_task_factory); });
}
BENCHMARK(BM_gather_tasks_eager)->Arg(1000);

// gather_tasks/1000 through a custom task factory: /0 one that only lets create_task() make the
// task; /1 one that wraps every task's function with one shared wrapper counting starts and ends
// (task_request::wrap()), as py_asyncio_gather_wrapped's factory wraps each coroutine.
void BM_gather_tasks_factory(benchmark::State& state) {
  const bool wrapped = state.range(1) != 0;
  long started = 0;
  long finished = 0;
  auto counting = std::make_shared<const asyncio::task_wrapper>([&](asyncio::task_body& body) {
    ++started;
    body();
    ++finished;
  });
  gather_rounds(state, [&](asyncio::event_loop& loop) {
    loop.set_task_factory([&](asyncio::event_loop&, asyncio::task_request& request) {
      if (wrapped) request.wrap(counting);
    });
  });
  const long expected = wrapped ? state.iterations() * state.range(0) : 0;
  if (started != expected || finished != expected) state.SkipWithError("the wrapper missed a task");
}
BENCHMARK(BM_gather_tasks_factory)->Args({1000, 0})->Args({1000, 1});

// await(fn) of a function that returns at once (a cache hit): a task made, run and awaited, per
// call. Arg 0: the default factory (the awaiting task suspends, the loop runs the new task's step);
// arg 1: eager_task_factory (the task runs inside create_task(), the await does not suspend).
void BM_await_function(benchmark::State& state) {
  const bool eager = state.range(0) != 0;
  asyncio::run([&] {
    if (eager) asyncio::get_running_loop().set_task_factory(asyncio::eager_task_factory);
    int sum = 0;
    for (auto _ : state) sum += asyncio::await([] { return 1; });
    if (sum != static_cast<int>(state.iterations())) state.SkipWithError("await(fn) lost a result");
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_await_function)->Arg(0)->Arg(1);

// A TaskGroup of N tasks, each returning at once, joined: ns per task. /1000
// compares with gather_tasks/1000; /100000 shows what a group costs per task
// when it holds many (the cost per task must not grow with N).
void BM_task_group_tasks(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  long finished = 0;
  asyncio::run([&] {
    for (auto _ : state) {
      asyncio::task_group([&](asyncio::TaskGroup& group) {
        for (int i = 0; i < n; ++i) group.create_task([&finished] { ++finished; });
      });
    }
  });
  if (finished != state.iterations() * n) state.SkipWithError("a task of the group did not run");
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_task_group_tasks)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);

// N tasks wait() on one shared future with a timeout and all give up: each
// unregisters from the shared future. ns per task, the 10 ms timeout
// included; it must not grow with N (it did as N^2: 14 s for 100,000).
void BM_shared_future_timeouts(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  asyncio::run(
      [&] {
        std::vector<asyncio::Task<void>> tasks;
        tasks.reserve(n);
        for (auto _ : state) {
          auto shared = asyncio::get_running_loop().create_future<void>();
          tasks.clear();
          for (int i = 0; i < n; ++i) {
            tasks.push_back(asyncio::create_task([shared] { asyncio::wait(std::vector{shared}, 0.01); }));
          }
          asyncio::gather(tasks);
          if (shared.done()) state.SkipWithError("the shared future was touched");
        }
      },
      unguarded_64k);
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_shared_future_timeouts)->Arg(100000)->Unit(benchmark::kMillisecond);

// Boost.Fiber on the same work as BM_loop_sleep0_step: T fibers, each
// yield()ing S times, launched (post) and joined from the benchmark's own
// fiber; round_robin scheduler. Boost's default stack allocator:
// fixedsize_stack, 128 KiB, malloc'd (so mmap'd: glibc's threshold is
// 128 KiB) and unguarded. 100,000 of them fit, as the kernel merges adjacent
// anonymous mappings. 64 KiB stacks (as our tasks') measured within 10% of
// these in a separate check.
void BM_boost_fibers_sleep0_step(benchmark::State& state) {
  const int fibers = static_cast<int>(state.range(0));
  const int yields = static_cast<int>(state.range(1));
  for (auto _ : state) {
    std::vector<boost::fibers::fiber> all;
    all.reserve(fibers);
    for (int f = 0; f < fibers; ++f) {
      all.emplace_back(boost::fibers::launch::post, [yields] {
        for (int i = 0; i < yields; ++i) boost::this_fiber::yield();
      });
    }
    for (auto& f : all) f.join();
  }
  state.SetItemsProcessed(state.iterations() * fibers * (yields + 1));
}
BENCHMARK(BM_boost_fibers_sleep0_step)
    ->Args({100000, 10})
    ->Args({1000, 1000})
    ->Args({10, 100000})
    ->Unit(benchmark::kMillisecond);

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

// Boost.Fiber's promise and future on the same work: a resolver fiber (started
// once, like our loop) sets each promise the benchmark's fiber hands it, while
// the benchmark's fiber waits in get().
void BM_boost_fibers_future_resolve_await(benchmark::State& state) {
  boost::fibers::promise<int>* pending = nullptr;
  bool stop = false;
  boost::fibers::fiber resolver(boost::fibers::launch::post, [&] {
    while (!stop) {
      if (pending != nullptr) std::exchange(pending, nullptr)->set_value(7);
      boost::this_fiber::yield();
    }
  });
  for (auto _ : state) {
    boost::fibers::promise<int> p;
    boost::fibers::future<int> f = p.get_future();
    pending = &p;
    benchmark::DoNotOptimize(f.get());
  }
  stop = true;
  resolver.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_boost_fibers_future_resolve_await);

// std::promise and std::future across two threads: a resolver thread takes
// each promise through a mutex-guarded slot and sets it; the benchmark's
// thread blocks in get().
void BM_thread_future_resolve_await(benchmark::State& state) {
  std::mutex m;
  std::condition_variable handed;
  std::promise<int>* pending = nullptr;
  bool stop = false;
  std::thread resolver([&] {
    for (;;) {
      std::promise<int>* p;
      {
        std::unique_lock lock(m);
        handed.wait(lock, [&] { return pending != nullptr || stop; });
        if (stop) return;
        p = std::exchange(pending, nullptr);
      }
      p->set_value(7);
    }
  });
  for (auto _ : state) {
    std::promise<int> p;
    std::future<int> f = p.get_future();
    {
      std::lock_guard lock(m);
      pending = &p;
    }
    handed.notify_one();
    benchmark::DoNotOptimize(f.get());
  }
  {
    std::lock_guard lock(m);
    stop = true;
  }
  handed.notify_one();
  resolver.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_thread_future_resolve_await)->UseRealTime();

long heap_bytes_in_use() { return static_cast<long>(mallinfo2().uordblks); }

// Memory: N tasks all suspended on one future at once; resident bytes per
// task measured while they wait, in the first iteration only (later ones
// would find the first one's heap and pooled stacks already resident).
// heap_bytes_per_task is roughly what malloc reports in use for them (task,
// greenlet, the loop's buffers such as its ready queue; malloc's own
// overhead included; it moves by ~100 B with how malloc placed the big
// buffers), stack_bytes_per_task the rest: the stack pages they touched.
// The second argument is event_loop::options::compact_tasks (1: each task's
// objects in its stack's top page, so heap_bytes_per_task is what is left:
// the loop's and the future's per-task entries).
void BM_loop_suspended_task_memory(benchmark::State& state) {
  const int tasks = static_cast<int>(state.range(0));
  asyncio::event_loop::options opts = unguarded_64k;
  opts.compact_tasks = state.range(1) != 0;
  double per_task = -1, heap_per_task = 0;
  for (auto _ : state) {
    asyncio::run(
        [&] {
          auto& loop = asyncio::get_running_loop();
          auto gate = loop.create_future<>();
          std::vector<asyncio::Task<>> all;
          all.reserve(tasks);
          const long before = resident_bytes();
          const long heap_before = heap_bytes_in_use();
          for (int t = 0; t < tasks; ++t)
            all.push_back(asyncio::create_task([gate]() mutable { asyncio::await(gate); }));
          // Every task starts and suspends; then the loop, with nothing left
          // to run, waits (for this timer), as it would with real waits,
          // and trims its cache of callback nodes.
          asyncio::sleep(0.001);
          if (per_task < 0) {
            heap_per_task = static_cast<double>(heap_bytes_in_use() - heap_before) / tasks;
            per_task = static_cast<double>(resident_bytes() - before) / tasks;
          }
          gate.set_result();
          asyncio::gather(all);
        },
        opts);
  }
  state.counters["bytes_per_task"] = per_task;
  state.counters["heap_bytes_per_task"] = heap_per_task;
  state.counters["stack_bytes_per_task"] = per_task - heap_per_task;
  state.SetItemsProcessed(state.iterations() * tasks);
}
BENCHMARK(BM_loop_suspended_task_memory)
    ->Args({100000, 0})
    ->Args({100000, 1})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
