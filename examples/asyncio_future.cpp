// asyncio_future.cpp: the seed's asyncio.Future program: a bare future
// resolved by another task.
//
//   async def set_after(fut):
//       await asyncio.sleep(2)
//       fut.set_result("123")
//
//   async def main():
//       loop = asyncio.get_running_loop()        # the current event loop
//       fut = loop.create_future()               # a future bound to nothing
//       await loop.create_task(set_after(fut))   # sets fut's result after 2 s
//       data = await fut                         # wait for fut's result
//       print(data)
//
//   asyncio.run(main())
#include <string>

#include <greenlet/asyncio.hpp>

#include "support/python_print.hpp"

namespace asyncio = greenlet::asyncio;
using example::print;
using example::seconds;

void set_after(asyncio::Future<std::string> fut) {
  asyncio::sleep(seconds(2));
  fut.set_result("123");
}

void main_task() {
  // The current event loop.
  auto& loop = asyncio::get_running_loop();

  // A future bound to no work: it never finishes unless someone sets it.
  auto fut = loop.create_future<std::string>();

  // A task running set_after, which sets fut's result after 2 seconds.
  asyncio::await(loop.create_task([fut] { set_after(fut); }));

  // Wait for fut's result.
  auto data = asyncio::await(fut);
  print(data);
}

int main() { asyncio::run(main_task); }
