// async_iterator.cpp: the seed's asynchronous iterator: `async for` over an
// object whose __anext__ awaits and ends with StopAsyncIteration.
//
//   class Reader(object):
//       def __init__(self):
//           self.count = 0
//
//       async def readline(self):
//           self.count += 1
//           if self.count == 100:
//               return None
//           return self.count
//
//       def __aiter__(self):
//           return self
//
//       async def __anext__(self):
//           val = await self.readline()
//           if val == None:
//               raise StopAsyncIteration
//           return val
//
//   async def func():
//       obj = Reader()
//       async for item in obj:
//           print(item)
//
//   asyncio.run(func())
#include <optional>

#include <greenlet/asyncio.hpp>

#include "support/python_print.hpp"

namespace asyncio = greenlet::asyncio;
using example::print;

class Reader {
 public:
  // An `async def` is an ordinary function here: it may await (none is
  // needed to count), and callers just call it; `await self.readline()`
  // becomes readline().
  std::optional<int> readline() {
    count += 1;
    if (count == 100) {
      return std::nullopt;  // None
    }
    return count;
  }

  // __aiter__: asyncio::aiter() calls it, as Python's async for does.
  Reader& aiter() { return *this; }

  // __anext__: runs in the iterating task, so it could await anything.
  int anext() {
    auto val = readline();
    if (val == std::nullopt) {
      throw asyncio::StopAsyncIteration();
    }
    return *val;
  }

 private:
  int count = 0;
};

void func() {
  Reader obj;
  for (int item : asyncio::aiter(obj)) {  // async for item in obj
    print(item);
  }
}

int main() { asyncio::run(func); }
