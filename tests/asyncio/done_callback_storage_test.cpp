// done_callback_storage_test.cpp: where a future keeps its done callbacks and
// the loop its finished callback nodes, and that neither changes behaviour.
// A future keeps its first fast callback (an awaiting task's wake-up) in a
// slot of its own and the rest in a list; whatever mix of fast and general
// callbacks is added and removed, they run in registration order, as
// asyncio's (test_futures.py test_callbacks_invoked_on_set_result,
// test_remove_done_callback). The loop keeps finished callback nodes for
// reuse while busy and trims them to max_free_nodes when it goes idle, so a
// burst does not stay allocated; its ready ring too.
#include <memory>
#include <string>
#include <vector>

#include "asyncio/asyncio_test_support.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
using asyncio_test::run_briefly;
using DoneCallbackStorage = greenlet_test::GreenletTest;
using Strings = std::vector<std::string>;

// A fast callback that appends its name to a log: ctx points at a
// {log, name} pair. Like every fast callback it owns the reference to the
// future that the loop took for it.
struct fast_entry {
  Strings* log;
  std::string name;
};
void record_fast(void* ctx, void* future) {
  auto* e = static_cast<fast_entry*>(ctx);
  e->log->push_back(e->name);
  greenlet::asyncio::detail::release(static_cast<greenlet::asyncio::detail::future_state*>(future));
}

TEST_F(DoneCallbackStorage, FastAndGeneralCallbacksRunInRegistrationOrder) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  auto* state = f.state();
  Strings log;
  fast_entry a{&log, "fast a"}, c{&log, "fast c"}, d{&log, "fast d"};

  const auto id_a = state->add_fast_callback(&record_fast, &a);  // the slot
  f.add_done_callback([&](asyncio::Future<int>&) { log.push_back("general b"); });
  // Removing the slot's callback leaves b first; c, added now, must run after b.
  EXPECT_EQ(state->remove_done_callback(id_a), 1u);
  EXPECT_EQ(state->remove_done_callback(id_a), 0u);
  state->add_fast_callback(&record_fast, &c);
  state->add_fast_callback(&record_fast, &d);
  f.set_result(1);
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"general b", "fast c", "fast d"}));
}

TEST_F(DoneCallbackStorage, TheSlotIsReusedOnceEmptyAndStillRunsFirst) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  auto* state = f.state();
  Strings log;
  fast_entry a{&log, "fast a"}, b{&log, "fast b"}, c{&log, "fast c"};

  const auto id_a = state->add_fast_callback(&record_fast, &a);
  EXPECT_EQ(state->remove_done_callback(id_a), 1u);
  state->add_fast_callback(&record_fast, &b);  // nothing older: takes the slot
  f.add_done_callback([&](asyncio::Future<int>&) { log.push_back("general"); });
  state->add_fast_callback(&record_fast, &c);
  f.set_result(1);
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"fast b", "general", "fast c"}));
}

// An awaiting task registers a fast callback; a done callback added after it
// runs after the task's step, one added before it, before.
TEST_F(DoneCallbackStorage, AwaitingTaskAndDoneCallbacksKeepTheirOrder) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  Strings log;
  f.add_done_callback([&](asyncio::Future<int>&) { log.push_back("before"); });
  auto task = loop.create_task([&] { log.push_back("task got " + std::to_string(asyncio::await(f))); });
  run_briefly(loop);  // the task now awaits f
  f.add_done_callback([&](asyncio::Future<int>&) { log.push_back("after"); });
  f.set_result(7);
  loop.run_until_complete(task);
  run_briefly(loop);
  EXPECT_EQ(log, (Strings{"before", "task got 7", "after"}));
}

// Three tasks await one future: the first one's wake-up takes the slot, the
// others' go to the list; they wake in the order they began to wait.
TEST_F(DoneCallbackStorage, AwaitersOfOneFutureWakeInOrder) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  Strings log;
  std::vector<asyncio::Task<>> tasks;
  for (const char* name : {"a", "b", "c"}) {
    tasks.push_back(loop.create_task([&, name] { log.push_back(name + std::to_string(asyncio::await(f))); }));
  }
  run_briefly(loop);  // all three wait
  f.set_result(5);
  for (auto& t : tasks) loop.run_until_complete(t);
  EXPECT_EQ(log, (Strings{"a5", "b5", "c5"}));
}

