// sync_waiter_burst_test.cpp: Condition and Semaphore when a burst wakes or
// cancels thousands of waiters in one loop turn. A wake-up unlinks every
// waiter it wakes or passes (done: cancelled meanwhile), so the next one does
// not walk past them again; each case checks that through waiters(), and
// that the burst keeps asyncio's semantics: FIFO order, each waiter woken
// once, a cancelled notified waiter passing its notification on, a cancelled
// woken semaphore waiter giving its unit to the next, locked() while woken
// waiters have not run yet.
#include <mutex>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using SyncWaiterBurst = greenlet_test::GreenletTest;
using Ints = std::vector<int>;

constexpr int kWaiters = 2000;

Ints range(int from, int to, int step = 1) {
  Ints v;
  for (int i = from; i < to; i += step) v.push_back(i);
  return v;
}

// cond_waiters starts n tasks that each wait on cond once and record their
// index in woke when the wait returns; it returns once all are queued.
std::vector<asyncio::Task<>> cond_waiters(asyncio::Condition& cond, Ints& woke, int n) {
  std::vector<asyncio::Task<>> tasks;
  for (int i = 0; i < n; ++i) {
    tasks.push_back(asyncio::create_task([&cond, &woke, i] {
      std::lock_guard guard(cond);
      cond.wait();
      woke.push_back(i);
    }));
  }
  asyncio::sleep(0);
  asyncio::sleep(0);
  return tasks;
}

// sem_waiters is cond_waiters for Semaphore::acquire().
std::vector<asyncio::Task<>> sem_waiters(asyncio::Semaphore& sem, Ints& got, int n) {
  std::vector<asyncio::Task<>> tasks;
  for (int i = 0; i < n; ++i) {
    tasks.push_back(asyncio::create_task([&sem, &got, i] {
      sem.acquire();
      got.push_back(i);
    }));
  }
  asyncio::sleep(0);
  asyncio::sleep(0);
  return tasks;
}

// notify(1) N times wakes each waiter once, in the order they queued; each
// wake-up unlinks the woken waiter at once.
TEST_F(SyncWaiterBurst, condition_notify1_burst_wakes_fifo_once) {
  asyncio::event_loop loop;
  asyncio::Condition cond;
  Ints woke;
  loop.run_until_complete([&] {
    auto tasks = cond_waiters(cond, woke, kWaiters);
    EXPECT_EQ(cond.waiters(), static_cast<std::size_t>(kWaiters));
    {
      std::lock_guard guard(cond);
      for (int i = 0; i < kWaiters / 2; ++i) cond.notify(1);
      EXPECT_EQ(cond.waiters(), static_cast<std::size_t>(kWaiters / 2));
      for (int i = kWaiters / 2; i < kWaiters; ++i) cond.notify(1);
      EXPECT_EQ(cond.waiters(), 0u);
      cond.notify(1);  // nobody left: wakes nobody twice
    }
    asyncio::wait(tasks);
  });
  EXPECT_EQ(woke, range(0, kWaiters));
}

// Cancelling every other waiter, then notify_all() in the same turn, wakes
// exactly the others, in order; the cancelled ones, passing a notification
// on when they run, find nobody left to wake.
TEST_F(SyncWaiterBurst, condition_cancel_every_other_then_notify_all) {
  asyncio::event_loop loop;
  asyncio::Condition cond;
  Ints woke;
  loop.run_until_complete([&] {
    auto tasks = cond_waiters(cond, woke, kWaiters);
    {
      std::lock_guard guard(cond);
      for (int i = 1; i < kWaiters; i += 2) tasks[i].cancel();
      // Cancelled waiters stay linked until their tasks run or a wake-up
      // passes them.
      EXPECT_EQ(cond.waiters(), static_cast<std::size_t>(kWaiters));
      cond.notify_all();
      EXPECT_EQ(cond.waiters(), 0u);
    }
    asyncio::wait(tasks);
    for (int i = 0; i < kWaiters; ++i) EXPECT_EQ(tasks[i].cancelled(), i % 2 == 1) << i;
  });
  EXPECT_EQ(woke, range(0, kWaiters, 2));
}

// Every waiter cancelled at once (asyncio::run's shutdown does this): the
// first to run passes a notification on, which unlinks all the others
// (cancelled, not woken) instead of each of them walking past the rest.
TEST_F(SyncWaiterBurst, condition_cancel_burst_unlinks_passed_waiters) {
  asyncio::event_loop loop;
  asyncio::Condition cond;
  Ints woke;
  std::size_t linked_after_first = 0;
  loop.run_until_complete([&] {
    auto tasks = cond_waiters(cond, woke, kWaiters);
    // The first cancelled task runs before this check, the others after.
    tasks[0].cancel();
    asyncio::get_running_loop().call_soon([&] { linked_after_first = cond.waiters(); });
    for (int i = 1; i < kWaiters; ++i) tasks[i].cancel();
    asyncio::wait(tasks);
    for (auto& t : tasks) EXPECT_TRUE(t.cancelled());
  });
  EXPECT_EQ(linked_after_first, 0u);
  EXPECT_TRUE(woke.empty());
  EXPECT_EQ(cond.waiters(), 0u);
}

