// io/signals.hpp: asyncio's loop.add_signal_handler/remove_signal_handler,
// as free functions on a loop, built on signalfd.
//
//   asyncio::run([] {
//     auto& loop = asyncio::get_running_loop();
//     asyncio::add_signal_handler(loop, SIGINT, [&] { loop.stop(); });
//     ...
//     asyncio::remove_signal_handler(loop, SIGINT);
//   });
//
// Thread rule: signalfd only sees a signal that is blocked, so
// add_signal_handler() blocks it in the calling thread (pthread_sigmask).
// A process-directed signal (kill(), Ctrl-C) goes to any thread that does
// not block it: every other thread of the process must block the signal
// too (block it in main() before starting threads, which then inherit the
// mask), or the signal's default action or another handler takes it.
#pragma once

#include <functional>

#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/io/errors.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// add_signal_handler(loop, sig, fn) runs fn on loop's thread, as a loop
// callback, each time sig arrives (signals arriving together may run it
// once), in a copy of the caller's context (the same copy each time).
// Replaces an earlier handler for sig on that loop in place: the signal
// stays blocked throughout, and an occurrence pending then runs the new
// handler. Call it on the loop's thread. Throws OSError(EINVAL) for a
// number that is no signal a thread can block ("invalid signal number N":
// 0, negative, NSIG or more, glibc's own 32 and 33; asyncio raises
// ValueError) and for SIGKILL/SIGSTOP ("sig 9 cannot be caught"; asyncio:
// RuntimeError), RuntimeError if the loop is closed or this is not its
// thread, and OSError if signalfd() fails. Closing the loop removes the
// handler as remove_signal_handler() does (signalfd closed, sig unblocked
// if add_signal_handler() blocked it); close the loop on the thread that
// added the handler, since the signal mask is per thread.
void add_signal_handler(event_loop& loop, int sig, std::function<void()> fn);

// remove_signal_handler(loop, sig) removes the handler; returns false if
// there was none. Throws OSError(EINVAL) for an invalid signal number, as
// add_signal_handler() does (asyncio: ValueError). It unblocks sig in the
// calling thread if add_signal_handler() blocked it and no other loop of
// the thread handles sig. An occurrence still pending is left pending while
// sig stays blocked (for another loop's handler, or the thread's own); when
// sig is unblocked, it is taken first (it would take its default action at
// once): discarded if it was sent to this thread, passed on to another
// thread's loop handling sig if it was sent to the process (see docs/io.md).
bool remove_signal_handler(event_loop& loop, int sig);

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
