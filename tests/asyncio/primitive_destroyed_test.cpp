// primitive_destroyed_test.cpp: a Lock, Event, Condition, Semaphore,
// BoundedSemaphore, Barrier or queue destroyed while tasks wait on it orphans
// them: each wakes with RuntimeError (primitive_destroyed) naming the
// primitive, touching nothing of it (run under ASan: the primitives live on
// the heap, so a touch is a heap-use-after-free), instead of waiting forever.
#include <memory>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::run_briefly;
using PrimitiveDestroyed = greenlet_test::GreenletTest;

// expect_orphaned(task, kind) checks that task failed with the orphaning RuntimeError for kind.
template <class T>
void expect_orphaned(asyncio::Task<T>& task, const std::string& kind) {
  ASSERT_TRUE(task.done()) << kind << ": the waiter still waits";
  ASSERT_FALSE(task.cancelled());
  std::exception_ptr e = task.exception();
  ASSERT_TRUE(e);
  try {
    std::rethrow_exception(e);
  } catch (const asyncio::RuntimeError& error) {
    EXPECT_EQ(error.condition(), asyncio::asyncio_errc::primitive_destroyed) << error.what();
    EXPECT_NE(std::string(error.what()).find(kind + " was destroyed while this task waited on it"), std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find("must outlive the tasks waiting on it"), std::string::npos)
        << error.what();
  } catch (const std::exception& other) {
    ADD_FAILURE() << kind << ": not the orphaning RuntimeError: " << other.what();
  }
}

// drive(loop) runs the loop until the tasks woken by a destruction have finished.
void drive(asyncio::event_loop& loop) {
  for (int i = 0; i < 4; ++i) run_briefly(loop);
}

// ---------------------------------------------------------------- Lock

TEST_F(PrimitiveDestroyed, LockWaitersGetRuntimeError) {
  asyncio::event_loop loop;
  auto lock = std::make_unique<asyncio::Lock>();
  loop.run_until_complete([&] { return lock->acquire(); });
  auto waiter = [&] {
    lock->acquire();
    return 1;
  };
  auto t1 = loop.create_task(waiter);
  auto t2 = loop.create_task(waiter);
  run_briefly(loop);
  ASSERT_EQ(lock->waiters(), 2u);
  lock.reset();
  drive(loop);
  expect_orphaned(t1, "Lock");
  expect_orphaned(t2, "Lock");
}

// The first waiter was handed the lock by release() but had not run yet: it has no lock to hold.
TEST_F(PrimitiveDestroyed, LockHandedOverThenDestroyed) {
  asyncio::event_loop loop;
  auto lock = std::make_unique<asyncio::Lock>();
  loop.run_until_complete([&] { return lock->acquire(); });
  auto waiter = [&] {
    lock->acquire();
    return 1;
  };
  auto t1 = loop.create_task(waiter);
  auto t2 = loop.create_task(waiter);
  run_briefly(loop);
  lock->release();  // hands the lock to t1
  lock.reset();
  drive(loop);
  expect_orphaned(t1, "Lock");
  expect_orphaned(t2, "Lock");
}

// The usual way it happens: the lock is a local of a task that returns while others wait on it.
TEST_F(PrimitiveDestroyed, LockLocalOfAReturningTask) {
  asyncio::event_loop loop;
  std::vector<asyncio::Task<int>> waiters;
  loop.run_until_complete([&] {
    auto lock = std::make_unique<asyncio::Lock>();
    lock->acquire();
    for (int i = 0; i < 3; ++i) {
      waiters.push_back(asyncio::create_task([l = lock.get()] {
        l->acquire();
        return 1;
      }));
    }
    asyncio::sleep(0);
    EXPECT_EQ(lock->waiters(), 3u);
  });
  drive(loop);
  for (auto& t : waiters) expect_orphaned(t, "Lock");
}

// A waiter cancelled before the destruction, whose task had not run yet, ends cancelled.
TEST_F(PrimitiveDestroyed, CancelledWaiterStaysCancelled) {
  asyncio::event_loop loop;
  auto lock = std::make_unique<asyncio::Lock>();
  loop.run_until_complete([&] { return lock->acquire(); });
  auto waiter = [&] {
    lock->acquire();
    return 1;
  };
  auto t1 = loop.create_task(waiter);
  auto t2 = loop.create_task(waiter);
  run_briefly(loop);
  t1.cancel();
  lock.reset();
  drive(loop);
  EXPECT_TRUE(t1.cancelled());
  expect_orphaned(t2, "Lock");
}

// ---------------------------------------------------------------- Event

