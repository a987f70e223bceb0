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
#include <string>
#include <utility>

#include "asyncio/poller.hpp"
#include "greenlet/fiber/context.hpp"

namespace greenlet::asyncio {

namespace {

using detail::loop_core;

// handler_fn is a handler as the loop runs it: shared, so that a run holds
// it and a handler that removes or replaces itself is not destroyed while
// it runs.
using handler_fn = std::shared_ptr<std::function<void()>>;

struct handler_entry {
  int fd = -1;
  handler_fn fn;                 // replaced in place by a later add_signal_handler()
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

// check_signal(sig, caller) throws OSError(EINVAL), as asyncio's
// _check_signal() a ValueError, unless sig is a signal number a thread can
// block: 1 to NSIG - 1 but those sigfillset() leaves out. glibc leaves out
// 32 and 33, which it uses itself and pthread_sigmask() silently refuses to
// block: a handler for them never ran, and the signal took its default
// action. Python's signal.valid_signals() is the same set.
void check_signal(int sig, const char* caller) {
  sigset_t valid;
  sigfillset(&valid);
  if (sig <= 0 || sig >= NSIG || sigismember(&valid, sig) != 1)
    throw OSError(EINVAL, std::string(caller) + "(): invalid signal number " + std::to_string(sig));
}

// run_handler(core, sig) runs the loop's current handler for sig, if it
// still has one. Outside the registry's lock: the handler may add or remove
// handlers.
void run_handler(loop_core* core, int sig) {
  handler_fn fn;
  {
    std::lock_guard lock(registry_mutex);
    auto it = registry().find({core, sig});
    if (it == registry().end()) return;
    fn = it->second.fn;
  }
  (*fn)();
}

// replace_handler(core, sig, fn) gives the loop's existing handler for sig
// the function fn and hands the previous one back in fn (for the caller to
// destroy outside the lock); false if there is none. The signalfd and the
// mask stay as they are: removing and adding again would unblock the signal
// in between, and an occurrence arriving then took its default action.
bool replace_handler(loop_core* core, int sig, handler_fn& fn) {
  std::lock_guard lock(registry_mutex);
  auto it = registry().find({core, sig});
  if (it == registry().end()) return false;
  it->second.fn.swap(fn);
  return true;
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
  check_signal(sig, "add_signal_handler");
  if (sig == SIGKILL || sig == SIGSTOP)
    throw OSError(EINVAL, "add_signal_handler(): sig " + std::to_string(sig) + " cannot be caught");
  loop_core* core = loop.core();
  core->check_loop_thread();
  core->check_open();
  // Each run is in a copy of the caller's context, the same copy every time,
  // as asyncio's Handle for the handler.
  auto handler = std::make_shared<std::function<void()>>(
      [context = ::greenlet::copy_context(), fn = std::move(fn)]() mutable { context.run(fn); });
  if (replace_handler(core, sig, handler)) return;

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
  try {
    // The reader runs whatever handler the loop has for sig by then.
    core->io->add_callback(fd, detail::io_direction::read, detail::io_caller::user, [fd, core, sig] {
      if (drain(fd) > 0) run_handler(core, sig);
    });
  } catch (...) {
    ::close(fd);
    unblock();
    throw;
  }
  try {
    // Closing the loop removes the handler: signalfd closed, mask restored.
    // The hook holds the core: the event_loop may be gone when it runs.
    const std::uint64_t hook = core->add_close_hook([core, sig] { remove_handler(core, sig); });
    std::lock_guard lock(registry_mutex);
    registry()[{core, sig}] = handler_entry{fd, std::move(handler), hook};
  } catch (...) {
    core->io->remove(fd, detail::io_direction::read);
    ::close(fd);
    unblock();
    throw;
  }
}

bool remove_signal_handler(event_loop& loop, int sig) {
  check_signal(sig, "remove_signal_handler");
  return remove_handler(loop.core(), sig);
}

}  // namespace greenlet::asyncio
