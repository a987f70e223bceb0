// The loop's default executor (run_in_executor(nullptr), to_thread()):
// replaced by set_default_executor() while a call submits to it, and shut
// down by shutdown_default_executor() (asyncio's, which joins it on a
// helper thread while the loop keeps running).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>

#include "support/forked_child.hpp"
#include "support/greenlet_test.hpp"

namespace asyncio = greenlet::asyncio;
namespace concurrent = greenlet::concurrent;

namespace {

class DefaultExecutor : public greenlet_test::GreenletTest {};

// recording_executor runs each call inline and says whether one arrived after the last
// shared_ptr to it was dropped. The test owns its storage (the deleter only records), so
// "used after its last reference" is checked without touching freed memory.
class recording_executor final : public concurrent::Executor {
 public:
  void shutdown(bool, bool) override {}
  std::atomic<bool> released{false};
  std::atomic<int> calls_after_release{0};
  std::atomic<int> calls{0};

 protected:
  void enqueue(std::unique_ptr<concurrent::detail::work_item> item) override {
    if (released) ++calls_after_release;
    ++calls;
    item.release()->run();
  }
};

// replacing_call is a function whose first move (inside run_in_executor(), after it looked
// up the default executor and before it submits) replaces the loop's default executor, as
// set_default_executor() on another thread may at that moment.
struct replacing_call {
  asyncio::event_loop* loop;
  std::shared_ptr<concurrent::Executor> replacement;
  replacing_call(asyncio::event_loop* l, std::shared_ptr<concurrent::Executor> r)
      : loop(l), replacement(std::move(r)) {}
  replacing_call(replacing_call&& other) noexcept : loop(other.loop), replacement(std::move(other.replacement)) {
    if (replacement) asyncio::set_default_executor(*loop, std::exchange(replacement, nullptr));
  }
  int operator()() const { return 7; }
};

// run_in_executor(nullptr) used the default executor through a raw reference taken under the
// registry's lock: set_default_executor() dropping the registry's (last) reference meanwhile
// freed the executor the call then submitted to (ASan: heap-use-after-free in
// Executor::detail_enqueue). The call now holds its own reference until the job is in.
TEST_F(DefaultExecutor, ReplacedWhileSubmittingStaysAliveUntilTheJobIsIn) {
  recording_executor storage;
  auto first = std::shared_ptr<concurrent::Executor>(&storage, [](concurrent::Executor* e) {
    static_cast<recording_executor*>(e)->released = true;  // storage is the test's: only record
  });
  recording_executor second_storage;
  auto second = std::shared_ptr<concurrent::Executor>(&second_storage, [](concurrent::Executor*) {});
  asyncio::event_loop loop;
  asyncio::set_default_executor(loop, std::move(first));  // the registry holds its only reference
  int got = loop.run_until_complete(
      [&] { return asyncio::await(loop.run_in_executor(nullptr, replacing_call(&loop, second))); });
  EXPECT_EQ(got, 7);
  EXPECT_EQ(storage.calls.load(), 1);
  EXPECT_EQ(storage.calls_after_release.load(), 0) << "the default executor was used after its last reference went";
  EXPECT_TRUE(storage.released.load());
  loop.close();
}

// observed_executor is a thread pool that says when its shutdown() has been called: a job waits
// for that to act while the loop shuts its default executor down.
class observed_executor final : public concurrent::Executor {
 public:
  void shutdown(bool wait, bool cancel_futures) override {
    shutdown_thread = std::this_thread::get_id();
    sigset_t mask;
    ::pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    shutdown_blocked_sigusr1 = sigismember(&mask, SIGUSR1) == 1;
    shutdown_blocked_sigsegv = sigismember(&mask, SIGSEGV) == 1;
    shutting_down = true;
    pool_.shutdown(wait, cancel_futures);
  }
  void wait_for_shutdown() const {
    while (!shutting_down.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::atomic<bool> shutting_down{false};
  // What the thread that called shutdown() was, and what it blocked.
  std::thread::id shutdown_thread;
  bool shutdown_blocked_sigusr1 = false;
  bool shutdown_blocked_sigsegv = false;

 protected:
  void enqueue(std::unique_ptr<concurrent::detail::work_item> item) override { pool_.detail_enqueue(std::move(item)); }

 private:
  concurrent::ThreadPoolExecutor pool_{2};
};

using greenlet_test::forked::expect_child_succeeds;
using greenlet_test::forked::fail;

// A default-executor job still running when main returns needs the loop
// (run_coroutine_threadsafe(...).result()), as t3 of the explorer: asyncio::run
// shut the executor down, waiting, with the loop stopped, so the job waited
// for the loop and the loop for the job, for ever (here: the job's 5 s
// timeout). The loop now runs while a helper thread waits, as CPython's
// shutdown_default_executor().
void job_needing_the_loop_at_run_end() {
  auto executor = std::make_shared<observed_executor>();
  std::atomic<int> got{0};
  std::string error;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    asyncio::set_default_executor(loop, executor);
    loop.run_in_executor(nullptr, [&loop, &got, &error, executor] {
      executor->wait_for_shutdown();  // main has returned: asyncio::run is shutting the executor down
      try {
        got = asyncio::run_coroutine_threadsafe([] { return 42; }, loop).result(5.0);
      } catch (const std::exception& e) {
        error = e.what();
      }
    });
  });
  if (got.load() != 42) fail("the job got no result from the loop: " + error);
}

TEST(DefaultExecutorShutdown, RunEndKeepsTheLoopRunningForAJobThatNeedsIt) {
  expect_child_succeeds(&job_needing_the_loop_at_run_end);
}

// A callback a default-executor job posts while asyncio::run shuts the
// executor down runs before the loop closes (it was dropped unrun).
TEST_F(DefaultExecutor, RunEndRunsACallbackPostedDuringTheShutdown) {
  auto executor = std::make_shared<observed_executor>();
  std::atomic<bool> posted{false};
  bool ran = false;
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    asyncio::set_default_executor(loop, executor);
    loop.run_in_executor(nullptr, [&loop, &posted, &ran, executor] {
      executor->wait_for_shutdown();
      loop.call_soon_threadsafe([&ran] { ran = true; });
      posted = true;
    });
  });
  EXPECT_TRUE(posted.load());
  EXPECT_TRUE(ran) << "the callback posted while the default executor shut down never ran";
}

