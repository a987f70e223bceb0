// thread_pool.cpp: the seed's concurrent.futures program: ten calls
// submitted to five worker threads, printing each future as it is made.
//
//   def func(value):
//       time.sleep(1)
//       print(value)
//       return 123
//
//   pool = ThreadPoolExecutor(max_workers=5)   # or ProcessPoolExecutor
//   for i in range(10):
//       fut = pool.submit(func, i)
//       print(fut)
//
// No thread_pool.expected: as in Python, the output differs from run to run.
// The futures' addresses change, a just-submitted future shows
// state=pending or state=running depending on whether a worker has picked
// it up yet, and the five workers print their values in whatever order they
// wake. tests/concurrent/thread_pool_test.cpp (SeedTenJobsFiveWorkers)
// checks the deterministic part: every value printed once, every result 123.
#include <chrono>
#include <mutex>
#include <thread>

#include <greenlet/concurrent.hpp>

#include "support/python_print.hpp"

namespace concurrent = greenlet::concurrent;
using example::print;
using example::seconds;

// Python's print holds a lock per call; workers and the main thread share stdout.
std::mutex print_mutex;

int func(int value) {
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds(1)));
  std::lock_guard<std::mutex> lock(print_mutex);
  print(value);
  return 123;
}

int main() {
  // A pool of five threads; the destructor waits for the work, as Python
  // waits for the pool's threads at exit.
  concurrent::ThreadPoolExecutor pool(5);
  for (int i = 0; i < 10; ++i) {
    auto fut = pool.submit(func, i);
    std::lock_guard<std::mutex> lock(print_mutex);
    print(fut);
  }
}
