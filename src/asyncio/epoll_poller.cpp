// epoll_poller.cpp: the Linux poller: one epoll instance per loop, and an
// eventfd in it so call_soon_threadsafe() can end a sleeping wait.
//
// Two kinds of registration:
// - An fd of the loop's own transports (streams, listening sockets) is
//   adopted: added once, edge-triggered, for both directions, and deleted
//   by forget() before its owner closes it. A wait then costs no epoll_ctl
//   at all. This is sound because an owner waits only once it found the fd
//   empty and no wait() ran since (a call answered EAGAIN, or a read came
//   back short, with waits() unchanged): whatever arrives later is a new
//   edge, so no edge can be missed, and an edge nobody waits for can be
//   dropped. The one edge a short read can hide is EOF (it may have come
//   with the bytes read), so the slot remembers it.
// - Any other fd (add_reader, wait_readable on a user's socket, a pidfd) is
//   registered EPOLLONESHOT: after an event the kernel disarms the fd and we
//   re-arm it with one EPOLL_CTL_MOD when a handler is still (or again)
//   there. We never leave such an fd armed without a handler, so an fd the
//   user closes after its last wait is simply gone from the kernel's set; if
//   its number comes back with a new file, MOD answers ENOENT and we ADD it
//   afresh.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "asyncio/poller.hpp"
#include "greenlet/asyncio/errors.hpp"
#include "greenlet/detail/future_state.hpp"
#include "greenlet/detail/loop_core.hpp"

