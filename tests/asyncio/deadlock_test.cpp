// deadlock_test.cpp: deadlock detection, the library's own addition to
// asyncio (CPython's loop would block forever). When nothing is ready, no
// timer is set, no I/O is watched and no other thread holds an
// external_work_guard, run_until_complete()/run_forever() raise
// RuntimeError(deadlock) whose message lists the blocked tasks and what each
// awaits. No CPython source to cite; the cases pin the documented behaviour.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::error_log;
using asyncio_test::Guard;
using asyncio_test::virtual_time;
using DeadlockTests = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

// deadlock_message(fn) runs fn and returns the deadlock RuntimeError's
// message, or "" (with a test failure) if something else happened.
template <class F>
std::string deadlock_message(F&& fn) {
  try {
    fn();
    ADD_FAILURE() << "no deadlock RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::deadlock) << e.what();
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A future nobody sets, no task: the message names the target.
TEST_F(DeadlockTests, FutureNobodySets) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  const std::string msg = deadlock_message([&] { loop.run_until_complete(f); });
  EXPECT_TRUE(contains(msg, "<Future pending> is not done")) << msg;
  EXPECT_TRUE(contains(msg, "0 task(s) are blocked")) << msg;
  EXPECT_FALSE(loop.is_running());
}

// A task awaiting a future nobody sets: listed with what it awaits.
TEST_F(DeadlockTests, MessageListsBlockedTaskAndItsFuture) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  auto never = loop.create_future<int>();
  auto t = loop.create_task([&] { return asyncio::await(never); }, "stuck");
  const std::string msg = deadlock_message([&] { loop.run_until_complete(t); });
  EXPECT_TRUE(contains(msg, "<Task pending name='stuck'> is not done")) << msg;
  EXPECT_TRUE(contains(msg, "1 task(s) are blocked")) << msg;
  EXPECT_TRUE(contains(msg, "<Task pending name='stuck'> awaits <Future pending>")) << msg;
  loop.close();
}

// Two tasks awaiting each other: each is listed awaiting the other.
TEST_F(DeadlockTests, TasksAwaitingEachOther) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  asyncio::Task<int> a;
  asyncio::Task<int> b;
  a = loop.create_task([&] { return asyncio::await(b); }, "a");
  b = loop.create_task([&] { return asyncio::await(a); }, "b");
  const std::string msg = deadlock_message([&] { loop.run_until_complete(a); });
  EXPECT_TRUE(contains(msg, "2 task(s) are blocked")) << msg;
  EXPECT_TRUE(contains(msg, "<Task pending name='a'> awaits <Task pending name='b'>")) << msg;
  EXPECT_TRUE(contains(msg, "<Task pending name='b'> awaits <Task pending name='a'>")) << msg;
  loop.close();
}

// Cancelling a task of such a cycle: the cancel goes on to what each
// awaits and would come round forever (CPython: RecursionError). cancel()
// says so, naming the cycle, and counts no cancel request.
TEST_F(DeadlockTests, CancellingATaskInACycleNamesTheCycle) {
  error_log errors;
  asyncio::event_loop loop;
  errors.attach(loop);
  asyncio::Task<int> a;
  asyncio::Task<int> b;
  a = loop.create_task([&] { return asyncio::await(b); }, "a");
  b = loop.create_task([&] { return asyncio::await(a); }, "b");
  std::string msg;
  loop.run_until_complete(loop.create_task([&] {
    asyncio::sleep(0);  // a and b await each other now
    try {
      a.cancel("stop");
      ADD_FAILURE() << "cancel() went round the cycle without a word";
    } catch (const asyncio::RuntimeError& e) {
      EXPECT_EQ(e.condition(), asyncio::asyncio_errc::deadlock);
      msg = e.what();
    }
  }));
  EXPECT_TRUE(contains(msg, "(a -> b -> a)")) << msg;
  EXPECT_EQ(a.cancelling(), 0);
  EXPECT_EQ(b.cancelling(), 0);
  EXPECT_FALSE(a.done());
  loop.close();  // kills both: their stacks unwind
}

// asyncio::run with its main task stuck behind such a cycle: the deadlock
// is raised from run(), and the shutdown's cancel of the cycle's tasks is
// reported, not a crash (it overflowed the stack before).
TEST_F(DeadlockTests, RunEndsCleanlyWithTasksAwaitingEachOther) {
  std::vector<std::string> log;
  const std::string msg = deadlock_message([&] {
    asyncio::run([&] {
      asyncio::Task<void> a;
      asyncio::Task<void> b;
      a = asyncio::create_task([&] {
        Guard g{log, "a"};
        asyncio::await(b);
      });
      b = asyncio::create_task([&] {
        Guard g{log, "b"};
        asyncio::await(a);
      });
      asyncio::await(a);
    });
  });
  EXPECT_TRUE(contains(msg, "awaits <Task pending name='Task-")) << msg;
  // Both stacks unwound when the loop closed.
  EXPECT_EQ(log.size(), 2u);
}

