// cpython_futures_port_test.cpp: CPython 3.12's Lib/test/test_concurrent_futures
// methods that no other test in tests/concurrent/ already twins, one TEST
// each, its comment naming the Python method.
//
// Skipped (no C++ meaning here):
// - test_future.py: test_repr, test_cancel, test_result_with_timeout,
//   test_multiple_set_result/_exception (twinned in future_test.cpp);
//   test_done_callback_raises (a C++ callback's exception is the caller's).
// - test_wait.py: test_first_completed, test_first_exception, test_timeout
//   (wait_test.cpp); test_pending_calls_race (sys.setswitchinterval).
// - test_as_completed.py: test_duplicate_futures, test_free_reference_yielded_future
//   (wait_test.cpp); test_future_times_out, test_free_reference (gc).
// - test_thread_pool.py: test_map_submits_without_iteration (map() collects
//   eagerly), test_default_workers (thread_pool_test.cpp), test_hang_global_shutdown_lock,
//   test_executor_map_current_future_cancel, test_hang_gh94440 (fork in Python's threads);
//   test_idle_thread_reuse (a worker counts itself idle just after it sets the result, so
//   a submit() right after result() may start a second thread: racy in C++ without a GIL).
// - test_shutdown.py: test_run_after_shutdown, test_cancel_futures (thread_pool_test.cpp);
//   test_interpreter_shutdown, test_hang_issue39205, test_hang_gh83386,
//   test_submit_after_interpreter_shutdown, test_thread_names_assigned
//   (interpreter exit, gc, threading.enumerate()).
// - test_process_pool.py: test_killed_child (process_pool_test.cpp), test_map_chunksize,
//   test_ressources_gced_in_workers, test_max_tasks_per_child*, test_max_workers_too_large
//   (no chunking, no max_tasks_per_child, Windows only), test_python_finalization_error.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/concurrent.hpp>

#include "gate.hpp"
#include "support/greenlet_test.hpp"

namespace concurrent = greenlet::concurrent;

