// cpython_tasks_port_a_test.cpp: CPython's Lib/test/test_asyncio/test_tasks.py method by method,
// FIRST HALF (class TaskTests), as stored at python/cpython commit
// 0035be3fee832ebccd8c86576b9c604ca321cefa (the 3.5-era file: @asyncio.coroutine, loop= arguments,
// test_utils.TestLoop). The file has 2,296 lines (split on '\n'); the first `def test_` at or after
// line 1,148 is test_sleep (line 1,154): this file takes every method defined before it, from
// test_other_loop_future to test_as_completed_duplicate_coroutines (43 methods);
// cpython_tasks_port_b takes test_sleep and the rest. task_test.cpp, wait_test.cpp,
// as_completed_test.cpp, current_task_test.cpp, ... hold older ports of some of these; each test
// here names its CPython method and keeps its values.
//
// Python-to-C++: a `@asyncio.coroutine` function is a function run as a task; `yield from f` is
// asyncio::await(f); a bare `yield` is asyncio::sleep(0); `yield from coro()` is a plain call;
// self.loop (test_utils.TestLoop, a clock moved by the test) is an event_loop with virtual_time(),
// whose clock jumps to the next timer when it would wait; test_utils.run_briefly is
// asyncio_test::run_briefly; `loop=` arguments are dropped (ours take the running loop, or
// get_event_loop() for ensure_future(), so the loop is made current with set_event_loop()).
//
// (a) Not ported:
// - test_ensure_future_awaitable: an object with __await__; no awaitable protocol in C++ (a
//   function is what a task runs).
// - test_ensure_future_neither: ensure_future("ok") is a compile error (a static_assert naming the
//   argument), not a TypeError at run time.
// - test_async_warning: asyncio.async(), a deprecated alias; nothing to port.
// - test_get_stack: Task.get_stack()/print_stack() read Python frames (a task's stack is seen in gdb
//   only: tools/gdb/greenlet.py).
// - test_task_repr_coro_decorator, test_task_repr_partial_corowrapper: the repr of
//   generator-based coroutine objects and of CoroWrapper (debug mode); no coroutine object here.
//
// (b) Deliberate differences the tests assert:
// - No Task._loop: `t._loop is loop` is not checked (a Task has no get_loop()); that the task ran
//   when its loop ran is.
// - ensure_future(f, loop=other) raising ValueError has no counterpart: ensure_future() takes no
//   loop (a future is returned as it is).
// - repr(): ours has no coro=<...> part (docs/asyncio.md, "repr()"), names the task, and shows a
//   user's done callback as <callback> (Python: the callable's repr, <Dummy>()).
// - The white-box `t._fut_waiter is fut` checks become "fut's callbacks hold the task's wake-up"
//   (fut.repr() is "<Future pending cb=[Task.task_wakeup()]>"); `t._must_cancel` is not checked.
// - test_stop_while_run_in_complete: loop.time() is 0.2 where Python asserts 0.3. TestLoop moves
//   its clock as soon as a timer is scheduled (the generator answers each call_at()), so the third
//   sleep(0.1), scheduled before the stop takes effect, had already moved it; a virtual clock moves
//   only when the loop waits, and the stopped loop never waits for that timer.
// - test_as_completed_reverse_wait / _concurrent: as_completed() is an iterator whose next() awaits;
//   Python's list(as_completed(fs)) of wrappers made in advance becomes tasks that each call next()
//   (each then gets the next future to finish, as each of Python's wrappers does) on one
//   as_completed made in a task first: its constructor must run in a task of the loop (its header
//   says so), where Python's may run before the loop does; len(futs) == 2 is not checked.
// - loop.advance_time(x) (TestLoop) is left out: the virtual clock jumps to the next timer itself,
//   so the times asserted after it are Python's.
#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "asyncio_test_support.hpp"

