// public_headers.cpp: every public header in one file, compiled with the
// warnings users turn on in their own builds (tests/CMakeLists.txt), so a
// header that would warn there (-Wshadow did) fails this build instead.
// Each header on its own is checked by the examples' consumer builds.
// Built with -fno-sized-deallocation too, clang's default before version 19
// (the clang pass's clang 14 among them): a header calling the global sized
// ::operator delete did not compile there.
#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>
#include <greenlet/generator.hpp>
#include <greenlet/greenlet.hpp>
#include <greenlet/io.hpp>

// The templates every program instantiates (a greenlet's run function, a
// task, a generator), instantiated here so that their code meets the same
// flags: most of a header's code is template code, checked only when used.
int public_headers_instantiated();
int public_headers_instantiated() {
  greenlet::greenlet child([](int x) { return x * 2; });
  const int doubled = child.switch_(21).get<int>();
  greenlet::generator<int> counter([](greenlet::generator<int>::context& co) { co.yield(1); });
  int yielded = 0;
  for (int v : counter) yielded += v;
  return yielded + greenlet::asyncio::run([doubled] {
           auto task = greenlet::asyncio::create_task([doubled] { return doubled + 1; });
           return greenlet::asyncio::await(task);
         });
}
