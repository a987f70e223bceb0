// signals_test.cpp: add_signal_handler/remove_signal_handler, after
// CPython's Lib/test/test_asyncio/test_unix_events.py (SelectorEventLoop
// signal tests) but with real signals: raise() sends to this thread, which
// add_signal_handler() has blocked.
#include <dirent.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using Signals = greenlet_test::GreenletTest;

bool blocked(int sig) {
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, nullptr, &cur);
  return sigismember(&cur, sig) == 1;
}

TEST_F(Signals, HandlerRunsOnLoop) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    const auto loop_thread = std::this_thread::get_id();
    std::vector<int> events;
    auto got = loop.create_future<void>();
    asyncio::add_signal_handler(loop, SIGUSR1, [&] {
      EXPECT_EQ(std::this_thread::get_id(), loop_thread);
      events.push_back(1);
      if (!got.done()) got.set_result();
    });
    EXPECT_TRUE(blocked(SIGUSR1));
    ASSERT_EQ(::raise(SIGUSR1), 0);
    events.push_back(0);  // raise() returned before the handler ran
    asyncio::await(got);
    EXPECT_EQ(events, (std::vector<int>{0, 1}));
    EXPECT_TRUE(asyncio::remove_signal_handler(loop, SIGUSR1));
    EXPECT_FALSE(asyncio::remove_signal_handler(loop, SIGUSR1));
    EXPECT_FALSE(blocked(SIGUSR1));
  });
}

TEST_F(Signals, ReplaceAndRemoveDiscardsPending) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    int first = 0, second = 0;
    asyncio::add_signal_handler(loop, SIGUSR2, [&] { ++first; });
    asyncio::add_signal_handler(loop, SIGUSR2, [&] { ++second; });
    ASSERT_EQ(::raise(SIGUSR2), 0);
    for (int i = 0; i < 100 && second == 0; ++i) asyncio::sleep(0.001);
    EXPECT_EQ(first, 0);
    EXPECT_EQ(second, 1);
    // Pending when removed: discarded, not delivered with its default
    // action (which would end the test binary).
    ASSERT_EQ(::raise(SIGUSR2), 0);
    EXPECT_TRUE(asyncio::remove_signal_handler(loop, SIGUSR2));
    EXPECT_EQ(second, 1);
    EXPECT_FALSE(blocked(SIGUSR2));
  });
}

// Replacing a handler keeps its signalfd and the mask: an occurrence pending
// at the replacement runs the new handler. (It was removed and added again,
// which discarded the pending occurrence: the new handler never ran.)
TEST_F(Signals, ReplacingKeepsAPendingOccurrenceForTheNewHandler) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    int first = 0, second = 0;
    asyncio::add_signal_handler(loop, SIGUSR2, [&] { ++first; });
    ASSERT_EQ(::raise(SIGUSR2), 0);  // pending: the loop has not polled since
    asyncio::add_signal_handler(loop, SIGUSR2, [&] { ++second; });
    EXPECT_TRUE(blocked(SIGUSR2));
    for (int i = 0; i < 100 && second == 0; ++i) asyncio::sleep(0.001);
    EXPECT_EQ(first, 0);
    EXPECT_EQ(second, 1);
    EXPECT_TRUE(asyncio::remove_signal_handler(loop, SIGUSR2));
    EXPECT_FALSE(blocked(SIGUSR2));
  });
}

