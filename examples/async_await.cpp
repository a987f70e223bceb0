// async_await.cpp: the seed's async/await program (Python 3.5+).
//
//   async def func1():
//       print(1)
//       await asyncio.sleep(2)
//       print(2)
//   (func2 likewise with 3 and 4)
//   tasks = [asyncio.ensure_future(func1()), asyncio.ensure_future(func2())]
//   loop = asyncio.get_event_loop()
//   loop.run_until_complete(asyncio.wait(tasks))
//
// In C++ there is no `async` keyword to add: any function running in a task
// may await, however deep in ordinary calls it is.
#include <vector>

#include <greenlet/asyncio.hpp>

#include "support/python_print.hpp"

namespace asyncio = greenlet::asyncio;
using example::print;
using example::seconds;

void func1() {
  print(1);
  asyncio::sleep(seconds(2));
  print(2);
}

void func2() {
  print(3);
  asyncio::sleep(seconds(2));
  print(4);
}

int main() {
  std::vector tasks{
      asyncio::ensure_future(func1),
      asyncio::ensure_future(func2),
  };

  auto& loop = asyncio::get_event_loop();
  loop.run_until_complete([&] { return asyncio::wait(tasks); });
}
