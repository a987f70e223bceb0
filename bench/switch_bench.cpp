// switch_bench.cpp: the cost of one switch, and of creating, running and
// destroying a fiber, for our greenlet and its peers in one binary, so that
// every figure comes from the same build, machine and run.
//
// Switch benchmarks ping-pong between two contexts: one benchmark iteration
// is a round trip, two switches, and items/s counts switches, so
// 1e9 / items_per_second is the cost of a single switch. Create benchmarks
// count one item per fiber created, entered, finished and destroyed.
//
// The _fp variants do one inexact floating-point division on each side
// between switches. That sets MXCSR's sticky precision flag, which
// jump_fcontext saves and restores with each context; our greenlet
// canonicalizes the status bits before each jump (src/fiber/switch.cpp).
// BM_boost_fiber_switch_fp_one_side makes the saved MXCSR values differ at
// every switch, and BM_boost_fiber_switch_rounding_differs makes the control
// bits differ, the costliest case for ldmxcsr; both show the raw cost that
// canonicalization is there to avoid (or, for control bits, cannot avoid).
#include <benchmark/benchmark.h>

#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>
#include <boost/context/pooled_fixedsize_stack.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>
#include <boost/fiber/all.hpp>

#include <algorithm>
#include <cfenv>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "greenlet/fiber/greenlet.hpp"
#include "ucontext_start.hpp"

namespace {

namespace ctx = boost::context;

// The stack size of every fiber made here, our default: peers get the same.
constexpr std::size_t stack_bytes = 128 * 1024;

// fp_work() is one inexact division the compiler cannot remove: it sets the
// precision flag in MXCSR.
inline void fp_work() {
  volatile double x = 1.0;
  x = x / 3.0;
}

inline unsigned read_mxcsr() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned v;
  __asm__ volatile("stmxcsr %0" : "=m"(v));
  return v;
#else
  return 0;
#endif
}

void count_switches(benchmark::State& state) { state.SetItemsProcessed(state.iterations() * 2); }

// The floating-point state of the two sides of a ping-pong. The framework's
// own arithmetic has set MXCSR's precision flag before the timed loop, and a
// new context starts with a copy of its creator's MXCSR.
//   none: no floating-point work; both contexts hold the same MXCSR.
//   both_sides: an inexact division on each side between switches; the
//     precision flag is set on both, so the saved values are still equal.
//   one_side: main clears its flags once and does no floating-point work,
//     the child divides: the MXCSR values saved with the two contexts differ
//     (precision flag) at every switch.
//   rounding_differs: both divide, and the child rounds upward: the control
//     bits differ at every switch, which no canonicalization can hide.
enum class fp_mode { none, both_sides, one_side, rounding_differs };

template <fp_mode Mode>
class main_side {
 public:
  // before_switch() is main's work between two switches.
  void before_switch() {
    if constexpr (Mode == fp_mode::both_sides || Mode == fp_mode::rounding_differs) fp_work();
    if constexpr (Mode == fp_mode::one_side) {
      if (first_) [[unlikely]] {
        std::feclearexcept(FE_ALL_EXCEPT);
        first_ = false;
      }
    }
  }
  // after_loop() puts main back in its loop state (the framework has done
  // arithmetic since) and returns its MXCSR.
  unsigned after_loop() {
    first_ = true;
    before_switch();
    return read_mxcsr();
  }

 private:
  bool first_ = true;
};

template <fp_mode Mode>
void child_setup() {
  if constexpr (Mode == fp_mode::rounding_differs) std::fesetround(FE_UPWARD);
}

template <fp_mode Mode>
void child_before_switch() {
  if constexpr (Mode != fp_mode::none) fp_work();
}

// report_mxcsr() shows the MXCSR each side switches with (0x1f80: flags
// clear, 0x1fa0: precision flag set, 0x5fa0: rounding upward too).
void report_mxcsr(benchmark::State& state, unsigned main_mxcsr, unsigned child_mxcsr) {
  state.counters["mxcsr_main"] = main_mxcsr;
  state.counters["mxcsr_child"] = child_mxcsr;
}

// ---------------------------------------------------------------- greenlet

template <fp_mode Mode>
void greenlet_switch(benchmark::State& state) {
  greenlet::greenlet main = greenlet::getcurrent();
  bool stop = false;
  unsigned child_mxcsr = 0;
  greenlet::greenlet child([&] {
    child_setup<Mode>();
    while (!stop) {
      child_before_switch<Mode>();
      main.switch_();
    }
    child_mxcsr = read_mxcsr();
  });
  child.switch_();  // start it: later switches land in its loop
  main_side<Mode> side;
  for (auto _ : state) {
    side.before_switch();
    child.switch_();
  }
  const unsigned main_mxcsr = side.after_loop();
  stop = true;
  child.switch_();
  if (!child.dead()) state.SkipWithError("child greenlet did not finish");
  report_mxcsr(state, main_mxcsr, child_mxcsr);
  count_switches(state);
}

