// expect: TaskGroup::create_task\(fn\): fn must be a callable taking no arguments, not the result of
#include <greenlet/asyncio.hpp>

int fetch(int x) { return x; }

void misuse(greenlet::asyncio::TaskGroup& tg) { tg.create_task(fetch(1)); }