// (Virtual time: the turn that waits for the timer must see it ahead; on a loaded machine a real
// 1 ms could pass before that turn, and it would not wait.)
TEST_F(DoneCallbackStorage, TheLoopKeepsABurstsNodesWhileBusyAndTrimsThemWhenIdle) {
  asyncio::event_loop loop(asyncio_test::virtual_time());
  auto* core = loop.core();
  constexpr std::size_t cap = greenlet::asyncio::detail::loop_core::max_free_nodes;
  constexpr int burst = 3 * static_cast<int>(cap);
  int ran = 0;
  for (int i = 0; i < burst; ++i) loop.call_soon([&] { ++ran; });
  run_briefly(loop);  // busy throughout: nothing is freed
  EXPECT_EQ(ran, burst);
  EXPECT_GE(core->free_node_count, static_cast<std::size_t>(burst));
  // Reuse takes from the list and the count follows it.
  const std::size_t before = core->free_node_count;
  loop.call_soon([&] { ++ran; });
  EXPECT_EQ(core->free_node_count, before - 1);
  run_briefly(loop);
  // A turn that waits (for a timer here) trims the list to the cap; the
  // timer's own node comes back after that.
  loop.call_later(0.001, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(ran, burst + 1);
  EXPECT_EQ(core->free_node_count, cap + 1);
  std::size_t listed = 0;
  for (auto* n = core->free_nodes; n != nullptr; n = n->next) ++listed;
  EXPECT_EQ(listed, core->free_node_count);
}

// The ready ring a burst grew is shrunk back to max_free_nodes slots when the
// loop goes idle, and grows again for the next burst, still in FIFO order.
TEST_F(DoneCallbackStorage, TheReadyRingShrinksWhenIdleAndGrowsAgain) {
  asyncio::event_loop loop(asyncio_test::virtual_time());  // the timer always ahead, as above
  auto* core = loop.core();
  constexpr std::size_t cap = greenlet::asyncio::detail::loop_core::max_free_nodes;
  std::vector<int> ran;
  const auto burst = [&](int first, int count) {
    for (int i = first; i < first + count; ++i) loop.call_soon([&ran, i] { ran.push_back(i); });
  };
  burst(0, 3 * static_cast<int>(cap));
  EXPECT_GE(core->ready_ring.size(), 3 * cap);
  run_briefly(loop);  // busy: the ring keeps its size
  EXPECT_GE(core->ready_ring.size(), 3 * cap);
  loop.call_later(0.001, [&] { loop.stop(); });
  loop.run_forever();  // waits for the timer: idle
  EXPECT_EQ(core->ready_ring.size(), cap);
  burst(3 * static_cast<int>(cap), 2 * static_cast<int>(cap));
  run_briefly(loop);
  ASSERT_EQ(ran.size(), 5 * cap);
  for (std::size_t i = 0; i < ran.size(); ++i) ASSERT_EQ(ran[i], static_cast<int>(i));
}

// An owned callback (gather's and wait's, one per child) holds a reference on
// its ctx: exactly one of fn and drop gives it back, fn when it runs, drop
// when the loop closed first. Both give back the future reference too.
struct owned_ctx {
  int refs = 1;
  Strings* log;
};
void owned_run(void* ctx, void* future) {
  auto* c = static_cast<owned_ctx*>(ctx);
  c->log->push_back("ran");
  --c->refs;
  greenlet::asyncio::detail::release(static_cast<greenlet::asyncio::detail::future_state*>(future));
}
void owned_drop(void* ctx, void* future) {
  auto* c = static_cast<owned_ctx*>(ctx);
  c->log->push_back("dropped");
  --c->refs;
  greenlet::asyncio::detail::release(static_cast<greenlet::asyncio::detail::future_state*>(future));
}

TEST_F(DoneCallbackStorage, OwnedCallbacksRunOnceOrAreDroppedOnceWhenTheLoopClosed) {
  Strings log;
  {
    asyncio::event_loop loop;
    auto f = loop.create_future<int>();
    owned_ctx first{1, &log}, listed{1, &log};
    f.state()->add_owned_callback(&owned_run, &owned_drop, &first);   // the inline slot
    f.state()->add_owned_callback(&owned_run, &owned_drop, &listed);  // the list
    f.set_result(1);
    run_briefly(loop);
    EXPECT_EQ(log, (Strings{"ran", "ran"}));
    EXPECT_EQ(first.refs, 0);
    EXPECT_EQ(listed.refs, 0);
  }
  log.clear();
  {
    asyncio::event_loop loop;
    auto f = loop.create_future<int>();
    owned_ctx first{1, &log}, listed{1, &log};
    f.state()->add_owned_callback(&owned_run, &owned_drop, &first);
    f.state()->add_owned_callback(&owned_run, &owned_drop, &listed);
    loop.close();
    f.set_result(1);  // nothing runs on a closed loop: both are dropped
    EXPECT_EQ(log, (Strings{"dropped", "dropped"}));
    EXPECT_EQ(first.refs, 0);
    EXPECT_EQ(listed.refs, 0);
  }
}

// A gather whose children finish only after its loop closed: the callbacks it
// left on them are dropped, and what they held (the gather's state, which
// holds the children) is freed, down to the children's results.
TEST_F(DoneCallbackStorage, AGatherLeftOnAClosedLoopFreesItsChildren) {
  static int alive = 0;
  struct tracked {
    tracked() { ++alive; }
    tracked(const tracked&) { ++alive; }
    tracked(tracked&&) noexcept { ++alive; }
    ~tracked() { --alive; }
  };
  alive = 0;
  {
    auto loop = std::make_unique<asyncio::event_loop>();
    auto a = loop->create_future<tracked>();
    auto b = loop->create_future<tracked>();
    auto gathering = loop->create_task([a, b] { asyncio::gather(std::vector{a, b}); });
    run_briefly(*loop);  // the task waits in gather()
    loop.reset();        // closes the loop (its tasks are killed) and drops it
    a.set_result(tracked());
    b.set_result(tracked());
    EXPECT_EQ(alive, 2);
  }
  EXPECT_EQ(alive, 0) << "a child of the gather is still held";
}

// Removing callbacks leaves tombstones that are swept later (so that many
// waiters giving up on one future cost N log N): whatever is removed, in
// A general callback (a std::function and the context it runs in) waits on
// the heap beside the list's 32-byte entries: what it captured is let go of
// exactly once, however it ends: run, removed, its pending future dropped,
// or its loop closed before the future finished.
TEST_F(DoneCallbackStorage, AGeneralCallbackLetsGoOfItsCapturesHoweverItEnds) {
  auto token = std::make_shared<int>(0);
  {
    auto capture_token = [token](asyncio::Future<int>&) { ++*token; };
    asyncio::event_loop loop;
    auto f = loop.create_future<int>();
    f.add_done_callback(capture_token);  // runs
    const auto removed = f.state()->add_done_callback([token](greenlet::asyncio::detail::future_state&) {});
    EXPECT_EQ(token.use_count(), 4);  // token, capture_token, and the two callbacks
    EXPECT_EQ(f.state()->remove_done_callback(removed), 1u);
    EXPECT_EQ(token.use_count(), 3) << "a removed callback still holds what it captured";
    f.set_result(1);
    run_briefly(loop);
    EXPECT_EQ(*token, 1);
    EXPECT_EQ(token.use_count(), 2) << "a callback that ran still holds what it captured";
    {
      auto pending = loop.create_future<int>();
      pending.add_done_callback(capture_token);
      pending.add_done_callback(capture_token);
      EXPECT_EQ(token.use_count(), 4);
    }  // dropped unfinished
    EXPECT_EQ(token.use_count(), 2) << "a dropped pending future's callbacks still hold their captures";
    auto orphan = loop.create_future<int>();
    orphan.add_done_callback(capture_token);
    loop.close();
    orphan.set_result(2);  // a closed loop runs nothing: the callback is dropped
    EXPECT_EQ(*token, 1);
    EXPECT_EQ(token.use_count(), 2) << "a callback dropped by a closed loop still holds its captures";
  }
  EXPECT_EQ(token.use_count(), 1);
}

// Removing callbacks leaves tombstones that are swept later (so that many
// waiters giving up on one future cost N log N): whatever is removed, in
// whatever order, exactly the others run, in registration order, and an id
// removed twice is reported once.
TEST_F(DoneCallbackStorage, ManyRemovalsLeaveExactlyTheOthersInOrder) {
  asyncio::event_loop loop;
  auto f = loop.create_future<int>();
  auto* state = f.state();
  constexpr int n = 1000;
  std::vector<int> ran;
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < n; ++i) {
    ids.push_back(state->add_done_callback([&ran, i](greenlet::asyncio::detail::future_state&) { ran.push_back(i); }));
  }
  std::vector<int> expected;
  int removed = 0;
  for (int k = 0; k < n; ++k) {
    const int i = (k * 617) % n;  // a scrambled order (617 is prime to 1000)
    if (i % 3 == 0) continue;
    EXPECT_EQ(state->remove_done_callback(ids[i]), 1u) << i;
    EXPECT_EQ(state->remove_done_callback(ids[i]), 0u) << i;
    ++removed;
  }
  for (int i = 0; i < n; ++i) {
    if (i % 3 == 0) expected.push_back(i);
  }
  EXPECT_EQ(removed + static_cast<int>(expected.size()), n);
  f.set_result(1);
  run_briefly(loop);
  EXPECT_EQ(ran, expected);
}

}  // namespace
