// generator_bench.cpp: the cost of one generator step, for our generator and
// its peers in one binary, so that every figure comes from the same build,
// machine and run.
//
// A step is one value produced by the generator's body and taken by its
// consumer: for the context-switching generators a round trip (resume the
// body, come back at its yield). One benchmark iteration is one step, and
// items/s counts steps, so 1e9 / items_per_second is ns per step.
//   generator_next            greenlet::generator<int> yielding ints forever, g.next()
//   generator_static_yield/N  the same through the static generator<int>::yield(i),
//                             with N other generators alive (16 KiB stacks)
//   generator_range_for/N     range-for over a generator of N ints, created
//                             per iteration: ns per item, creation amortized
//   boost_fiber_generator     raw boost::context::fiber, resume(), the value
//                             passed through a captured variable
//   boost_coroutine2_generator[_range_for/N]  coroutine2 pull_type<int>
//   ucontext_generator        swapcontext there and back, value in a struct
//   boost_fibers_channel_generator  two Boost.Fiber fibers, one int per step
//                             over an unbuffered_channel<int>
//   thread_condvar_generator  two std::threads handing an int over a mutex +
//                             condition variable (real time)
//   cxx20_coroutine_generator[_range_for/N]  a stackless C++20 co_yield
//                             generator written below: the floor
// Stacks are 128 KiB everywhere (our default).
#include <benchmark/benchmark.h>

#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>
#include <boost/fiber/all.hpp>

// Boost 1.74's push_coroutine<T>::control_block::destroy() sets a flag in the
// control block after running its destructor, which g++ 12 reports as
// -Wmaybe-uninitialized at every pull_type instantiation; the warning is the
// library's, not this file's.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/coroutine2/all.hpp>
#pragma GCC diagnostic pop

#include <condition_variable>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <iterator>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "greenlet/generator.hpp"
#include "ucontext_start.hpp"