namespace cpython_tasks_port_a {

namespace asyncio = greenlet::asyncio;
using asyncio_test::run_briefly;
using asyncio_test::TestError;
using asyncio_test::virtual_time;

using CPythonTaskTests = greenlet_test::GreenletTest;
using Tasks = std::vector<asyncio::Task<>>;
using StrTasks = std::vector<asyncio::Task<std::string>>;
using StrSet = std::set<std::string>;

// What a future's repr() is while a task awaits it: the task's wake-up is its one callback (the
// twin of Python's white-box `t._fut_waiter is fut`).
const std::string kAwaitedByATask = "<Future pending cb=[Task.task_wakeup()]>";

// same_set(got, want): the same futures, whatever the order (Python compares sets).
template <class F>
bool same_set(const std::vector<F>& got, const std::vector<F>& want) {
  if (got.size() != want.size()) return false;
  for (const F& w : want) {
    if (std::find(got.begin(), got.end(), w) == got.end()) return false;
  }
  return true;
}

// results(fs) is the set of the futures' results (Python: set(f.result() for f in done)).
StrSet results(const StrTasks& fs) {
  StrSet out;
  for (auto f : fs) out.insert(f.result());
  return out;
}

// test_other_loop_future
TEST_F(CPythonTaskTests, test_other_loop_future) {
  asyncio::event_loop loop(virtual_time());
  auto other_loop = asyncio::new_event_loop();
  auto fut = other_loop->create_future<>();
  auto run = [&] { asyncio::await(fut); };
  try {
    loop.run_until_complete(run);
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    // Python: r'Task .* got Future .* attached'.
    EXPECT_EQ(e.condition(), asyncio::asyncio_errc::wrong_loop) << e.what();
    EXPECT_NE(std::string(e.what()).find("future attached to a different loop"), std::string::npos) << e.what();
  }
  other_loop->close();
}

// test_task_class
TEST_F(CPythonTaskTests, test_task_class) {
  auto notmuch = [] { return std::string("ok"); };
  asyncio::event_loop self_loop(virtual_time());
  auto t = self_loop.create_task(notmuch);
  self_loop.run_until_complete(t);
  EXPECT_TRUE(t.done());
  EXPECT_EQ(t.result(), "ok");

  auto loop = asyncio::new_event_loop();
  asyncio::set_event_loop(loop);
  auto t2 = loop->create_task(notmuch);
  EXPECT_FALSE(t2.done());
  loop->run_until_complete(t2);
  EXPECT_EQ(t2.result(), "ok");
  loop->close();
  asyncio::set_event_loop(nullptr);
}

// test_ensure_future_coroutine
TEST_F(CPythonTaskTests, test_ensure_future_coroutine) {
  auto notmuch = [] { return std::string("ok"); };
  auto self_loop = asyncio::new_event_loop(virtual_time());
  asyncio::set_event_loop(self_loop);
  auto t = asyncio::ensure_future(notmuch);
  self_loop->run_until_complete(t);
  EXPECT_TRUE(t.done());
  EXPECT_EQ(t.result(), "ok");

  auto loop = asyncio::new_event_loop();
  asyncio::set_event_loop(loop);
  auto t2 = asyncio::ensure_future(notmuch);
  EXPECT_FALSE(t2.done());
  loop->run_until_complete(t2);
  EXPECT_EQ(t2.result(), "ok");
  loop->close();
  self_loop->close();
  asyncio::set_event_loop(nullptr);
}

// test_ensure_future_future
TEST_F(CPythonTaskTests, test_ensure_future_future) {
  auto self_loop = asyncio::new_event_loop(virtual_time());
  asyncio::set_event_loop(self_loop);
  auto f_orig = self_loop->create_future<std::string>();
  f_orig.set_result("ko");

  auto f = asyncio::ensure_future(f_orig);
  self_loop->run_until_complete(f);
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.result(), "ko");
  EXPECT_TRUE(f == f_orig);

  // ensure_future(f_orig, loop=loop) -> ValueError: no loop argument here (see the file's head).
  auto f2 = asyncio::ensure_future(f_orig);
  EXPECT_TRUE(f2 == f_orig);
  self_loop->close();
  asyncio::set_event_loop(nullptr);
}

// test_ensure_future_task
TEST_F(CPythonTaskTests, test_ensure_future_task) {
  auto self_loop = asyncio::new_event_loop(virtual_time());
  asyncio::set_event_loop(self_loop);
  auto t_orig = self_loop->create_task([] { return std::string("ok"); });
  auto t = asyncio::ensure_future(t_orig);
  self_loop->run_until_complete(t);
  EXPECT_TRUE(t.done());
  EXPECT_EQ(t.result(), "ok");
  EXPECT_TRUE(t == t_orig);

  // ensure_future(t_orig, loop=loop) -> ValueError: no loop argument here (see the file's head).
  auto t2 = asyncio::ensure_future(t_orig);
  EXPECT_TRUE(t2 == t_orig);
  self_loop->close();
  asyncio::set_event_loop(nullptr);
}