namespace greenlet::asyncio::detail {

namespace {

constexpr std::uint64_t wake_token = std::numeric_limits<std::uint64_t>::max();
// What the kernel watches on an adopted fd (see the top).
constexpr std::uint32_t adopted_events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

// io_entry is a persistent callback registration. Refcounted: the poller
// holds one reference, each queued run another, so remove() while a run is
// queued only marks it cancelled.
struct io_entry {
  std::function<void()> fn;
  int refs = 1;
  bool cancelled = false;
};

void release_entry(io_entry* e) noexcept {
  if (--e->refs == 0) delete e;
}

void run_entry(void* entry, void*) {
  auto* e = static_cast<io_entry*>(entry);
  struct drop {
    io_entry* e;
    ~drop() { release_entry(e); }
  } guard{e};
  if (!e->cancelled) e->fn();
}

void drop_entry(void* entry, void*) { release_entry(static_cast<io_entry*>(entry)); }

struct handler {
  future_state* waiter = nullptr;  // one-shot: a future_value<void>
  io_entry* entry = nullptr;       // persistent callback
  bool empty() const noexcept { return waiter == nullptr && entry == nullptr; }
};

struct fd_slot {
  handler h[2];  // indexed by io_direction
  // watch_hang_up()'s callback. Kept once queued (hang_up_queued), until
  // forget(): its owner may close and free itself before the queued run,
  // which forget() then cancels.
  io_entry* hang_up = nullptr;
  std::uint32_t armed = 0;  // EPOLLIN/EPOLLOUT the kernel watches now (not adopted)
  // level: armed without EPOLLONESHOT, because every handler is a persistent
  // callback (add_reader/add_writer) and no hang-up is watched: the kernel
  // keeps reporting the fd while it is ready, so no event needs an
  // EPOLL_CTL_MOD to re-arm it.
  bool level = false;
  bool in_epoll = false;  // the kernel's interest list has the fd
  bool adopted = false;   // edge-triggered until forget() (see the top)
  bool hung_up = false;   // adopted, and an event said EOF, hang-up or error
  bool hang_up_queued = false;
};

class epoll_poller final : public poller {
 public:
  epoll_poller() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) {
      int err = errno;
      ::close(epoll_fd_);
      throw std::system_error(err, std::generic_category(), "eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = wake_token;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  }
  ~epoll_poller() override {
    clear();
    ::close(wake_fd_);
    ::close(epoll_fd_);
  }

  void wait(loop_core& loop, double timeout) override {
    ++waits_;
    epoll_event events[256];
    int n;
    if (timeout < 0) {
      n = ::epoll_wait(epoll_fd_, events, 256, -1);
    } else {
      // epoll_pwait2 takes nanoseconds; epoll_wait only milliseconds, which
      // would round short timers up to a whole millisecond.
      timespec ts;
      ts.tv_sec = static_cast<time_t>(timeout);
      ts.tv_nsec = static_cast<long>((timeout - static_cast<double>(ts.tv_sec)) * 1e9);
      n = ::epoll_pwait2(epoll_fd_, events, 256, &ts, nullptr);
      if (n < 0 && errno == ENOSYS) {
        n = ::epoll_wait(epoll_fd_, events, 256, static_cast<int>(std::ceil(timeout * 1000)));
      }
    }
    if (n < 0) {
      if (errno == EINTR) return;
      throw std::system_error(errno, std::generic_category(), "epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == wake_token) {
        std::uint64_t count;
        while (::read(wake_fd_, &count, sizeof count) > 0) {
        }
        continue;
      }
      dispatch(loop, static_cast<int>(events[i].data.u64), events[i].events);
    }
  }

  void wake() noexcept override {
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(wake_fd_, &one, sizeof one);
  }

  std::size_t watched() const noexcept override { return watched_; }

  void add_callback(int fd, io_direction dir, io_caller caller, std::function<void()> fn) override {
    fd_slot& s = slot(fd);
    if (caller == io_caller::user) disown(s);
    handler& h = s.h[index(dir)];
    handler previous = h;
    h = handler{};
    h.entry = new io_entry{std::move(fn)};
    if (previous.empty()) ++watched_;
    // Re-arm even if the kernel should already watch it: the number may name
    // a new file since (closed and reused without remove_reader()), which a
    // level-triggered slot would otherwise never register. One epoll_ctl per
    // add_reader(), none per event.
    if (!s.adopted) s.armed = 0;
    try {
      arm(fd, s);
    } catch (...) {
      release_entry(h.entry);
      h = handler{};
      --watched_;
      drop_handler(previous);
      throw;
    }
    drop_handler(previous);
  }

  void add_waiter(int fd, io_direction dir, io_caller caller, future_state* f) override {
    fd_slot& s = slot(fd);
    if (caller == io_caller::user) disown(s);
    handler& h = s.h[index(dir)];
    if (h.waiter != nullptr) fail_waiters_if_closed(fd, s);
    if (h.waiter != nullptr && h.waiter->done()) {
      // A waiter already done is stale: its task was cancelled (cancel() cancels the awaited
      // future at once) but has not run yet to unregister. It will never be woken, so a new
      // waiter replaces it, as asyncio's add_reader() replaces a cancelled sock_recv()'s
      // handle; the old task's remove_waiter() then finds another future and leaves it.
      future_state* stale = h.waiter;
      h.waiter = nullptr;
      --watched_;
      release(stale);
    }
    if (!h.empty()) {
      throw RuntimeError(asyncio_errc::invalid_state, "fd " + std::to_string(fd) + " already has a " +
                                                          (dir == io_direction::read ? "reader" : "writer") +
                                                          ": only one task may wait on a socket in each direction");
    }
    // An adopted fd's owner may wait right after a short read, without the
    // recv that would answer EAGAIN (see stream_transport::fill()). If the
    // edge that said EOF came before that read, no other will: answer now.
    if (s.adopted && s.hung_up && dir == io_direction::read) {
      static_cast<future_value<void>*>(f)->set_result();
      return;
    }
    retain(f);
    h.waiter = f;
    ++watched_;
    try {
      arm(fd, s);
    } catch (...) {
      h = handler{};
      --watched_;
      release(f);
      throw;
    }
  }

  void watch_hang_up(int fd, std::function<void()> fn) override {
    fd_slot& s = slot(fd);
    auto* e = new io_entry{std::move(fn)};
    drop_hang_up(s);
    s.hang_up = e;
    ++watched_;
    if (s.adopted) {
      // The edge that said hang-up was taken before anyone watched: a MOD
      // makes the kernel report the fd's state once more.
      if (s.hung_up) rearm_adopted(fd);
      return;
    }
    try {
      arm(fd, s);
    } catch (...) {
      drop_hang_up(s);
      throw;
    }
  }

  bool remove(int fd, io_direction dir) noexcept override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= slots_.size()) return false;
    fd_slot& s = slots_[fd];
    handler& h = s.h[index(dir)];
    if (h.empty()) return false;
    handler previous = h;
    h = handler{};
    --watched_;
    disarm_if_idle(fd, s);
    drop_handler(previous);
    return true;
  }