// shutdown_default_executor(loop) on a loop run by hand runs the loop while
// it waits: the job's request to the loop is served, and it returns once the
// job is done. Before, it waited with the loop stopped.
void shutdown_by_hand_serves_the_loop() {
  asyncio::event_loop loop;
  std::atomic<int> got{0};
  std::atomic<bool> job_done{false};
  std::string error;
  loop.run_until_complete([&] {
    loop.run_in_executor(nullptr, [&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the loop has stopped by now
      try {
        got = asyncio::run_coroutine_threadsafe([] { return 42; }, loop).result(5.0);
      } catch (const std::exception& e) {
        error = e.what();
      }
      job_done = true;
    });
  });
  asyncio::shutdown_default_executor(loop);
  if (!job_done.load()) fail("shutdown_default_executor() returned before the job was done");
  if (got.load() != 42) fail("the job got no result from the loop: " + error);
  loop.close();
}

TEST(DefaultExecutorShutdown, ByHandRunsTheLoopUntilTheJobsAreDone) {
  expect_child_succeeds(&shutdown_by_hand_serves_the_loop);
}

// In a task it is asyncio's `await loop.shutdown_default_executor()`: the
// task waits, the loop's other tasks run meanwhile, and so does what the
// job asks of the loop.
void shutdown_in_a_task_waits_there() {
  std::atomic<int> got{0};
  int ticks_while_waiting = 0;
  bool job_done_at_return = false;
  std::atomic<bool> job_done{false};
  asyncio::run([&] {
    auto& loop = asyncio::get_running_loop();
    loop.run_in_executor(nullptr, [&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      got = asyncio::run_coroutine_threadsafe([] { return 42; }, loop).result(5.0);
      job_done = true;
    });
    bool waiting = true;
    auto ticker = asyncio::create_task([&] {
      while (waiting) {
        ++ticks_while_waiting;
        asyncio::sleep(0.001);
      }
    });
    asyncio::shutdown_default_executor(loop);
    waiting = false;
    job_done_at_return = job_done.load();
    asyncio::await(ticker);
  });
  if (!job_done_at_return) fail("shutdown_default_executor() returned before the job was done");
  if (got.load() != 42) fail("the job got no result from the loop");
  if (ticks_while_waiting < 2) fail("the loop's other tasks did not run while it waited");
}

TEST(DefaultExecutorShutdown, InATaskWaitsThereWhileTheLoopRuns) {
  expect_child_succeeds(&shutdown_in_a_task_waits_there);
}