// Notified waiters cancelled before they run pass their notifications on:
// the second half wakes instead, in order, each once (CPython 3.13).
TEST_F(SyncWaiterBurst, condition_cancelled_notified_waiters_pass_notifications_on) {
  asyncio::event_loop loop;
  asyncio::Condition cond;
  Ints woke;
  loop.run_until_complete([&] {
    auto tasks = cond_waiters(cond, woke, kWaiters);
    {
      std::lock_guard guard(cond);
      cond.notify(kWaiters / 2);
      EXPECT_EQ(cond.waiters(), static_cast<std::size_t>(kWaiters / 2));
      for (int i = 0; i < kWaiters / 2; ++i) tasks[i].cancel();
    }
    asyncio::wait(tasks);
    for (int i = 0; i < kWaiters; ++i) EXPECT_EQ(tasks[i].cancelled(), i < kWaiters / 2) << i;
  });
  EXPECT_EQ(woke, range(kWaiters / 2, kWaiters));
  EXPECT_EQ(cond.waiters(), 0u);
}

// N + 3 releases in a row wake the N waiters in order and leave 3 units.
// Until the woken tasks run, the semaphore stays locked (asyncio counts
// woken waiters still in its deque), though none is linked any more.
TEST_F(SyncWaiterBurst, semaphore_release_burst_wakes_fifo) {
  asyncio::event_loop loop;
  asyncio::Semaphore sem(0);
  Ints got;
  loop.run_until_complete([&] {
    auto tasks = sem_waiters(sem, got, kWaiters);
    EXPECT_EQ(sem.waiters(), static_cast<std::size_t>(kWaiters));
    for (int i = 0; i < kWaiters + 3; ++i) sem.release();
    EXPECT_EQ(sem.waiters(), 0u);
    EXPECT_EQ(sem.value(), 3);
    EXPECT_TRUE(sem.locked());
    asyncio::wait(tasks);
    EXPECT_FALSE(sem.locked());
  });
  EXPECT_EQ(got, range(0, kWaiters));
  EXPECT_EQ(sem.value(), 3);
}

// Cancelling every other waiter, then releasing once per remaining waiter
// in the same turn: the releases pass the cancelled ones and wake exactly
// the others, in order; no unit is lost or made up.
TEST_F(SyncWaiterBurst, semaphore_cancel_every_other_then_release) {
  asyncio::event_loop loop;
  asyncio::Semaphore sem(0);
  Ints got;
  loop.run_until_complete([&] {
    auto tasks = sem_waiters(sem, got, kWaiters);
    for (int i = 1; i < kWaiters; i += 2) tasks[i].cancel();
    for (int i = 0; i < kWaiters / 2; ++i) sem.release();
    // Only the last waiter (cancelled) is still linked: no release passed it.
    EXPECT_EQ(sem.waiters(), 1u);
    EXPECT_EQ(sem.value(), 0);
    asyncio::wait(tasks);
    for (int i = 0; i < kWaiters; ++i) EXPECT_EQ(tasks[i].cancelled(), i % 2 == 1) << i;
  });
  EXPECT_EQ(got, range(0, kWaiters, 2));
  EXPECT_EQ(sem.value(), 0);
}

// Woken waiters cancelled before they run give their units back to the
// next waiters: the second half acquires, in order, and the count ends at 0.
TEST_F(SyncWaiterBurst, semaphore_cancelled_woken_waiters_pass_units_on) {
  asyncio::event_loop loop;
  asyncio::Semaphore sem(0);
  Ints got;
  loop.run_until_complete([&] {
    auto tasks = sem_waiters(sem, got, kWaiters);
    for (int i = 0; i < kWaiters / 2; ++i) sem.release();
    EXPECT_EQ(sem.waiters(), static_cast<std::size_t>(kWaiters / 2));
    for (int i = 0; i < kWaiters / 2; ++i) tasks[i].cancel();
    asyncio::wait(tasks);
    for (int i = 0; i < kWaiters; ++i) EXPECT_EQ(tasks[i].cancelled(), i < kWaiters / 2) << i;
  });
  EXPECT_EQ(got, range(kWaiters / 2, kWaiters));
  EXPECT_EQ(sem.value(), 0);
  EXPECT_EQ(sem.waiters(), 0u);
}

}  // namespace
