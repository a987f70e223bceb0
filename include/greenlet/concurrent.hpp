// concurrent.hpp: Python's concurrent.futures in C++: thread and process
// pools whose futures any thread may wait for. The asyncio bridge
// (run_in_executor, wrap_future, to_thread, run_coroutine_threadsafe) is in
// greenlet/asyncio/executor.hpp.
//
//   namespace concurrent = greenlet::concurrent;
//   concurrent::ThreadPoolExecutor pool(5);
//   auto f = pool.submit([](int x) { return x * 2; }, 21);
//   std::printf("%d\n", f.result());  // 42
#pragma once

#include "greenlet/concurrent/errors.hpp"
#include "greenlet/concurrent/future.hpp"
#include "greenlet/concurrent/process_pool.hpp"
#include "greenlet/concurrent/thread_pool.hpp"
#include "greenlet/concurrent/wait.hpp"