TEST_F(PrimitiveDestroyed, EventWaitersGetRuntimeError) {
  asyncio::event_loop loop;
  auto event = std::make_unique<asyncio::Event>();
  auto waiter = [&] { return event->wait(); };
  auto t1 = loop.create_task(waiter);
  auto t2 = loop.create_task(waiter);
  run_briefly(loop);
  event.reset();
  drive(loop);
  expect_orphaned(t1, "Event");
  expect_orphaned(t2, "Event");
}

// set() then gone at once (a task's local Event): the waiters were released, and return true.
TEST_F(PrimitiveDestroyed, EventSetThenDestroyedReturnsTrue) {
  asyncio::event_loop loop;
  auto event = std::make_unique<asyncio::Event>();
  auto waiter = [&] { return event->wait(); };
  auto t1 = loop.create_task(waiter);
  auto t2 = loop.create_task(waiter);
  run_briefly(loop);
  event->set();
  event.reset();
  drive(loop);
  ASSERT_TRUE(t1.done());
  ASSERT_TRUE(t2.done());
  EXPECT_TRUE(t1.result());
  EXPECT_TRUE(t2.result());
}

// ---------------------------------------------------------------- Condition

// cond_waiter waits on cond without a lock_guard (one would release the destroyed Condition) and
// records whether it held the lock when wait() threw.
struct cond_waiter {
  asyncio::Condition* cond;
  asyncio::Lock* lock;  // the Condition's external lock, or null
  bool held_after = false;
  int operator()() {
    cond->acquire();
    try {
      cond->wait();
    } catch (...) {
      if (lock != nullptr) held_after = lock->locked();
      throw;
    }
    cond->release();
    return 1;
  }
};

TEST_F(PrimitiveDestroyed, ConditionWaitersGetRuntimeError) {
  asyncio::event_loop loop;
  auto cond = std::make_unique<asyncio::Condition>();
  cond_waiter w{cond.get(), nullptr};
  auto t1 = loop.create_task([&w] { return w(); });
  auto t2 = loop.create_task([&w] { return w(); });
  run_briefly(loop);
  ASSERT_EQ(cond->waiters(), 2u);
  cond.reset();
  drive(loop);
  expect_orphaned(t1, "Condition");
  expect_orphaned(t2, "Condition");
}

// Notified, then destroyed before the waiters ran: they cannot take back a lock that is gone.
TEST_F(PrimitiveDestroyed, ConditionNotifiedThenDestroyed) {
  asyncio::event_loop loop;
  auto cond = std::make_unique<asyncio::Condition>();
  cond_waiter w{cond.get(), nullptr};
  auto t1 = loop.create_task([&w] { return w(); });
  auto t2 = loop.create_task([&w] { return w(); });
  run_briefly(loop);
  cond->acquire();  // free: takes it without waiting
  cond->notify_all();
  cond->release();
  cond.reset();
  drive(loop);
  expect_orphaned(t1, "Condition");
  expect_orphaned(t2, "Condition");
}

// Over an external Lock that lives on: the orphaned waiter does not take it back.
TEST_F(PrimitiveDestroyed, ConditionOverExternalLock) {
  asyncio::event_loop loop;
  asyncio::Lock lock;
  auto cond = std::make_unique<asyncio::Condition>(lock);
  cond_waiter w{cond.get(), &lock, true};
  auto t1 = loop.create_task([&w] { return w(); });
  run_briefly(loop);
  cond.reset();
  drive(loop);
  expect_orphaned(t1, "Condition");
  EXPECT_FALSE(w.held_after);
  EXPECT_FALSE(lock.locked());
}

// ---------------------------------------------------------------- Semaphore, BoundedSemaphore

template <class Sem>
void semaphore_waiters_orphaned(const char* kind, bool release_first) {
  asyncio::event_loop loop;
  std::unique_ptr<asyncio::Semaphore> sem = std::make_unique<Sem>(1);
  loop.run_until_complete([&] { return sem->acquire(); });
  auto waiter = [&] {
    sem->acquire();
    return 1;
  };
  auto t1 = loop.create_task(waiter);
  auto t2 = loop.create_task(waiter);
  run_briefly(loop);
  ASSERT_EQ(sem->waiters(), 2u);
  if (release_first) sem->release();  // gives t1 the unit; t1 has not run
  sem.reset();
  drive(loop);
  expect_orphaned(t1, kind);
  expect_orphaned(t2, kind);
}

TEST_F(PrimitiveDestroyed, SemaphoreWaitersGetRuntimeError) {
  semaphore_waiters_orphaned<asyncio::Semaphore>("Semaphore", false);
}

TEST_F(PrimitiveDestroyed, SemaphoreReleasedThenDestroyed) {
  semaphore_waiters_orphaned<asyncio::Semaphore>("Semaphore", true);
}

