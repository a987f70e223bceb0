// wait.hpp: the I/O layer's internal readiness wait.
#pragma once

#include "asyncio/poller.hpp"
#include "greenlet/asyncio/future.hpp"

namespace greenlet::asyncio::detail {

// wait_fd(fd, dir, caller, slot) awaits fd's readiness once (caller: see
// io_caller). If slot is given it holds the waiter's future meanwhile, so
// that another task can end the wait early with set_result() (a stream
// closed under its reader).
void wait_fd(int fd, io_direction dir, io_caller caller, Future<void>* slot);

// await_shared(f) awaits a future that several tasks may wait on (a
// stream's or server's "closed"). It awaits a private future chained to f,
// because cancelling a task cancels the very future it awaits, and that
// must not cancel f for the others.
void await_shared(Future<void>& f);

}  // namespace greenlet::asyncio::detail
