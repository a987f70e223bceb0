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

#include <greenlet/io.hpp>

namespace {

namespace asyncio = greenlet::asyncio;

// Not GreenletTest: the death test machinery allocates in the parent.
using SignalsIsolatedDeathTest = ::testing::Test;

[[noreturn]] void fail(const char* why) {
  std::fprintf(stderr, "%s\n", why);
  std::_Exit(1);
}

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

}  // namespace