// A handler may replace itself while it runs: the running function lives
// until it returns, and the next occurrence runs the new one, in the
// context of the add_signal_handler() call that installed it.
TEST_F(Signals, HandlerReplacesItselfWhileItRuns) {
  static greenlet::context_var<int> var("var", 0);
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    std::vector<int> seen;
    var.set(1);
    asyncio::add_signal_handler(loop, SIGUSR1, [&, text = std::string(100, 'x')] {
      var.set(2);
      asyncio::add_signal_handler(loop, SIGUSR1, [&] { seen.push_back(var.get() * 10); });
      seen.push_back(static_cast<int>(text.size()));  // still alive
    });
    var.set(3);
    ASSERT_EQ(::raise(SIGUSR1), 0);
    for (int i = 0; i < 100 && seen.empty(); ++i) asyncio::sleep(0.001);
    ASSERT_EQ(::raise(SIGUSR1), 0);
    for (int i = 0; i < 100 && seen.size() < 2; ++i) asyncio::sleep(0.001);
    // The first ran in a copy of the context at its add (var 1); the second
    // in a copy of the first handler's, where var was 2.
    EXPECT_EQ(seen, (std::vector<int>{100, 20}));
    EXPECT_EQ(var.get(), 3);
  });
}

// what() of the OSError fn throws, or "" if it throws none; its errno must
// be EINVAL.
template <class F>
std::string einval_message(F fn) {
  try {
    fn();
  } catch (const asyncio::OSError& e) {
    EXPECT_EQ(e.errno_(), EINVAL);
    return e.what();
  }
  return "";
}

// SIGKILL and SIGSTOP cannot be caught (asyncio: RuntimeError "sig 9 cannot
// be caught"); removing a handler for them answers false, as asyncio's.
TEST_F(Signals, UncatchableSignalIsOSError) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    EXPECT_THROW(asyncio::add_signal_handler(loop, SIGKILL, [] {}), asyncio::OSError);
    EXPECT_EQ(einval_message([&] { asyncio::add_signal_handler(loop, SIGSTOP, [] {}); }),
              "add_signal_handler(): sig 19 cannot be caught: Invalid argument");
    EXPECT_FALSE(asyncio::remove_signal_handler(loop, SIGKILL));
  });
}

// Numbers that are no signal a thread can block are refused by both calls,
// as asyncio's _check_signal() (ValueError "invalid signal number 32"). 32
// and 33 are glibc's own, which pthread_sigmask() silently leaves unblocked:
// they were accepted, and the handler could never run (the signal took its
// default action instead).
TEST_F(Signals, InvalidSignalNumbersAreRefused) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    for (int sig : {0, -1, 32, 33, NSIG, 1000}) {
      const std::string n = std::to_string(sig);
      EXPECT_EQ(einval_message([&] { asyncio::add_signal_handler(loop, sig, [] {}); }),
                "add_signal_handler(): invalid signal number " + n + ": Invalid argument");
      EXPECT_EQ(einval_message([&] { asyncio::remove_signal_handler(loop, sig); }),
                "remove_signal_handler(): invalid signal number " + n + ": Invalid argument");
    }
  });
}

// The first real-time signal glibc leaves to programs is valid.
TEST_F(Signals, RealTimeSignalsWork) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    int hits = 0;
    asyncio::add_signal_handler(loop, SIGRTMIN, [&] { ++hits; });
    EXPECT_TRUE(blocked(SIGRTMIN));
    ASSERT_EQ(::raise(SIGRTMIN), 0);
    for (int i = 0; i < 100 && hits == 0; ++i) asyncio::sleep(0.001);
    EXPECT_EQ(hits, 1);
    EXPECT_TRUE(asyncio::remove_signal_handler(loop, SIGRTMIN));
    EXPECT_FALSE(blocked(SIGRTMIN));
  });
}

// Open descriptors of this process, from /proc/self/fd.
int open_fds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n - 3;  // ".", ".." and the directory's own fd
}

