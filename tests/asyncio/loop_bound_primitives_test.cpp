// loop_bound_primitives_test.cpp: a Lock, Event, Condition, Semaphore or
// Queue is bound to the loop of the tasks waiting on it, as asyncio's
// _LoopBoundMixin binds it to the first loop that waits: a task of another
// loop that would wait, and a thread other than the waiters' loop's that
// would wake them (release, set, notify, put...), get RuntimeError
// (wrong_loop) "<X> is bound to a different event loop", and the primitive
// is left as it was. They used to go through: another thread completed the
// waiters' futures, racing their loop. Unlike asyncio, the binding lasts
// while tasks wait, so loops that follow each other may share a primitive.
#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

#include <greenlet/asyncio.hpp>

namespace asyncio = greenlet::asyncio;

namespace {

// on_another_thread(fn) runs fn on a new thread while the calling task's loop keeps running, and
// returns once fn has.
void on_another_thread(const std::function<void()>& fn) {
  asyncio::event_loop& loop = asyncio::get_running_loop();
  auto done = loop.create_future<void>();
  asyncio::event_loop::external_work_guard busy(loop);
  std::thread other([&] {
    fn();
    loop.call_soon_threadsafe([&] { done.set_result(); });
  });
  asyncio::await(done);
  other.join();
}

// refusal_of(call) is call's RuntimeError(wrong_loop) text, or what went wrong instead.
std::string refusal_of(const std::function<void()>& call) {
  try {
    call();
    return "accepted";
  } catch (const asyncio::RuntimeError& e) {
    if (e.condition() != asyncio::asyncio_errc::wrong_loop) return std::string("other RuntimeError: ") + e.what();
    return e.what();
  } catch (const std::exception& e) {
    return std::string("other exception: ") + e.what();
  }
}

void expect_bound(const std::string& refusal, const std::string& kind) {
  EXPECT_EQ(refusal.rfind(kind + " is bound to a different event loop", 0), 0u) << refusal;
}

}  // namespace

// The explorer's case: one loop holds the lock (an uncontended acquire binds nothing, as in
// asyncio), a task of a loop on another thread waits for it; releasing it on the first thread
// would complete the other loop's future there. Refused, the lock still held; once the waiter has
// given up, the release goes through.
TEST(LoopBoundPrimitives, ReleaseOnAnotherThreadThanTheWaitersIsRefused) {
  asyncio::Lock lock;
  std::string refusal;
  bool still_locked = false;
  bool waiter_cancelled = false;
  asyncio::run([&] {
    lock.acquire();
    asyncio::event_loop& loop_a = asyncio::get_running_loop();
    auto b_waits = loop_a.create_future<void>();
    asyncio::event_loop::external_work_guard busy(loop_a);
    asyncio::event_loop* loop_b = nullptr;
    asyncio::Task<void>* b_waiter = nullptr;
    std::thread b([&] {
      asyncio::run([&] {
        loop_b = &asyncio::get_running_loop();
        asyncio::event_loop::external_work_guard until_cancelled(*loop_b);
        auto waiter = asyncio::create_task([&] { lock.acquire(); });
        b_waiter = &waiter;
        asyncio::sleep(0);  // the waiter queues on the lock
        loop_a.call_soon_threadsafe([&] { b_waits.set_result(); });
        try {
          asyncio::await(waiter);
        } catch (const asyncio::CancelledError&) {
          waiter_cancelled = true;
        }
      });
    });
    asyncio::await(b_waits);
    refusal = refusal_of([&] { lock.release(); });
    still_locked = lock.locked();
    // The waiter gives up on its own thread; then nothing waits and the release goes through.
    loop_b->call_soon_threadsafe([&] { b_waiter->cancel(); });
    b.join();
    lock.release();
    EXPECT_FALSE(lock.locked());
  });
  expect_bound(refusal, "Lock");
  EXPECT_NE(refusal.find("another thread"), std::string::npos) << refusal;
  EXPECT_TRUE(still_locked);
  EXPECT_TRUE(waiter_cancelled);
}

TEST(LoopBoundPrimitives, WaitingBehindAnotherLoopsWaitersIsRefused) {
  asyncio::Lock lock;
  std::string refusal;
  asyncio::run([&] {
    lock.acquire();
    auto waiter = asyncio::create_task([&] { lock.acquire(); });
    asyncio::sleep(0);  // this loop's waiter binds the lock
    on_another_thread([&] { asyncio::run([&] { refusal = refusal_of([&] { lock.acquire(); }); }); });
    EXPECT_EQ(lock.waiters(), 1u);
    lock.release();
    asyncio::await(waiter);
    lock.release();
  });
  expect_bound(refusal, "Lock");
  EXPECT_NE(refusal.find("tasks of another event loop wait on it"), std::string::npos) << refusal;
}