void BM_greenlet_switch(benchmark::State& state) { greenlet_switch<fp_mode::none>(state); }
void BM_greenlet_switch_fp(benchmark::State& state) { greenlet_switch<fp_mode::both_sides>(state); }
void BM_greenlet_switch_fp_one_side(benchmark::State& state) { greenlet_switch<fp_mode::one_side>(state); }
void BM_greenlet_switch_rounding_differs(benchmark::State& state) { greenlet_switch<fp_mode::rounding_differs>(state); }
BENCHMARK(BM_greenlet_switch);
BENCHMARK(BM_greenlet_switch_fp);
BENCHMARK(BM_greenlet_switch_fp_one_side);
BENCHMARK(BM_greenlet_switch_rounding_differs);

// ------------------------------------------------- raw boost::context::fiber

template <fp_mode Mode>
void boost_fiber_switch(benchmark::State& state) {
  bool stop = false;
  unsigned child_mxcsr = 0;
  ctx::fiber child(std::allocator_arg, ctx::fixedsize_stack(stack_bytes), [&](ctx::fiber&& main) {
    child_setup<Mode>();
    while (!stop) {
      child_before_switch<Mode>();
      main = std::move(main).resume();
    }
    child_mxcsr = read_mxcsr();
    return std::move(main);
  });
  child = std::move(child).resume();
  main_side<Mode> side;
  for (auto _ : state) {
    side.before_switch();
    child = std::move(child).resume();
  }
  const unsigned main_mxcsr = side.after_loop();
  stop = true;
  child = std::move(child).resume();
  report_mxcsr(state, main_mxcsr, child_mxcsr);
  count_switches(state);
}

void BM_boost_fiber_switch(benchmark::State& state) { boost_fiber_switch<fp_mode::none>(state); }
void BM_boost_fiber_switch_fp(benchmark::State& state) { boost_fiber_switch<fp_mode::both_sides>(state); }
void BM_boost_fiber_switch_fp_one_side(benchmark::State& state) { boost_fiber_switch<fp_mode::one_side>(state); }
void BM_boost_fiber_switch_rounding_differs(benchmark::State& state) {
  boost_fiber_switch<fp_mode::rounding_differs>(state);
}
BENCHMARK(BM_boost_fiber_switch);
BENCHMARK(BM_boost_fiber_switch_fp);
BENCHMARK(BM_boost_fiber_switch_fp_one_side);
BENCHMARK(BM_boost_fiber_switch_rounding_differs);

// ------------------------------------ ours and raw fiber, alternating bursts

// On a shared VM the host's speed can swing 2x between one benchmark and the
// next (2026-11-27, an Intel Xeon: raw fiber 3.9 ns in one process, 7-8 ns in
// the next), so the ratio of two rows run a minute apart says little. This
// one times our ping-pong and a raw fiber's in alternating bursts of
// `burst_round_trips` in one loop: each iteration is one burst of each.
// Counters (per switch): greenlet_ns and raw_fiber_ns, the medians over the
// bursts, and ratio, the median of the per-burst ratios: the figure to hold
// against the switch target. No floating-point work (both in fast mode).
constexpr int burst_round_trips = 10'000;

// Nanoseconds per switch of `burst_round_trips` round trips of `round_trip`.
template <class RoundTrip>
double ns_per_switch(RoundTrip&& round_trip) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < burst_round_trips; ++i) round_trip();
  const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
  return took.count() / (2.0 * burst_round_trips);
}

double median_of(std::vector<double> values) {
  if (values.empty()) return 0;
  auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  return *middle;
}

void BM_greenlet_switch_interleaved(benchmark::State& state) {
  bool stop = false;
  greenlet::greenlet main = greenlet::getcurrent();
  greenlet::greenlet child([&] {
    while (!stop) main.switch_();
  });
  child.switch_();
  ctx::fiber raw(std::allocator_arg, ctx::fixedsize_stack(stack_bytes), [&](ctx::fiber&& back) {
    while (!stop) back = std::move(back).resume();
    return std::move(back);
  });
  raw = std::move(raw).resume();
  std::vector<double> ours, theirs, ratios;
  for (auto _ : state) {
    const double raw_ns = ns_per_switch([&] { raw = std::move(raw).resume(); });
    const double our_ns = ns_per_switch([&] { child.switch_(); });
    theirs.push_back(raw_ns);
    ours.push_back(our_ns);
    ratios.push_back(our_ns / raw_ns);
  }
  stop = true;
  child.switch_();
  raw = std::move(raw).resume();
  if (!child.dead()) state.SkipWithError("child greenlet did not finish");
  state.counters["greenlet_ns"] = median_of(ours);
  state.counters["raw_fiber_ns"] = median_of(theirs);
  state.counters["ratio"] = median_of(ratios);
}
BENCHMARK(BM_greenlet_switch_interleaved);

// ------------------------------------------------------------- ucontext

struct ucontext_pair {
  ucontext_t main{};
  ucontext_t child{};
  bool stop = false;
};