// test_task_repr: without coro=, named, a user's callback as <callback> (see the file's head).
TEST_F(CPythonTaskTests, test_task_repr) {
  asyncio::event_loop loop(virtual_time());
  auto notmuch = [] { return std::string("abc"); };

  // test pending Task
  auto t = loop.create_task(notmuch, "notmuch");
  t.add_done_callback([](asyncio::Future<std::string>&) {});  // Dummy()
  EXPECT_EQ(t.repr(), "<Task pending name='notmuch' cb=[<callback>]>");

  // test cancelling Task
  t.cancel();  // Does not take immediate effect!
  EXPECT_EQ(t.repr(), "<Task cancelling name='notmuch' cb=[<callback>]>");

  // test cancelled Task
  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
  EXPECT_EQ(t.repr(), "<Task cancelled name='notmuch'>");

  // test finished Task
  t = loop.create_task(notmuch, "notmuch");
  loop.run_until_complete(t);
  EXPECT_EQ(t.repr(), "<Task finished name='notmuch' result='abc'>");
}

// test_task_repr_wait_for
TEST_F(CPythonTaskTests, test_task_repr_wait_for) {
  asyncio::event_loop loop(virtual_time());
  auto fut = loop.create_future<>();
  auto task = loop.create_task([&] { asyncio::await(fut); });
  run_briefly(loop);
  // Python: assertRegex(repr(task), '<Task .* wait_for=%s>' % re.escape(repr(fut))).
  const std::string r = task.repr();
  EXPECT_TRUE(r.starts_with("<Task ")) << r;
  EXPECT_TRUE(r.ends_with(" wait_for=" + fut.repr() + ">")) << r;

  fut.set_result();
  loop.run_until_complete(task);
}

// test_task_basics
TEST_F(CPythonTaskTests, test_task_basics) {
  asyncio::event_loop loop(virtual_time());
  auto inner1 = [] { return 42; };
  auto inner2 = [] { return 1000; };
  auto outer = [&] {
    const int a = inner1();
    const int b = inner2();
    return a + b;
  };
  EXPECT_EQ(loop.run_until_complete(outer), 1042);
}

// test_cancel
TEST_F(CPythonTaskTests, test_cancel) {
  asyncio::event_loop loop(virtual_time());
  auto task = [] {
    asyncio::sleep(10.0);
    return 12;
  };
  auto t = loop.create_task(task);
  loop.call_soon([t]() mutable { t.cancel(); });
  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
  EXPECT_TRUE(t.done());
  EXPECT_TRUE(t.cancelled());
  EXPECT_FALSE(t.cancel());
}

// test_cancel_yield
TEST_F(CPythonTaskTests, test_cancel_yield) {
  asyncio::event_loop loop(virtual_time());
  auto task = [] {
    asyncio::sleep(0);  // yield
    asyncio::sleep(0);  // yield
    return 12;
  };
  auto t = loop.create_task(task);
  run_briefly(loop);  // start coro
  t.cancel();
  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
  EXPECT_TRUE(t.done());
  EXPECT_TRUE(t.cancelled());
  EXPECT_FALSE(t.cancel());
}

// test_cancel_inner_future
TEST_F(CPythonTaskTests, test_cancel_inner_future) {
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<>();
  auto t = loop.create_task([&] {
    asyncio::await(f);
    return 12;
  });
  run_briefly(loop);  // start task
  f.cancel();
  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(t.cancelled());
}

// test_cancel_both_task_and_inner_future
TEST_F(CPythonTaskTests, test_cancel_both_task_and_inner_future) {
  asyncio::event_loop loop(virtual_time());
  auto f = loop.create_future<>();
  auto t = loop.create_task([&] {
    asyncio::await(f);
    return 12;
  });
  run_briefly(loop);

  f.cancel();
  t.cancel();

  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);

  EXPECT_TRUE(t.done());
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(t.cancelled());
}

// test_cancel_task_catching
TEST_F(CPythonTaskTests, test_cancel_task_catching) {
  asyncio::event_loop loop(virtual_time());
  auto fut1 = loop.create_future<>();
  auto fut2 = loop.create_future<>();
  auto t = loop.create_task([&] {
    asyncio::await(fut1);
    try {
      asyncio::await(fut2);
    } catch (const asyncio::CancelledError&) {
      return 42;
    }
    return 0;
  });
  run_briefly(loop);
  EXPECT_EQ(fut1.repr(), kAwaitedByATask);  // t._fut_waiter is fut1
  fut1.set_result();
  run_briefly(loop);
  EXPECT_EQ(fut2.repr(), kAwaitedByATask);  // t._fut_waiter is fut2
  t.cancel();
  EXPECT_TRUE(fut2.cancelled());
  const int res = loop.run_until_complete(t);
  EXPECT_EQ(res, 42);
  EXPECT_FALSE(t.cancelled());
}

