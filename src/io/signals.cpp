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

// letting_go_unblocks(sig) is true when the next let_go_of_signal(sig) will
// unblock sig: it is the last handler holding it, and the first one found it
// unblocked.
bool letting_go_unblocks(int sig) noexcept { return holds.handlers[sig] == 1 && holds.we_blocked[sig]; }

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

// take_pending(fd) reads every occurrence queued for fd's signal and says
// how many were sent to the process rather than to this thread. The kernel
// keeps a process-directed one (kill(), Ctrl-C) that every thread blocks in
// the process's queue, where any thread's signalfd sees it; a thread-directed
// one (raise(), pthread_kill(), tgkill(): si_code SI_TKILL) waits for its
// thread alone.
int take_pending(int fd) {
  int for_the_process = 0;
  signalfd_siginfo info;
  while (::read(fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    if (info.ssi_code != SI_TKILL) ++for_the_process;
  }
  return for_the_process;
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

// pass_on(occurrences, sig) hands process-directed occurrences of sig that
// this thread had to take to a loop of another thread that handles sig: its
// handler runs once for each, as if that loop had read them. Nothing
// happens if there is none, or if posting to it fails (the loop is closing).
void pass_on(int occurrences, int sig) noexcept {
  if (occurrences == 0) return;
  std::lock_guard lock(registry_mutex);
  for (const auto& [key, entry] : registry()) {
    loop_core* core = key.first;
    if (key.second != sig || core->on_owner_thread() || core->owner_exited()) continue;
    // Listed, so not closed yet: its close hook (which unlists it, under this
    // lock) runs before close() refuses threadsafe posts.
    try {
      for (int i = 0; i < occurrences; ++i) core->call_soon_threadsafe([core, sig] { run_handler(core, sig); });
    } catch (...) {
    }
    return;
  }
}

// close_signalfd(core, sig, fd) closes a removed handler's signalfd and lets
// go of sig in the loop's thread. Occurrences still pending are left to the
// kernel as long as sig stays blocked in the thread: another loop of the
// thread that handles sig reads them, a process-directed one may go to
// another thread's loop, and a signal the thread had blocked itself keeps
// them for whoever reads or unblocks it next. Only when letting go unblocks
// sig are they taken first, since unblocking would give them their default
// action (often: terminate): the thread's own are discarded, the process's
// passed on to another thread's loop (else this loop would steal them).
void close_signalfd(loop_core* core, int sig, int fd) {
  // The mask to restore is the owner thread's; a loop closed elsewhere
  // (allowed once its thread exited) has none left to restore.
  const bool on_owner = core->on_owner_thread();
  if (on_owner && letting_go_unblocks(sig)) pass_on(take_pending(fd), sig);
  ::close(fd);
  if (on_owner) let_go_of_signal(sig);
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
  close_signalfd(core, sig, entry.fd);
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
  const int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    let_go_of_signal(sig);
    raise_os_error(err, "signalfd");
  }
  try {
    // The reader runs whatever handler the loop has for sig by then.
    core->io->add_callback(fd, detail::io_direction::read, detail::io_caller::user, [fd, core, sig] {
      if (drain(fd) > 0) run_handler(core, sig);
    });
  } catch (...) {
    close_signalfd(core, sig, fd);
    throw;
  }
  std::uint64_t hook = 0;
  try {
    // Closing the loop removes the handler: signalfd closed, mask restored.
    // The hook holds the core: the event_loop may be gone when it runs.
    hook = core->add_close_hook([core, sig] { remove_handler(core, sig); });
    std::lock_guard lock(registry_mutex);
    registry()[{core, sig}] = handler_entry{fd, std::move(handler), hook};
  } catch (...) {
    if (hook != 0) core->remove_close_hook(hook);
    core->io->remove(fd, detail::io_direction::read);
    close_signalfd(core, sig, fd);
    throw;
  }
}

bool remove_signal_handler(event_loop& loop, int sig) {
  check_signal(sig, "remove_signal_handler");
  return remove_handler(loop.core(), sig);
}

}  // namespace greenlet::asyncio
