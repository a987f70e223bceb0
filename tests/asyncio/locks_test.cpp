// locks_test.cpp: Lock, Event, Condition, Semaphore, BoundedSemaphore and
// Barrier. Ported from CPython's Lib/test/test_asyncio/test_locks.py
// (LockTests, EventTests, ConditionTests, SemaphoreTests, BarrierTests);
// each case names its source. Tasks are driven with run_briefly() where
// CPython uses test_utils.run_briefly().
#include <mutex>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::run_briefly;
using asyncio_test::virtual_time;
using LockTests = greenlet_test::GreenletTest;
using EventTests = greenlet_test::GreenletTest;
using ConditionTests = greenlet_test::GreenletTest;
using SemaphoreTests = greenlet_test::GreenletTest;
using BarrierTests = greenlet_test::GreenletTest;
using Ints = std::vector<int>;

// ---------------------------------------------------------------- Lock

// LockTests.test_lock: acquire() takes a free lock at once.
TEST_F(LockTests, test_lock) {
  asyncio::event_loop loop;
  asyncio::Lock lock;
  EXPECT_TRUE(loop.run_until_complete([&] { return lock.acquire(); }));
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_FALSE(lock.locked());
}

// LockTests.test_acquire: waiters get the lock in FIFO order, one per
// release().
TEST_F(LockTests, test_acquire) {
  asyncio::event_loop loop;
  asyncio::Lock lock;
  Ints result;
  EXPECT_TRUE(loop.run_until_complete([&] { return lock.acquire(); }));
  auto c = [&](int n) {
    return [&, n] {
      lock.acquire();
      result.push_back(n);
      return true;
    };
  };
  auto t1 = loop.create_task(c(1));
  auto t2 = loop.create_task(c(2));
  run_briefly(loop);
  EXPECT_TRUE(result.empty());
  lock.release();
  run_briefly(loop);
  EXPECT_EQ(result, (Ints{1}));
  run_briefly(loop);
  EXPECT_EQ(result, (Ints{1}));
  auto t3 = loop.create_task(c(3));
  lock.release();
  run_briefly(loop);
  EXPECT_EQ(result, (Ints{1, 2}));
  lock.release();
  run_briefly(loop);
  EXPECT_EQ(result, (Ints{1, 2, 3}));
  EXPECT_TRUE(t1.done() && t1.result());
  EXPECT_TRUE(t2.done() && t2.result());
  EXPECT_TRUE(t3.done() && t3.result());
  EXPECT_TRUE(lock.locked());
}

// LockTests.test_acquire_cancel: a waiter cancelled raises CancelledError
// and leaves the queue.
TEST_F(LockTests, test_acquire_cancel) {
  asyncio::event_loop loop;
  asyncio::Lock lock;
  EXPECT_TRUE(loop.run_until_complete([&] { return lock.acquire(); }));
  auto task = loop.create_task([&] { return lock.acquire(); });
  loop.call_soon([&] { task.cancel(); });
  EXPECT_THROW(loop.run_until_complete(task), asyncio::CancelledError);
  EXPECT_EQ(lock.waiters(), 0u);
}

// LockTests.test_cancel_race: a cancelled waiter in the middle of the queue
// is skipped; the lock goes to the next one when released.
TEST_F(LockTests, test_cancel_race) {
  asyncio::event_loop loop;
  asyncio::Lock lock;
  Ints got;
  auto ta = loop.create_task([&] {
    lock.acquire();
    got.push_back(0);
  });
  run_briefly(loop);
  EXPECT_TRUE(lock.locked());
  auto tb = loop.create_task([&] {
    lock.acquire();
    got.push_back(1);
  });
  run_briefly(loop);
  EXPECT_EQ(lock.waiters(), 1u);
  auto tc = loop.create_task([&] {
    lock.acquire();
    got.push_back(2);
  });
  run_briefly(loop);
  EXPECT_EQ(lock.waiters(), 2u);
  tb.cancel();
  run_briefly(loop);
  EXPECT_TRUE(tb.cancelled());
  lock.release();
  run_briefly(loop);
  EXPECT_EQ(got, (Ints{0, 2}));
  EXPECT_TRUE(tc.done());
  EXPECT_TRUE(lock.locked());
}

