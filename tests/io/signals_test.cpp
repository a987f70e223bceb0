// signals_test.cpp: add_signal_handler/remove_signal_handler, after
// CPython's Lib/test/test_asyncio/test_unix_events.py (SelectorEventLoop
// signal tests) but with real signals: raise() sends to this thread, which
// add_signal_handler() has blocked.
#include <pthread.h>
#include <signal.h>

#include <thread>
#include <vector>

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

TEST_F(Signals, UncatchableSignalIsOSError) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    EXPECT_THROW(asyncio::add_signal_handler(loop, SIGKILL, [] {}), asyncio::OSError);
    EXPECT_FALSE(asyncio::remove_signal_handler(loop, SIGKILL));
  });
}

}  // namespace
