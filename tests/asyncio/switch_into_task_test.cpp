// switch_into_task_test.cpp: only the event loop resumes a task. A
// switch_() or throw_() into the greenlet of a waiting (or not yet started)
// task from elsewhere is refused at once with greenlet::error
// (errc::resume_locked) saying to await the task. It used to go through: the
// task's sleep was cut short, it finished on the switcher's turn, and the
// switching task was failed as "switched to the event loop's greenlet by
// hand".
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/greenlet.hpp>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;
using asyncio_test::virtual_time;

namespace {

template <class Call>
void expect_resume_locked(const std::string& label, Call call) {
  try {
    call();
    ADD_FAILURE() << label << ": the switch went through";
  } catch (const greenlet::error& e) {
    EXPECT_EQ(e.code(), greenlet::errc::resume_locked) << label << ": " << e.what();
    const std::string what = e.what();
    EXPECT_NE(what.find("task's greenlet by hand"), std::string::npos) << label << ": " << what;
    EXPECT_NE(what.find("asyncio::await(task)"), std::string::npos) << label << ": " << what;
  }
}

}  // namespace

TEST(SwitchIntoTask, SwitchIntoASleepingTaskIsRefusedAndItsSleepIsNotCutShort) {
  asyncio::event_loop loop(virtual_time());
  std::vector<std::string> log;
  const int result = loop.run_until_complete([&] {
    greenlet::greenlet target;
    const double start = loop.time();
    double woke_at = -1;
    auto a = asyncio::create_task([&] {
      target = greenlet::getcurrent();
      asyncio::sleep(0.05);
      woke_at = loop.time();
      return 1;
    });
    asyncio::sleep(0);  // a now sleeps
    expect_resume_locked("switch_", [&] { target.switch_(); });
    expect_resume_locked("switch_ with a value", [&] { target.switch_(42); });
    expect_resume_locked("throw_", [&] { target.throw_(std::runtime_error("in")); });
    log.push_back("main goes on");
    EXPECT_FALSE(a.done());
    const int r = asyncio::await(a);
    EXPECT_DOUBLE_EQ(woke_at - start, 0.05);
    target = greenlet::greenlet();
    return r;
  });
  EXPECT_EQ(result, 1);
  EXPECT_EQ(log, (std::vector<std::string>{"main goes on"}));
}

// A dead greenlet passes a switch on to its parent (Python's rule): a waiting task's dead child was a
// way around the lock, which is now checked where the switch lands.
TEST(SwitchIntoTask, SwitchIntoAWaitingTasksDeadChildIsRefusedToo) {
  asyncio::event_loop loop(virtual_time());
  loop.run_until_complete([&] {
    greenlet::greenlet child;
    const double start = loop.time();
    double woke_at = -1;
    auto a = asyncio::create_task([&] {
      child = greenlet::greenlet([] { return 0; });
      child.switch_();  // runs and dies: dead, its parent the task's greenlet
      asyncio::sleep(0.05);
      woke_at = loop.time();
    });
    asyncio::sleep(0);  // a now sleeps
    ASSERT_TRUE(child.dead());
    expect_resume_locked("switch_ to the dead child", [&] { child.switch_(); });
    expect_resume_locked("throw_ to the dead child", [&] { child.throw_(std::runtime_error("in")); });
    asyncio::await(a);
    EXPECT_DOUBLE_EQ(woke_at - start, 0.05);
  });
}

TEST(SwitchIntoTask, SwitchIntoAnUnstartedTaskIsRefusedAndItStillRuns) {
  asyncio::run([] {
    bool ran = false;
    auto t = asyncio::create_task([&] { ran = true; });
    greenlet::greenlet g = t.state()->as_task()->glet;  // internal: the task's greenlet
    expect_resume_locked("switch_ before its first step", [&] { g.switch_(); });
    EXPECT_FALSE(ran);
    asyncio::await(t);
    EXPECT_TRUE(ran);
  });
}

// What the loop does itself still works: tasks handing the turn on to each other (sleep(0)), waking
// after a future, cancellation, and the task's own child greenlets switching back into it.
TEST(SwitchIntoTask, TheLoopsOwnResumptionsAndChildGreenletsStillWork) {
  asyncio::run([] {
    std::vector<int> order;
    auto a = asyncio::create_task([&] {
      for (int i = 0; i < 3; ++i) {
        order.push_back(i);
        asyncio::sleep(0);
      }
    });
    auto b = asyncio::create_task([&] {
      for (int i = 10; i < 13; ++i) {
        order.push_back(i);
        asyncio::sleep(0);
      }
    });
    asyncio::gather(a, b);
    EXPECT_EQ(order, (std::vector<int>{0, 10, 1, 11, 2, 12}));

    auto sleeper = asyncio::create_task([] { asyncio::sleep(100); });
    asyncio::sleep(0);
    sleeper.cancel();
    EXPECT_THROW(asyncio::await(sleeper), asyncio::CancelledError);

    greenlet::greenlet child([] { return greenlet::getcurrent().parent().switch_(1).get<int>() + 1; });
    EXPECT_EQ(child.switch_().get<int>(), 1);
    EXPECT_EQ(child.switch_(5).get<int>(), 6);
  });
}