// LockTests.test_cancel_release_race: the lock is released (waking the
// first waiter) and that waiter is cancelled before it runs; the lock must
// go to the next waiter, not stay free with a waiter asleep.
TEST_F(LockTests, test_cancel_release_race) {
  asyncio::event_loop loop;
  asyncio::Lock lock;
  Ints got;
  loop.run_until_complete([&] { lock.acquire(); });
  auto t1 = loop.create_task([&] {
    lock.acquire();
    got.push_back(1);
    lock.release();
  });
  auto t2 = loop.create_task([&] {
    lock.acquire();
    got.push_back(2);
    lock.release();
  });
  run_briefly(loop);
  lock.release();  // hands the lock to t1...
  t1.cancel();     // ...which is cancelled before it runs
  loop.run_until_complete(t2);
  EXPECT_TRUE(t1.cancelled());
  EXPECT_EQ(got, (Ints{2}));
  EXPECT_FALSE(lock.locked());
}

// LockTests.test_finished_waiter_cancelled: a woken waiter cancelled after
// it was handed the lock; a newcomer does not jump the queue either.
TEST_F(LockTests, test_finished_waiter_cancelled) {
  asyncio::event_loop loop;
  asyncio::Lock lock;
  Ints got;
  auto ta = loop.create_task([&] { lock.acquire(); });
  run_briefly(loop);
  EXPECT_TRUE(lock.locked());
  auto tb = loop.create_task([&] {
    lock.acquire();
    got.push_back(1);
  });
  run_briefly(loop);
  auto tc = loop.create_task([&] {
    lock.acquire();
    got.push_back(2);
  });
  run_briefly(loop);
  lock.release();                 // wakes tb
  EXPECT_FALSE(lock.try_lock());  // fairness: tb was handed it
  tb.cancel();
  run_briefly(loop);
  run_briefly(loop);
  EXPECT_TRUE(tb.cancelled());
  EXPECT_EQ(got, (Ints{2}));
  EXPECT_TRUE(lock.locked());
}

// LockTests.test_release_not_acquired.
TEST_F(LockTests, test_release_not_acquired) {
  asyncio::Lock lock;
  EXPECT_THROW(lock.release(), asyncio::RuntimeError);
}

// LockTests.test_release_no_waiters.
TEST_F(LockTests, test_release_no_waiters) {
  asyncio::event_loop loop;
  asyncio::Lock lock;
  loop.run_until_complete([&] { lock.acquire(); });
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_FALSE(lock.locked());
}

// LockTests.test_context_manager: `async with lock` is std::lock_guard;
// it releases on the way out, by an exception too.
TEST_F(LockTests, test_context_manager) {
  asyncio::event_loop loop;
  asyncio::Lock lock;
  loop.run_until_complete([&] {
    {
      std::lock_guard guard(lock);
      EXPECT_TRUE(lock.locked());
    }
    EXPECT_FALSE(lock.locked());
    try {
      std::unique_lock guard(lock);
      throw asyncio_test::TestError("boom");
    } catch (const asyncio_test::TestError&) {
    }
    EXPECT_FALSE(lock.locked());
  });
}

// A cancelled lock_guard constructor holds nothing: the lock goes to the
// next waiter, and the cancelled task's guard never releases it.
TEST_F(LockTests, lock_guard_cancelled_while_waiting) {
  asyncio::event_loop loop;
  asyncio::Lock lock;
  Ints got;
  loop.run_until_complete([&] { lock.acquire(); });
  auto body = [&](int n) {
    return [&, n] {
      std::lock_guard guard(lock);
      got.push_back(n);
      asyncio::sleep(0);
    };
  };
  auto t1 = loop.create_task(body(1));
  auto t2 = loop.create_task(body(2));
  run_briefly(loop);
  t1.cancel();
  run_briefly(loop);
  lock.release();
  loop.run_until_complete(t2);
  EXPECT_TRUE(t1.cancelled());
  EXPECT_EQ(got, (Ints{2}));
  EXPECT_FALSE(lock.locked());
}

// LockTests.test_lock_fairness (3.12's acquire(): a free lock with a
// pending waiter is not taken by a newcomer).
TEST_F(LockTests, test_fairness) {
  asyncio::event_loop loop;
  asyncio::Lock lock;
  std::vector<std::string> log;
  auto worker = [&](std::string name) {
    return [&, name] {
      for (int i = 0; i < 2; ++i) {
        std::lock_guard guard(lock);
        log.push_back(name);
        asyncio::sleep(0);
      }
    };
  };
  auto a = loop.create_task(worker("a"));
  auto b = loop.create_task(worker("b"));
  loop.run_until_complete([&] { asyncio::gather(a, b); });
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b", "a", "b"}));
}

