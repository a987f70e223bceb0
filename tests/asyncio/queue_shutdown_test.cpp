// queue_shutdown_test.cpp: Queue::shutdown() beyond CPython's tests
// (cpython_queue_shutdown_port_test.cpp): every waiter wakes, getters in order and each to its
// own outcome; workers drain what is left and stop; shutdown(true) after shutdown(); a cancel
// racing the wake-up; the exception's code; is_shutdown().
#include <algorithm>
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;

namespace queue_shutdown_test {

using QueueShutdown = greenlet_test::GreenletTest;
using strings = std::vector<std::string>;

// outcome(fn) is fn()'s value, or the name of what it threw.
template <class F>
std::string outcome(F&& fn) {
  try {
    return std::to_string(fn());
  } catch (const asyncio::QueueShutDown&) {
    return "QueueShutDown";
  } catch (const asyncio::CancelledError&) {
    return "CancelledError";
  }
}

// Three getters wait on an empty queue and two putters on another, full one: shutdown() wakes
// them all, each raising QueueShutDown, the getters in the order they came.
TEST_F(QueueShutdown, EveryWaiterWakesToRaise) {
  strings out;
  asyncio::run([&] {
    asyncio::Queue<int> empty_queue;
    asyncio::Queue<int> full_queue(1);
    full_queue.put_nowait(0);
    std::vector<asyncio::Task<void>> tasks;
    for (int i = 0; i < 3; ++i) {
      tasks.push_back(asyncio::create_task([&, i] {
        out.push_back("getter " + std::to_string(i) + ": " + outcome([&] { return empty_queue.get(); }));
      }));
    }
    for (int i = 0; i < 2; ++i) {
      tasks.push_back(asyncio::create_task([&, i] {
        out.push_back("putter " + std::to_string(i) + ": " + outcome([&] {
                        full_queue.put(i);
                        return i;
                      }));
      }));
    }
    asyncio::sleep(0);
    EXPECT_EQ(empty_queue.str(), "<Queue maxsize=0 _getters[3]>");
    EXPECT_EQ(full_queue.str(), "<Queue maxsize=1 _queue=[0] _putters[2] tasks=1>");
    empty_queue.shutdown();
    full_queue.shutdown();
    EXPECT_TRUE(empty_queue.is_shutdown());
    EXPECT_EQ(empty_queue.str(), "<Queue maxsize=0 shutdown>");
    EXPECT_EQ(full_queue.str(), "<Queue maxsize=1 _queue=[0] tasks=1 shutdown>");
    asyncio::gather(tasks);
    EXPECT_EQ(full_queue.get_nowait(), 0);  // what was put before stays for the getters
  });
  EXPECT_EQ(out, (strings{"getter 0: QueueShutDown", "getter 1: QueueShutDown", "getter 2: QueueShutDown",
                          "putter 0: QueueShutDown", "putter 1: QueueShutDown"}));
}

// The producer shuts the queue down when it is done; the workers take every item left, then stop
// on QueueShutDown, and join() sees every item done: Python 3.13's replacement for sentinels.
TEST_F(QueueShutdown, WorkersDrainWhatIsLeftThenStop) {
  std::vector<int> handled;
  std::vector<int> stopped;
  asyncio::run([&] {
    asyncio::Queue<int> q(2);
    std::vector<asyncio::Task<void>> workers;
    for (int w = 0; w < 2; ++w) {
      workers.push_back(asyncio::create_task([&, w] {
        for (;;) {
          int item;
          try {
            item = q.get();
          } catch (const asyncio::QueueShutDown&) {
            stopped.push_back(w);
            return;
          }
          asyncio::sleep(0);
          handled.push_back(item);
          q.task_done();
        }
      }));
    }
    for (int i = 0; i < 7; ++i) q.put(i);
    q.shutdown();
    EXPECT_THROW(q.put(7), asyncio::QueueShutDown);
    q.join();
    std::sort(handled.begin(), handled.end());
    EXPECT_EQ(handled, (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
    asyncio::gather(workers);
  });
  std::sort(stopped.begin(), stopped.end());
  EXPECT_EQ(stopped, (std::vector<int>{0, 1}));
}

// shutdown(true) after shutdown() drops what is left and lets join() return; a getter already
// woken takes an item while any is left.
TEST_F(QueueShutdown, ImmediateAfterAPlainShutdownDropsWhatIsLeft) {
  asyncio::run([] {
    asyncio::LifoQueue<int> q;
    for (int i = 0; i < 3; ++i) q.put_nowait(i);
    q.shutdown();
    EXPECT_EQ(q.get(), 2);
    q.task_done();
    auto join_task = asyncio::create_task([&] { q.join(); });
    asyncio::sleep(0);
    EXPECT_FALSE(join_task.done());
    q.shutdown(true);  // unfinished tasks: 2 -> 0
    EXPECT_EQ(q.qsize(), 0U);
    asyncio::await(join_task);
    EXPECT_THROW(q.get_nowait(), asyncio::QueueShutDown);
  });
}

// A getter woken by shutdown() but cancelled before it runs ends with CancelledError; the other
// getter still raises QueueShutDown.
TEST_F(QueueShutdown, ACancelRacingTheWakeUpWins) {
  asyncio::run([] {
    asyncio::Queue<int> q;
    auto first = asyncio::create_task([&] { return outcome([&] { return q.get(); }); });
    auto second = asyncio::create_task([&] { return outcome([&] { return q.get(); }); });
    asyncio::sleep(0);
    q.shutdown();
    first.cancel();
    EXPECT_EQ(asyncio::await(first), "CancelledError");
    EXPECT_EQ(asyncio::await(second), "QueueShutDown");
  });
}

// QueueShutDown is a sync_error with its own code, whose message says what happened.
TEST_F(QueueShutdown, TheExceptionCarriesItsCode) {
  asyncio::Queue<int> q;
  EXPECT_FALSE(q.is_shutdown());
  q.shutdown();
  try {
    q.put_nowait(1);
    ADD_FAILURE() << "put_nowait() on a shut-down queue did not throw";
  } catch (const asyncio::sync_error& e) {
    EXPECT_EQ(e.code(), asyncio::sync_errc::queue_shut_down);
    EXPECT_STREQ(e.what(), "QueueShutDown");
    EXPECT_NE(e.code().message().find("shut down"), std::string::npos) << e.code().message();
  }
  EXPECT_THROW(q.get_nowait(), asyncio::QueueShutDown);  // empty: shut down, not QueueEmpty
}

}  // namespace queue_shutdown_test
