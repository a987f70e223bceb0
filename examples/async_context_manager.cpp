// async_context_manager.cpp: the seed's asynchronous context manager:
// `async with` over an object whose __aenter__ and __aexit__ await.
//
//   class AsyncContextManager:
//       def __init__(self):
//           self.conn = None
//
//       async def do_something(self):
//            # 异步操作数据库 (work with the database, asynchronously)
//            return 666
//
//       async def __aenter__(self):
//            # 异步连接数据库 (connect to the database, asynchronously)
//            self.conn = await asyncio.sleep(1)
//            return self
//
//       async def __aexit__(self, exc_type, exc, tb):
//           # 异步关闭数据库链接 (close the connection, asynchronously)
//           await asyncio.sleep(1)
//
//   async def func():
//       async with AsyncContextManager() as f:
//           result = await f.do_something()
//           print(result)
//
//   asyncio.run(func())
//
// In C++ `async with` is a scope and the manager an RAII object: its
// constructor is __aenter__ and its destructor __aexit__, and both may
// await because they run in the task. The destructor runs however the
// scope ends: normally, by an exception (the body threw), or by
// CancelledError (the task was cancelled in the body). Cancellation is
// delivered once, at one await, so the destructor's own sleep() works while
// CancelledError unwinds the task; see tests/asyncio/async_context_test.cpp.
#include <exception>

#include <greenlet/asyncio.hpp>

#include "support/python_print.hpp"

namespace asyncio = greenlet::asyncio;
using example::print;
using example::seconds;

class AsyncContextManager {
 public:
  // __aenter__: connect to the database, asynchronously.
  AsyncContextManager() {
    asyncio::sleep(seconds(1));
    conn = nullptr;  // self.conn = await asyncio.sleep(1), which is None
  }

  // __aexit__: close the connection, asynchronously. A destructor must not
  // throw: if this task is cancelled again while closing, or its loop is
  // closing, the close gives up quietly instead of terminating the program.
  ~AsyncContextManager() {
    try {
      asyncio::sleep(seconds(1));
    } catch (const asyncio::CancelledError&) {
      // Cancelled again while closing: keep the first reason unwinding.
    } catch (const asyncio::RuntimeError&) {
      // No running loop to await on (the task is being killed).
    }
  }

  AsyncContextManager(const AsyncContextManager&) = delete;
  AsyncContextManager& operator=(const AsyncContextManager&) = delete;

  // Work with the database, asynchronously.
  int do_something() { return 666; }

 private:
  std::nullptr_t conn = nullptr;
};

void func() {
  {
    AsyncContextManager f;  // async with AsyncContextManager() as f:
    auto result = f.do_something();
    print(result);
  }  // __aexit__: ~AsyncContextManager() awaits here
}

int main() { asyncio::run(func); }