// ---------------------------------------------------------------- Event

// EventTests.test_wait: every waiter wakes on set(), in order.
TEST_F(EventTests, test_wait) {
  asyncio::event_loop loop;
  asyncio::Event ev;
  EXPECT_FALSE(ev.is_set());
  Ints result;
  auto c = [&](int n) {
    return [&, n] {
      if (ev.wait()) result.push_back(n);
    };
  };
  auto t1 = loop.create_task(c(1));
  auto t2 = loop.create_task(c(2));
  run_briefly(loop);
  EXPECT_TRUE(result.empty());
  auto t3 = loop.create_task(c(3));
  ev.set();
  run_briefly(loop);
  EXPECT_EQ(result, (Ints{3, 1, 2}));
  EXPECT_TRUE(t1.done() && t2.done() && t3.done());
}

// EventTests.test_wait_on_set: returns at once.
TEST_F(EventTests, test_wait_on_set) {
  asyncio::event_loop loop;
  asyncio::Event ev;
  ev.set();
  EXPECT_TRUE(loop.run_until_complete([&] { return ev.wait(); }));
}

// EventTests.test_wait_cancel.
TEST_F(EventTests, test_wait_cancel) {
  asyncio::event_loop loop;
  asyncio::Event ev;
  auto wait = loop.create_task([&] { ev.wait(); });
  loop.call_soon([&] { wait.cancel(); });
  EXPECT_THROW(loop.run_until_complete(wait), asyncio::CancelledError);
  ev.set();  // no waiter left to wake
}

// EventTests.test_clear / test_clear_with_waiters: a waiter woken by set()
// stays woken even if clear() comes before it runs.
TEST_F(EventTests, test_clear_with_waiters) {
  asyncio::event_loop loop;
  asyncio::Event ev;
  Ints result;
  auto t = loop.create_task([&] {
    if (ev.wait()) result.push_back(1);
  });
  run_briefly(loop);
  ev.set();
  ev.clear();
  EXPECT_FALSE(ev.is_set());
  ev.set();
  ev.set();
  ev.clear();
  run_briefly(loop);
  EXPECT_EQ(result, (Ints{1}));
  EXPECT_TRUE(t.done());
}

// ------------------------------------------------------------ Condition

// ConditionTests.test_wait: notify(n) wakes n waiters, each of which gets
// the lock back in turn.
TEST_F(ConditionTests, test_wait) {
  asyncio::event_loop loop;
  asyncio::Condition cond;
  Ints result;
  auto c = [&](int n) {
    return [&, n] {
      cond.acquire();
      if (cond.wait()) result.push_back(n);
      cond.release();
    };
  };
  auto t1 = loop.create_task(c(1));
  auto t2 = loop.create_task(c(2));
  auto t3 = loop.create_task(c(3));
  run_briefly(loop);
  EXPECT_TRUE(result.empty());
  EXPECT_FALSE(cond.locked());
  loop.run_until_complete([&] { cond.acquire(); });
  cond.notify();
  cond.release();
  run_briefly(loop);
  EXPECT_EQ(result, (Ints{1}));
  loop.run_until_complete([&] { cond.acquire(); });
  cond.notify(2);
  cond.release();
  run_briefly(loop);
  run_briefly(loop);
  EXPECT_EQ(result, (Ints{1, 2, 3}));
  EXPECT_TRUE(t1.done() && t2.done() && t3.done());
}

// ConditionTests.test_wait_cancel: cancelled while waiting, wait() still
// returns (throwing) with the lock held.
TEST_F(ConditionTests, test_wait_cancel) {
  asyncio::event_loop loop;
  asyncio::Condition cond;
  bool held_after = false;
  auto wait = loop.create_task([&] {
    std::lock_guard guard(cond);
    try {
      cond.wait();
    } catch (const asyncio::CancelledError&) {
      held_after = cond.locked();
      throw;
    }
  });
  run_briefly(loop);
  wait.cancel();
  EXPECT_THROW(loop.run_until_complete(wait), asyncio::CancelledError);
  EXPECT_TRUE(held_after);
  EXPECT_FALSE(cond.locked());
}