// A timer cancelled before its time is no reason to wait: a wait_for()
// that ended at once leaves its 1-hour timer cancelled, and the deadlock
// that follows is seen now, not an hour later (asyncio's _run_once drops
// cancelled timers from the front of the heap first).
TEST_F(DeadlockTests, CancelledTimersDoNotPostponeTheVerdict) {
  error_log errors;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  auto never = loop.create_future<>();
  auto waiter = loop.create_task(
      [&] {
        asyncio::wait_for([] { asyncio::sleep(0); }, 3600.0);  // done at once: its timer is cancelled
        asyncio::await(never);
      },
      "waiter");
  const std::string msg = deadlock_message([&] { loop.run_until_complete(waiter); });
  EXPECT_LT(loop.time(), 1.0) << "the loop waited for a cancelled timer";
  EXPECT_TRUE(contains(msg, "<Task pending name='waiter'> awaits <Future pending>")) << msg;
  loop.close();
}

// A sleeping task is not a deadlock; the deadlock comes once the last timer
// has run and nothing set the future (virtual clock at 1.0 then).
TEST_F(DeadlockTests, TimersPostponeTheVerdict) {
  error_log errors;
  Strings log;
  asyncio::event_loop loop(virtual_time());
  errors.attach(loop);
  auto never = loop.create_future<>();
  auto waiter = loop.create_task([&] { asyncio::await(never); }, "waiter");
  loop.create_task([&] {
    asyncio::sleep(1.0);
    log.push_back("sleeper done");
  });
  const std::string msg = deadlock_message([&] { loop.run_until_complete(waiter); });
  EXPECT_EQ(log, (Strings{"sleeper done"}));
  EXPECT_DOUBLE_EQ(loop.time(), 1.0);
  EXPECT_TRUE(contains(msg, "<Task pending name='waiter'> awaits <Future pending>")) << msg;
  EXPECT_TRUE(contains(msg, "1 task(s) are blocked")) << msg;
  loop.close();
}

// The loop is usable after a deadlock report: completing the future and
// running again finishes the task.
TEST_F(DeadlockTests, RecoverAfterDeadlock) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  auto t = loop.create_task([&] { return asyncio::await(f) + 1; });
  deadlock_message([&] { loop.run_until_complete(t); });
  f.set_result(41);
  EXPECT_EQ(loop.run_until_complete(t), 42);
}

// run_forever() with nothing to do reports a deadlock instead of blocking.
TEST_F(DeadlockTests, RunForeverWithNothingToDo) {
  asyncio::event_loop loop;
  const std::string msg = deadlock_message([&] { loop.run_forever(); });
  EXPECT_TRUE(contains(msg, "no ready callbacks")) << msg;
  EXPECT_FALSE(loop.is_running());
}

// An external_work_guard keeps the loop waiting for another thread.
TEST_F(DeadlockTests, ExternalWorkGuardPreventsVerdict) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  std::thread worker;
  {
    auto guard = std::make_unique<asyncio::event_loop::external_work_guard>(loop);
    worker = std::thread([&loop, &f, g = std::move(guard)]() mutable {
      loop.call_soon_threadsafe([&f] { f.set_result(7); });
      g.reset();  // the work is handed over
    });
    EXPECT_EQ(loop.run_until_complete(f), 7);
  }
  worker.join();
}

// The guard moves into the thread that will post (Python's usual pattern: a worker thread that sets a
// future through call_soon_threadsafe() later, while the task awaits it); a moved-from guard counts
// nothing, and a moved-over one gives its own job back.
TEST_F(DeadlockTests, ExternalWorkGuardMovesIntoTheThread) {
  std::thread worker;
  const int got = asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    auto f = loop.create_future<int>();
    worker = std::thread([&loop, f, g = asyncio::event_loop::external_work_guard(loop)]() mutable {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      loop.call_soon_threadsafe([f]() mutable { f.set_result(7); });
    });
    return asyncio::await(f);
  });
  worker.join();
  EXPECT_EQ(got, 7);

  asyncio::event_loop loop;
  auto never = loop.create_future<>();
  {
    asyncio::event_loop::external_work_guard a(loop);
    asyncio::event_loop::external_work_guard b(std::move(a));
    asyncio::event_loop::external_work_guard c(loop);
    c = std::move(b);  // c's own job given back, b's taken: one job left
  }
  // All three gone: no job counted any more, so the verdict comes.
  EXPECT_NE(deadlock_message([&] { loop.run_until_complete(never); }), "");
}

// A deadlock inside asyncio::run() comes out of run(); the stuck main task
// is unwound when the loop closes.
TEST_F(DeadlockTests, DeadlockInsideRun) {
  Strings log;
  testing::internal::CaptureStderr();  // the loop's default handler reports the killed task
  try {
    asyncio::run([&] {
      Guard g{log, "main"};
      auto never = asyncio::get_running_loop().create_future<>();
      asyncio::await(never);
    });
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::deadlock) << e.what();
  }
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(log, (Strings{"~main"}));
}

}  // namespace