void ucontext_child(unsigned hi, unsigned lo) {
  auto* p = bench_ucontext::pointer_from_halves<ucontext_pair>(hi, lo);
  while (!p->stop) swapcontext(&p->child, &p->main);
}

void BM_ucontext_switch(benchmark::State& state) {
  ucontext_pair p;
  std::unique_ptr<char[]> stack(new char[stack_bytes]);
  bench_ucontext::prepare(p.child, p.main, stack.get(), stack_bytes, &ucontext_child, &p);
  swapcontext(&p.main, &p.child);
  for (auto _ : state) swapcontext(&p.main, &p.child);
  p.stop = true;
  swapcontext(&p.main, &p.child);  // the child returns to uc_link
  count_switches(state);
}
BENCHMARK(BM_ucontext_switch);

// ------------------------------------------------------------ Boost.Fiber

void BM_boost_fibers_yield(benchmark::State& state) {
  bool stop = false;
  boost::fibers::fiber other(boost::fibers::launch::post, std::allocator_arg,
                             boost::fibers::fixedsize_stack(stack_bytes), [&] {
                               while (!stop) boost::this_fiber::yield();
                             });
  boost::this_fiber::yield();
  for (auto _ : state) boost::this_fiber::yield();
  stop = true;
  other.join();
  count_switches(state);
}
BENCHMARK(BM_boost_fibers_yield);

// ------------------------------------------------------------ OS threads

void BM_thread_condvar_pingpong(benchmark::State& state) {
  std::mutex m;
  std::condition_variable to_partner;
  std::condition_variable to_main;
  bool partner_turn = false;
  bool stop = false;
  std::thread partner([&] {
    std::unique_lock lock(m);
    for (;;) {
      to_partner.wait(lock, [&] { return partner_turn || stop; });
      if (stop) return;
      partner_turn = false;
      to_main.notify_one();
    }
  });
  for (auto _ : state) {
    std::unique_lock lock(m);
    partner_turn = true;
    to_partner.notify_one();
    to_main.wait(lock, [&] { return !partner_turn; });
  }
  {
    std::lock_guard lock(m);
    stop = true;
  }
  to_partner.notify_one();
  partner.join();
  count_switches(state);
}
BENCHMARK(BM_thread_condvar_pingpong)->UseRealTime();

// ------------------------------------------------------------ creation

void BM_greenlet_create_destroy(benchmark::State& state) {
  for (auto _ : state) {
    greenlet::greenlet g([] {});
    g.switch_();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_greenlet_create_destroy);

// Same without the guard page (stacks still pooled).
void BM_greenlet_create_destroy_unguarded(benchmark::State& state) {
  for (auto _ : state) {
    greenlet::greenlet g([] {}, greenlet::stack_options{stack_bytes, false});
    g.switch_();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_greenlet_create_destroy_unguarded);

template <class StackAllocator>
void boost_fiber_create(benchmark::State& state, StackAllocator alloc) {
  for (auto _ : state) {
    ctx::fiber f(std::allocator_arg, alloc, [](ctx::fiber&& caller) { return std::move(caller); });
    f = std::move(f).resume();
    benchmark::DoNotOptimize(f);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_boost_fiber_create_fixedsize(benchmark::State& state) {
  boost_fiber_create(state, ctx::fixedsize_stack(stack_bytes));
}
void BM_boost_fiber_create_protected(benchmark::State& state) {
  boost_fiber_create(state, ctx::protected_fixedsize_stack(stack_bytes));
}
void BM_boost_fiber_create_pooled(benchmark::State& state) {
  boost_fiber_create(state, ctx::pooled_fixedsize_stack(stack_bytes));
}
BENCHMARK(BM_boost_fiber_create_fixedsize);
BENCHMARK(BM_boost_fiber_create_protected);
BENCHMARK(BM_boost_fiber_create_pooled);

// ------------------------------------------------------------ reading a stack

// get_stack() of a greenlet suspended three calls deep: the hop onto its stack, the walk, and
// naming the frames (libbacktrace, its tables loaded by the warm-up read). Not a switch: the
// greenlet does not run.
[[gnu::noinline]] void bench_stack_wait(greenlet::greenlet& back, int depth) {
  if (depth > 0) {
    bench_stack_wait(back, depth - 1);
  } else {
    back.switch_();
  }
  benchmark::ClobberMemory();  // not a tail call: each frame stays
}

void BM_greenlet_get_stack(benchmark::State& state) {
  greenlet::greenlet main = greenlet::getcurrent();
  greenlet::greenlet g([&main] { bench_stack_wait(main, 2); });
  g.switch_();
  std::size_t frames = g.get_stack().size();
  for (auto _ : state) {
    greenlet::stack_summary stack = g.get_stack();
    frames = stack.size();
    benchmark::DoNotOptimize(stack.data());
  }
  state.counters["frames"] = static_cast<double>(frames);
  g.switch_();
}
BENCHMARK(BM_greenlet_get_stack);

}  // namespace