namespace {

class CPythonFuturesPort : public greenlet_test::GreenletTest {};

using concurrent_test::gate;

concurrent::Future<int> pending() { return {}; }
concurrent::Future<int> running() {
  concurrent::Future<int> f;
  f.set_running_or_notify_cancel();
  return f;
}
concurrent::Future<int> cancelled() {
  concurrent::Future<int> f;
  f.cancel();
  return f;
}
concurrent::Future<int> successful(int v = 42) {
  concurrent::Future<int> f;
  f.set_result(v);
  return f;
}
concurrent::Future<int> failed() {
  concurrent::Future<int> f;
  f.set_exception(std::make_exception_ptr(std::runtime_error("boom")));
  return f;
}

// test_future.py FutureTests.test_done_callback_with_result
TEST_F(CPythonFuturesPort, DoneCallbackWithResult) {
  concurrent::Future<int> f;
  int seen = 0;
  f.add_done_callback([&](const concurrent::Future<int>& g) { seen = g.result(); });
  f.set_result(5);
  EXPECT_EQ(seen, 5);
}

// test_future.py FutureTests.test_done_callback_with_exception
TEST_F(CPythonFuturesPort, DoneCallbackWithException) {
  concurrent::Future<int> f;
  std::string seen;
  f.add_done_callback([&](const concurrent::Future<int>& g) {
    try {
      std::rethrow_exception(g.exception());
    } catch (const std::runtime_error& e) {
      seen = e.what();
    }
  });
  f.set_exception(std::make_exception_ptr(std::runtime_error("test")));
  EXPECT_EQ(seen, "test");
}

// test_future.py FutureTests.test_done_callback_with_cancel
TEST_F(CPythonFuturesPort, DoneCallbackWithCancel) {
  concurrent::Future<int> f;
  bool was_cancelled = false;
  f.add_done_callback([&](const concurrent::Future<int>& g) { was_cancelled = g.cancelled(); });
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(was_cancelled);
}

// test_future.py FutureTests.test_done_callback_already_successful
TEST_F(CPythonFuturesPort, DoneCallbackAlreadySuccessful) {
  auto f = successful(5);
  int seen = 0;
  f.add_done_callback([&](const concurrent::Future<int>& g) { seen = g.result(); });
  EXPECT_EQ(seen, 5);
}

// test_future.py FutureTests.test_done_callback_already_failed
TEST_F(CPythonFuturesPort, DoneCallbackAlreadyFailed) {
  auto f = failed();
  bool raised = false;
  f.add_done_callback([&](const concurrent::Future<int>& g) { raised = g.exception() != nullptr; });
  EXPECT_TRUE(raised);
}

// test_future.py FutureTests.test_done_callback_already_cancelled
TEST_F(CPythonFuturesPort, DoneCallbackAlreadyCancelled) {
  auto f = cancelled();
  bool was_cancelled = false;
  f.add_done_callback([&](const concurrent::Future<int>& g) { was_cancelled = g.cancelled(); });
  EXPECT_TRUE(was_cancelled);
}

// test_future.py FutureTests.test_cancelled
TEST_F(CPythonFuturesPort, Cancelled) {
  EXPECT_FALSE(pending().cancelled());
  EXPECT_FALSE(running().cancelled());
  EXPECT_TRUE(cancelled().cancelled());
  EXPECT_FALSE(failed().cancelled());
  EXPECT_FALSE(successful().cancelled());
}

// test_future.py FutureTests.test_done
TEST_F(CPythonFuturesPort, Done) {
  EXPECT_FALSE(pending().done());
  EXPECT_FALSE(running().done());
  EXPECT_TRUE(cancelled().done());
  EXPECT_TRUE(failed().done());
  EXPECT_TRUE(successful().done());
}

// test_future.py FutureTests.test_running
TEST_F(CPythonFuturesPort, Running) {
  EXPECT_FALSE(pending().running());
  EXPECT_TRUE(running().running());
  EXPECT_FALSE(cancelled().running());
  EXPECT_FALSE(failed().running());
  EXPECT_FALSE(successful().running());
}

// test_future.py FutureTests.test_result_with_success
TEST_F(CPythonFuturesPort, ResultWithSuccess) {
  concurrent::Future<int> f;
  std::thread t([f] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    f.set_result(42);
  });
  EXPECT_EQ(f.result(30), 42);
  t.join();
}

// test_future.py FutureTests.test_result_with_cancel
TEST_F(CPythonFuturesPort, ResultWithCancel) {
  concurrent::Future<int> f;
  std::thread t([f] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    f.cancel();
  });
  EXPECT_THROW(f.result(30), concurrent::CancelledError);
  t.join();
}

// test_future.py FutureTests.test_exception_with_timeout
TEST_F(CPythonFuturesPort, ExceptionWithTimeout) {
  EXPECT_THROW(pending().exception(0), concurrent::TimeoutError);
  EXPECT_THROW(running().exception(0), concurrent::TimeoutError);
  EXPECT_THROW(cancelled().exception(0), concurrent::CancelledError);
  EXPECT_NE(failed().exception(0), nullptr);
  EXPECT_EQ(successful().exception(0), nullptr);
}

// test_future.py FutureTests.test_exception_with_success
TEST_F(CPythonFuturesPort, ExceptionWithSuccess) {
  concurrent::Future<int> f;
  f.set_running_or_notify_cancel();
  std::thread t([f] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    f.set_exception(std::make_exception_ptr(std::out_of_range("x")));
  });
  auto e = f.exception(30);
  t.join();
  EXPECT_THROW(std::rethrow_exception(e), std::out_of_range);
}

// test_future.py FutureTests.test_multiple_set_result's cousin for a cancelled
// future (test_done_callback_raises_already_succeeded covers the rest):
// set_result() on a cancelled future is InvalidStateError, and it stays cancelled.
TEST_F(CPythonFuturesPort, SetResultOnCancelledIsInvalidState) {
  auto f = cancelled();
  EXPECT_THROW(f.set_result(1), greenlet::asyncio::InvalidStateError);
  EXPECT_TRUE(f.cancelled());
}