TEST_F(PrimitiveDestroyed, BoundedSemaphoreWaitersGetRuntimeError) {
  semaphore_waiters_orphaned<asyncio::BoundedSemaphore>("Semaphore", false);
  semaphore_waiters_orphaned<asyncio::BoundedSemaphore>("Semaphore", true);
}

// ---------------------------------------------------------------- Barrier

TEST_F(PrimitiveDestroyed, BarrierWaitersGetRuntimeError) {
  asyncio::event_loop loop;
  auto barrier = std::make_unique<asyncio::Barrier>(3);
  auto waiter = [&] { return barrier->wait(); };
  auto t1 = loop.create_task(waiter);
  auto t2 = loop.create_task(waiter);
  run_briefly(loop);
  ASSERT_EQ(barrier->n_waiting(), 2u);
  barrier.reset();
  drive(loop);
  expect_orphaned(t1, "Barrier");
  expect_orphaned(t2, "Barrier");
}

// The last party arrived (all are released) but the barrier goes before the others ran.
TEST_F(PrimitiveDestroyed, BarrierPassedThenDestroyed) {
  asyncio::event_loop loop;
  auto barrier = std::make_unique<asyncio::Barrier>(2);
  auto waiter = [&] { return barrier->wait(); };
  auto t1 = loop.create_task(waiter);
  run_briefly(loop);
  auto t2 = loop.create_task(waiter);
  run_briefly(loop);  // t2 arrives last and returns; t1 is notified but has not run
  barrier.reset();
  drive(loop);
  ASSERT_TRUE(t2.done());
  EXPECT_EQ(t2.result(), 1u);
  expect_orphaned(t1, "Barrier");
}

// ---------------------------------------------------------------- queues

template <class Q>
void getters_orphaned(bool put_first) {
  asyncio::event_loop loop;
  auto q = std::make_unique<Q>();
  auto getter = [&] { return q->get(); };
  auto t1 = loop.create_task(getter);
  auto t2 = loop.create_task(getter);
  run_briefly(loop);
  if (put_first) q->put_nowait(7);  // wakes t1, which has not run
  q.reset();
  drive(loop);
  expect_orphaned(t1, "Queue");
  expect_orphaned(t2, "Queue");
}

TEST_F(PrimitiveDestroyed, QueueGettersGetRuntimeError) {
  getters_orphaned<asyncio::Queue<int>>(false);
  getters_orphaned<asyncio::Queue<int>>(true);
}

TEST_F(PrimitiveDestroyed, PriorityQueueGettersGetRuntimeError) {
  getters_orphaned<asyncio::PriorityQueue<int>>(false);
  getters_orphaned<asyncio::PriorityQueue<int>>(true);
}

TEST_F(PrimitiveDestroyed, LifoQueueGettersGetRuntimeError) {
  getters_orphaned<asyncio::LifoQueue<int>>(false);
  getters_orphaned<asyncio::LifoQueue<int>>(true);
}

TEST_F(PrimitiveDestroyed, QueuePuttersGetRuntimeError) {
  for (bool get_first : {false, true}) {
    asyncio::event_loop loop;
    auto q = std::make_unique<asyncio::Queue<std::string>>(1);
    q->put_nowait("full");
    auto putter = [&] { q->put("more"); };
    auto t1 = loop.create_task(putter);
    auto t2 = loop.create_task(putter);
    run_briefly(loop);
    if (get_first) {
      EXPECT_EQ(q->get_nowait(), "full");  // wakes t1, which has not run
    }
    q.reset();
    drive(loop);
    expect_orphaned(t1, "Queue");
    expect_orphaned(t2, "Queue");
  }
}

TEST_F(PrimitiveDestroyed, QueueJoinGetsRuntimeError) {
  asyncio::event_loop loop;
  auto q = std::make_unique<asyncio::Queue<int>>();
  q->put_nowait(1);
  auto t = loop.create_task([&] { q->join(); });
  run_briefly(loop);
  q.reset();
  drive(loop);
  expect_orphaned(t, "Queue");
}

// The owner of a queue is cancelled: its stack unwinds and the queue with it, under its consumer.
TEST_F(PrimitiveDestroyed, QueueOwnerCancelled) {
  asyncio::event_loop loop;
  std::vector<asyncio::Task<int>> consumers;
  auto owner = loop.create_task([&] {
    asyncio::Queue<int> q;
    consumers.push_back(asyncio::create_task([&q] { return q.get(); }));
    asyncio::sleep(3600);
  });
  run_briefly(loop);
  run_briefly(loop);  // the consumer waits in get()
  owner.cancel();
  drive(loop);
  EXPECT_TRUE(owner.cancelled());
  ASSERT_EQ(consumers.size(), 1u);
  expect_orphaned(consumers[0], "Queue");
}

}  // namespace
