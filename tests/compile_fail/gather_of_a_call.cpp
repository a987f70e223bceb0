// expect: wait_for\(x, timeout\): x must be a future, a task or a callable taking no arguments
#include <greenlet/asyncio.hpp>

int fetch(int x) { return x; }

void misuse() {
  greenlet::asyncio::gather([] { return fetch(0); }, fetch(1));
}
