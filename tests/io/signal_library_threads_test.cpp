// signal_library_threads_test.cpp: a signal handler keeps working after the
// library has started threads of its own. The kernel hands a kill() to any
// thread that does not block the signal; add_signal_handler() blocks it only
// in the loop's thread, so a library thread started earlier (the default
// executor, started by a name lookup) took SIGUSR1's default action and the
// process died. CPython's twin (asyncio.open_connection then
// loop.add_signal_handler) counts every signal.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include <gtest/gtest.h>

#include <greenlet/io.hpp>

#include "support/forked_child.hpp"

namespace {

namespace asyncio = greenlet::asyncio;

// Not GreenletTest: the death test machinery allocates in the parent.
using SignalLibraryThreadsDeathTest = ::testing::Test;

using greenlet_test::forked::fail;

// Each scenario runs in a child process: without the fix the signal kills
// it, and alarm() bounds a hang.
void handler_after_a_name_lookup() {
  ::alarm(30);
  int hits = 0;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    try {
      auto [r, w] = asyncio::open_connection("localhost", 1);  // resolves on the default executor
    } catch (const std::exception&) {
      // Refused, as expected: the lookup is what matters.
    }
    asyncio::add_signal_handler(loop, SIGUSR1, [&] { ++hits; });
    for (int i = 0; i < 50; ++i) {
      ::kill(::getpid(), SIGUSR1);  // process-directed, as from another process
      asyncio::sleep(0.001);
    }
    for (int i = 0; i < 1000 && hits == 0; ++i) asyncio::sleep(0.001);
  });
  if (hits == 0) fail("the handler never ran");
  std::_Exit(0);
}

TEST_F(SignalLibraryThreadsDeathTest, HandlerWorksAfterTheDefaultExecutorStarted) {
  EXPECT_EXIT(handler_after_a_name_lookup(), ::testing::ExitedWithCode(0), "");
}

// The same with the executor's worker started by to_thread() before the
// handler, and kept busy while the signals arrive.
void handler_while_a_worker_runs() {
  ::alarm(30);
  int hits = 0;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    asyncio::await(asyncio::to_thread([] {}));
    asyncio::add_signal_handler(loop, SIGTERM, [&] { ++hits; });
    auto busy = asyncio::to_thread([] { ::usleep(50000); });
    for (int i = 0; i < 20; ++i) {
      ::kill(::getpid(), SIGTERM);
      asyncio::sleep(0.001);
    }
    asyncio::await(busy);
    for (int i = 0; i < 1000 && hits == 0; ++i) asyncio::sleep(0.001);
  });
  if (hits == 0) fail("the handler never ran");
  std::_Exit(0);
}

TEST_F(SignalLibraryThreadsDeathTest, HandlerWorksWhileAWorkerRuns) {
  EXPECT_EXIT(handler_while_a_worker_runs(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