namespace {

namespace ctx = boost::context;

// The stack size of every stackful generator made here, our default.
constexpr std::size_t stack_bytes = 128 * 1024;

// Items per finite generator in the range-for benchmarks.
constexpr int range_items = 1000;

void count_steps(benchmark::State& state) { state.SetItemsProcessed(state.iterations()); }

// ---------------------------------------------------------------- greenlet

void BM_generator_next(benchmark::State& state) {
  greenlet::generator<int> g([](greenlet::generator<int>::context& co) {
    for (int i = 0;; ++i) co.yield(i);
  });
  for (auto _ : state) benchmark::DoNotOptimize(g.next());
  count_steps(state);
}  // g is closed here: GeneratorExit unwinds its body
BENCHMARK(BM_generator_next);

// The free-standing generator<int>::yield(v), which finds its generator from
// the current greenlet, with N other generators alive (started, suspended):
// its lookup walks the greenlet's parents, so N must not matter (it searched
// every live generator before 0.1.0's fix: ~19 us per step at N = 10,000).
void BM_generator_static_yield(benchmark::State& state) {
  using gen = greenlet::generator<int>;
  const greenlet::stack_options small{.size = 16 * 1024, .guard_page = false};
  gen g(
      [] {
        for (int i = 0;; ++i) gen::yield(i);
      },
      small);
  g.next();
  std::vector<gen> others;
  others.reserve(static_cast<std::size_t>(state.range(0)));
  for (std::int64_t i = 0; i < state.range(0); ++i) {
    others.emplace_back(
        [] {
          for (;;) gen::yield(0);
        },
        small);
    others.back().next();
  }
  for (auto _ : state) benchmark::DoNotOptimize(g.next());
  count_steps(state);
}
BENCHMARK(BM_generator_static_yield)->Arg(0)->Arg(10000);

void BM_generator_range_for(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    greenlet::generator<int> g([n](greenlet::generator<int>::context& co) {
      for (int i = 0; i < n; ++i) co.yield(i);
    });
    long sum = 0;
    for (int v : g) sum += v;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_generator_range_for)->Arg(range_items);

// ------------------------------------------------- raw boost::context::fiber

void BM_boost_fiber_generator(benchmark::State& state) {
  bool stop = false;
  int value = 0;
  ctx::fiber body(std::allocator_arg, ctx::fixedsize_stack(stack_bytes), [&](ctx::fiber&& consumer) {
    for (int i = 0; !stop; ++i) {
      value = i;
      consumer = std::move(consumer).resume();
    }
    return std::move(consumer);
  });
  for (auto _ : state) {
    body = std::move(body).resume();
    benchmark::DoNotOptimize(value);
  }
  stop = true;
  body = std::move(body).resume();
  if (body) state.SkipWithError("generator fiber did not finish");
  count_steps(state);
}
BENCHMARK(BM_boost_fiber_generator);

// ------------------------------------------------------- Boost.Coroutine2

using coro_int = boost::coroutines2::coroutine<int>;

void BM_boost_coroutine2_generator(benchmark::State& state) {
  coro_int::pull_type source(ctx::fixedsize_stack(stack_bytes), [](coro_int::push_type& sink) {
    for (int i = 0;; ++i) sink(i);
  });
  for (auto _ : state) {
    source();
    benchmark::DoNotOptimize(source.get());
  }
  count_steps(state);
}  // source unwinds its unfinished body (forced_unwind)
BENCHMARK(BM_boost_coroutine2_generator);

void BM_boost_coroutine2_range_for(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    coro_int::pull_type source(ctx::fixedsize_stack(stack_bytes), [n](coro_int::push_type& sink) {
      for (int i = 0; i < n; ++i) sink(i);
    });
    long sum = 0;
    for (int v : source) sum += v;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_boost_coroutine2_range_for)->Arg(range_items);

// ------------------------------------------------------------- ucontext

struct ucontext_generator {
  ucontext_t consumer{};
  ucontext_t body{};
  int value = 0;
  bool stop = false;
};

void ucontext_body(unsigned hi, unsigned lo) {
  auto* g = bench_ucontext::pointer_from_halves<ucontext_generator>(hi, lo);
  for (int i = 0; !g->stop; ++i) {
    g->value = i;
    swapcontext(&g->body, &g->consumer);
  }
}

void BM_ucontext_generator(benchmark::State& state) {
  ucontext_generator g;
  std::unique_ptr<char[]> stack(new char[stack_bytes]);
  bench_ucontext::prepare(g.body, g.consumer, stack.get(), stack_bytes, &ucontext_body, &g);
  for (auto _ : state) {
    swapcontext(&g.consumer, &g.body);
    benchmark::DoNotOptimize(g.value);
  }
  g.stop = true;
  swapcontext(&g.consumer, &g.body);  // the body returns to uc_link
  count_steps(state);
}
BENCHMARK(BM_ucontext_generator);

// ------------------------------------------------------------ Boost.Fiber

// A producer fiber pushes ints into an unbuffered channel, the benchmark's
// (main) fiber pops one per step: each push waits for its pop.
void BM_boost_fibers_channel_generator(benchmark::State& state) {
  boost::fibers::unbuffered_channel<int> channel;
  boost::fibers::fiber producer(boost::fibers::launch::post, std::allocator_arg,
                                boost::fibers::fixedsize_stack(stack_bytes), [&channel] {
                                  for (int i = 0;; ++i) {
                                    if (channel.push(i) != boost::fibers::channel_op_status::success) return;
                                  }
                                });
  int value = 0;
  for (auto _ : state) {
    if (channel.pop(value) != boost::fibers::channel_op_status::success) {
      state.SkipWithError("channel closed early");
      break;
    }
    benchmark::DoNotOptimize(value);
  }
  channel.close();  // the producer's pending push returns closed
  producer.join();
  count_steps(state);
}
BENCHMARK(BM_boost_fibers_channel_generator);

// ------------------------------------------------------------ OS threads

// A producer thread fills a one-int slot whenever it is empty; the
// benchmark's thread empties it once per step.
void BM_thread_condvar_generator(benchmark::State& state) {
  std::mutex m;
  std::condition_variable filled;
  std::condition_variable emptied;
  int slot = 0;
  bool full = false;
  bool stop = false;
  std::thread producer([&] {
    std::unique_lock lock(m);
    for (int i = 0;; ++i) {
      emptied.wait(lock, [&] { return !full || stop; });
      if (stop) return;
      slot = i;
      full = true;
      filled.notify_one();
    }
  });
  for (auto _ : state) {
    std::unique_lock lock(m);
    filled.wait(lock, [&] { return full; });
    benchmark::DoNotOptimize(slot);
    full = false;
    emptied.notify_one();
  }
  {
    std::lock_guard lock(m);
    stop = true;
  }
  emptied.notify_one();
  producer.join();
  count_steps(state);
}
BENCHMARK(BM_thread_condvar_generator)->UseRealTime();

// ---------------------------------------------------- C++20 coroutines

// co_generator<T> is a minimal stackless generator (g++ 12 has no
// std::generator): the body is a coroutine that co_yields T values, which
// only its own frame may do. next() resumes it to its next co_yield and is
// false once it has returned; value() is the value last yielded. Move-only;
// the body's exceptions terminate.
template <class T>
class co_generator {
 public:
  struct promise_type {
    T current{};
    co_generator get_return_object() { return co_generator(handle::from_promise(*this)); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    std::suspend_always yield_value(T v) noexcept {
      current = std::move(v);
      return {};
    }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  using handle = std::coroutine_handle<promise_type>;

  // iterator is the input iterator range-for uses: begin() resumes to the
  // first co_yield, ++ to the next, and it equals the sentinel once the body
  // has returned.
  class iterator {
   public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    explicit iterator(handle h) : h_(h) {}
    const T& operator*() const { return h_.promise().current; }
    iterator& operator++() {
      h_.resume();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.h_.done(); }

   private:
    handle h_;
  };

  explicit co_generator(handle h) noexcept : h_(h) {}
  co_generator(co_generator&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  co_generator(const co_generator&) = delete;
  co_generator& operator=(const co_generator&) = delete;
  co_generator& operator=(co_generator&&) = delete;
  ~co_generator() {
    if (h_) h_.destroy();
  }

  bool next() {
    h_.resume();
    return !h_.done();
  }
  const T& value() const { return h_.promise().current; }
  iterator begin() {
    h_.resume();
    return iterator(h_);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  handle h_;
};

co_generator<int> count_forever() {
  for (int i = 0;; ++i) co_yield i;
}

co_generator<int> count_to(int n) {
  for (int i = 0; i < n; ++i) co_yield i;
}

void BM_cxx20_coroutine_generator(benchmark::State& state) {
  co_generator<int> g = count_forever();
  for (auto _ : state) {
    g.next();
    benchmark::DoNotOptimize(g.value());
  }
  count_steps(state);
}
BENCHMARK(BM_cxx20_coroutine_generator);

void BM_cxx20_coroutine_range_for(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    long sum = 0;
    for (int v : count_to(n)) sum += v;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_cxx20_coroutine_range_for)->Arg(range_items);

}  // namespace
