// ready_queue_test.cpp: the ready queue under load. It is a ring that grows
// when full, and past 256 entries run_once() prefetches the steps ahead
// (src/asyncio/lookahead.hpp); neither may change what runs or in what order
// (asyncio's FIFO of callbacks, test_base_events.py
// test__run_once_schedule_handle), with cancelled handles and tasks among them.
#include <deque>
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

// 1,000 tasks stepping together (past the look-ahead threshold) run in
// creation order every round; the third of them cancelled after the first
// round stop there, and the others go on in the same order.
TEST_F(ReadyQueue, ManyTasksStepInCreationOrderAndCancelledOnesStop) {
  constexpr int tasks = 1000;
  constexpr int rounds = 5;
  std::vector<int> log;
  int finished = 0;
  asyncio::run([&] {
    std::vector<asyncio::Task<>> all;
    for (int i = 0; i < tasks; ++i) {
      all.push_back(asyncio::create_task([&log, &finished, i] {
        for (int r = 0; r < rounds; ++r) {
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
      if (i % 3 != 0) expected.push_back(i);
    }
  }
  EXPECT_EQ(log, expected);
  EXPECT_EQ(finished, tasks - (tasks + 2) / 3);
}

}  // namespace
