// cpython_queue_shutdown_port_test.cpp: CPython 3.13's _QueueShutdownTestMixin
// (Lib/test/test_asyncio/test_queues.py), run for Queue, LifoQueue and PriorityQueue as its three
// Python classes do, with the same values, steps and exceptions. assertRaisesShutdown() is
// EXPECT_THROW(..., QueueShutDown); q._format() is read through str().
#include <string>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;

namespace cpython_queue_shutdown_port {

using CPythonQueueShutdown = greenlet_test::GreenletTest;

// _QueueShutdownTestMixin.test_format
template <class Q>
void format(const std::string& name) {
  asyncio::run([&] {
    Q q;
    q.shutdown();
    EXPECT_EQ(q.str(), "<" + name + " maxsize=0 shutdown>");
  });
}

// The four calls every test below expects to raise QueueShutDown once the queue is shut down.
template <class Q>
void expect_put_and_get_raise_shutdown(Q& q) {
  EXPECT_THROW(q.put("data"), asyncio::QueueShutDown);
  EXPECT_THROW(q.put_nowait("data"), asyncio::QueueShutDown);
  EXPECT_THROW(q.get(), asyncio::QueueShutDown);
  EXPECT_THROW(q.get_nowait(), asyncio::QueueShutDown);
}

// _QueueShutdownTestMixin.test_shutdown_empty
template <class Q>
void shutdown_empty() {
  asyncio::run([] {
    // Setup empty queue, and join() and get() tasks
    Q q;
    auto& loop = asyncio::get_running_loop();
    auto get_task = loop.create_task([&] { return q.get(); });
    asyncio::sleep(0);  // want get task pending before shutdown

    // Perform shut-down
    q.shutdown(false);  // unfinished tasks: 0 -> 0

    EXPECT_EQ(q.qsize(), 0U);

    // Ensure join() task successfully finishes
    q.join();

    // Ensure get() task is finished, and raised ShutDown
    asyncio::sleep(0);
    EXPECT_TRUE(get_task.done());
    EXPECT_THROW(asyncio::await(get_task), asyncio::QueueShutDown);

    // Ensure put() and get() raise ShutDown
    expect_put_and_get_raise_shutdown(q);
  });
}

// _QueueShutdownTestMixin.test_shutdown_nonempty
template <class Q>
void shutdown_nonempty() {
  asyncio::run([] {
    // Setup full queue with 1 item, and join() and put() tasks
    Q q(1);
    auto& loop = asyncio::get_running_loop();

    q.put_nowait("data");
    auto join_task = loop.create_task([&] { q.join(); });
    auto put_task = loop.create_task([&] { q.put("data2"); });

    // Ensure put() task is not finished
    asyncio::sleep(0);
    EXPECT_FALSE(put_task.done());

    // Perform shut-down
    q.shutdown(false);  // unfinished tasks: 1 -> 1

    EXPECT_EQ(q.qsize(), 1U);

    // Ensure put() task is finished, and raised ShutDown
    asyncio::sleep(0);
    EXPECT_TRUE(put_task.done());
    EXPECT_THROW(asyncio::await(put_task), asyncio::QueueShutDown);

    // Ensure get() succeeds on enqueued item
    EXPECT_EQ(q.get(), "data");

    // Ensure join() task is not finished
    asyncio::sleep(0);
    EXPECT_FALSE(join_task.done());

    // Ensure put() and get() raise ShutDown
    expect_put_and_get_raise_shutdown(q);

    // Ensure there is 1 unfinished task, and join() task succeeds
    q.task_done();

    asyncio::sleep(0);
    EXPECT_TRUE(join_task.done());
    asyncio::await(join_task);

    EXPECT_THROW(q.task_done(), asyncio::ValueError) << "Didn't appear to mark all tasks done";
  });
}

// _QueueShutdownTestMixin.test_shutdown_immediate
template <class Q>
void shutdown_immediate() {
  asyncio::run([] {
    // Setup queue with 1 item, and a join() task
    Q q;
    auto& loop = asyncio::get_running_loop();
    q.put_nowait("data");
    auto join_task = loop.create_task([&] { q.join(); });

    // Perform shut-down
    q.shutdown(true);  // unfinished tasks: 1 -> 0

    EXPECT_EQ(q.qsize(), 0U);

    // Ensure join() task has successfully finished
    asyncio::sleep(0);
    EXPECT_TRUE(join_task.done());
    asyncio::await(join_task);

    // Ensure put() and get() raise ShutDown
    expect_put_and_get_raise_shutdown(q);

    // Ensure there are no unfinished tasks
    EXPECT_THROW(q.task_done(), asyncio::ValueError) << "Didn't appear to mark all tasks done";
  });
}

// _QueueShutdownTestMixin.test_shutdown_immediate_with_unfinished
template <class Q>
void shutdown_immediate_with_unfinished() {
  asyncio::run([] {
    // Setup queue with 2 items (1 retrieved), and a join() task
    Q q;
    auto& loop = asyncio::get_running_loop();
    q.put_nowait("data");
    q.put_nowait("data");
    auto join_task = loop.create_task([&] { q.join(); });
    EXPECT_EQ(q.get(), "data");

    // Perform shut-down
    q.shutdown(true);  // unfinished tasks: 2 -> 1

    EXPECT_EQ(q.qsize(), 0U);

    // Ensure join() task is not finished
    asyncio::sleep(0);
    EXPECT_FALSE(join_task.done());

    // Ensure put() and get() raise ShutDown
    expect_put_and_get_raise_shutdown(q);

    // Ensure there is 1 unfinished task
    q.task_done();
    EXPECT_THROW(q.task_done(), asyncio::ValueError) << "Didn't appear to mark all tasks done";

    // Ensure join() task has successfully finished
    asyncio::sleep(0);
    EXPECT_TRUE(join_task.done());
    asyncio::await(join_task);
  });
}

using StringQueue = asyncio::Queue<std::string>;
using StringLifoQueue = asyncio::LifoQueue<std::string>;
using StringPriorityQueue = asyncio::PriorityQueue<std::string>;

TEST_F(CPythonQueueShutdown, QueueShutdownTests_test_format) { format<StringQueue>("Queue"); }
TEST_F(CPythonQueueShutdown, QueueShutdownTests_test_shutdown_empty) { shutdown_empty<StringQueue>(); }
TEST_F(CPythonQueueShutdown, QueueShutdownTests_test_shutdown_nonempty) { shutdown_nonempty<StringQueue>(); }
TEST_F(CPythonQueueShutdown, QueueShutdownTests_test_shutdown_immediate) { shutdown_immediate<StringQueue>(); }
TEST_F(CPythonQueueShutdown, QueueShutdownTests_test_shutdown_immediate_with_unfinished) {
  shutdown_immediate_with_unfinished<StringQueue>();
}

TEST_F(CPythonQueueShutdown, LifoQueueShutdownTests_test_format) { format<StringLifoQueue>("LifoQueue"); }
TEST_F(CPythonQueueShutdown, LifoQueueShutdownTests_test_shutdown_empty) { shutdown_empty<StringLifoQueue>(); }
TEST_F(CPythonQueueShutdown, LifoQueueShutdownTests_test_shutdown_nonempty) { shutdown_nonempty<StringLifoQueue>(); }
TEST_F(CPythonQueueShutdown, LifoQueueShutdownTests_test_shutdown_immediate) { shutdown_immediate<StringLifoQueue>(); }
TEST_F(CPythonQueueShutdown, LifoQueueShutdownTests_test_shutdown_immediate_with_unfinished) {
  shutdown_immediate_with_unfinished<StringLifoQueue>();
}

TEST_F(CPythonQueueShutdown, PriorityQueueShutdownTests_test_format) { format<StringPriorityQueue>("PriorityQueue"); }
TEST_F(CPythonQueueShutdown, PriorityQueueShutdownTests_test_shutdown_empty) { shutdown_empty<StringPriorityQueue>(); }
TEST_F(CPythonQueueShutdown, PriorityQueueShutdownTests_test_shutdown_nonempty) {
  shutdown_nonempty<StringPriorityQueue>();
}
TEST_F(CPythonQueueShutdown, PriorityQueueShutdownTests_test_shutdown_immediate) {
  shutdown_immediate<StringPriorityQueue>();
}
TEST_F(CPythonQueueShutdown, PriorityQueueShutdownTests_test_shutdown_immediate_with_unfinished) {
  shutdown_immediate_with_unfinished<StringPriorityQueue>();
}

}  // namespace cpython_queue_shutdown_port