// ConditionTests.test_wait_cancel_contested: notified, then cancelled
// while another task holds the lock: wait() still returns holding it.
TEST_F(ConditionTests, test_wait_cancel_contested) {
  asyncio::event_loop loop;
  asyncio::Condition cond;
  loop.run_until_complete([&] {
    cond.acquire();
    EXPECT_TRUE(cond.locked());
    auto wait_task = asyncio::create_task([&] { cond.wait(); });
    asyncio::sleep(0);
    EXPECT_FALSE(cond.locked());
    // Notify, but contest the lock before cancelling.
    cond.acquire();
    EXPECT_TRUE(cond.locked());
    cond.notify();
    loop.call_soon([&] { wait_task.cancel(); });
    loop.call_soon([&] { cond.release(); });
    try {
      asyncio::await(wait_task);
    } catch (const asyncio::CancelledError&) {
    }
    EXPECT_TRUE(cond.locked());
  });
}

// ConditionTests.test_cancelled_wakeup (3.13): a task cancelled at the
// "same" time as notify() wakes it passes the wake-up on; no lost wakeup.
TEST_F(ConditionTests, test_cancelled_wakeup) {
  asyncio::event_loop loop(virtual_time());
  asyncio::Condition condition;
  int state = 0;
  loop.run_until_complete([&] {
    auto consumer = [&] {
      std::lock_guard guard(condition);
      for (;;) {
        condition.wait_for([&] { return state != 0; });
        if (state < 0) return;
        state -= 1;
      }
    };
    std::vector<asyncio::Task<>> c = {asyncio::create_task(consumer), asyncio::create_task(consumer)};
    asyncio::sleep(0.1);  // let them settle
    {
      std::lock_guard guard(condition);
      // Produce one item and wake up one consumer...
      state += 1;
      condition.notify(1);
      // ...and cancel it while it waits to run.
      c[0].cancel();
      // Wait for the item to be consumed: if the notification was lost in
      // the race with cancel(), this times out.
      try {
        asyncio::wait_for([&] { condition.wait_for([&] { return state == 0; }); }, 0.01);
      } catch (const asyncio::TimeoutError&) {
      }
      EXPECT_EQ(state, 0);
      state = -1;
      condition.notify_all();
    }
    asyncio::await(c[1]);
    EXPECT_TRUE(c[0].cancelled());
  });
}

// ConditionTests.test_wait_unacquired / test_notify_unacquired.
TEST_F(ConditionTests, test_unacquired) {
  asyncio::event_loop loop;
  asyncio::Condition cond;
  EXPECT_THROW(loop.run_until_complete([&] { cond.wait(); }), asyncio::RuntimeError);
  EXPECT_THROW(cond.notify(), asyncio::RuntimeError);
}

// ConditionTests.test_wait_for: wakes on each notify, returns once the
// predicate holds.
TEST_F(ConditionTests, test_wait_for) {
  asyncio::event_loop loop;
  asyncio::Condition cond;
  int presult = 0;
  int calls = 0;
  auto predicate = [&] {
    ++calls;
    return presult;
  };
  auto t = loop.create_task([&] {
    std::lock_guard guard(cond);
    return cond.wait_for(predicate);
  });
  run_briefly(loop);
  loop.run_until_complete([&] {
    std::lock_guard guard(cond);
    cond.notify();
  });
  run_briefly(loop);
  EXPECT_FALSE(t.done());
  presult = 7;
  loop.run_until_complete([&] {
    std::lock_guard guard(cond);
    cond.notify();
  });
  EXPECT_EQ(loop.run_until_complete(t), 7);
  EXPECT_EQ(calls, 3);
}

// ConditionTests.test_notify_all.
TEST_F(ConditionTests, test_notify_all) {
  asyncio::event_loop loop;
  asyncio::Condition cond;
  Ints result;
  std::vector<asyncio::Task<>> tasks;
  for (int n = 1; n <= 3; ++n) {
    tasks.push_back(loop.create_task([&, n] {
      std::lock_guard guard(cond);
      cond.wait();
      result.push_back(n);
    }));
  }
  run_briefly(loop);
  loop.run_until_complete([&] {
    std::lock_guard guard(cond);
    cond.notify_all();
  });
  loop.run_until_complete([&] { asyncio::gather(tasks); });
  EXPECT_EQ(result, (Ints{1, 2, 3}));
}