TEST(LoopBoundPrimitives, EventSetOnAnotherThreadIsRefused) {
  asyncio::Event event;
  std::string refusal;
  asyncio::run([&] {
    auto waiter = asyncio::create_task([&] { event.wait(); });
    asyncio::sleep(0);
    on_another_thread([&] { refusal = refusal_of([&] { event.set(); }); });
    EXPECT_FALSE(event.is_set());
    EXPECT_FALSE(waiter.done());
    event.set();
    asyncio::await(waiter);
  });
  expect_bound(refusal, "Event");
}

TEST(LoopBoundPrimitives, SemaphoreReleaseOnAnotherThreadIsRefused) {
  asyncio::Semaphore semaphore(0);
  std::string refusal;
  asyncio::run([&] {
    auto waiter = asyncio::create_task([&] { semaphore.acquire(); });
    asyncio::sleep(0);
    on_another_thread([&] { refusal = refusal_of([&] { semaphore.release(); }); });
    EXPECT_EQ(semaphore.value(), 0);
    semaphore.release();
    asyncio::await(waiter);
  });
  expect_bound(refusal, "Semaphore");
}

TEST(LoopBoundPrimitives, QueuePutAndGetOnAnotherThreadAreRefused) {
  asyncio::Queue<int> empty_queue;
  asyncio::Queue<int> full_queue(1);
  std::string put_refusal;
  std::string get_refusal;
  asyncio::run([&] {
    auto getter = asyncio::create_task([&] { return empty_queue.get(); });
    full_queue.put_nowait(1);
    auto putter = asyncio::create_task([&] { full_queue.put(2); });
    asyncio::sleep(0);
    on_another_thread([&] {
      put_refusal = refusal_of([&] { empty_queue.put_nowait(7); });
      get_refusal = refusal_of([&] { full_queue.get_nowait(); });
    });
    EXPECT_EQ(empty_queue.qsize(), 0u);
    EXPECT_EQ(full_queue.qsize(), 1u);
    empty_queue.put_nowait(8);
    EXPECT_EQ(asyncio::await(getter), 8);
    EXPECT_EQ(full_queue.get_nowait(), 1);
    asyncio::await(putter);
    EXPECT_EQ(full_queue.get_nowait(), 2);
  });
  expect_bound(put_refusal, "Queue");
  expect_bound(get_refusal, "Queue");
}

// A Condition refuses before letting its lock go: the refused task still holds it.
TEST(LoopBoundPrimitives, ConditionWaitAndNotifyFromAnotherLoopAreRefused) {
  asyncio::Condition cond;
  std::string wait_refusal;
  std::string notify_refusal;
  bool held_after_refusal = false;
  asyncio::run([&] {
    auto waiter = asyncio::create_task([&] {
      std::lock_guard guard(cond);
      cond.wait();
    });
    asyncio::sleep(0);  // the waiter waits, the lock is free
    on_another_thread([&] {
      asyncio::run([&] {
        std::lock_guard guard(cond);
        wait_refusal = refusal_of([&] { cond.wait(); });
        held_after_refusal = cond.locked();
        notify_refusal = refusal_of([&] { cond.notify(); });
      });
    });
    {
      std::lock_guard guard(cond);
      cond.notify();
    }
    asyncio::await(waiter);
  });
  expect_bound(wait_refusal, "Condition");
  expect_bound(notify_refusal, "Condition");
  EXPECT_TRUE(held_after_refusal);
}

// As asyncio: a second loop on the same thread may not wait while the first loop's tasks do.
TEST(LoopBoundPrimitives, AnotherLoopOnTheSameThreadCannotWaitAlongside) {
  asyncio::Event event;
  asyncio::event_loop first;
  auto waiter = first.create_task([&] { event.wait(); });
  first.run_until_complete([] { asyncio::sleep(0); });  // waiter waits, first loop stopped
  std::string refusal;
  {
    asyncio::event_loop second;
    second.run_until_complete([&] { refusal = refusal_of([&] { event.wait(); }); });
  }
  expect_bound(refusal, "Event");
  event.set();  // same thread: may wake the first loop's waiter
  first.run_until_complete(waiter);
}

// Unlike asyncio (bound for good to the first loop that waited), a primitive whose waiters are gone
// is free for the next loop: loops that follow each other, as asyncio::run() calls do, share it.
TEST(LoopBoundPrimitives, LoopsThatFollowEachOtherShareAPrimitive) {
  asyncio::Lock lock;
  for (int round = 0; round < 2; ++round) {
    int order = 0;
    asyncio::run([&] {
      lock.acquire();
      auto waiter = asyncio::create_task([&] {
        lock.acquire();
        order = 2;
        lock.release();
      });
      asyncio::sleep(0);
      order = 1;
      lock.release();
      asyncio::await(waiter);
    });
    EXPECT_EQ(order, 2) << "round " << round;
  }
}
