// cpython_queues_port_test.cpp: CPython 3.12's Lib/test/test_asyncio/test_queues.py method by method,
// as far as the C++ API expresses them. queues_test.cpp holds the cases ported earlier (some merged);
// each test here names its CPython class and method, with the same values, orders and exceptions.
//
// Ported elsewhere: QueueBasicTests.test_repr / test_str and _QueueJoinTestMixin.test_format (three
// classes, through str()) are in locks_queues_repr_test.cpp, with the repr() of the locks; 3.13's
// _QueueShutdownTestMixin (shutdown()) in cpython_queue_shutdown_port_test.cpp.
//
// Not expressible here:
// - QueueBasicTests.test_generic_alias: Queue[int] is a typing object; Queue<int> is a C++ template.
// - QueuePutTests.test_float_maxsize: maxsize is a std::size_t; there is no maxsize of 1.3.
// Private state the Python tests read (q._putters, len(q._getters)) is asserted through what it
// would change: whether a later waiter is served.
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;
using asyncio_test::run_briefly;
using asyncio_test::virtual_time;

namespace {

using CPythonQueues = greenlet_test::GreenletTest;
using Ints = std::vector<int>;

// QueueBasicTests.test_empty
TEST_F(CPythonQueues, QueueBasicTests_test_empty) {
  asyncio::run([] {
    asyncio::Queue<int> q;
    EXPECT_TRUE(q.empty());
    q.put(1);
    EXPECT_FALSE(q.empty());
    EXPECT_EQ(1, q.get());
    EXPECT_TRUE(q.empty());
  });
}

// QueueBasicTests.test_full
TEST_F(CPythonQueues, QueueBasicTests_test_full) {
  asyncio::run([] {
    asyncio::Queue<int> q;
    EXPECT_FALSE(q.full());
    asyncio::Queue<int> q1(1);
    q1.put(1);
    EXPECT_TRUE(q1.full());
  });
}

// QueueBasicTests.test_order
TEST_F(CPythonQueues, QueueBasicTests_test_order) {
  asyncio::run([] {
    asyncio::Queue<int> q;
    for (int i : {1, 3, 2}) q.put(i);
    Ints items;
    for (int i = 0; i < 3; ++i) items.push_back(q.get());
    EXPECT_EQ(items, (Ints{1, 3, 2}));
  });
}

// QueueBasicTests.test_maxsize
TEST_F(CPythonQueues, QueueBasicTests_test_maxsize) {
  asyncio::run([] {
    asyncio::Queue<int> q(2);
    EXPECT_EQ(2u, q.maxsize());
    Ints have_been_put;
    auto t = asyncio::create_task([&] {
      for (int i = 0; i < 3; ++i) {
        q.put(i);
        have_been_put.push_back(i);
      }
      return true;
    });
    for (int i = 0; i < 2; ++i) asyncio::sleep(0);
    // The putter is blocked after putting two items.
    EXPECT_EQ(have_been_put, (Ints{0, 1}));
    EXPECT_EQ(0, q.get());
    // Let the putter resume and put last item.
    asyncio::sleep(0);
    EXPECT_EQ(have_been_put, (Ints{0, 1, 2}));
    EXPECT_EQ(1, q.get());
    EXPECT_EQ(2, q.get());
    EXPECT_TRUE(t.done());
    EXPECT_TRUE(t.result());
  });
}

// QueueGetTests.test_blocking_get
TEST_F(CPythonQueues, QueueGetTests_test_blocking_get) {
  asyncio::run([] {
    asyncio::Queue<int> q;
    q.put_nowait(1);
    EXPECT_EQ(1, q.get());
  });
}

// QueueGetTests.test_get_with_putters: Python appends a bare future to q._putters; here a real
// putter waits on the full queue, and get() wakes it (its put then completes).
TEST_F(CPythonQueues, QueueGetTests_test_get_with_putters) {
  asyncio::run([] {
    asyncio::Queue<int> q(1);
    q.put(1);
    auto putter = asyncio::create_task([&] { q.put(2); });
    asyncio::sleep(0);
    EXPECT_FALSE(putter.done());
    EXPECT_EQ(1, q.get());
    asyncio::sleep(0);
    EXPECT_TRUE(putter.done());
    EXPECT_EQ(2, q.get_nowait());
  });
}

// QueueGetTests.test_blocking_get_wait
TEST_F(CPythonQueues, QueueGetTests_test_blocking_get_wait) {
  asyncio::run(
      [] {
        auto& loop = asyncio::get_running_loop();
        asyncio::Queue<int> q;
        asyncio::Event started;
        bool finished = false;
        auto queue_get_task = asyncio::create_task([&] {
          started.set();
          int res = q.get();
          finished = true;
          return res;
        });
        started.wait();
        EXPECT_FALSE(finished);
        loop.call_later(0.01, [&] { q.put_nowait(1); });
        int res = asyncio::await(queue_get_task);
        EXPECT_TRUE(finished);
        EXPECT_EQ(1, res);
      },
      virtual_time());
}

// QueueGetTests.test_nonblocking_get
TEST_F(CPythonQueues, QueueGetTests_test_nonblocking_get) {
  asyncio::Queue<int> q;
  q.put_nowait(1);
  EXPECT_EQ(1, q.get_nowait());
}

// QueueGetTests.test_nonblocking_get_exception
TEST_F(CPythonQueues, QueueGetTests_test_nonblocking_get_exception) {
  asyncio::Queue<int> q;
  EXPECT_THROW(q.get_nowait(), asyncio::QueueEmpty);
}

// QueueGetTests.test_get_cancelled_race
TEST_F(CPythonQueues, QueueGetTests_test_get_cancelled_race) {
  asyncio::run([] {
    asyncio::Queue<std::string> q;
    auto t1 = asyncio::create_task([&] { return q.get(); });
    auto t2 = asyncio::create_task([&] { return q.get(); });
    asyncio::sleep(0);
    t1.cancel();
    asyncio::sleep(0);
    EXPECT_TRUE(t1.done());
    q.put("a");
    asyncio::sleep(0);
    EXPECT_EQ("a", asyncio::await(t2));
  });
}

// QueueGetTests.test_get_with_waiting_putters
TEST_F(CPythonQueues, QueueGetTests_test_get_with_waiting_putters) {
  asyncio::run([] {
    asyncio::Queue<std::string> q(1);
    auto a = asyncio::create_task([&] { q.put("a"); });
    auto b = asyncio::create_task([&] { q.put("b"); });
    EXPECT_EQ(q.get(), "a");
    EXPECT_EQ(q.get(), "b");
  });
}

// QueueGetTests.test_why_are_getters_waiting
TEST_F(CPythonQueues, QueueGetTests_test_why_are_getters_waiting) {
  asyncio::run([] {
    const int producer_num_items = 5;
    asyncio::Queue<int> q(1);
    Ints got;
    asyncio::TaskGroup tg;
    tg.create_task([&] {
      for (int i = 0; i < producer_num_items; ++i) q.put(i);
    });
    tg.create_task([&] {
      for (int i = 0; i < producer_num_items; ++i) got.push_back(q.get());
    });
    tg.join();
    EXPECT_EQ(got, (Ints{0, 1, 2, 3, 4}));
  });
}

// QueueGetTests.test_cancelled_getters_not_being_held_in_self_getters: instead of
// len(queue._getters) == 0, the next getter is served by the next put at once.
TEST_F(CPythonQueues, QueueGetTests_test_cancelled_getters_not_being_held_in_self_getters) {
  asyncio::run(
      [] {
        asyncio::Queue<int> queue(5);
        EXPECT_THROW(asyncio::wait_for([&] { return queue.get(); }, 0.1), asyncio::TimeoutError);
        auto getter = asyncio::create_task([&] { return queue.get(); });
        asyncio::sleep(0);
        queue.put_nowait(7);
        asyncio::sleep(0);
        ASSERT_TRUE(getter.done());
        EXPECT_EQ(7, getter.result());
        EXPECT_TRUE(queue.empty());
      },
      virtual_time());
}

// QueuePutTests.test_blocking_put
TEST_F(CPythonQueues, QueuePutTests_test_blocking_put) {
  asyncio::run([] {
    asyncio::Queue<int> q;
    // No maxsize, won't block.
    q.put(1);
    EXPECT_EQ(1, q.get());
  });
}

// QueuePutTests.test_blocking_put_wait
TEST_F(CPythonQueues, QueuePutTests_test_blocking_put_wait) {
  asyncio::run(
      [] {
        asyncio::Queue<int> q(1);
        asyncio::Event started;
        bool finished = false;
        auto& loop = asyncio::get_running_loop();
        loop.call_later(0.01, [&] { q.get_nowait(); });
        auto queue_put_task = asyncio::create_task([&] {
          started.set();
          q.put(1);
          q.put(2);
          finished = true;
        });
        started.wait();
        EXPECT_FALSE(finished);
        asyncio::await(queue_put_task);
        EXPECT_TRUE(finished);
        EXPECT_DOUBLE_EQ(0.01, loop.time());
        EXPECT_EQ(2, q.get_nowait());
      },
      virtual_time());
}

// QueuePutTests.test_nonblocking_put
TEST_F(CPythonQueues, QueuePutTests_test_nonblocking_put) {
  asyncio::Queue<int> q;
  q.put_nowait(1);
  EXPECT_EQ(1, q.get_nowait());
}

// QueuePutTests.test_get_cancel_drop_one_pending_reader
TEST_F(CPythonQueues, QueuePutTests_test_get_cancel_drop_one_pending_reader) {
  asyncio::run([] {
    asyncio::Queue<int> q;
    auto reader = asyncio::create_task([&] { return q.get(); });
    asyncio::sleep(0);
    q.put_nowait(1);
    q.put_nowait(2);
    reader.cancel();
    bool cancelled = false;
    try {
      asyncio::await(reader);
    } catch (const asyncio::CancelledError&) {
      cancelled = true;
    }
    if (cancelled) {
      // try again (out of the handler: a task does not wait inside one)
      reader = asyncio::create_task([&] { return q.get(); });
      asyncio::await(reader);
    }
    // if we get 2, it means 1 got dropped!
    EXPECT_EQ(1, reader.result());
  });
}

// QueuePutTests.test_get_cancel_drop_many_pending_readers
TEST_F(CPythonQueues, QueuePutTests_test_get_cancel_drop_many_pending_readers) {
  asyncio::run([] {
    asyncio::Queue<int> q;
    std::optional<asyncio::Task<int>> reader2, reader3;
    {
      asyncio::TaskGroup tg;
      auto reader1 = tg.create_task([&] { return q.get(); });
      reader2 = tg.create_task([&] { return q.get(); });
      reader3 = tg.create_task([&] { return q.get(); });
      asyncio::sleep(0);
      q.put_nowait(1);
      q.put_nowait(2);
      reader1.cancel();
      EXPECT_THROW(asyncio::await(reader1), asyncio::CancelledError);
      asyncio::await(*reader3);
      tg.join();
    }
    // It is undefined in which order concurrent readers receive results.
    EXPECT_EQ((std::set<int>{reader2->result(), reader3->result()}), (std::set<int>{1, 2}));
  });
}

// QueuePutTests.test_put_cancel_drop
TEST_F(CPythonQueues, QueuePutTests_test_put_cancel_drop) {
  asyncio::run([] {
    asyncio::Queue<int> q(1);
    q.put_nowait(1);
    // putting a second item in the queue has to block (qsize=1)
    auto writer = asyncio::create_task([&] { q.put(2); });
    asyncio::sleep(0);
    EXPECT_EQ(1, q.get_nowait());
    writer.cancel();
    bool cancelled = false;
    try {
      asyncio::await(writer);
    } catch (const asyncio::CancelledError&) {
      cancelled = true;
    }
    if (cancelled) {
      // try again
      writer = asyncio::create_task([&] { q.put(2); });
      asyncio::await(writer);
    }
    EXPECT_EQ(2, q.get_nowait());
    EXPECT_EQ(0u, q.qsize());
  });
}

// QueuePutTests.test_nonblocking_put_exception
TEST_F(CPythonQueues, QueuePutTests_test_nonblocking_put_exception) {
  asyncio::Queue<int> q(1);
  q.put_nowait(1);
  EXPECT_THROW(q.put_nowait(2), asyncio::QueueFull);
}

// QueuePutTests.test_put_cancelled
TEST_F(CPythonQueues, QueuePutTests_test_put_cancelled) {
  asyncio::run([] {
    asyncio::Queue<int> q;
    auto t = asyncio::create_task([&] {
      q.put(1);
      return true;
    });
    EXPECT_EQ(1, q.get());
    EXPECT_TRUE(t.done());
    EXPECT_TRUE(t.result());
  });
}

// QueuePutTests.test_put_cancelled_race
TEST_F(CPythonQueues, QueuePutTests_test_put_cancelled_race) {
  asyncio::run([] {
    asyncio::Queue<std::string> q(1);
    auto put_a = asyncio::create_task([&] { q.put("a"); });
    auto put_b = asyncio::create_task([&] { q.put("b"); });
    auto put_c = asyncio::create_task([&] { q.put("X"); });
    asyncio::sleep(0);
    EXPECT_TRUE(put_a.done());
    EXPECT_FALSE(put_b.done());
    put_c.cancel();
    asyncio::sleep(0);
    EXPECT_TRUE(put_c.done());
    EXPECT_EQ(q.get_nowait(), "a");
    asyncio::sleep(0);
    EXPECT_EQ(q.get_nowait(), "b");
    asyncio::await(put_b);
  });
}

// QueuePutTests.test_put_with_waiting_getters
TEST_F(CPythonQueues, QueuePutTests_test_put_with_waiting_getters) {
  asyncio::run([] {
    asyncio::Queue<std::string> q;
    auto t = asyncio::create_task([&] { return q.get(); });
    asyncio::sleep(0);
    q.put("a");
    EXPECT_EQ(asyncio::await(t), "a");
  });
}

// QueuePutTests.test_why_are_putters_waiting
TEST_F(CPythonQueues, QueuePutTests_test_why_are_putters_waiting) {
  asyncio::run([] {
    asyncio::Queue<int> queue(2);
    Ints taken;
    asyncio::TaskGroup tg;
    tg.create_task([&] {
      asyncio::sleep(0);
      const std::size_t num = queue.qsize();
      for (std::size_t i = 0; i < num; ++i) taken.push_back(queue.get_nowait());
    });
    for (int item : {0, 1, 2, 3}) tg.create_task([&queue, item] { queue.put(item); });
    tg.join();
    EXPECT_EQ(taken, (Ints{0, 1}));
    EXPECT_EQ(queue.get_nowait(), 2);
    EXPECT_EQ(queue.get_nowait(), 3);
  });
}

// QueuePutTests.test_cancelled_puts_not_being_held_in_self_putters: instead of len(queue._putters)
// going from 1 to 0, a later putter takes the freed slot when the cancelled one is gone.
TEST_F(CPythonQueues, QueuePutTests_test_cancelled_puts_not_being_held_in_self_putters) {
  asyncio::run([] {
    // Full queue.
    asyncio::Queue<int> queue(1);
    queue.put_nowait(1);
    // Task waiting for space to put an item in the queue.
    auto put_task = asyncio::create_task([&] { queue.put(1); });
    asyncio::sleep(0);
    EXPECT_FALSE(put_task.done());
    put_task.cancel();
    EXPECT_THROW(asyncio::await(put_task), asyncio::CancelledError);
    auto next = asyncio::create_task([&] { queue.put(2); });
    asyncio::sleep(0);
    EXPECT_EQ(1, queue.get_nowait());
    asyncio::sleep(0);
    EXPECT_TRUE(next.done());
    EXPECT_EQ(2, queue.get_nowait());
  });
}

// QueuePutTests.test_cancelled_put_silence_value_error_exception: a putter woken by get_nowait()
// and then cancelled raises CancelledError, nothing else.
TEST_F(CPythonQueues, QueuePutTests_test_cancelled_put_silence_value_error_exception) {
  asyncio::run([] {
    // Full Queue.
    asyncio::Queue<int> queue(1);
    queue.put_nowait(1);
    auto put_task = asyncio::create_task([&] { queue.put(1); });
    asyncio::sleep(0);
    queue.get_nowait();
    put_task.cancel();
    EXPECT_THROW(asyncio::await(put_task), asyncio::CancelledError);
  });
}

// LifoQueueTests.test_order
TEST_F(CPythonQueues, LifoQueueTests_test_order) {
  asyncio::run([] {
    asyncio::LifoQueue<int> q;
    for (int i : {1, 3, 2}) q.put(i);
    Ints items;
    for (int i = 0; i < 3; ++i) items.push_back(q.get());
    EXPECT_EQ(items, (Ints{2, 3, 1}));
  });
}

// PriorityQueueTests.test_order
TEST_F(CPythonQueues, PriorityQueueTests_test_order) {
  asyncio::run([] {
    asyncio::PriorityQueue<int> q;
    for (int i : {1, 3, 2}) q.put(i);
    Ints items;
    for (int i = 0; i < 3; ++i) items.push_back(q.get());
    EXPECT_EQ(items, (Ints{1, 2, 3}));
  });
}

// _QueueJoinTestMixin, run for Queue, LifoQueue and PriorityQueue as the three Python classes do.

// _QueueJoinTestMixin.test_task_done_underflow
template <class Q>
void task_done_underflow() {
  Q q;
  try {
    q.task_done();
    ADD_FAILURE() << "no ValueError";
  } catch (const asyncio::ValueError& e) {
    EXPECT_STREQ(e.what(), "task_done() called too many times");
  }
}

// _QueueJoinTestMixin.test_task_done
template <class Q>
void task_done() {
  asyncio::run([] {
    Q q;
    for (int i = 0; i < 100; ++i) q.put_nowait(i);
    int accumulator = 0;
    // Two workers get items from the queue and call task_done after each.
    // Join the queue and assert all items have been processed.
    bool running = true;
    asyncio::TaskGroup tg;
    for (int index = 0; index < 2; ++index) {
      tg.create_task([&] {
        while (running) {
          accumulator += q.get();
          q.task_done();
        }
      });
    }
    q.join();
    EXPECT_EQ(4950, accumulator);  // sum(range(100))
    // close running generators
    running = false;
    for (int i = 0; i < 2; ++i) q.put_nowait(0);
    tg.join();
  });
}

// _QueueJoinTestMixin.test_join_empty_queue
template <class Q>
void join_empty_queue() {
  asyncio::run([] {
    Q q;
    // join()s successfully, and before anything else (done twice for insurance).
    q.join();
    q.join();
  });
}

TEST_F(CPythonQueues, QueueJoinTests_test_task_done_underflow) { task_done_underflow<asyncio::Queue<int>>(); }
TEST_F(CPythonQueues, QueueJoinTests_test_task_done) { task_done<asyncio::Queue<int>>(); }
TEST_F(CPythonQueues, QueueJoinTests_test_join_empty_queue) { join_empty_queue<asyncio::Queue<int>>(); }
TEST_F(CPythonQueues, LifoQueueJoinTests_test_task_done_underflow) { task_done_underflow<asyncio::LifoQueue<int>>(); }
TEST_F(CPythonQueues, LifoQueueJoinTests_test_task_done) { task_done<asyncio::LifoQueue<int>>(); }
TEST_F(CPythonQueues, LifoQueueJoinTests_test_join_empty_queue) { join_empty_queue<asyncio::LifoQueue<int>>(); }
TEST_F(CPythonQueues, PriorityQueueJoinTests_test_task_done_underflow) {
  task_done_underflow<asyncio::PriorityQueue<int>>();
}
TEST_F(CPythonQueues, PriorityQueueJoinTests_test_task_done) { task_done<asyncio::PriorityQueue<int>>(); }
TEST_F(CPythonQueues, PriorityQueueJoinTests_test_join_empty_queue) { join_empty_queue<asyncio::PriorityQueue<int>>(); }

}  // namespace