// test_wait.py WaitTests.test_first_completed_some_already_completed
TEST_F(CPythonFuturesPort, WaitFirstCompletedSomeAlreadyCompleted) {
  gate g;
  concurrent::ThreadPoolExecutor pool(1);
  auto future1 = pool.submit([&] {
    g.wait();
    return 1;
  });
  auto c = cancelled();
  auto s = successful();
  auto r = concurrent::wait(std::vector{c, s, future1}, 30, concurrent::FIRST_COMPLETED);
  EXPECT_EQ(r.done, (std::vector{c, s}));
  EXPECT_EQ(r.not_done, (std::vector{future1}));
  g.release();
}

// test_wait.py WaitTests.test_first_exception_some_already_complete (Python's
// CANCELLED_FUTURE, cancelled but not yet notified, has no counterpart: a
// cancel() here notifies at once)
TEST_F(CPythonFuturesPort, WaitFirstExceptionSomeAlreadyComplete) {
  gate g;
  concurrent::ThreadPoolExecutor pool(2);
  auto future1 = pool.submit([]() -> int { throw std::runtime_error("divmod"); });
  auto future2 = pool.submit([&] {
    g.wait();
    return 2;
  });
  auto s = successful();
  auto c = cancelled();
  auto r = concurrent::wait(std::vector{s, c, future1, future2}, 30, concurrent::FIRST_EXCEPTION);
  EXPECT_EQ(r.done, (std::vector{s, c, future1}));
  EXPECT_EQ(r.not_done, (std::vector{future2}));
  g.release();
}

// test_wait.py WaitTests.test_first_exception_one_already_failed
TEST_F(CPythonFuturesPort, WaitFirstExceptionOneAlreadyFailed) {
  gate g;
  concurrent::ThreadPoolExecutor pool(1);
  auto future1 = pool.submit([&] {
    g.wait();
    return 1;
  });
  auto e = failed();
  auto r = concurrent::wait(std::vector{e, future1}, 5, concurrent::FIRST_EXCEPTION);
  EXPECT_EQ(r.done, (std::vector{e}));
  EXPECT_EQ(r.not_done, (std::vector{future1}));
  g.release();
}

// test_wait.py WaitTests.test_all_completed
TEST_F(CPythonFuturesPort, WaitAllCompleted) {
  concurrent::ThreadPoolExecutor pool(2);
  auto future1 = pool.submit([]() -> int { throw std::runtime_error("divmod"); });
  auto future2 = pool.submit([] { return 2; });
  auto s = successful();
  auto c = cancelled();
  auto e = failed();
  auto r = concurrent::wait(std::vector{s, c, e, future1, future2}, std::nullopt, concurrent::ALL_COMPLETED);
  EXPECT_EQ(r.done, (std::vector{s, c, e, future1, future2}));
  EXPECT_TRUE(r.not_done.empty());
}

// test_as_completed.py AsCompletedTests.test_no_timeout
TEST_F(CPythonFuturesPort, AsCompletedNoTimeout) {
  concurrent::ThreadPoolExecutor pool(2);
  auto future1 = pool.submit([] { return 2; });
  auto future2 = pool.submit([] { return 6; });
  auto c = cancelled();
  auto e = failed();
  auto s = successful();
  std::vector<concurrent::Future<int>> seen;
  for (auto& f : concurrent::as_completed(std::vector{c, e, s, future1, future2})) seen.push_back(f);
  EXPECT_EQ(seen.size(), 5u);
  for (auto& f : {c, e, s, future1, future2}) EXPECT_NE(std::find(seen.begin(), seen.end(), f), seen.end());
}

