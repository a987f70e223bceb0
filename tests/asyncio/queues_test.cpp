// queues_test.cpp: Queue, PriorityQueue, LifoQueue. Ported from CPython's
// Lib/test/test_asyncio/test_queues.py (QueueBasicTests,
// QueueGetTests, QueuePutTests, LifoQueueTests, PriorityQueueTests,
// _QueueJoinTestMixin); each case names its source.
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::run_briefly;
using asyncio_test::virtual_time;
using QueueTests = greenlet_test::GreenletTest;
using Ints = std::vector<int>;

// QueueBasicTests.test_empty.
TEST_F(QueueTests, test_empty) {
  asyncio::Queue<int> q;
  EXPECT_TRUE(q.empty());
  q.put_nowait(1);
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(q.get_nowait(), 1);
  EXPECT_TRUE(q.empty());
}

// QueueBasicTests.test_full: unbounded is never full.
TEST_F(QueueTests, test_full) {
  asyncio::Queue<int> q;
  EXPECT_FALSE(q.full());
  asyncio::Queue<int> q1(1);
  q1.put_nowait(1);
  EXPECT_TRUE(q1.full());
}

// QueueBasicTests.test_order: FIFO.
TEST_F(QueueTests, test_order) {
  asyncio::Queue<int> q;
  for (int i : {1, 3, 2}) q.put_nowait(i);
  Ints items;
  for (int i = 0; i < 3; ++i) items.push_back(q.get_nowait());
  EXPECT_EQ(items, (Ints{1, 3, 2}));
}

// QueueBasicTests.test_maxsize: the fourth put() into a queue of two waits
// for a get().
TEST_F(QueueTests, test_maxsize) {
  asyncio::event_loop loop(virtual_time());
  asyncio::Queue<int> q(2);
  EXPECT_EQ(q.maxsize(), 2u);
  Ints have_been_put;
  auto putter = loop.create_task([&] {
    for (int i = 0; i < 3; ++i) {
      q.put(i);
      have_been_put.push_back(i);
    }
    return true;
  });
  run_briefly(loop);
  EXPECT_EQ(have_been_put, (Ints{0, 1}));
  EXPECT_EQ(q.get_nowait(), 0);
  run_briefly(loop);
  EXPECT_EQ(have_been_put, (Ints{0, 1, 2}));
  EXPECT_TRUE(loop.run_until_complete(putter));
}

// QueueGetTests.test_nonblocking_get / test_nonblocking_get_exception.
TEST_F(QueueTests, test_nonblocking_get) {
  asyncio::Queue<int> q;
  q.put_nowait(1);
  EXPECT_EQ(q.get_nowait(), 1);
  EXPECT_THROW(q.get_nowait(), asyncio::QueueEmpty);
}

// QueueGetTests.test_blocking_get_wait: get() waits for a put().
TEST_F(QueueTests, test_blocking_get_wait) {
  asyncio::event_loop loop(virtual_time());
  asyncio::Queue<int> q;
  loop.call_later(0.01, [&] { q.put_nowait(1); });
  EXPECT_EQ(loop.run_until_complete([&] { return q.get(); }), 1);
  EXPECT_DOUBLE_EQ(loop.time(), 0.01);
}

// QueueGetTests.test_get_cancelled: wait_for() cancels a get(); a later
// get() still receives the item.
TEST_F(QueueTests, test_get_cancelled) {
  asyncio::event_loop loop(virtual_time());
  asyncio::Queue<int> q;
  auto consumer = loop.create_task([&] {
    try {
      asyncio::wait_for([&] { return q.get(); }, 0.05);
    } catch (const asyncio::TimeoutError&) {
    }
    return q.get();
  });
  loop.call_later(0.1, [&] { q.put_nowait(7); });
  EXPECT_EQ(loop.run_until_complete(consumer), 7);
}

