// signals.cpp: add_signal_handler/remove_signal_handler on signalfd. One
// signalfd per (loop, signal), read by a persistent add_reader callback, so
// the handler runs as an ordinary loop callback on the loop's thread. The
// registry is process-wide (loops of several threads may register) and
// guarded by a mutex that is never held while a handler runs.
#include "greenlet/io/signals.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "asyncio/poller.hpp"

namespace greenlet::asyncio {

namespace {

using detail::loop_core;

struct handler_entry {
  int fd = -1;
  std::shared_ptr<std::function<void()>> fn;
  std::uint64_t close_hook = 0;  // the loop's close hook that removes it
};

// The signal mask is the thread's, shared by every loop of the thread: two
// loops there may handle one signal. Each signal counts the handlers that
// hold it blocked here, and remembers whether the first found it unblocked;
// only the last one's removal restores it (else closing one loop would
// unblock a signal another still reads, whose default action may kill).
struct thread_signal_holds {
  int handlers[NSIG] = {};
  bool we_blocked[NSIG] = {};
};
thread_local thread_signal_holds holds;

void hold_signal(int sig, bool was_unblocked) noexcept {
  if (holds.handlers[sig]++ == 0) holds.we_blocked[sig] = was_unblocked;
}

void let_go_of_signal(int sig) noexcept {
  if (--holds.handlers[sig] != 0 || !holds.we_blocked[sig]) return;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

// Keyed by the loop's core, not its event_loop: the close hook may run after
// the event_loop is gone (one dropped on another thread is closed by its own
// thread when that exits, see drop_elsewhere()).
std::mutex registry_mutex;
std::map<std::pair<loop_core*, int>, handler_entry>& registry() {
  static std::map<std::pair<loop_core*, int>, handler_entry> r;
  return r;
}

// drain(fd) reads every queued siginfo; returns how many there were.
int drain(int fd) {
  int count = 0;
  signalfd_siginfo info;
  while (::read(fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) ++count;
  return count;
}

// remove_handler(core, sig) is remove_signal_handler() on a loop's core.
bool remove_handler(loop_core* core, int sig) {
  handler_entry entry;
  {
    std::lock_guard lock(registry_mutex);
    auto it = registry().find({core, sig});
    if (it == registry().end()) return false;
    entry = std::move(it->second);
    registry().erase(it);
  }
  core->remove_close_hook(entry.close_hook);
  core->io->remove(entry.fd, detail::io_direction::read);
  // Discard an occurrence still pending, then unblock: unblocking first
  // would deliver it with its default action (often: terminate).
  drain(entry.fd);
  ::close(entry.fd);
  // The mask to restore is the owner thread's; a loop closed elsewhere
  // (allowed once its thread exited) has none left to restore.
  if (core->on_owner_thread()) let_go_of_signal(sig);
  return true;
}

}  // namespace

void add_signal_handler(event_loop& loop, int sig, std::function<void()> fn) {
  if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP)
    throw OSError(EINVAL, "add_signal_handler(): signal " + std::to_string(sig) + " cannot be caught");
  remove_signal_handler(loop, sig);

  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, sig);
  // Block first: a signal arriving between signalfd() and the block would
  // otherwise take its default action.
  if (int err = pthread_sigmask(SIG_BLOCK, &set, &old); err != 0) raise_os_error(err, "pthread_sigmask");
  hold_signal(sig, sigismember(&old, sig) == 0);
  auto unblock = [&] { let_go_of_signal(sig); };
  const int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    unblock();
    raise_os_error(err, "signalfd");
  }
  auto shared_fn = std::make_shared<std::function<void()>>(std::move(fn));
  try {
    // The callback holds the handler by shared_ptr: removing the handler
    // from inside itself must not destroy the function that is running.
    loop.add_reader(fd, [fd, shared_fn] {
      if (drain(fd) > 0) {
        auto keep = shared_fn;
        (*keep)();
      }
    });
  } catch (...) {
    ::close(fd);
    unblock();
    throw;
  }
  try {
    // Closing the loop removes the handler: signalfd closed, mask restored.
    // The hook holds the core: the event_loop may be gone when it runs.
    loop_core* core = loop.core();
    const std::uint64_t hook = core->add_close_hook([core, sig] { remove_handler(core, sig); });
    std::lock_guard lock(registry_mutex);
    registry()[{core, sig}] = handler_entry{fd, std::move(shared_fn), hook};
  } catch (...) {
    loop.remove_reader(fd);
    ::close(fd);
    unblock();
    throw;
  }
}

bool remove_signal_handler(event_loop& loop, int sig) { return remove_handler(loop.core(), sig); }

}  // namespace greenlet::asyncio
