// A ThreadPoolExecutor that cannot start a worker thread (pthread_create()
// fails with EAGAIN: out of threads or memory). submit() used to queue the
// call and then throw, yet a worker ran it later: the caller was told it was
// refused, and run_in_executor(), which never attached its loop side to a
// refused job, crashed when that job delivered (t15 of the explorer). Now a
// pool with a worker keeps going with it (the call waits for it, as at
// max_workers), and one with none refuses the call and never runs it.
#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <system_error>
#include <thread>

#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>

#include "concurrent/gate.hpp"
#include "support/greenlet_test.hpp"

namespace asyncio = greenlet::asyncio;
namespace concurrent = greenlet::concurrent;
using concurrent_test::gate;

namespace {

class ThreadStartFailure : public greenlet_test::GreenletTest {};

// thread_starts_fail makes every new thread of the process fail to start while it lives: the
// default stack size becomes larger than any address space, so pthread_create() cannot map a
// stack and returns EAGAIN (std::thread throws std::system_error). As root, RLIMIT_NPROC would
// not bite; this does, under the sanitizers too.
class thread_starts_fail {
 public:
  thread_starts_fail() {
    EXPECT_EQ(::pthread_getattr_default_np(&saved_), 0);
    pthread_attr_t huge;
    ::pthread_attr_init(&huge);
    EXPECT_EQ(::pthread_attr_setstacksize(&huge, std::size_t{1} << 46), 0);
    EXPECT_EQ(::pthread_setattr_default_np(&huge), 0);
    ::pthread_attr_destroy(&huge);
  }
  ~thread_starts_fail() {
    ::pthread_setattr_default_np(&saved_);
    ::pthread_attr_destroy(&saved_);
  }
  thread_starts_fail(const thread_starts_fail&) = delete;
  thread_starts_fail& operator=(const thread_starts_fail&) = delete;

 private:
  pthread_attr_t saved_{};
};

// The pool has a busy worker: the call waits for it and runs once; submit() does not throw.
TEST_F(ThreadStartFailure, SubmitWithABusyWorkerWaitsForIt) {
  concurrent::ThreadPoolExecutor pool(4);
  gate g;
  auto first = pool.submit([&] {
    g.wait();
    return 1;
  });
  while (!first.running()) std::this_thread::yield();
  std::atomic<int> ran{0};
  concurrent::Future<int> second;
  {
    thread_starts_fail failing;
    try {
      second = pool.submit([&] {
        ++ran;
        return 2;
      });
    } catch (const std::system_error& e) {
      g.release();
      pool.shutdown();
      FAIL() << "submit() threw though the pool has a worker: " << e.what() << "; the call ran " << ran.load()
             << " time(s)";
    }
  }
  g.release();
  EXPECT_EQ(first.result(5.0), 1);
  EXPECT_EQ(second.result(5.0), 2);
  pool.shutdown();
  EXPECT_EQ(ran.load(), 1);
}

// The pool has no worker and cannot start one: submit() throws std::system_error and the call
// never runs, not even once a later submit() starts a worker.
TEST_F(ThreadStartFailure, SubmitWithNoWorkerThrowsAndNeverRunsTheCall) {
  concurrent::ThreadPoolExecutor pool(4);
  std::atomic<int> refused_ran{0};
  {
    thread_starts_fail failing;
    EXPECT_THROW(pool.submit([&] { ++refused_ran; }), std::system_error);
  }
  EXPECT_EQ(pool.submit([] { return 3; }).result(5.0), 3);
  pool.shutdown();
  EXPECT_EQ(refused_ran.load(), 0) << "a call whose submit() threw ran all the same";
}

// run_in_executor() on a pool whose busy worker is all it can have: the call is accepted and its
// result delivered; closing the loop afterwards is clean. Before, run_in_executor() threw, the job
// ran anyway and its delivery ended a loop side never attached (a crash at close()).
TEST_F(ThreadStartFailure, RunInExecutorKeepsGoingWithTheWorkerThere) {
  concurrent::ThreadPoolExecutor pool(4);
  asyncio::event_loop loop;
  gate g;
  std::atomic<bool> first_running{false};
  int sum = loop.run_until_complete([&] {
    auto first = loop.run_in_executor(&pool, [&] {
      first_running = true;
      g.wait();
      return 1;
    });
    while (!first_running.load()) std::this_thread::yield();
    struct opens_the_gate {
      gate& g;
      ~opens_the_gate() { g.release(); }  // whatever happens: a refused call must fail the test, not hang it
    } opener{g};
    asyncio::Future<int> second;
    {
      thread_starts_fail failing;
      second = loop.run_in_executor(&pool, [] { return 2; });
    }
    g.release();
    return asyncio::await(first) + asyncio::await(second);
  });
  EXPECT_EQ(sum, 3);
  loop.close();
  pool.shutdown();
}

// run_in_executor() on a pool that cannot start its first worker: it throws, and the job never
// runs (before, it ran when a later call started a worker, and its delivery corrupted the loop).
TEST_F(ThreadStartFailure, RunInExecutorRefusedWithNoWorkerNeverRuns) {
  concurrent::ThreadPoolExecutor pool(4);
  asyncio::event_loop loop;
  std::atomic<int> refused_ran{0};
  int later = loop.run_until_complete([&] {
    {
      thread_starts_fail failing;
      EXPECT_THROW(loop.run_in_executor(&pool, [&] { ++refused_ran; }), std::system_error);
    }
    return asyncio::await(loop.run_in_executor(&pool, [] { return 4; }));
  });
  EXPECT_EQ(later, 4);
  loop.close();
  pool.shutdown();
  EXPECT_EQ(refused_ran.load(), 0) << "a job whose run_in_executor() threw ran all the same";
}

}  // namespace