// QueueGetTests.test_get_cancelled_race: a cancelled getter does not keep
// the next item from the one behind it.
TEST_F(QueueTests, test_get_cancelled_race) {
  asyncio::event_loop loop;
  asyncio::Queue<std::string> q;
  auto t1 = loop.create_task([&] { return q.get(); });
  auto t2 = loop.create_task([&] { return q.get(); });
  run_briefly(loop);
  t1.cancel();
  run_briefly(loop);
  EXPECT_TRUE(t1.done());
  q.put_nowait("a");
  run_briefly(loop);
  EXPECT_EQ(t2.result(), "a");
}

// QueueGetTests.test_get_with_waiting_putters.
TEST_F(QueueTests, test_get_with_waiting_putters) {
  asyncio::event_loop loop;
  asyncio::Queue<std::string> q(1);
  auto putter = loop.create_task([&] { q.put("a"); });
  auto putter2 = loop.create_task([&] { q.put("b"); });
  run_briefly(loop);
  EXPECT_EQ(loop.run_until_complete([&] { return q.get(); }), "a");
  EXPECT_EQ(loop.run_until_complete([&] { return q.get(); }), "b");
  EXPECT_TRUE(putter.done() && putter2.done());
}

// QueueGetTests.test_why_are_getters_waiting: a bounded producer/consumer
// pair finishes.
TEST_F(QueueTests, test_why_are_getters_waiting) {
  asyncio::event_loop loop;
  asyncio::Queue<int> q(1);
  const int num_items = 5;
  auto producer = loop.create_task([&] {
    for (int i = 0; i < num_items; ++i) q.put(i);
  });
  auto consumer = loop.create_task([&] {
    Ints got;
    for (int i = 0; i < num_items; ++i) got.push_back(q.get());
    return got;
  });
  loop.run_until_complete([&] { asyncio::gather(producer, consumer); });
  EXPECT_EQ(consumer.result(), (Ints{0, 1, 2, 3, 4}));
}

// QueueGetTests.test_get_cancel_drop_one_pending_reader: a getter woken by
// put_nowait() and cancelled before it runs does not drop the item.
TEST_F(QueueTests, test_get_cancel_drop_one_pending_reader) {
  asyncio::event_loop loop;
  asyncio::Queue<int> q;
  int result = loop.run_until_complete([&] {
    auto reader = asyncio::create_task([&] { return q.get(); });
    asyncio::sleep(0);
    q.put_nowait(1);
    q.put_nowait(2);
    reader.cancel();
    try {
      return asyncio::await(reader);
    } catch (const asyncio::CancelledError&) {
      return asyncio::await(asyncio::create_task([&] { return q.get(); }));
    }
  });
  EXPECT_EQ(result, 1);  // 2 would mean 1 got dropped
}

// QueueGetTests.test_get_cancel_drop_many_pending_readers.
TEST_F(QueueTests, test_get_cancel_drop_many_pending_readers) {
  asyncio::event_loop loop;
  asyncio::Queue<int> q;
  loop.run_until_complete([&] {
    auto reader1 = asyncio::create_task([&] { return q.get(); });
    auto reader2 = asyncio::create_task([&] { return q.get(); });
    auto reader3 = asyncio::create_task([&] { return q.get(); });
    asyncio::sleep(0);
    q.put_nowait(1);
    q.put_nowait(2);
    reader1.cancel();
    EXPECT_THROW(asyncio::await(reader1), asyncio::CancelledError);
    asyncio::await(reader3);
    asyncio::await(reader2);
    // It is undefined in which order concurrent readers receive results.
    EXPECT_EQ((std::set<int>{reader2.result(), reader3.result()}), (std::set<int>{1, 2}));
  });
}

// QueuePutTests.test_blocking_put_wait / test_nonblocking_put_exception.
TEST_F(QueueTests, test_put_full) {
  asyncio::event_loop loop(virtual_time());
  asyncio::Queue<int> q(1);
  q.put_nowait(1);
  EXPECT_THROW(q.put_nowait(2), asyncio::QueueFull);
  loop.call_later(0.01, [&] { q.get_nowait(); });
  loop.run_until_complete([&] { q.put(2); });
  EXPECT_DOUBLE_EQ(loop.time(), 0.01);
  EXPECT_EQ(q.get_nowait(), 2);
}

