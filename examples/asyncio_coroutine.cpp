// asyncio_coroutine.cpp: the seed's @asyncio.coroutine program (asyncio,
// Python 3.4): `yield from asyncio.sleep(2)` switches to the other task.
//
//   @asyncio.coroutine
//   def func1():
//       print(1)
//       yield from asyncio.sleep(2)  # 遇到IO耗时操作，自动化切换到tasks中的其他任务
//       print(2)
//   (func2 likewise with 3 and 4)
//   tasks = [asyncio.ensure_future(func1()), asyncio.ensure_future(func2())]
//   loop = asyncio.get_event_loop()
//   loop.run_until_complete(asyncio.wait(tasks))
//
// Stackful coroutines need no decorator and no `yield from`: a plain
// function that calls asyncio::sleep() suspends its task.
#include <vector>

#include <greenlet/asyncio.hpp>

#include "support/python_print.hpp"

namespace asyncio = greenlet::asyncio;
using example::print;
using example::seconds;

void func1() {
  print(1);
  asyncio::sleep(seconds(2));  // an I/O wait: switch to the other tasks
  print(2);
}

void func2() {
  print(3);
  asyncio::sleep(seconds(2));  // an I/O wait: switch to the other tasks
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
