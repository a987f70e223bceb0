// await_chain.cpp: the seed's await program: a coroutine awaiting one that
// awaits.
//
//   async def func():
//       print("哈哈哈")
//       response = await asyncio.sleep(2)
//       print(response)
//       return "func1执行完毕"
//
//   async def func1():
//       print("开始执行")
//       response = await func()
//       print(response)
//
//   asyncio.run(func1())
//
// `await func()` becomes a plain call: func suspends the task itself.
#include <string>

#include <greenlet/asyncio.hpp>

#include "support/python_print.hpp"

namespace asyncio = greenlet::asyncio;
using example::print;
using example::seconds;

std::string func() {
  print("哈哈哈");
  auto response = asyncio::sleep(seconds(2), nullptr);  // sleep's result: None
  print(response);
  return "func1执行完毕";
}

void func1() {
  print("开始执行");
  auto response = func();
  print(response);
}

int main() { asyncio::run(func1); }
