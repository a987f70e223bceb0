// stack_copy_bench.cpp: the trade of stack copying (stack_mode::shared)
// against separate stacks, in one run.
//  - switch cost between two greenlets as a function of how many bytes of
//    stack each keeps live (shared mode copies them out and in on every
//    switch between two shared greenlets; separate mode never copies);
//  - main <-> one shared greenlet (the shared stack stays put: no copying);
//  - resident bytes per suspended greenlet, 100,000 suspended at once.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <vector>

#include <greenlet/greenlet.hpp>

#include "resident_bytes.hpp"

namespace {

using greenlet::stack_mode;

// with_frame(bytes, f) calls f with `bytes` of live stack below the caller.
template <class F>
__attribute__((noinline)) void with_frame(std::size_t bytes, F&& f) {
  char* frame = static_cast<char*>(__builtin_alloca(bytes + 1));
  std::memset(frame, 1, bytes + 1);
  benchmark::DoNotOptimize(frame);
  f();
  benchmark::DoNotOptimize(frame[bytes]);
}

// Two greenlets of `mode` ping-pong, each with state.range(0) bytes of frame.
void pingpong(benchmark::State& state, stack_mode mode) {
  const auto depth = static_cast<std::size_t>(state.range(0));
  const greenlet::stack_options options{.mode = mode};
  bool done = false;
  greenlet::greenlet a, b;
  b = greenlet::greenlet(
      [&] {
        with_frame(depth, [&] {
          while (!done) a.switch_();
        });
      },
      options);
  a = greenlet::greenlet(
      [&] {
        with_frame(depth, [&] {
          for (auto _ : state) b.switch_();  // there and back: two switches
        });
        done = true;
        b.switch_();
      },
      options);
  a.switch_();
  state.SetItemsProcessed(state.iterations() * 2);
  state.counters["ns_per_switch"] = benchmark::Counter(static_cast<double>(state.iterations() * 2),
                                                       benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_pingpong_separate(benchmark::State& state) { pingpong(state, stack_mode::separate); }
void BM_pingpong_shared(benchmark::State& state) { pingpong(state, stack_mode::shared); }
BENCHMARK(BM_pingpong_separate)->Arg(0)->Arg(1024)->Arg(4096)->Arg(16384);
BENCHMARK(BM_pingpong_shared)->Arg(0)->Arg(1024)->Arg(4096)->Arg(16384);

// main <-> one greenlet: in shared mode its bytes stay on the shared stack.
void main_switch(benchmark::State& state, stack_mode mode) {
  greenlet::greenlet main = greenlet::getcurrent();
  greenlet::greenlet child(
      [&] {
        for (;;) main.switch_();
      },
      greenlet::stack_options{.mode = mode});
  for (auto _ : state) child.switch_();
  state.SetItemsProcessed(state.iterations() * 2);
  state.counters["ns_per_switch"] = benchmark::Counter(static_cast<double>(state.iterations() * 2),
                                                       benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
void BM_main_switch_separate(benchmark::State& state) { main_switch(state, stack_mode::separate); }
void BM_main_switch_shared(benchmark::State& state) { main_switch(state, stack_mode::shared); }
BENCHMARK(BM_main_switch_separate);
BENCHMARK(BM_main_switch_shared);

// Resident bytes per suspended greenlet: N greenlets each started and
// suspended in a switch back to main; their objects, stacks or saved bytes
// are what the process holds for them.
void suspended_memory(benchmark::State& state, greenlet::stack_options options) {
  const auto count = static_cast<std::size_t>(state.range(0));
  double per_greenlet = 0;
  for (auto _ : state) {
    std::vector<greenlet::greenlet> all;
    all.reserve(count);
    greenlet::greenlet main = greenlet::getcurrent();
    const long before = resident_bytes();
    for (std::size_t i = 0; i < count; ++i) {
      all.emplace_back([&main] { main.switch_(); }, options);
      all.back().switch_();
    }
    // The last one is still on the shared stack; switching to a new one
    // puts every suspended greenlet in the same state.
    greenlet::greenlet last([&main] { main.switch_(); }, options);
    last.switch_();
    per_greenlet = static_cast<double>(resident_bytes() - before) / static_cast<double>(count);
    all.clear();  // kills them (GreenletExit), unwinding every stack
  }
  state.counters["bytes_per_greenlet"] = per_greenlet;
  state.SetItemsProcessed(state.iterations() * static_cast<long>(count));
}
void BM_suspended_memory_separate(benchmark::State& state) {
  suspended_memory(state, {.size = 16 * 1024, .guard_page = false, .mode = stack_mode::separate});
}
void BM_suspended_memory_shared(benchmark::State& state) { suspended_memory(state, {.mode = stack_mode::shared}); }
BENCHMARK(BM_suspended_memory_separate)->Arg(100000)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_suspended_memory_shared)->Arg(100000)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
