// run_in_executor.cpp: the seed's loop.run_in_executor program: a blocking
// call runs on the loop's default thread pool while the task awaits it.
//
//   def func():
//       time.sleep(1)             # some blocking operation
//       return "123"
//
//   async def main():
//       loop = asyncio.get_running_loop()
//       # 1. submit func to the default ThreadPoolExecutor: a
//       #    concurrent.futures.Future; 2. asyncio.wrap_future makes it an
//       #    asyncio.Future, which a task can await.
//       fut = loop.run_in_executor(None, func)
//       result = await fut
//       print('default thread pool', result)
//
//   asyncio.run(main())
#include <chrono>
#include <string>
#include <thread>

#include <greenlet/asyncio.hpp>

#include "support/python_print.hpp"

namespace asyncio = greenlet::asyncio;
using example::print;
using example::seconds;

std::string func() {
  // Some blocking operation: it holds its worker thread, not the loop.
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds(1)));
  return "123";
}

void main_task() {
  auto& loop = asyncio::get_running_loop();
  // nullptr is Python's None: the loop's default ThreadPoolExecutor.
  auto fut = loop.run_in_executor(nullptr, func);
  auto result = asyncio::await(fut);
  print("default thread pool", result);
}

int main() { asyncio::run(main_task); }