// Closing the loop removes the handlers it still has: the signalfds are
// closed and the signals unblocked again.
TEST_F(Signals, CloseRemovesHandlers) {
  const int before = open_fds();
  ASSERT_FALSE(blocked(SIGUSR1));
  ASSERT_FALSE(blocked(SIGUSR2));
  {
    auto loop = asyncio::new_event_loop();
    const int with_loop = open_fds();
    int calls = 0;
    loop->run_until_complete([&] {
      asyncio::add_signal_handler(*loop, SIGUSR1, [&] { ++calls; });
      asyncio::add_signal_handler(*loop, SIGUSR2, [&] { ++calls; });
      EXPECT_EQ(open_fds(), with_loop + 2);
      ASSERT_EQ(::raise(SIGUSR1), 0);
      for (int i = 0; i < 100 && calls == 0; ++i) asyncio::sleep(0.001);
    });
    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(blocked(SIGUSR1));
    EXPECT_TRUE(blocked(SIGUSR2));
    loop->close();
    EXPECT_EQ(open_fds(), with_loop);
    EXPECT_FALSE(blocked(SIGUSR1));
    EXPECT_FALSE(blocked(SIGUSR2));
    EXPECT_FALSE(asyncio::remove_signal_handler(*loop, SIGUSR1));  // gone already
  }
  EXPECT_EQ(open_fds(), before);
}

// The same at the end of asyncio::run, which closes its loop; a handler
// removed by hand earlier is not removed twice.
TEST_F(Signals, RunLeavesNothingBehind) {
  const int before = open_fds();
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    asyncio::add_signal_handler(loop, SIGUSR1, [] {});
    asyncio::add_signal_handler(loop, SIGUSR2, [] {});
    EXPECT_TRUE(asyncio::remove_signal_handler(loop, SIGUSR2));
    EXPECT_TRUE(blocked(SIGUSR1));
  });
  EXPECT_EQ(open_fds(), before);
  EXPECT_FALSE(blocked(SIGUSR1));
  EXPECT_FALSE(blocked(SIGUSR2));
}

// A signal the thread blocked itself stays blocked after close (the mask is
// restored, not cleared), and the fd is closed all the same.
TEST_F(Signals, CloseRestoresMaskNotClears) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &set, nullptr), 0);
  const int before = open_fds();
  asyncio::run([] {
    asyncio::add_signal_handler(asyncio::get_running_loop(), SIGUSR2, [] {});
    asyncio::add_signal_handler(asyncio::get_running_loop(), SIGUSR1, [] {});
  });
  EXPECT_EQ(open_fds(), before);
  EXPECT_TRUE(blocked(SIGUSR2));
  EXPECT_FALSE(blocked(SIGUSR1));
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &set, nullptr), 0);
}

// Two loops of one thread handling the same signal share the thread's mask:
// closing the first must leave the signal blocked for the second (it was
// unblocked, and a SIGUSR1 then killed the process), and the last handler's
// removal restores it.
TEST_F(Signals, TwoLoopsOfOneThreadShareTheMask) {
  ASSERT_FALSE(blocked(SIGUSR1));
  asyncio::event_loop first;
  asyncio::event_loop second;
  int first_hits = 0, second_hits = 0;
  asyncio::add_signal_handler(first, SIGUSR1, [&] { ++first_hits; });
  asyncio::add_signal_handler(second, SIGUSR1, [&] { ++second_hits; });
  first.close();
  ASSERT_TRUE(blocked(SIGUSR1)) << "closing one loop unblocked the other's signal";
  ASSERT_EQ(::raise(SIGUSR1), 0);
  second.run_until_complete(second.create_task([&] {
    for (int i = 0; i < 1000 && second_hits == 0; ++i) asyncio::sleep(0.001);
  }));
  EXPECT_EQ(first_hits, 0);
  EXPECT_EQ(second_hits, 1);
  EXPECT_TRUE(asyncio::remove_signal_handler(second, SIGUSR1));
  EXPECT_FALSE(blocked(SIGUSR1));
  second.close();
}