// A loop closed with tasks still waiting kills them: the kill passes the lock.
TEST(SwitchIntoTask, CloseStillKillsWaitingTasks) {
  bool unwound = false;
  {
    asyncio::event_loop loop;
    loop.create_task([&] {
      struct sentinel {
        bool& flag;
        ~sentinel() { flag = true; }
      } s{unwound};
      asyncio::sleep(1000);
    });
    loop.run_until_complete([] { asyncio::sleep(0); });
    testing::internal::CaptureStderr();
    loop.close();
    testing::internal::GetCapturedStderr();
  }
  EXPECT_TRUE(unwound);
}

// A task's child greenlet, resumed by another task while its parent task waits, that then finishes
// or throws: its parent cannot take the result without cutting its wait short (it used to, and the
// resuming task was stranded). The result goes to the task that resumed the child instead.
TEST(SwitchIntoTask, AWaitingTasksChildFinishingReturnsToTheTaskThatResumedIt) {
  asyncio::event_loop loop(virtual_time());
  loop.run_until_complete([&] {
    greenlet::greenlet child;
    const double start = loop.time();
    double woke_at = -1;
    auto a = asyncio::create_task([&] {
      child = greenlet::greenlet([] {
        const int got = greenlet::getcurrent().parent().switch_().get<int>();  // back to a
        return got * 2;
      });
      child.switch_();  // started; suspended in its switch back
      asyncio::sleep(0.05);
      woke_at = loop.time();
      return 1;
    });
    auto b = asyncio::create_task([&] {
      asyncio::sleep(0);                    // a now sleeps
      return child.switch_(21).get<int>();  // the child finishes: its result comes here
    });
    EXPECT_EQ(asyncio::await(b), 42);
    EXPECT_TRUE(child.dead());
    EXPECT_EQ(asyncio::await(a), 1);
    EXPECT_DOUBLE_EQ(woke_at - start, 0.05);
  });
}

TEST(SwitchIntoTask, AWaitingTasksChildThrowingRaisesInTheTaskThatResumedIt) {
  asyncio::event_loop loop(virtual_time());
  loop.run_until_complete([&] {
    greenlet::greenlet child;
    auto a = asyncio::create_task([&] {
      child = greenlet::greenlet([] {
        greenlet::getcurrent().parent().switch_();
        throw std::runtime_error("from the child");
      });
      child.switch_();
      asyncio::sleep(0.05);
      return 1;
    });
    auto b = asyncio::create_task([&] {
      asyncio::sleep(0);
      try {
        child.switch_();
        return std::string("no exception");
      } catch (const std::runtime_error& e) {
        return std::string(e.what());
      }
    });
    EXPECT_EQ(asyncio::await(b), "from the child");
    EXPECT_EQ(asyncio::await(a), 1);
  });
}

// A plain callback (on the loop's greenlet) resuming the child gets the result the same way.
TEST(SwitchIntoTask, AWaitingTasksChildFinishingReturnsToACallbackThatResumedIt) {
  asyncio::event_loop loop(virtual_time());
  loop.run_until_complete([&] {
    greenlet::greenlet child;
    int from_child = 0;
    auto a = asyncio::create_task([&] {
      child = greenlet::greenlet([] { return greenlet::getcurrent().parent().switch_().get<int>() + 1; });
      child.switch_();
      asyncio::sleep(0.05);
      return 1;
    });
    asyncio::sleep(0);  // a now sleeps
    loop.call_soon([&] { from_child = child.switch_(9).get<int>(); });
    asyncio::sleep(0);
    EXPECT_EQ(from_child, 10);
    EXPECT_EQ(asyncio::await(a), 1);
  });
}

// Killed instead (its last handle dropped by the other task), the child unwinds in place and the
// waiting parent is left alone.
TEST(SwitchIntoTask, AWaitingTasksChildKilledByAnotherTaskLeavesTheParentWaiting) {
  asyncio::event_loop loop(virtual_time());
  loop.run_until_complete([&] {
    greenlet::greenlet child;
    bool unwound = false;
    const double start = loop.time();
    double woke_at = -1;
    auto a = asyncio::create_task([&] {
      child = greenlet::greenlet([&] {
        struct sentinel {
          bool& flag;
          ~sentinel() { flag = true; }
        } s{unwound};
        greenlet::getcurrent().parent().switch_();
      });
      child.switch_();
      asyncio::sleep(0.05);
      woke_at = loop.time();
    });
    auto b = asyncio::create_task([&] {
      asyncio::sleep(0);
      child = greenlet::greenlet();  // the last handle: the child is killed here
      return unwound;
    });
    EXPECT_TRUE(asyncio::await(b));
    asyncio::await(a);
    EXPECT_DOUBLE_EQ(woke_at - start, 0.05);
  });
}