// ConditionTests.test_explicit_lock: a Condition over a given Lock.
TEST_F(ConditionTests, test_explicit_lock) {
  asyncio::event_loop loop;
  asyncio::Lock lock;
  asyncio::Condition cond(lock);
  loop.run_until_complete([&] { cond.acquire(); });
  EXPECT_TRUE(lock.locked());
  cond.release();
  EXPECT_FALSE(lock.locked());
}

// A task killed (its loop closed) inside std::lock_guard + wait() unwinds
// without terminating, though it no longer holds the lock.
TEST_F(ConditionTests, killed_while_waiting_unwinds) {
  asyncio::Condition cond;
  {
    asyncio::event_loop loop;
    auto t = loop.create_task([&] {
      std::lock_guard guard(cond);
      cond.wait();
    });
    run_briefly(loop);
    EXPECT_FALSE(t.done());
    loop.close();
  }
  EXPECT_FALSE(cond.locked());
}

// ------------------------------------------------------------ Semaphore

// SemaphoreTests.test_initial_value_zero / test_semaphore_value.
TEST_F(SemaphoreTests, test_initial_value) {
  asyncio::Semaphore zero(0);
  EXPECT_TRUE(zero.locked());
  EXPECT_THROW(asyncio::Semaphore(-1), asyncio::ValueError);
}

// SemaphoreTests.test_semaphore: acquire/release count.
TEST_F(SemaphoreTests, test_semaphore) {
  asyncio::event_loop loop;
  asyncio::Semaphore sem;
  EXPECT_EQ(sem.value(), 1);
  EXPECT_TRUE(loop.run_until_complete([&] { return sem.acquire(); }));
  EXPECT_TRUE(sem.locked());
  EXPECT_EQ(sem.value(), 0);
  sem.release();
  EXPECT_FALSE(sem.locked());
  EXPECT_EQ(sem.value(), 1);
}

// SemaphoreTests.test_acquire: three units, five tasks, FIFO.
TEST_F(SemaphoreTests, test_acquire) {
  asyncio::event_loop loop;
  asyncio::Semaphore sem(3);
  Ints result;
  EXPECT_TRUE(loop.run_until_complete([&] { return sem.acquire(); }));
  EXPECT_TRUE(loop.run_until_complete([&] { return sem.acquire(); }));
  EXPECT_FALSE(sem.locked());
  std::vector<asyncio::Task<>> tasks;
  for (int n = 1; n <= 4; ++n) {
    tasks.push_back(loop.create_task([&, n] {
      sem.acquire();
      result.push_back(n);
    }));
  }
  run_briefly(loop);
  EXPECT_EQ(result, (Ints{1}));
  EXPECT_TRUE(sem.locked());
  sem.release();
  sem.release();
  run_briefly(loop);
  EXPECT_EQ(result, (Ints{1, 2, 3}));
  sem.release();
  run_briefly(loop);
  EXPECT_EQ(result, (Ints{1, 2, 3, 4}));
  EXPECT_EQ(sem.value(), 0);
}

// SemaphoreTests.test_acquire_cancel.
TEST_F(SemaphoreTests, test_acquire_cancel) {
  asyncio::event_loop loop;
  asyncio::Semaphore sem(0);
  auto acquire = loop.create_task([&] { sem.acquire(); });
  loop.call_soon([&] { acquire.cancel(); });
  EXPECT_THROW(loop.run_until_complete(acquire), asyncio::CancelledError);
  EXPECT_EQ(sem.value(), 0);
  EXPECT_TRUE(sem.locked());
}

// SemaphoreTests.test_acquire_cancel_before_awoken: a woken waiter
// cancelled before it runs gives its unit to the next.
TEST_F(SemaphoreTests, test_acquire_cancel_before_awoken) {
  asyncio::event_loop loop;
  asyncio::Semaphore sem(0);
  Ints got;
  std::vector<asyncio::Task<>> t;
  for (int n = 1; n <= 4; ++n) {
    t.push_back(loop.create_task([&, n] {
      sem.acquire();
      got.push_back(n);
    }));
  }
  run_briefly(loop);
  sem.release();  // wakes t1
  t[0].cancel();
  t[1].cancel();
  run_briefly(loop);
  run_briefly(loop);
  EXPECT_EQ(got, (Ints{3}));
  EXPECT_EQ(sem.value(), 0);
  t[3].cancel();
  run_briefly(loop);
  EXPECT_TRUE(t[0].cancelled() && t[1].cancelled() && t[3].cancelled());
}