// An occurrence pending when one of two loops of the thread removes its
// handler is left for the other (the removal read and discarded it: the
// other's handler never ran).
TEST_F(Signals, RemovingLeavesAPendingOccurrenceToAnotherLoopOfTheThread) {
  asyncio::event_loop first;
  asyncio::event_loop second;
  int first_hits = 0, second_hits = 0;
  asyncio::add_signal_handler(first, SIGUSR1, [&] { ++first_hits; });
  asyncio::add_signal_handler(second, SIGUSR1, [&] { ++second_hits; });
  ASSERT_EQ(::raise(SIGUSR1), 0);  // pending: neither loop has polled
  EXPECT_TRUE(asyncio::remove_signal_handler(first, SIGUSR1));
  ASSERT_TRUE(blocked(SIGUSR1));
  second.run_until_complete(second.create_task([&] {
    for (int i = 0; i < 1000 && second_hits == 0; ++i) asyncio::sleep(0.001);
  }));
  EXPECT_EQ(first_hits, 0);
  EXPECT_EQ(second_hits, 1);
  EXPECT_TRUE(asyncio::remove_signal_handler(second, SIGUSR1));
  EXPECT_FALSE(blocked(SIGUSR1));
  first.close();
  second.close();
}

// A signal the thread had blocked itself stays blocked when the handler
// goes, and so does an occurrence pending then: it is the thread's to take
// (sigwait() here), not discarded.
TEST_F(Signals, RemovingLeavesAPendingOccurrenceOfASignalTheThreadBlocked) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &set, nullptr), 0);
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    asyncio::add_signal_handler(loop, SIGUSR2, [] {});
    ASSERT_EQ(::raise(SIGUSR2), 0);
    EXPECT_TRUE(asyncio::remove_signal_handler(loop, SIGUSR2));
  });
  EXPECT_TRUE(blocked(SIGUSR2));
  sigset_t pending;
  ASSERT_EQ(sigpending(&pending), 0);
  EXPECT_EQ(sigismember(&pending, SIGUSR2), 1);
  int got = 0;
  if (sigismember(&pending, SIGUSR2) == 1) {
    EXPECT_EQ(sigwait(&set, &got), 0);  // taken, so that unblocking is safe
  }
  EXPECT_EQ(got, SIGUSR2);
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &set, nullptr), 0);
}

// docs/asyncio.md's recipe, Python 3.14's `python -m asyncio pstree` in the process: a signal
// prints every task's call graph (here to a string): where each waits, and what it is awaited by.
TEST_F(Signals, ASignalPrintsEveryTasksCallGraph) {
  std::string dump;
  int main_line = 0, worker_line = 0, waiter_line = 0;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    auto printed = loop.create_future<void>();
    asyncio::add_signal_handler(loop, SIGUSR1, [&] {
      std::ostringstream out;
      for (auto& t : asyncio::all_tasks()) asyncio::print_call_graph(t, out);
      dump = out.str();
      printed.set_result();
    });
    asyncio::current_task().set_name("main");
    asyncio::Event go;
    worker_line = __LINE__ + 1;
    auto worker = asyncio::create_task([&] { go.wait(); }, "worker");
    waiter_line = __LINE__ + 1;
    auto waiter = asyncio::create_task([&] { asyncio::await(worker); }, "waiter");
    asyncio::sleep(0);
    ASSERT_EQ(::raise(SIGUSR1), 0);
    main_line = __LINE__ + 1;
    asyncio::await(printed);
    go.set();
    asyncio::gather(worker, waiter);
    asyncio::remove_signal_handler(loop, SIGUSR1);
  });
  // Oldest first: main, awaited by nobody; worker, awaited by waiter; waiter, by nobody; each with
  // the line it waits on (function names, which depend on the compiler, and ids cut off).
  std::vector<std::string> lines;
  std::istringstream in(dump);
  for (std::string line; std::getline(in, line);) {
    line = line.substr(0, line.find(", id="));
    lines.push_back(line.substr(0, line.find(", in ")));
  }
  const std::string at = "|   File '" + std::string(__FILE__) + "', line ";
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "* Task(name='main'", "  + Call stack:", "  " + at + std::to_string(main_line),
                       "* Task(name='worker'", "  + Call stack:", "  " + at + std::to_string(worker_line),
                       "  + Awaited by:", "    * Task(name='waiter'",
                       "      + Call stack:", "      " + at + std::to_string(waiter_line), "* Task(name='waiter'",
                       "  + Call stack:", "  " + at + std::to_string(waiter_line)}))
      << dump;
}

}  // namespace