// QueuePutTests.test_put_cancel_drop: a putter woken by get_nowait() and
// cancelled passes the free slot on; the retried put succeeds.
TEST_F(QueueTests, test_put_cancel_drop) {
  asyncio::event_loop loop;
  asyncio::Queue<int> q(1);
  loop.run_until_complete([&] {
    q.put_nowait(1);
    auto writer = asyncio::create_task([&] { q.put(2); });
    asyncio::sleep(0);
    EXPECT_EQ(q.get_nowait(), 1);
    writer.cancel();
    try {
      asyncio::await(writer);
    } catch (const asyncio::CancelledError&) {
      asyncio::await(asyncio::create_task([&] { q.put(2); }));
    }
    EXPECT_EQ(q.get_nowait(), 2);
    EXPECT_EQ(q.qsize(), 0u);
  });
}

// QueuePutTests.test_put_cancelled_race.
TEST_F(QueueTests, test_put_cancelled_race) {
  asyncio::event_loop loop;
  asyncio::Queue<std::string> q(1);
  auto put_a = loop.create_task([&] { q.put("a"); });
  auto put_b = loop.create_task([&] { q.put("b"); });
  auto put_c = loop.create_task([&] { q.put("X"); });
  run_briefly(loop);
  EXPECT_TRUE(put_a.done());
  EXPECT_FALSE(put_b.done());
  put_c.cancel();
  run_briefly(loop);
  EXPECT_TRUE(put_c.done());
  EXPECT_EQ(q.get_nowait(), "a");
  run_briefly(loop);
  EXPECT_EQ(q.get_nowait(), "b");
  loop.run_until_complete(put_b);
}

// QueuePutTests.test_put_with_waiting_getters.
TEST_F(QueueTests, test_put_with_waiting_getters) {
  asyncio::event_loop loop;
  asyncio::Queue<std::string> q;
  auto t = loop.create_task([&] { return q.get(); });
  run_briefly(loop);
  loop.run_until_complete([&] { q.put("a"); });
  EXPECT_EQ(loop.run_until_complete(t), "a");
}

// QueuePutTests.test_why_are_putters_waiting.
TEST_F(QueueTests, test_why_are_putters_waiting) {
  asyncio::event_loop loop;
  asyncio::Queue<int> q(2);
  auto putter = [&](int item) { return [&, item] { q.put(item); }; };
  auto getter = [&] {
    asyncio::sleep(0);
    std::size_t num = q.qsize();
    for (std::size_t i = 0; i < num; ++i) q.get_nowait();
  };
  loop.run_until_complete([&] { asyncio::gather(getter, putter(0), putter(1), putter(2), putter(3)); });
  EXPECT_EQ(q.qsize(), 2u);
}

// QueuePutTests.test_cancelled_puts_not_being_held_in_self_putters /
// test_cancelled_getters_not_being_held_in_self_getters: a cancelled waiter
// leaves nothing behind (the fixture checks no allocation outlives it) and
// the queue works on.
TEST_F(QueueTests, test_cancelled_waiters_not_held) {
  asyncio::event_loop loop;
  asyncio::Queue<int> q(1);
  loop.run_until_complete([&] {
    q.put_nowait(1);
    auto put_task = asyncio::create_task([&] { q.put(1); });
    asyncio::sleep(0);
    put_task.cancel();
    EXPECT_THROW(asyncio::await(put_task), asyncio::CancelledError);
    q.get_nowait();
    auto get_task = asyncio::create_task([&] { return q.get(); });
    asyncio::sleep(0);
    get_task.cancel();
    EXPECT_THROW(asyncio::await(get_task), asyncio::CancelledError);
    q.put_nowait(5);
    EXPECT_EQ(q.get(), 5);
  });
}

