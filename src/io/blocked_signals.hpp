// blocked_signals.hpp: the signal mask of the threads the library starts
// itself (thread pool workers, process pool helpers, the child reaper).
#pragma once

#include <pthread.h>
#include <signal.h>

namespace greenlet::detail {

// async_signals_blocked blocks, in the calling thread while it lives, every
// signal but the synchronous ones; construct one around the creation of a
// thread (a std::thread starts with its creator's mask), which then never
// takes a process-directed signal. Why: add_signal_handler() reads a signal
// through a signalfd, which sees it only if every thread blocks it; the
// kernel hands a kill() to any thread that does not, and a library thread
// started before the handler (the default executor, started by a name
// lookup) took SIGUSR1's default action: the process died. (In CPython a
// handler installed with signal.signal is process-wide, and whichever thread
// takes the signal only flags the main thread: no worker dies of one.)
//
// Left unblocked: faults raised by the thread's own code (SIGSEGV, SIGBUS,
// SIGFPE, SIGILL, SIGTRAP, SIGSYS), which cannot be blocked usefully, and
// SIGPROF, so that a sampling profiler still sees the workers. glibc keeps
// its own internal signals (cancellation, setxid) unblocked anyway.
// Destruction restores the creator's mask. Throws nothing.
class async_signals_blocked {
 public:
  async_signals_blocked() noexcept {
    sigset_t set;
    sigfillset(&set);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGPROF}) sigdelset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~async_signals_blocked() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  async_signals_blocked(const async_signals_blocked&) = delete;
  async_signals_blocked& operator=(const async_signals_blocked&) = delete;

 private:
  sigset_t old_;
};

}  // namespace greenlet::detail