// SemaphoreTests.test_acquire_hang: a cancelled waiter must not keep the
// semaphore locked forever.
TEST_F(SemaphoreTests, test_acquire_hang) {
  asyncio::event_loop loop;
  asyncio::Semaphore sem(0);
  auto t1 = loop.create_task([&] { sem.acquire(); });
  auto t2 = loop.create_task([&] { sem.acquire(); });
  run_briefly(loop);
  sem.release();
  t1.cancel();
  run_briefly(loop);
  run_briefly(loop);
  EXPECT_TRUE(t1.cancelled());
  EXPECT_TRUE(t2.done() && !t2.cancelled());
}

// SemaphoreTests.test_acquire_no_hang: releases racing a cancel leave the
// count right.
TEST_F(SemaphoreTests, test_acquire_no_hang) {
  asyncio::event_loop loop;
  asyncio::Semaphore sem(1);
  auto c1 = [&] {
    std::lock_guard guard(sem);
    asyncio::sleep(0);
    throw asyncio_test::TestError("t1 fails");
  };
  auto c2 = [&] { std::lock_guard guard(sem); };
  auto t1 = loop.create_task(c1);
  auto t2 = loop.create_task(c2);
  loop.run_until_complete([&] { asyncio::gather(asyncio::return_exceptions, t1, t2); });
  EXPECT_TRUE(loop.run_until_complete([&] { return sem.acquire(); }));
  EXPECT_EQ(sem.value(), 0);
}

// SemaphoreTests.test_acquire_fifo_order(_2/_3): waiters get units in the
// order they queued, however releases interleave.
TEST_F(SemaphoreTests, test_acquire_fifo_order) {
  asyncio::event_loop loop(virtual_time());
  asyncio::Semaphore sem(1);
  Ints result;
  auto coro = [&](int n) {
    return [&, n] {
      std::lock_guard guard(sem);
      result.push_back(n);
      asyncio::sleep(0.01);
    };
  };
  std::vector<asyncio::Task<>> tasks;
  for (int n = 0; n < 6; ++n) tasks.push_back(loop.create_task(coro(n)));
  loop.run_until_complete([&] { asyncio::gather(tasks); });
  EXPECT_EQ(result, (Ints{0, 1, 2, 3, 4, 5}));
}

// SemaphoreTests.test_release_not_acquired: BoundedSemaphore over-release
// raises ValueError, through a Semaphore& too.
TEST_F(SemaphoreTests, test_bounded_release_not_acquired) {
  asyncio::event_loop loop;
  asyncio::BoundedSemaphore sem(1);
  EXPECT_THROW(sem.release(), asyncio::ValueError);
  asyncio::Semaphore& base = sem;
  EXPECT_THROW(base.release(), asyncio::ValueError);
  loop.run_until_complete([&] { sem.acquire(); });
  sem.release();
  EXPECT_THROW(sem.release(), asyncio::ValueError);
  EXPECT_EQ(sem.value(), 1);
}

// SemaphoreTests.test_release_no_waiters.
TEST_F(SemaphoreTests, test_release_no_waiters) {
  asyncio::event_loop loop;
  asyncio::Semaphore sem;
  loop.run_until_complete([&] { sem.acquire(); });
  EXPECT_TRUE(sem.locked());
  sem.release();
  EXPECT_FALSE(sem.locked());
}

// -------------------------------------------------------------- Barrier

// BarrierTests.test_barrier_parties / test_constructor.
TEST_F(BarrierTests, test_constructor) {
  EXPECT_THROW(asyncio::Barrier(0), asyncio::ValueError);
  asyncio::Barrier b(3);
  EXPECT_EQ(b.parties(), 3u);
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_FALSE(b.broken());
}

