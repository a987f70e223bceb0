// poller.hpp: the loop's wait for I/O, timers and wake-ups. Behind a small
// interface so another backend (io_uring) can replace epoll later.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <typeinfo>

#include "greenlet/fiber/context.hpp"

namespace greenlet::asyncio::detail {

struct loop_core;
class future_state;

// io_direction says which readiness a registration waits for.
enum class io_direction : unsigned char { read = 0, write = 1 };

// io_caller says who registers: the owner of an adopted fd, waiting because
// it found the fd empty (see poller::adopt()), or anyone else (add_reader,
// wait_readable, sock_* on a user's fd). Anyone else's registration on an
// adopted fd turns it back to one-shot registrations, which check the fd's
// state when they arm: an edge its owner already took cannot strand them.
enum class io_caller : unsigned char { owner, user };

class poller {
 public:
  virtual ~poller() = default;
  // wait() blocks up to timeout seconds (negative: until woken) and queues
  // the callbacks of ready I/O on the loop.
  virtual void wait(loop_core& loop, double timeout) = 0;
  // waits() counts the wait() calls so far: an owner that found its fd
  // empty, and sees the count unchanged since, knows no event for the fd
  // was taken (and dropped) in between.
  std::uint64_t waits() const noexcept { return waits_; }
  // wake() ends a wait() early; callable from any thread.
  virtual void wake() noexcept = 0;
  // watched() counts registrations that may still make the loop ready.
  virtual std::size_t watched() const noexcept = 0;

  // add_callback(fd, dir, caller, fn) runs fn through the ready queue each time fd
  // is ready in that direction, until removed (asyncio's add_reader and
  // add_writer). Replaces an earlier registration of fd in that direction.
  // Throws std::system_error if the kernel refuses the fd.
  virtual void add_callback(int fd, io_direction dir, io_caller caller, std::function<void()> fn) = 0;
  // add_waiter(fd, dir, caller, f) completes the future f (a future_value<void>,
  // retained) once fd is ready: one-shot, then the registration is gone.
  // The wake-up skips a queue turn: done callbacks are scheduled anyway.
  // Throws std::system_error; RuntimeError if someone already waits there.
  virtual void add_waiter(int fd, io_direction dir, io_caller caller, future_state* f) = 0;
  // watch_hang_up(fd, fn) runs fn once, through the ready queue, when the
  // kernel reports a hang-up, an error or the peer's shutdown on fd
  // (EPOLLHUP, EPOLLERR, EPOLLRDHUP), even with nobody waiting to read or
  // write it: a write pipe's way to see its reader go (asyncio's write pipe
  // transport add_reader()s its fd for that). On an adopted fd that already
  // saw one (hung_up()), the kernel is asked to report it again, so fn runs
  // after the next wait(). It counts in watched(), as an
  // add_reader() keeps asyncio's loop waiting, until it ran or forget(fd);
  // one watch per fd, a second replaces the first. Throws std::system_error.
  virtual void watch_hang_up(int fd, std::function<void()> fn) = 0;
  // remove(fd, dir) drops the registration; false if there was none. A
  // callback already queued for it does not run.
  virtual bool remove(int fd, io_direction dir) noexcept = 0;
  // remove_waiter(fd, dir, f) drops the registration only if it is f's.
  virtual bool remove_waiter(int fd, io_direction dir, future_state* f) noexcept = 0;
  // adopt(fd) tells the poller that fd belongs to one of the loop's own
  // transports (a stream, a listening socket), which registers on it (as
  // io_caller::owner) only once it found it empty with no wait() since (a
  // call answered EAGAIN, or a read came back short), and calls forget(fd)
  // before closing it. The
  // kernel then watches fd edge-triggered, in both directions, until
  // forget(): a wait costs no epoll_ctl. False if the kernel refuses fd (a
  // regular file): its waits keep the one-shot registrations.
  virtual bool adopt(int fd) noexcept = 0;
  // hung_up(fd) is true once an event on the adopted fd said EOF, hang-up
  // or error (the peer's FIN may have come with bytes a short read took, so
  // no later edge will say it): its owner, finding its buffer empty, knows
  // one more read would not wait. False for an fd that is not adopted.
  virtual bool hung_up(int fd) const noexcept = 0;
  // forget(fd) drops fd's registrations (a hang-up watch too), adopted or not; call it before
  // closing fd, whose number the next open file may reuse.
  virtual void forget(int fd) noexcept = 0;
  // clear() drops every registration (the loop is closing): what they hold
  // may reference the loop.
  virtual void clear() noexcept = 0;

 protected:
  std::uint64_t waits_ = 0;  // a backend's wait() adds one each call
};

std::unique_ptr<poller> make_epoll_poller();

// context_bound_callback is add_reader()'s and add_writer()'s function: fn run, each time, in one
// copy of the context current at registration (asyncio's Handle). A named type, not a lambda, so
// that io_callback_type() can name fn rather than the wrapper.
struct context_bound_callback {
  ::greenlet::context ctx;
  std::function<void()> fn;
  void operator()() { ctx.run(fn); }
};

struct callback_node;
// io_callback_type(n) is, for a queued run of an I/O callback (add_callback(), watch_hang_up()),
// the target_type() of its function; typeid(void) for any other node. For debug mode's report,
// which names a slow callback after it ran (the registration may be gone by then). Throws nothing.
const std::type_info& io_callback_type(const callback_node* n) noexcept;

}  // namespace greenlet::asyncio::detail