  bool remove_waiter(int fd, io_direction dir, future_state* f) noexcept override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= slots_.size()) return false;
    if (slots_[fd].h[index(dir)].waiter != f) return false;
    return remove(fd, dir);
  }

  bool adopt(int fd) noexcept override {
    fd_slot* slot_of_fd;
    try {
      slot_of_fd = &slot(fd);
    } catch (...) {
      return false;  // a bad fd, or out of memory: it keeps one-shot registrations
    }
    fd_slot& s = *slot_of_fd;
    if (s.adopted) return true;
    epoll_event ev{};
    ev.events = adopted_events;
    ev.data.u64 = static_cast<std::uint64_t>(fd);
    // The number may still be in the kernel's set from a one-shot wait (a
    // connect) or not; either way the kernel reports the fd's current state
    // once, so handlers already there are woken if it is ready.
    int rc = ::epoll_ctl(epoll_fd_, s.in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    if (rc < 0 && errno == (s.in_epoll ? ENOENT : EEXIST)) {
      rc = ::epoll_ctl(epoll_fd_, s.in_epoll ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
    }
    if (rc < 0) return false;
    s.in_epoll = true;
    s.adopted = true;
    return true;
  }

  bool hung_up(int fd) const noexcept override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= slots_.size()) return false;
    return slots_[fd].adopted && slots_[fd].hung_up;
  }

  void forget(int fd) noexcept override {
    remove(fd, io_direction::read);
    remove(fd, io_direction::write);
    if (fd < 0 || static_cast<std::size_t>(fd) >= slots_.size()) return;
    fd_slot& s = slots_[fd];
    drop_hang_up(s);
    if (s.in_epoll) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    s = fd_slot{};
  }

  void clear() noexcept override {
    for (std::size_t fd = 0; fd < slots_.size(); ++fd) {
      remove(static_cast<int>(fd), io_direction::read);
      remove(static_cast<int>(fd), io_direction::write);
      drop_hang_up(slots_[fd]);
    }
    // A closed loop may linger (set_event_loop keeps it): free the table.
    std::vector<fd_slot>().swap(slots_);
  }

 private:
  static int index(io_direction dir) noexcept { return static_cast<int>(dir); }

  fd_slot& slot(int fd) {
    if (fd < 0) throw std::system_error(EBADF, std::generic_category(), "negative file descriptor");
    if (static_cast<std::size_t>(fd) >= slots_.size()) slots_.resize(static_cast<std::size_t>(fd) + 64);
    return slots_[fd];
  }

  // disown() turns an adopted fd back to one-shot registrations (see
  // io_caller): the next arm() is an EPOLL_CTL_MOD, which checks the fd.
  static void disown(fd_slot& s) noexcept {
    if (!s.adopted) return;
    s.adopted = false;
    s.hung_up = false;
    s.armed = 0;
  }

  // desired() is what a one-shot registration asks the kernel for; a
  // hang-up watch needs only EPOLLRDHUP (EPOLLHUP and EPOLLERR always come).
  static std::uint32_t desired(const fd_slot& s) noexcept {
    return (s.h[0].empty() ? 0u : static_cast<std::uint32_t>(EPOLLIN)) |
           (s.h[1].empty() ? 0u : static_cast<std::uint32_t>(EPOLLOUT)) |
           (s.hang_up == nullptr || s.hang_up_queued ? 0u : static_cast<std::uint32_t>(EPOLLRDHUP));
  }

  // drop_hang_up() drops the slot's hang-up watch, and cancels its run if
  // one is queued. Leaves the kernel's registration as it is.
  void drop_hang_up(fd_slot& s) noexcept {
    io_entry* e = std::exchange(s.hang_up, nullptr);
    if (e == nullptr) return;
    if (!std::exchange(s.hang_up_queued, false)) --watched_;
    e->cancelled = true;
    release_entry(e);
  }

  // rearm_adopted() has the kernel report an adopted fd's current state
  // again (an EPOLL_CTL_MOD with the same events). Best effort: an fd the
  // kernel no longer has is its owner's to find out on its next call.
  void rearm_adopted(int fd) noexcept {
    epoll_event ev{};
    ev.events = adopted_events;
    ev.data.u64 = static_cast<std::uint64_t>(fd);
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
  }

  // callbacks_only(s): every handler of s is a persistent callback, so s can be level-triggered.
  static bool callbacks_only(const fd_slot& s) noexcept {
    return s.h[0].waiter == nullptr && s.h[1].waiter == nullptr && s.hang_up == nullptr;
  }

  // arm() makes the kernel watch what the handlers want. Throws for fds
  // epoll refuses (regular files: EPERM) or that are not open (EBADF).
  void arm(int fd, fd_slot& s) {
    if (s.adopted) return;  // watched in both directions already
    const std::uint32_t want = desired(s);
    const bool level = callbacks_only(s);
    if (want == 0 || (want == s.armed && level == s.level)) return;
    epoll_event ev{};
    ev.events = level ? want : want | EPOLLONESHOT;
    ev.data.u64 = static_cast<std::uint64_t>(fd);
    int rc;
    if (s.in_epoll) {
      rc = ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
      // The fd was closed (and maybe reused) since: the kernel forgot it.
      if (rc < 0 && errno == ENOENT) rc = ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    } else {
      rc = ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
      if (rc < 0 && errno == EEXIST) rc = ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
    }
    if (rc < 0) {
      int err = errno;
      s.in_epoll = false;
      s.armed = 0;
      throw std::system_error(err, std::generic_category(), "epoll_ctl(fd " + std::to_string(fd) + ")");
    }
    s.in_epoll = true;
    s.armed = want;
    s.level = level;
  }

  // disarm_if_idle() keeps the invariant that no fd stays armed without a
  // handler (see the top of the file); a narrower want is re-armed.
  void disarm_if_idle(int fd, fd_slot& s) noexcept {
    if (s.adopted) return;  // stays registered until forget()
    const std::uint32_t want = desired(s);
    if (want == s.armed && callbacks_only(s) == s.level) return;
    if (want == 0) {
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      s.in_epoll = false;
      s.armed = 0;
      s.level = false;
      return;
    }
    try {
      arm(fd, s);
    } catch (...) {
      // The fd is gone; its remaining handler learns that when it retries.
    }
  }

  // fail_waiters_if_closed() handles a number whose file was closed under
  // its waiters (the user closed the fd while a task waited on it) and then
  // reused by a new file: the kernel dropped the old registration, so MOD
  // answers ENOENT. The waiters would otherwise wait for ever, and the new
  // file's first waiter be refused as a second one. They get OSError(EBADF)
  // instead of a wake-up: a retried call would read the new file's data.
  void fail_waiters_if_closed(int fd, fd_slot& s) {
    if (s.adopted || !s.in_epoll) return;
    epoll_event ev{};
    ev.events = s.armed | EPOLLONESHOT;
    ev.data.u64 = static_cast<std::uint64_t>(fd);
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) == 0 || errno != ENOENT) return;
    s.in_epoll = false;
    s.armed = 0;
    for (int d = 0; d < 2; ++d) {
      future_state* f = s.h[d].waiter;
      if (f == nullptr) continue;
      s.h[d].waiter = nullptr;
      --watched_;
      if (!f->done()) {
        f->set_exception(std::make_exception_ptr(std::system_error(
            EBADF, std::generic_category(),
            "fd " + std::to_string(fd) + " was closed while this task waited to " + (d == 0 ? "read" : "write") +
                " it, and its number now names another file: cancel the waiting task before closing the fd")));
      }
      release(f);
    }
  }

  static void drop_handler(handler h) noexcept {
    if (h.waiter != nullptr) release(h.waiter);
    if (h.entry != nullptr) {
      h.entry->cancelled = true;
      release_entry(h.entry);
    }
  }

  void dispatch(loop_core& loop, int fd, std::uint32_t events) {
    if (fd < 0 || static_cast<std::size_t>(fd) >= slots_.size()) return;
    fd_slot& s = slots_[fd];
    if (!s.adopted && !s.level) s.armed = 0;  // EPOLLONESHOT: the kernel disarmed it
    if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) [[unlikely]] {
      if (s.adopted) s.hung_up = true;
      // First, as asyncio's selector runs a reader before a writer: a write
      // pipe's watch then closes it before its writer callback sees EPIPE.
      if (s.hang_up != nullptr && !s.hang_up_queued) {
        s.hang_up_queued = true;
        --watched_;
        ++s.hang_up->refs;
        loop.call_soon_fast(&run_entry, s.hang_up, nullptr, &drop_entry);
      }
    }
    // Errors and hang-ups wake both directions: the retried call reports them.
    const bool ready[2] = {(events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0,
                           (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0};
    for (int d = 0; d < 2; ++d) {
      handler& h = s.h[d];
      if (!ready[d] || h.empty()) continue;
      if (h.waiter != nullptr) {
        future_state* f = h.waiter;
        h.waiter = nullptr;
        --watched_;
        // A waiter whose task was cancelled is already done (on an adopted
        // fd the edge is lost with it, harmlessly: its owner calls before
        // it waits again).
        if (!f->done()) static_cast<future_value<void>*>(f)->set_result();
        release(f);
      } else if (h.entry->refs == 1) {
        // Not queued yet (a level-triggered fd is reported again while its
        // queued run waits: one run per readiness is enough).
        ++h.entry->refs;
        loop.call_soon_fast(&run_entry, h.entry, nullptr, &drop_entry);
      }
    }
    // Persistent callbacks, and a waiter of the other direction, re-arm a
    // one-shot registration.
    if (s.adopted) return;
    try {
      arm(fd, s);
    } catch (...) {
      // Closed under its handlers: wake them so their retry sees the error.
      for (int d = 0; d < 2; ++d) {
        handler& h = s.h[d];
        if (h.waiter != nullptr && !h.waiter->done()) static_cast<future_value<void>*>(h.waiter)->set_result();
      }
    }
  }

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::vector<fd_slot> slots_;
  std::size_t watched_ = 0;
};

}  // namespace

std::unique_ptr<poller> make_epoll_poller() { return std::make_unique<epoll_poller>(); }

const std::type_info& io_callback_type(const callback_node* n) noexcept {
  if (n->fast != &run_entry) return typeid(void);
  const std::function<void()>& fn = static_cast<const io_entry*>(n->args.a)->fn;
  if (const auto* bound = fn.target<context_bound_callback>()) return bound->fn.target_type();
  return fn.target_type();
}

}  // namespace greenlet::asyncio::detail
