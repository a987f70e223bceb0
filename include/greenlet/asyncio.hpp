// asyncio.hpp: the event loop layer, Python's asyncio in C++ on greenlets.
// Any function running in a task can await: there is no async colouring.
//
//   namespace asyncio = greenlet::asyncio;
//   int main() {
//     asyncio::run([] {
//       auto t = asyncio::create_task([] { asyncio::sleep(0.1); return 42; });
//       std::printf("%d\n", asyncio::await(t));
//     });
//   }
#pragma once

#include "greenlet/asyncio/aiter.hpp"
#include "greenlet/asyncio/any_task.hpp"
#include "greenlet/asyncio/async_generator.hpp"
#include "greenlet/asyncio/call_graph.hpp"
#include "greenlet/asyncio/errors.hpp"
#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/executor.hpp"
#include "greenlet/asyncio/future.hpp"
#include "greenlet/asyncio/locks.hpp"
#include "greenlet/asyncio/queues.hpp"
#include "greenlet/asyncio/runner.hpp"
#include "greenlet/asyncio/sync_errors.hpp"
#include "greenlet/asyncio/task.hpp"
#include "greenlet/asyncio/taskgroup.hpp"
#include "greenlet/asyncio/tasks.hpp"
#include "greenlet/asyncio/timeout.hpp"