// test_cancel_task_ignoring
TEST_F(CPythonTaskTests, test_cancel_task_ignoring) {
  asyncio::event_loop loop(virtual_time());
  auto fut1 = loop.create_future<>();
  auto fut2 = loop.create_future<>();
  auto fut3 = loop.create_future<int>();
  auto t = loop.create_task([&] {
    asyncio::await(fut1);
    try {
      asyncio::await(fut2);
    } catch (const asyncio::CancelledError&) {
    }
    const int res = asyncio::await(fut3);
    return res;
  });
  run_briefly(loop);
  EXPECT_EQ(fut1.repr(), kAwaitedByATask);  // t._fut_waiter is fut1
  fut1.set_result();
  run_briefly(loop);
  EXPECT_EQ(fut2.repr(), kAwaitedByATask);  // t._fut_waiter is fut2
  t.cancel();
  EXPECT_TRUE(fut2.cancelled());
  run_briefly(loop);
  EXPECT_EQ(fut3.repr(), kAwaitedByATask);  // t._fut_waiter is fut3
  fut3.set_result(42);
  const int res = loop.run_until_complete(t);
  EXPECT_EQ(res, 42);
  EXPECT_FALSE(fut3.cancelled());
  EXPECT_FALSE(t.cancelled());
}

// test_cancel_current_task
TEST_F(CPythonTaskTests, test_cancel_current_task) {
  auto loop = asyncio::new_event_loop();
  asyncio::set_event_loop(loop);
  {
    asyncio::Task<int> t;
    t = loop->create_task([&] {
      t.cancel();
      // The sleep should be cancelled immediately.
      asyncio::sleep(100);
      return 12;
    });
    EXPECT_THROW(loop->run_until_complete(t), asyncio::CancelledError);
    EXPECT_TRUE(t.done());
    EXPECT_FALSE(t.cancel());
  }
  loop->close();
  asyncio::set_event_loop(nullptr);
}

// test_stop_while_run_in_complete
TEST_F(CPythonTaskTests, test_stop_while_run_in_complete) {
  asyncio::event_loop loop(virtual_time());
  int x = 0;
  auto task = [&] {
    while (x < 10) {
      asyncio::sleep(0.1);
      x += 1;
      if (x == 2) loop.stop();
    }
  };
  auto t = loop.create_task(task);
  try {
    loop.run_until_complete(t);
    ADD_FAILURE() << "no RuntimeError";
  } catch (const asyncio::RuntimeError& e) {
    EXPECT_EQ(std::string(e.what()), "Event loop stopped before Future completed.");
  }
  EXPECT_FALSE(t.done());
  EXPECT_EQ(x, 2);
  // Python: 0.3, TestLoop's clock moved by the third sleep's call_at() (see the file's head).
  EXPECT_DOUBLE_EQ(loop.time(), 0.2);

  t.cancel();
  EXPECT_THROW(loop.run_until_complete(t), asyncio::CancelledError);
}

// test_wait_for
TEST_F(CPythonTaskTests, test_wait_for) {
  asyncio::event_loop loop(virtual_time());
  std::optional<bool> foo_running;  // None
  struct Finally {
    std::optional<bool>& running;
    ~Finally() { running = false; }
  };
  auto foo = [&] {
    foo_running = true;
    Finally finally{foo_running};
    asyncio::sleep(0.2);
    return std::string("done");
  };
  auto fut = loop.create_task(foo);

  EXPECT_THROW(loop.run_until_complete([&] { return asyncio::wait_for(fut, 0.1); }), asyncio::TimeoutError);
  EXPECT_TRUE(fut.done());
  // it should have been cancelled due to the timeout
  EXPECT_TRUE(fut.cancelled());
  EXPECT_DOUBLE_EQ(loop.time(), 0.1);
  EXPECT_EQ(foo_running, false);
}

// test_wait_for_blocking
TEST_F(CPythonTaskTests, test_wait_for_blocking) {
  asyncio::event_loop loop(virtual_time());
  auto coro = [] { return std::string("done"); };
  auto res = loop.run_until_complete([&] { return asyncio::wait_for(coro, std::nullopt); });
  EXPECT_EQ(res, "done");
}

