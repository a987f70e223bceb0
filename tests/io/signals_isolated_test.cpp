// signals_isolated_test.cpp: signal handler scenarios that killed the
// process before their fix (a signal's default action, a use after free),
// each run in a forked child so that a regression fails one test instead of
// ending the test binary; alarm() bounds a hang.
#include <signal.h>
#include <unistd.h>

#include <atomic>
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
