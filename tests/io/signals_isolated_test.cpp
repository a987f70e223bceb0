// signals_isolated_test.cpp: signal handler scenarios that killed the
// process before their fix (a signal's default action, a use after free),
// each run in a forked child so that a regression fails one test instead of
// ending the test binary; alarm() bounds a hang.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "support/forked_child.hpp"

namespace {

namespace asyncio = greenlet::asyncio;

// Not GreenletTest: the death test machinery allocates in the parent.
using SignalsIsolatedDeathTest = ::testing::Test;

using greenlet_test::forked::fail;

// Replacing a handler while the signal keeps arriving: the replacement
// removed the handler and added it again, unblocking the signal in between,
// and an occurrence arriving then took its default action (SIGUSR1: the
// process died). Python's replacement has no such window.
void replace_while_the_signal_arrives() {
  ::alarm(30);
  std::atomic<bool> stop{false};
  int hits = 0;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    asyncio::add_signal_handler(loop, SIGUSR1, [&] { ++hits; });
    // Started now, the sender inherits the blocked signal: the kernel can
    // only deliver to the loop's thread or leave the signal pending.
    std::thread sender([&] {
      while (!stop.load()) {
        ::kill(::getpid(), SIGUSR1);
        ::usleep(20);
      }
    });
    for (int i = 0; i < 20000; ++i) {
      asyncio::add_signal_handler(loop, SIGUSR1, [&] { ++hits; });
      if (i % 100 == 0) asyncio::sleep(0);
    }
    stop = true;
    sender.join();
    ::kill(::getpid(), SIGUSR1);
    for (int i = 0; i < 1000 && hits == 0; ++i) asyncio::sleep(0.001);
  });
  if (hits == 0) fail("the handler never ran");
  std::_Exit(0);
}

TEST_F(SignalsIsolatedDeathTest, ReplacingAHandlerNeverUnblocksTheSignal) {
  EXPECT_EXIT(replace_while_the_signal_arrives(), ::testing::ExitedWithCode(0), "");
}

// A loop with a signal handler, dropped (its last reference released) on
// another thread while its own thread lives, is closed by its own thread
// when that exits. The close hook then removed the handler through the
// event_loop, freed already by the drop: a use after free (segfault).
void loop_with_handler_dropped_elsewhere() {
  ::alarm(30);
  std::promise<std::shared_ptr<asyncio::event_loop>> handoff;
  std::promise<void> dropped;
  std::thread owner([&] {
    auto loop = asyncio::new_event_loop();
    asyncio::add_signal_handler(*loop, SIGUSR1, [] {});
    handoff.set_value(loop);
    loop.reset();
    dropped.get_future().wait();
    // Exiting closes the loop: the handler goes, the mask is restored.
  });
  auto loop = handoff.get_future().get();
  loop.reset();  // the last reference, dropped on this thread
  dropped.set_value();
  owner.join();
  std::_Exit(0);
}

TEST_F(SignalsIsolatedDeathTest, LoopWithAHandlerDroppedOnAnotherThread) {
  EXPECT_EXIT(loop_with_handler_dropped_elsewhere(), ::testing::ExitedWithCode(0), "");
}

// Loops on two threads handle SIGUSR1, which every thread blocks (blocked in
// main() first, as docs/io.md advises). A kill() arrives while neither loop
// polls, then the main thread's loop removes its handler: the occurrence is
// the other loop's to read. (The removal read it from the process's queue
// and discarded it: no handler ran for it.)
void removal_leaves_a_process_signal_to_another_thread(bool blocked_in_main) {
  ::alarm(30);
  if (blocked_in_main) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }
  std::atomic<int> main_hits{0}, other_hits{0};
  std::promise<void> other_ready;
  std::promise<void> removed;
  std::thread other;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    asyncio::add_signal_handler(loop, SIGUSR1, [&] { ++main_hits; });
    // Started after the add: the thread inherits the blocked signal.
    other = std::thread([&] {
      asyncio::run([&] {
        asyncio::add_signal_handler(asyncio::get_running_loop(), SIGUSR1, [&] { ++other_hits; });
        other_ready.set_value();
        removed.get_future().wait();  // busy: the loop does not poll meanwhile
        for (int i = 0; i < 1000 && other_hits == 0; ++i) asyncio::sleep(0.001);
      });
    });
    other_ready.get_future().wait();
    ::kill(::getpid(), SIGUSR1);  // pending for the process: every thread blocks it
    asyncio::remove_signal_handler(loop, SIGUSR1);
  });
  removed.set_value();
  other.join();
  if (main_hits != 0) fail("the removed handler ran");
  if (other_hits != 1) fail("the other thread's handler did not run for the occurrence");
  std::_Exit(0);
}

TEST_F(SignalsIsolatedDeathTest, RemovalLeavesAProcessSignalToAnotherThreadsLoop) {
  EXPECT_EXIT(removal_leaves_a_process_signal_to_another_thread(true), ::testing::ExitedWithCode(0), "");
}

// The same when the main thread's removal unblocks the signal (only the
// handler had blocked it there): the occurrence must be taken before the
// unblock, or its default action would kill the process; it is passed on to
// the other thread's loop.
TEST_F(SignalsIsolatedDeathTest, RemovalThatUnblocksPassesAProcessSignalOn) {
  EXPECT_EXIT(removal_leaves_a_process_signal_to_another_thread(false), ::testing::ExitedWithCode(0), "");
}

// docs/porting.md: asyncio::run() installs no SIGINT handler, so Ctrl-C
// (a SIGINT to the process) kills the program as in any C++ program, where
// Python 3.11's asyncio.run() cancels the main task and raises
// KeyboardInterrupt.
void ctrl_c_without_a_handler() {
  ::alarm(30);
  ::signal(SIGINT, SIG_DFL);  // a background job may inherit it ignored
  asyncio::run([] {
    ::kill(::getpid(), SIGINT);
    asyncio::sleep(3600);
  });
  fail("survived SIGINT");
}

TEST_F(SignalsIsolatedDeathTest, CtrlCWithoutAHandlerKillsTheProcess) {
  EXPECT_EXIT(ctrl_c_without_a_handler(), ::testing::KilledBySignal(SIGINT), "");
}

// The idiom docs/porting.md gives for Python's behaviour: a SIGINT handler
// cancels the main task, which unwinds, and run() throws CancelledError.
void ctrl_c_cancels_the_main_task() {
  ::alarm(30);
  bool unwound = false;
  try {
    asyncio::run([&] {
      asyncio::add_signal_handler(asyncio::get_running_loop(), SIGINT,
                                  [main = asyncio::current_task()]() mutable { main.cancel(); });
      struct on_unwind {
        bool& flag;
        ~on_unwind() { flag = true; }
      } guard{unwound};
      ::kill(::getpid(), SIGINT);  // as Ctrl-C: to the process
      asyncio::sleep(3600);
      fail("the sleep was not cancelled");
    });
  } catch (const asyncio::CancelledError&) {
    if (!unwound) fail("the main task did not unwind");
    std::_Exit(0);
  }
  fail("run() returned");
}

TEST_F(SignalsIsolatedDeathTest, CtrlCHandlerCancelsTheMainTaskAsPythonsRun) {
  EXPECT_EXIT(ctrl_c_cancels_the_main_task(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