// test_wait_for_with_global_loop
TEST_F(CPythonTaskTests, test_wait_for_with_global_loop) {
  auto loop = asyncio::new_event_loop(virtual_time());
  auto foo = [] {
    asyncio::sleep(0.2);
    return std::string("done");
  };
  asyncio::set_event_loop(loop);
  asyncio::Task<std::string> fut;
  try {
    fut = loop->create_task(foo);
    EXPECT_THROW(loop->run_until_complete([&] { return asyncio::wait_for(fut, 0.01); }), asyncio::TimeoutError);
  } catch (...) {
    asyncio::set_event_loop(nullptr);
    throw;
  }
  asyncio::set_event_loop(nullptr);

  EXPECT_DOUBLE_EQ(loop->time(), 0.01);
  EXPECT_TRUE(fut.done());
  EXPECT_TRUE(fut.cancelled());
  loop->close();
}

// test_wait_for_race_condition
TEST_F(CPythonTaskTests, test_wait_for_race_condition) {
  asyncio::event_loop loop(virtual_time());
  auto fut = loop.create_future<std::string>();
  loop.call_later(0.1, [fut]() mutable { fut.set_result("ok"); });
  auto res = loop.run_until_complete([&] { return asyncio::wait_for(fut, 0.2); });
  EXPECT_EQ(res, "ok");
}

// test_wait
TEST_F(CPythonTaskTests, test_wait) {
  asyncio::event_loop loop(virtual_time());
  auto a = loop.create_task([] { asyncio::sleep(0.1); });
  auto b = loop.create_task([] { asyncio::sleep(0.15); });
  auto foo = [&] {
    auto [done, pending] = asyncio::wait(Tasks{b, a});
    EXPECT_TRUE(same_set(done, Tasks{a, b}));
    EXPECT_TRUE(pending.empty());
    return 42;
  };

  int res = loop.run_until_complete(loop.create_task(foo));
  EXPECT_EQ(res, 42);
  EXPECT_DOUBLE_EQ(loop.time(), 0.15);

  // Doing it again should take no time and exercise a different path.
  res = loop.run_until_complete(loop.create_task(foo));
  EXPECT_DOUBLE_EQ(loop.time(), 0.15);
  EXPECT_EQ(res, 42);
}

// test_wait_with_global_loop
TEST_F(CPythonTaskTests, test_wait_with_global_loop) {
  auto loop = asyncio::new_event_loop(virtual_time());
  {
    auto a = loop->create_task([] { asyncio::sleep(0.01); });
    auto b = loop->create_task([] { asyncio::sleep(0.015); });
    auto foo = [&] {
      auto [done, pending] = asyncio::wait(Tasks{b, a});
      EXPECT_TRUE(same_set(done, Tasks{a, b}));
      EXPECT_TRUE(pending.empty());
      return 42;
    };

    asyncio::set_event_loop(loop);
    const int res = loop->run_until_complete(loop->create_task(foo));

    EXPECT_EQ(res, 42);
  }
  asyncio::set_event_loop(nullptr);
  loop->close();
}

// test_wait_duplicate_coroutines: Python's `c` is one coroutine object given twice; here one task.
TEST_F(CPythonTaskTests, test_wait_duplicate_coroutines) {
  asyncio::event_loop loop(virtual_time());
  auto coro = [](std::string s) { return [s] { return s; }; };
  auto c = loop.create_task(coro("test"));
  auto spam = loop.create_task(coro("spam"));

  auto task = loop.create_task([&] { return asyncio::wait(StrTasks{c, c, spam}); });

  auto [done, pending] = loop.run_until_complete(task);

  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(results(done), (StrSet{"test", "spam"}));
}

// test_wait_errors
TEST_F(CPythonTaskTests, test_wait_errors) {
  asyncio::event_loop loop(virtual_time());
  EXPECT_THROW(loop.run_until_complete([] { asyncio::wait(Tasks{}); }), asyncio::ValueError);

  // -1 is an invalid return_when value
  auto sleep_coro = loop.create_task([] { asyncio::sleep(10.0); });
  auto wait_coro = [&] { asyncio::wait(Tasks{sleep_coro}, std::nullopt, static_cast<asyncio::return_when>(-1)); };
  try {
    loop.run_until_complete(wait_coro);
    ADD_FAILURE() << "no ValueError";
  } catch (const asyncio::ValueError& e) {
    EXPECT_EQ(std::string(e.what()), "Invalid return_when value: -1");
  }

  // sleep_coro.close(): here a task, cancelled.
  sleep_coro.cancel();
  EXPECT_THROW(loop.run_until_complete(sleep_coro), asyncio::CancelledError);
}

