// executor_bench.cpp: the executor bridge's costs, named to line up with
// bench/peers/asyncio_executor.py:
//   executor_roundtrip      one run_in_executor(trivial fn) awaited by a
//                           task, start to finish (latency; one in flight)
//   executor_throughput/N   N run_in_executor calls in flight, then all
//                           awaited; ns per call (N = 1,000 and 10,000)
//   threadpool_submit_result/N  concurrent::ThreadPoolExecutor alone: N
//                           submits, then every result() (no event loop)
// and the baseline, a minimal mutex + condition-variable pool written here:
//   baseline_roundtrip      submit one job, block until it signals back
//   baseline_throughput/N   N jobs in flight, wait for the last
// Every pool has 4 workers.
#include <benchmark/benchmark.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>

namespace asyncio = greenlet::asyncio;
namespace concurrent = greenlet::concurrent;

namespace {

constexpr std::size_t kWorkers = 4;

int trivial() { return 1; }

void BM_executor_roundtrip(benchmark::State& state) {
  concurrent::ThreadPoolExecutor pool(kWorkers);
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    long sum = 0;
    for (auto _ : state) sum += asyncio::await(loop.run_in_executor(&pool, trivial));
    benchmark::DoNotOptimize(sum);
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_executor_roundtrip)->UseRealTime();

void BM_executor_throughput(benchmark::State& state) {
  const int in_flight = static_cast<int>(state.range(0));
  concurrent::ThreadPoolExecutor pool(kWorkers);
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    std::vector<asyncio::Future<int>> fs;
    fs.reserve(in_flight);
    long sum = 0;
    for (auto _ : state) {
      fs.clear();
      for (int i = 0; i < in_flight; ++i) fs.push_back(loop.run_in_executor(&pool, trivial));
      for (auto& f : fs) sum += asyncio::await(f);
    }
    benchmark::DoNotOptimize(sum);
  });
  state.SetItemsProcessed(state.iterations() * in_flight);
}
BENCHMARK(BM_executor_throughput)->Arg(1000)->Arg(10000)->UseRealTime();

void BM_threadpool_submit_result(benchmark::State& state) {
  const int in_flight = static_cast<int>(state.range(0));
  concurrent::ThreadPoolExecutor pool(kWorkers);
  std::vector<concurrent::Future<int>> fs;
  fs.reserve(in_flight);
  long sum = 0;
  for (auto _ : state) {
    fs.clear();
    for (int i = 0; i < in_flight; ++i) fs.push_back(pool.submit(trivial));
    for (auto& f : fs) sum += f.result();
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * in_flight);
}
BENCHMARK(BM_threadpool_submit_result)->Arg(10000)->UseRealTime();

// baseline_pool: the least a thread pool can be: one locked deque, one
// condition variable, std::function jobs.
class baseline_pool {
 public:
  explicit baseline_pool(std::size_t workers) {
    for (std::size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }
  ~baseline_pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void submit(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void work() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stop_ = false;
};

// latch: the submitting thread waits for `count` completions.
struct latch {
  std::mutex mutex;
  std::condition_variable cv;
  long remaining = 0;
  long sum = 0;
  void done(int value) {
    std::lock_guard<std::mutex> lock(mutex);
    sum += value;
    if (--remaining == 0) cv.notify_one();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [this] { return remaining == 0; });
  }
};

void BM_baseline_roundtrip(benchmark::State& state) {
  baseline_pool pool(kWorkers);
  latch l;
  for (auto _ : state) {
    l.remaining = 1;
    pool.submit([&l] { l.done(trivial()); });
    l.wait();
  }
  benchmark::DoNotOptimize(l.sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_baseline_roundtrip)->UseRealTime();

void BM_baseline_throughput(benchmark::State& state) {
  const int in_flight = static_cast<int>(state.range(0));
  baseline_pool pool(kWorkers);
  latch l;
  for (auto _ : state) {
    {
      std::lock_guard<std::mutex> lock(l.mutex);
      l.remaining = in_flight;
    }
    for (int i = 0; i < in_flight; ++i) pool.submit([&l] { l.done(trivial()); });
    l.wait();
  }
  benchmark::DoNotOptimize(l.sum);
  state.SetItemsProcessed(state.iterations() * in_flight);
}
BENCHMARK(BM_baseline_throughput)->Arg(1000)->Arg(10000)->UseRealTime();

}  // namespace
