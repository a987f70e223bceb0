// ready_queue_test.cpp: the ready queue under load. It is a ring that grows
// when full; from 64 ready entries run_once() prefetches the steps ahead, one
// stage a step, and from 4,096 in bursts (src/asyncio/lookahead.hpp); and a suspending task runs the turn's next task
// step itself (loop_core::take_handoff_step). None of it may change what runs
// or in what order (asyncio's FIFO of callbacks, test_base_events.py
// test__run_once_schedule_handle), with cancelled handles and tasks among them.
#include <deque>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::run_briefly;
using ReadyQueue = greenlet_test::GreenletTest;

// Callbacks that schedule more callbacks, one or two at a time, so that the
// queue keeps growing: the ring wraps around and then grows while wrapped; every fifth scheduled one
// is cancelled through its Handle. The order is checked against a plain FIFO
// model of the same schedule.
TEST_F(ReadyQueue, FifoOrderSurvivesWrapAroundGrowthAndCancelledHandles) {
  constexpr int last_id = 20000;
  asyncio::event_loop loop;
  std::vector<int> ran;
  std::vector<asyncio::Handle> handles;
  std::deque<int> model;  // ids in the order they were scheduled, cancelled ones included
  std::vector<bool> cancelled(last_id + 1, false);
  int next_id = 0;

  std::function<void(int)> schedule = [&](int id) {
    model.push_back(id);
    handles.push_back(loop.call_soon([&, id] {
      ran.push_back(id);
      const int children = id % 3 == 0 ? 2 : 1;
      for (int c = 0; c < children && next_id <= last_id; ++c) schedule(next_id++);
    }));
    if (id % 5 == 4) {
      handles.back().cancel();
      cancelled[id] = true;
    }
  };
  for (int i = 0; i < 300; ++i) schedule(next_id++);
  while (!model.empty() && ran.size() < model.size()) {
    const std::size_t before = ran.size();
    run_briefly(loop);
    // A cancelled handle schedules nothing, so the chain can stop early.
    if (ran.size() == before) break;
  }

  std::vector<int> expected;
  for (int id : model) {
    if (!cancelled[id]) expected.push_back(id);
  }
  ASSERT_GT(expected.size(), 10000u);
  EXPECT_EQ(ran, expected);
}

// expect_steps_in_order(tasks): `tasks` tasks step in creation order, round
// after round; those cancelled after the first round stop, and those that
// finish early (task i runs 1 + i % rounds rounds) leave the queue while
// the others' steps, and the look-ahead's reads, go on around them.
void expect_steps_in_order(int tasks) {
  constexpr int rounds = 5;
  std::vector<int> log;
  int finished = 0;
  asyncio::run([&] {
    std::vector<asyncio::Task<>> all;
    for (int i = 0; i < tasks; ++i) {
      all.push_back(asyncio::create_task([&log, &finished, i] {
        for (int r = 0; r < 1 + i % rounds; ++r) {
          log.push_back(i);
          asyncio::sleep(0);
        }
        ++finished;
      }));
    }
    asyncio::sleep(0);  // every task has run its first round
    for (int i = 0; i < tasks; i += 3) all[i].cancel();
    asyncio::wait(all);
    for (int i = 0; i < tasks; ++i) EXPECT_EQ(all[i].cancelled(), i % 3 == 0) << "task " << i;
  });

  std::vector<int> expected;
  for (int i = 0; i < tasks; ++i) expected.push_back(i);
  for (int r = 1; r < rounds; ++r) {
    for (int i = 0; i < tasks; ++i) {
      if (i % 3 != 0 && r < 1 + i % rounds) expected.push_back(i);
    }
  }
  EXPECT_EQ(log, expected);
  EXPECT_EQ(finished, tasks - (tasks + 2) / 3);  // a cancelled one was still in its sleep(0)
}

// 5,000 tasks stepping together: past 4,096 ready, the look-ahead's bursts.
TEST_F(ReadyQueue, ManyTasksStepInCreationOrderAndCancelledOnesStop) { expect_steps_in_order(5000); }

// From 64 to 4,095 ready: the look-ahead's one stage a step.
TEST_F(ReadyQueue, TasksStepInOrderUnderTheOneStageLookAhead) {
  expect_steps_in_order(1000);
  expect_steps_in_order(70);  // just past where it starts
}

// Tasks handing the turn to each other keep asyncio's order with plain
// callbacks in between: a callback queued between two task steps runs between
// them (a task hands on only to a task step, never past a callback), and what
// a step schedules waits for the next turn.
TEST_F(ReadyQueue, HandOffKeepsOrderWithCallbacksBetweenTaskSteps) {
  std::vector<std::string> log;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    auto worker = [&log](std::string me) {
      return [&log, me] {
        for (int r = 0; r < 2; ++r) {
          log.push_back(me + std::to_string(r));
          asyncio::sleep(0);
        }
      };
    };
    auto a = asyncio::create_task(worker("a"));
    loop.call_soon([&] { log.push_back("cb1"); });
    auto b = asyncio::create_task(worker("b"));
    auto c = asyncio::create_task(worker("c"));
    loop.call_soon([&] { log.push_back("cb2"); });
    asyncio::gather(a, b, c);
  });
  EXPECT_EQ(log, (std::vector<std::string>{"a0", "cb1", "b0", "c0", "cb2", "a1", "b1", "c1"}));
}

// A task that gets the turn from another one and then switches to the loop's
// greenlet by hand is still caught as stranded (it is the one the loop checks,
// not the task whose step began the chain), and the others finish.
TEST_F(ReadyQueue, TaskStrandedAfterAHandOffIsTheOneThatFails) {
  std::vector<std::string> log;
  asyncio::run([&] {
    auto a = asyncio::create_task([&] {
      log.push_back("a0");
      asyncio::sleep(0);  // hands the turn to b's step
      log.push_back("a1");
      asyncio::sleep(0);
      log.push_back("a2");
    });
    auto b = asyncio::create_task([&] {
      log.push_back("b0");
      asyncio::sleep(0);
      log.push_back("b1");
      greenlet::getcurrent().parent().switch_();  // by hand: stranded
      log.push_back("b resumed?");
    });
    auto outcomes = asyncio::gather(asyncio::return_exceptions, a, b);
    EXPECT_TRUE(std::get<0>(outcomes).has_value());
    try {
      std::rethrow_exception(std::get<1>(outcomes).error());
    } catch (const asyncio::RuntimeError& e) {
      EXPECT_EQ(e.condition(), asyncio::asyncio_errc::stranded_task) << e.what();
      EXPECT_NE(std::string(e.what()).find(b.get_name()), std::string::npos) << e.what();
    }
  });
  EXPECT_EQ(log, (std::vector<std::string>{"a0", "b0", "a1", "b1", "a2"}));
}

}  // namespace
