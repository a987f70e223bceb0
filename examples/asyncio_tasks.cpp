// asyncio_tasks.cpp: the seed's Task program: named tasks, asyncio.wait.
//
//   async def func():
//       print(1)
//       await asyncio.sleep(2)
//       print(2)
//       return "func执行完毕"
//
//   async def main():
//       task_list = [
//           asyncio.create_task(func(), name="n1"),
//           asyncio.create_task(func(), name="n2")
//       ]
//       print("main结束")
//       done, pending = await asyncio.wait(task_list, timeout=None)
//       print(done, pending)
//
//   asyncio.run(main())
//
// One difference in the output, on purpose: Python's task repr also names the
// coroutine and the Python file it was defined in (coro=<func() done,
// defined at g:\pythonProject\pythonTest.py:4>), which has no C++ meaning.
#include <string>
#include <vector>

#include <greenlet/asyncio.hpp>

#include "support/python_print.hpp"

namespace asyncio = greenlet::asyncio;
using example::print;
using example::seconds;

std::string func() {
  print(1);
  asyncio::sleep(seconds(2));
  print(2);
  return "func执行完毕";
}

// python_set() prints a list of tasks the way Python prints a set of them.
std::string python_set(const std::vector<asyncio::Task<std::string>>& tasks) {
  if (tasks.empty()) return "set()";
  std::string out = "{";
  for (const auto& t : tasks) out += (out.size() > 1 ? ", " : "") + t.repr();
  return out + "}";
}

void main_task() {
  std::vector task_list{
      asyncio::create_task(func, "n1"),
      asyncio::create_task(func, "n2"),
  };

  print("main结束");

  auto [done, pending] = asyncio::wait(task_list, /*timeout=*/std::nullopt);
  print(python_set(done), python_set(pending));
}

int main() { asyncio::run(main_task); }
