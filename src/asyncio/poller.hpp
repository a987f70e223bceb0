// poller.hpp: the loop's wait for I/O, timers and wake-ups. Behind a small
// interface so another backend (io_uring) can replace epoll later.
#pragma once

#include <cstddef>
#include <memory>

namespace greenlet::asyncio::detail {

struct loop_core;

class poller {
 public:
  virtual ~poller() = default;
  // wait() blocks up to timeout seconds (negative: until woken) and queues
  // the callbacks of ready I/O on the loop.
  virtual void wait(loop_core& loop, double timeout) = 0;
  // wake() ends a wait() early; callable from any thread.
  virtual void wake() noexcept = 0;
  // watched() counts registrations that may still make the loop ready.
  virtual std::size_t watched() const noexcept = 0;
};

std::unique_ptr<poller> make_epoll_poller();

}  // namespace greenlet::asyncio::detail
