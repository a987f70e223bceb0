// expect: create_task\(fn\): fn must be a callable .* write create_task\(\[=\] \{ return fetch\(1\); \}\)
// Python's create_task(fetch(1)) read literally: fetch(1) runs now and its
// int is passed. Without the check, errors about std::invoke_result<int&>.
#include <greenlet/asyncio.hpp>

int fetch(int x) { return x; }

void misuse() { greenlet::asyncio::create_task(fetch(1)); }