// A plain callback cannot wait: refused before anything changes, so the
// default executor still takes work afterwards.
TEST_F(DefaultExecutor, ShutdownFromAPlainCallbackIsRefusedAndChangesNothing) {
  asyncio::event_loop loop;
  int value = loop.run_until_complete([&] {
    asyncio::await(loop.run_in_executor(nullptr, [] { return 1; }));  // the default executor exists
    auto refused = loop.create_future<std::string>();
    loop.call_soon([&] {
      try {
        asyncio::shutdown_default_executor(loop);
        refused.set_result("not refused");
      } catch (const asyncio::RuntimeError& e) {
        refused.set_result(e.condition() == asyncio::asyncio_errc::not_in_task ? "not_in_task" : e.what());
      }
    });
    EXPECT_EQ(asyncio::await(refused), "not_in_task");
    return asyncio::await(loop.run_in_executor(nullptr, [] { return 2; }));
  });
  EXPECT_EQ(value, 2);
  asyncio::shutdown_default_executor(loop);
  loop.close();
}

// The helper thread that waits for the executor is a library thread: it blocks asynchronous
// signals, as the pools' workers do (io/blocked_signals.hpp), so a process-directed signal for an
// add_signal_handler() never kills the process there; the loop's thread keeps its mask.
TEST_F(DefaultExecutor, ShutdownWaitsOnAHelperThreadThatBlocksAsynchronousSignals) {
  auto executor = std::make_shared<observed_executor>();
  asyncio::event_loop loop;
  asyncio::set_default_executor(loop, executor);
  asyncio::shutdown_default_executor(loop);
  EXPECT_TRUE(executor->shutting_down.load());
  EXPECT_NE(executor->shutdown_thread, std::this_thread::get_id());
  EXPECT_TRUE(executor->shutdown_blocked_sigusr1);
  EXPECT_FALSE(executor->shutdown_blocked_sigsegv);
  sigset_t mine;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &mine);
  EXPECT_FALSE(sigismember(&mine, SIGUSR1) == 1);
  loop.close();
}

// expect_refused_after_shutdown(call) checks that call throws asyncio's "Executor shutdown has
// been called" RuntimeError.
template <class F>
void expect_refused_after_shutdown(F call, const char* what) {
  try {
    call();
    ADD_FAILURE() << what << " was accepted after shutdown_default_executor()";
  } catch (const concurrent::RuntimeError& e) {
    EXPECT_EQ(e.condition(), concurrent::concurrent_errc::shutdown) << what;
    EXPECT_NE(std::string(e.what()).find("Executor shutdown has been called"), std::string::npos)
        << what << ": " << e.what();
  }
}

// After shutdown_default_executor(), run_in_executor(nullptr) and to_thread()
// raise asyncio's RuntimeError('Executor shutdown has been called'), even
// once another default executor is set (they silently made a new pool). A
// second shutdown_default_executor() does nothing. A new loop starts afresh.
TEST_F(DefaultExecutor, RunInExecutorAfterShutdownIsRefused) {
  std::atomic<int> ran{0};
  {
    asyncio::event_loop loop;
    EXPECT_EQ(loop.run_until_complete([] { return asyncio::await(asyncio::to_thread([] { return 1; })); }), 1);
    asyncio::shutdown_default_executor(loop);
    loop.run_until_complete([&] {
      expect_refused_after_shutdown([&] { loop.run_in_executor(nullptr, [&] { ++ran; }); }, "run_in_executor(nullptr)");
      expect_refused_after_shutdown([&] { (void)asyncio::to_thread([&] { ++ran; }); }, "to_thread()");
      asyncio::set_default_executor(loop, std::make_shared<concurrent::ThreadPoolExecutor>(1));
      expect_refused_after_shutdown([&] { loop.run_in_executor(nullptr, [&] { ++ran; }); },
                                    "run_in_executor(nullptr) with a new default executor");
    });
    asyncio::shutdown_default_executor(loop);  // again: nothing to do
    loop.close();
  }
  EXPECT_EQ(ran.load(), 0);
  asyncio::event_loop fresh;
  EXPECT_EQ(fresh.run_until_complete([] { return asyncio::await(asyncio::to_thread([] { return 3; })); }), 3);
  fresh.close();
}

// The same for a loop that never had a default executor: asyncio sets the flag regardless.
TEST_F(DefaultExecutor, RunInExecutorAfterShutdownWithoutAnExecutorIsRefused) {
  asyncio::event_loop loop;
  asyncio::shutdown_default_executor(loop);
  loop.run_until_complete([&] {
    expect_refused_after_shutdown([&] { loop.run_in_executor(nullptr, [] {}); }, "run_in_executor(nullptr)");
  });
  loop.close();
}

}  // namespace
