// asyncio_run.cpp: the seed's asyncio.run program (Python 3.7+).
//
//   async def func():
//       print("哈哈哈")
//   result = func()      # a coroutine object: nothing runs yet
//   asyncio.run(result)
#include <greenlet/asyncio.hpp>

#include "support/python_print.hpp"

namespace asyncio = greenlet::asyncio;
using example::print;

void func() { print("哈哈哈"); }

int main() {
  auto result = func;  // a function, not yet called: nothing runs yet
  asyncio::run(result);
}