// test_wait_first_completed
TEST_F(CPythonTaskTests, test_wait_first_completed) {
  asyncio::event_loop loop(virtual_time());
  auto a = loop.create_task([] { asyncio::sleep(10.0); });
  auto b = loop.create_task([] { asyncio::sleep(0.1); });
  auto task = loop.create_task([&] { return asyncio::wait(Tasks{b, a}, std::nullopt, asyncio::FIRST_COMPLETED); });

  auto [done, pending] = loop.run_until_complete(task);
  EXPECT_TRUE(same_set(done, Tasks{b}));
  EXPECT_TRUE(same_set(pending, Tasks{a}));
  EXPECT_FALSE(a.done());
  EXPECT_TRUE(b.done());
  EXPECT_NO_THROW(b.result());  // None
  EXPECT_DOUBLE_EQ(loop.time(), 0.1);

  // move forward to close generator
  loop.run_until_complete([&] { asyncio::wait(Tasks{a, b}); });
}

// test_wait_really_done
TEST_F(CPythonTaskTests, test_wait_really_done) {
  // there is possibility that some tasks in the pending list
  // became done but their callbacks haven't all been called yet
  asyncio::event_loop loop(virtual_time());
  auto coro1 = [] { asyncio::sleep(0); };
  auto coro2 = [] {
    asyncio::sleep(0);
    asyncio::sleep(0);
  };

  auto a = loop.create_task(coro1);
  auto b = loop.create_task(coro2);
  auto task = loop.create_task([&] { return asyncio::wait(Tasks{b, a}, std::nullopt, asyncio::FIRST_COMPLETED); });

  auto [done, pending] = loop.run_until_complete(task);
  EXPECT_TRUE(same_set(done, Tasks{a, b}));
  EXPECT_TRUE(a.done());
  EXPECT_NO_THROW(a.result());  // None
  EXPECT_TRUE(b.done());
  EXPECT_NO_THROW(b.result());  // None
}

// test_wait_first_exception
TEST_F(CPythonTaskTests, test_wait_first_exception) {
  asyncio::event_loop loop(virtual_time());

  // first_exception, task already has exception
  auto a = loop.create_task([] { asyncio::sleep(10.0); });
  auto exc = [] { throw TestError("err"); };
  auto b = loop.create_task(exc);
  auto task = loop.create_task([&] { return asyncio::wait(Tasks{b, a}, std::nullopt, asyncio::FIRST_EXCEPTION); });

  auto [done, pending] = loop.run_until_complete(task);
  EXPECT_TRUE(same_set(done, Tasks{b}));
  EXPECT_TRUE(same_set(pending, Tasks{a}));
  EXPECT_DOUBLE_EQ(loop.time(), 0);

  // move forward to close generator
  loop.run_until_complete([&] { asyncio::wait(Tasks{a, b}); });
}

// test_wait_first_exception_in_wait
TEST_F(CPythonTaskTests, test_wait_first_exception_in_wait) {
  asyncio::event_loop loop(virtual_time());

  // first_exception, exception during waiting
  auto a = loop.create_task([] { asyncio::sleep(10.0); });
  auto exc = [] {
    asyncio::sleep(0.01);
    throw TestError("err");
  };
  auto b = loop.create_task(exc);
  auto task = [&] { return asyncio::wait(Tasks{b, a}, std::nullopt, asyncio::FIRST_EXCEPTION); };

  auto [done, pending] = loop.run_until_complete(task);
  EXPECT_TRUE(same_set(done, Tasks{b}));
  EXPECT_TRUE(same_set(pending, Tasks{a}));
  EXPECT_DOUBLE_EQ(loop.time(), 0.01);

  // move forward to close generator
  loop.run_until_complete([&] { asyncio::wait(Tasks{a, b}); });
}

