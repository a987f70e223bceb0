// expect: run_in_executor\(executor, fn, args\.\.\.\): .* write run_in_executor\(nullptr, fetch, 1\)
#include <greenlet/asyncio.hpp>

int fetch(int x) { return x; }

void misuse(greenlet::asyncio::event_loop& loop) { loop.run_in_executor(nullptr, fetch(1)); }