// LifoQueueTests.test_order.
TEST_F(QueueTests, test_lifo_order) {
  asyncio::LifoQueue<int> q;
  for (int i : {1, 3, 2}) q.put_nowait(i);
  Ints items;
  for (int i = 0; i < 3; ++i) items.push_back(q.get_nowait());
  EXPECT_EQ(items, (Ints{2, 3, 1}));
}

// PriorityQueueTests.test_order: smallest first, like heapq; a Compare
// reverses it.
TEST_F(QueueTests, test_priority_order) {
  asyncio::PriorityQueue<int> q;
  for (int i : {1, 3, 2}) q.put_nowait(i);
  Ints items;
  for (int i = 0; i < 3; ++i) items.push_back(q.get_nowait());
  EXPECT_EQ(items, (Ints{1, 2, 3}));

  asyncio::PriorityQueue<std::pair<int, std::string>> jobs;
  jobs.put_nowait({2, "b"});
  jobs.put_nowait({1, "a"});
  EXPECT_EQ(jobs.get_nowait().second, "a");

  asyncio::PriorityQueue<int, std::greater<int>> largest_first;
  for (int i : {1, 3, 2}) largest_first.put_nowait(i);
  EXPECT_EQ(largest_first.get_nowait(), 3);
}

// _QueueJoinTestMixin.test_task_done_underflow.
TEST_F(QueueTests, test_task_done_underflow) {
  asyncio::Queue<int> q;
  EXPECT_THROW(q.task_done(), asyncio::ValueError);
}

// _QueueJoinTestMixin.test_task_done: two workers; join() returns once
// every item is processed.
TEST_F(QueueTests, test_task_done) {
  asyncio::event_loop loop;
  asyncio::Queue<int> q;
  for (int i = 0; i < 100; ++i) q.put_nowait(i);
  int accumulator = 0;
  bool running = true;
  auto worker = [&] {
    while (running) {
      int item = q.get();
      accumulator += item;
      q.task_done();
    }
  };
  loop.run_until_complete([&] {
    auto w1 = asyncio::create_task(worker);
    auto w2 = asyncio::create_task(worker);
    q.join();
    EXPECT_EQ(accumulator, 4950);
    running = false;
    q.put_nowait(0);
    q.put_nowait(0);
    asyncio::gather(w1, w2);
  });
}

// _QueueJoinTestMixin.test_join_empty_queue: join() returns at once, twice.
TEST_F(QueueTests, test_join_empty_queue) {
  asyncio::event_loop loop;
  asyncio::Queue<int> q;
  loop.run_until_complete([&] {
    q.join();
    q.join();
  });
}

// Move-only items: put(), get(), the three orders, and a hand-off through
// a waiting getter.
TEST_F(QueueTests, move_only_items) {
  asyncio::event_loop loop;
  loop.run_until_complete([&] {
    asyncio::Queue<std::unique_ptr<int>> q(1);
    auto consumer = asyncio::create_task([&] {
      int sum = 0;
      for (int i = 0; i < 3; ++i) sum += *q.get();
      return sum;
    });
    for (int i = 1; i <= 3; ++i) q.put(std::make_unique<int>(i));
    EXPECT_EQ(asyncio::await(consumer), 6);

    asyncio::LifoQueue<std::unique_ptr<int>> lifo;
    lifo.put_nowait(std::make_unique<int>(1));
    lifo.put_nowait(std::make_unique<int>(2));
    EXPECT_EQ(*lifo.get_nowait(), 2);
    auto by_value = [](const std::unique_ptr<int>& a, const std::unique_ptr<int>& b) { return *a < *b; };
    asyncio::PriorityQueue<std::unique_ptr<int>, decltype(by_value)> pq;
    pq.put_nowait(std::make_unique<int>(5));
    pq.put_nowait(std::make_unique<int>(4));
    EXPECT_EQ(*pq.get(), 4);
  });
}

}  // namespace