// test_wait_with_exception
TEST_F(CPythonTaskTests, test_wait_with_exception) {
  asyncio::event_loop loop(virtual_time());
  auto a = loop.create_task([] { asyncio::sleep(0.1); });
  auto sleeper = [] {
    asyncio::sleep(0.15);
    throw TestError("really");
  };
  auto b = loop.create_task(sleeper);

  auto foo = [&] {
    auto [done, pending] = asyncio::wait(Tasks{b, a});
    EXPECT_EQ(done.size(), 2u);
    EXPECT_TRUE(pending.empty());
    std::size_t errors = 0;
    for (auto f : done) errors += f.exception() != nullptr ? 1 : 0;
    EXPECT_EQ(errors, 1u);
  };

  loop.run_until_complete(loop.create_task(foo));
  EXPECT_DOUBLE_EQ(loop.time(), 0.15);

  loop.run_until_complete(loop.create_task(foo));
  EXPECT_DOUBLE_EQ(loop.time(), 0.15);
}

// test_wait_with_timeout
TEST_F(CPythonTaskTests, test_wait_with_timeout) {
  asyncio::event_loop loop(virtual_time());
  auto a = loop.create_task([] { asyncio::sleep(0.1); });
  auto b = loop.create_task([] { asyncio::sleep(0.15); });

  auto foo = [&] {
    auto [done, pending] = asyncio::wait(Tasks{b, a}, 0.11);
    EXPECT_TRUE(same_set(done, Tasks{a}));
    EXPECT_TRUE(same_set(pending, Tasks{b}));
  };

  loop.run_until_complete(loop.create_task(foo));
  EXPECT_DOUBLE_EQ(loop.time(), 0.11);

  // move forward to close generator
  loop.run_until_complete([&] { asyncio::wait(Tasks{a, b}); });
}

// test_wait_concurrent_complete
TEST_F(CPythonTaskTests, test_wait_concurrent_complete) {
  asyncio::event_loop loop(virtual_time());
  auto a = loop.create_task([] { asyncio::sleep(0.1); });
  auto b = loop.create_task([] { asyncio::sleep(0.15); });

  auto [done, pending] = loop.run_until_complete([&] { return asyncio::wait(Tasks{b, a}, 0.1); });

  EXPECT_TRUE(same_set(done, Tasks{a}));
  EXPECT_TRUE(same_set(pending, Tasks{b}));
  EXPECT_DOUBLE_EQ(loop.time(), 0.1);

  // move forward to close generator
  loop.run_until_complete([&] { asyncio::wait(Tasks{a, b}); });
}

// test_as_completed
TEST_F(CPythonTaskTests, test_as_completed) {
  asyncio::event_loop loop(virtual_time());
  StrSet completed;
  auto sleeper = [&](double dt, std::string x) {
    return [&completed, dt, x] {
      asyncio::sleep(dt);
      completed.insert(x);
      // Python moves TestLoop's clock by 0.14 once a and b are done; the virtual clock jumps to c's
      // timer by itself (see the file's head).
      return x;
    };
  };

  auto a = loop.create_task(sleeper(0.01, "a"));
  auto b = loop.create_task(sleeper(0.01, "b"));
  auto c = loop.create_task(sleeper(0.15, "c"));

  auto foo = [&] {
    std::vector<std::string> values;
    for (auto f : asyncio::as_completed(StrTasks{b, c, a})) values.push_back(asyncio::await(f));
    return values;
  };

  auto res = loop.run_until_complete(loop.create_task(foo));
  EXPECT_DOUBLE_EQ(loop.time(), 0.15);
  ASSERT_EQ(res.size(), 3u);
  EXPECT_TRUE(res[0] == "a" || res[1] == "a");
  EXPECT_TRUE(res[0] == "b" || res[1] == "b");
  EXPECT_EQ(res[2], "c");

  // Doing it again should take no time and exercise a different path.
  res = loop.run_until_complete(loop.create_task(foo));
  EXPECT_DOUBLE_EQ(loop.time(), 0.15);
}