// BarrierTests.test_wait_more / test_barrier: all parties go on together;
// indices 0..n-1 in arrival order.
TEST_F(BarrierTests, test_wait_more) {
  asyncio::event_loop loop;
  asyncio::Barrier barrier(3);
  std::vector<std::string> log;
  std::vector<asyncio::Task<std::size_t>> tasks;
  for (int n = 0; n < 3; ++n) {
    tasks.push_back(loop.create_task([&, n] {
      log.push_back("arrive " + std::to_string(n));
      std::size_t index = barrier.wait();
      log.push_back("leave " + std::to_string(n));
      return index;
    }));
  }
  auto indices = loop.run_until_complete([&] { return asyncio::gather(tasks); });
  EXPECT_EQ(indices, (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(log, (std::vector<std::string>{"arrive 0", "arrive 1", "arrive 2", "leave 2", "leave 0", "leave 1"}));
  EXPECT_EQ(barrier.n_waiting(), 0u);
  EXPECT_FALSE(barrier.broken());
}

// BarrierTests.test_draining_state / test_filling_tasks_wait_for_draining:
// the barrier can be used again, the second round waits for the first to
// leave.
TEST_F(BarrierTests, test_reuse) {
  asyncio::event_loop loop;
  asyncio::Barrier barrier(2);
  Ints rounds;
  auto party = [&](int n) {
    return [&, n] {
      for (int r = 0; r < 3; ++r) {
        barrier.wait();
        rounds.push_back(n * 10 + r);
      }
    };
  };
  auto a = loop.create_task(party(1));
  auto b = loop.create_task(party(2));
  loop.run_until_complete([&] { asyncio::gather(a, b); });
  ASSERT_EQ(rounds.size(), 6u);
  for (std::size_t i = 0; i < rounds.size(); ++i) EXPECT_EQ(rounds[i] % 10, static_cast<int>(i / 2));
}

// BarrierTests.test_abort_barrier: waiting tasks and later ones get
// BrokenBarrierError.
TEST_F(BarrierTests, test_abort_barrier) {
  asyncio::event_loop loop;
  asyncio::Barrier barrier(3);
  auto waiter = [&] { barrier.wait(); };
  auto t1 = loop.create_task(waiter);
  auto t2 = loop.create_task(waiter);
  run_briefly(loop);
  loop.run_until_complete([&] { barrier.abort(); });
  EXPECT_TRUE(barrier.broken());
  auto r = loop.run_until_complete([&] { return asyncio::gather(asyncio::return_exceptions, t1, t2); });
  EXPECT_THROW(std::get<0>(r).value(), asyncio::BrokenBarrierError);
  EXPECT_THROW(std::get<1>(r).value(), asyncio::BrokenBarrierError);
  EXPECT_THROW(loop.run_until_complete(waiter), asyncio::BrokenBarrierError);
  loop.run_until_complete([&] { barrier.reset(); });
  EXPECT_FALSE(barrier.broken());
}

// BarrierTests.test_reset_barrier_while_tasks_waiting: waiting tasks get
// BrokenBarrierError; the barrier then works again.
TEST_F(BarrierTests, test_reset_barrier_while_tasks_waiting) {
  asyncio::event_loop loop;
  asyncio::Barrier barrier(3);
  auto waiter = [&] { barrier.wait(); };
  auto t1 = loop.create_task(waiter);
  auto t2 = loop.create_task(waiter);
  run_briefly(loop);
  EXPECT_EQ(barrier.n_waiting(), 2u);
  loop.run_until_complete([&] { barrier.reset(); });
  auto r = loop.run_until_complete([&] { return asyncio::gather(asyncio::return_exceptions, t1, t2); });
  EXPECT_THROW(std::get<0>(r).value(), asyncio::BrokenBarrierError);
  EXPECT_THROW(std::get<1>(r).value(), asyncio::BrokenBarrierError);
  EXPECT_FALSE(barrier.broken());
  EXPECT_EQ(barrier.n_waiting(), 0u);
  std::vector<asyncio::Task<>> again;
  for (int i = 0; i < 3; ++i) again.push_back(loop.create_task(waiter));
  loop.run_until_complete([&] { asyncio::gather(again); });
}

// BarrierTests.test_cancel_while_filling (3.12 fix): a cancelled waiter
// leaves the count; the barrier then fills with others.
TEST_F(BarrierTests, test_cancel_while_filling) {
  asyncio::event_loop loop;
  asyncio::Barrier barrier(2);
  auto t1 = loop.create_task([&] { barrier.wait(); });
  run_briefly(loop);
  EXPECT_EQ(barrier.n_waiting(), 1u);
  t1.cancel();
  run_briefly(loop);
  run_briefly(loop);
  EXPECT_TRUE(t1.cancelled());
  EXPECT_EQ(barrier.n_waiting(), 0u);
  auto t2 = loop.create_task([&] { barrier.wait(); });
  auto t3 = loop.create_task([&] { barrier.wait(); });
  loop.run_until_complete([&] { asyncio::gather(t2, t3); });
}

}  // namespace