// test_as_completed.py AsCompletedTests.test_zero_timeout
TEST_F(CPythonFuturesPort, AsCompletedZeroTimeout) {
  gate g;
  concurrent::ThreadPoolExecutor pool(1);
  auto future1 = pool.submit([&] {
    g.wait();
    return 1;
  });
  auto c = cancelled();
  auto e = failed();
  auto s = successful();
  std::vector<concurrent::Future<int>> seen;
  try {
    for (auto& f : concurrent::as_completed(std::vector{future1, c, e, s}, 0)) seen.push_back(f);
    ADD_FAILURE() << "as_completed(timeout=0) did not time out";
  } catch (const concurrent::TimeoutError&) {
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(std::find(seen.begin(), seen.end(), future1), seen.end());
  g.release();
}

// test_as_completed.py AsCompletedTests.test_correct_timeout_exception_msg
TEST_F(CPythonFuturesPort, AsCompletedTimeoutMessage) {
  auto p1 = pending(), p2 = pending();
  auto r = running();
  auto s = successful();
  try {
    for (auto& f : concurrent::as_completed(std::vector{p1, r, s, p2}, 0)) (void)f;
    ADD_FAILURE() << "no timeout";
  } catch (const concurrent::TimeoutError& e) {
    EXPECT_EQ(std::string(e.what()), "3 (of 4) futures unfinished");
  }
}

// test_thread_pool.py ThreadPoolExecutorTest.test_saturation: a pool of N
// threads runs at most N calls at once, however many are queued.
TEST_F(CPythonFuturesPort, ThreadPoolSaturation) {
  concurrent::ThreadPoolExecutor pool(4);
  gate g;
  std::atomic<int> started{0};
  std::vector<concurrent::Future<void>> fs;
  for (int i = 0; i < 4 * 15; ++i) {
    fs.push_back(pool.submit([&] {
      ++started;
      g.wait();
    }));
  }
  while (started.load() < 4) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(started.load(), 4);
  g.release();
  for (auto& f : fs) f.result(30);
}

// test_shutdown.py ThreadPoolShutdownTest.test_shutdown_no_wait: shutdown(wait=False)
// returns at once; the accepted work still runs to the end.
TEST_F(CPythonFuturesPort, ShutdownNoWait) {
  gate g;
  concurrent::ThreadPoolExecutor pool(5);
  std::vector<concurrent::Future<int>> fs;
  for (int i = 0; i < 5; ++i) {
    fs.push_back(pool.submit([&g, i] {
      g.wait();
      return i;
    }));
  }
  pool.shutdown(false);
  g.release();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(fs[i].result(30), i);
}

// test_shutdown.py ThreadPoolShutdownTest.test_cancel_futures_wait_false: with
// wait=False and cancel_futures=True, what has not started is cancelled, the
// running call still finishes.
TEST_F(CPythonFuturesPort, CancelFuturesWaitFalse) {
  gate g;
  std::atomic<bool> started{false};
  concurrent::ThreadPoolExecutor pool(1);
  auto first = pool.submit([&] {
    started = true;
    g.wait();
    return 1;
  });
  std::vector<concurrent::Future<int>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(pool.submit([] { return 2; }));
  while (!started.load()) std::this_thread::yield();
  pool.shutdown(false, true);
  for (auto& f : queued) EXPECT_TRUE(f.cancelled());
  g.release();
  EXPECT_EQ(first.result(30), 1);
}

// test_shutdown.py ThreadPoolShutdownTest.test_context_manager_shutdown and
// test_del_shutdown: leaving the scope (the destructor) waits for every
// accepted call.
TEST_F(CPythonFuturesPort, DestructorWaitsForTheWork) {
  std::atomic<int> ran{0};
  {
    concurrent::ThreadPoolExecutor pool(5);
    for (int i = 0; i < 20; ++i) {
      pool.submit([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        ++ran;
      });
    }
  }
  EXPECT_EQ(ran.load(), 20);
}

// test_shutdown.py ExecutorShutdownTest.test_run_after_shutdown: twinned for the
// thread pool; here the process pool's message, which is Python's.
// Process pools fork: the allocation balance is not meaningful, so a plain TEST.
TEST(CPythonFuturesPortProcess, ProcessPoolRunAfterShutdown) {
  // Nothing registered is needed: submit() refuses before any name is looked up.
  concurrent::ProcessPoolExecutor pool(1);
  pool.shutdown();
  concurrent::process_function<int(int)> fn("cpython_port.unregistered");
  try {
    pool.submit(fn, 1);
    ADD_FAILURE() << "submit() after shutdown() was accepted";
  } catch (const concurrent::RuntimeError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot schedule new futures after shutdown");
  }
}

}  // namespace