// test_as_completed_with_timeout
TEST_F(CPythonTaskTests, test_as_completed_with_timeout) {
  asyncio::event_loop loop(virtual_time());
  auto a = loop.create_task([] { return asyncio::sleep(0.1, std::string("a")); });
  auto b = loop.create_task([] { return asyncio::sleep(0.15, std::string("b")); });

  // (kind, value): (1, v) for a value, (2, "TimeoutError") for the exception.
  using Entry = std::pair<int, std::string>;
  auto foo = [&] {
    std::vector<Entry> values;
    asyncio::as_completed<asyncio::Task<std::string>> fs(StrTasks{a, b}, 0.12);
    while (!fs.empty()) {
      // Python: `if values: loop.advance_time(0.02)`; the clock jumps to the deadline by itself.
      try {
        auto f = fs.next();
        values.emplace_back(1, asyncio::await(f));
      } catch (const asyncio::TimeoutError&) {
        values.emplace_back(2, "TimeoutError");
        break;  // Python's for loop ends: the remaining wrappers all time out at once.
      }
    }
    return values;
  };

  auto res = loop.run_until_complete(loop.create_task(foo));
  ASSERT_EQ(res.size(), 2u);
  EXPECT_EQ(res[0], (Entry{1, "a"}));
  EXPECT_EQ(res[1].first, 2);
  EXPECT_EQ(res[1].second, "TimeoutError");
  EXPECT_DOUBLE_EQ(loop.time(), 0.12);

  // move forward to close generator
  loop.run_until_complete([&] { asyncio::wait(StrTasks{a, b}); });
}

// test_as_completed_with_unused_timeout
TEST_F(CPythonTaskTests, test_as_completed_with_unused_timeout) {
  asyncio::event_loop loop(virtual_time());
  auto a = loop.create_task([] { return asyncio::sleep(0.01, std::string("a")); });

  auto foo = [&] {
    for (auto f : asyncio::as_completed(StrTasks{a}, 1.0)) {
      auto v = asyncio::await(f);
      EXPECT_EQ(v, "a");
    }
  };

  loop.run_until_complete(loop.create_task(foo));
}

// test_as_completed_reverse_wait: each wrapper, a task calling next(), gets the next to finish.
TEST_F(CPythonTaskTests, test_as_completed_reverse_wait) {
  asyncio::event_loop loop(virtual_time());
  auto a = loop.create_task([] { return asyncio::sleep(0.05, std::string("a")); });
  auto b = loop.create_task([] { return asyncio::sleep(0.10, std::string("b")); });
  // as_completed() is made in a task of the loop (its header: loop thread, in a task).
  std::optional<asyncio::as_completed<asyncio::Task<std::string>>> futs;
  loop.run_until_complete([&] { futs.emplace(StrTasks{a, b}); });
  auto next = [&] { return futs->next().result(); };

  auto x = loop.run_until_complete(next);  // Python: futs[1]
  EXPECT_EQ(x, "a");
  EXPECT_DOUBLE_EQ(loop.time(), 0.05);
  auto y = loop.run_until_complete(next);  // Python: futs[0]
  EXPECT_EQ(y, "b");
  EXPECT_DOUBLE_EQ(loop.time(), 0.10);
  EXPECT_TRUE(futs->empty());
}

// test_as_completed_concurrent: two wrappers, tasks calling next(), awaited together.
TEST_F(CPythonTaskTests, test_as_completed_concurrent) {
  asyncio::event_loop loop(virtual_time());
  auto a = loop.create_task([] { return asyncio::sleep(0.05, std::string("a")); });
  auto b = loop.create_task([] { return asyncio::sleep(0.05, std::string("b")); });
  std::optional<asyncio::as_completed<asyncio::Task<std::string>>> fs;
  loop.run_until_complete([&] { fs.emplace(StrTasks{a, b}); });
  auto next = [&] { return fs->next().result(); };
  StrTasks futs{loop.create_task(next), loop.create_task(next)};
  EXPECT_EQ(futs.size(), 2u);
  auto [done, pending] = loop.run_until_complete([&] { return asyncio::wait(futs); });
  EXPECT_EQ(results(done), (StrSet{"a", "b"}));
}

// test_as_completed_duplicate_coroutines: Python's `c` is one coroutine object given twice; here
// one task.
TEST_F(CPythonTaskTests, test_as_completed_duplicate_coroutines) {
  asyncio::event_loop loop(virtual_time());
  auto coro = [](std::string s) { return [s] { return s; }; };

  auto runner = [&] {
    std::vector<std::string> result;
    auto c = asyncio::create_task(coro("ham"));
    for (auto f : asyncio::as_completed(StrTasks{c, c, asyncio::create_task(coro("spam"))})) {
      result.push_back(asyncio::await(f));
    }
    return result;
  };

  auto fut = loop.create_task(runner);
  loop.run_until_complete(fut);
  auto result = fut.result();
  EXPECT_EQ(StrSet(result.begin(), result.end()), (StrSet{"ham", "spam"}));
  EXPECT_EQ(result.size(), 2u);
}

}  // namespace cpython_tasks_port_a
