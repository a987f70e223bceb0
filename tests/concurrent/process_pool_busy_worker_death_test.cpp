// process_pool_busy_worker_death_test.cpp: a worker process killed from
// outside while jobs run on it and on the other workers. CPython's
// ProcessPoolExecutor (process.py, terminate_broken()) then fails every
// future it still holds, running or pending, with BrokenProcessPool("A
// process in the process pool was terminated abruptly while the future was
// running or pending."), terminates the other workers and refuses submit().
// Before the fix only the dead worker's job and the queue failed: a job on a
// live worker ran on, its result came in after the pool had broken, and a job
// that never ended kept shutdown() waiting for ever.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"

namespace concurrent = greenlet::concurrent;

namespace {

// held(started, gate) tells the test it runs (a byte on `started`), then
// waits for a byte on `gate`; both pipes are inherited from the test.
int held(int started, int gate) {
  const char c = 's';
  while (::write(started, &c, 1) < 0 && errno == EINTR) {
  }
  char got = 0;
  while (::read(gate, &got, 1) < 0 && errno == EINTR) {
  }
  return got;
}
int twice(int x) { return 2 * x; }

// Registered at static-initialization time: before any pool forks.
const auto held_fn = concurrent::register_process_function("busy_worker_death_test.held", &held);
const auto twice_fn = concurrent::register_process_function("busy_worker_death_test.twice", &twice);

struct pipes {
  int started[2] = {-1, -1};
  int gate[2] = {-1, -1};
  pipes() {
    if (::pipe(started) != 0 || ::pipe(gate) != 0) throw std::runtime_error("pipe() failed");
  }
  ~pipes() {
    for (int fd : {started[0], started[1], gate[0], gate[1]}) ::close(fd);
  }
  void wait_started(int n) {
    for (int i = 0; i < n; ++i) {
      char c;
      while (::read(started[0], &c, 1) < 0 && errno == EINTR) {
      }
    }
  }
  void release(int n) {
    for (int i = 0; i < n; ++i) {
      const char c = 'x';
      while (::write(gate[1], &c, 1) < 0 && errno == EINTR) {
      }
    }
  }
};

const std::string future_broken =
    "A process in the process pool was terminated abruptly while the future was running or pending";

TEST(ProcessPoolBusyWorkerDeath, EveryRunningAndPendingFutureFailsNamingTheSignal) {
  pipes p;
  concurrent::ProcessPoolExecutor pool(2);
  std::vector<concurrent::Future<int>> running;
  for (int i = 0; i < 2; ++i) running.push_back(pool.submit(held_fn, p.started[1], p.gate[0]));
  p.wait_started(2);  // one job on each worker
  auto queued = pool.submit(twice_fn, 21);
  const std::vector<int> pids = pool.pids();
  const int victim = pids.front();
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  const std::string signal = "worker process " + std::to_string(victim) + " was killed by signal 9 (SIGKILL)";
  for (auto* f : {&running[0], &running[1], &queued}) {
    try {
      const int got = f->result(10);
      ADD_FAILURE() << "a future of the broken pool returned " << got;
    } catch (const concurrent::BrokenProcessPool& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind(future_broken, 0), 0u) << what;
      EXPECT_NE(what.find(signal), std::string::npos) << what;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "a future of the broken pool raised " << typeid(e).name() << ": " << e.what();
    }
  }
  try {
    pool.submit(twice_fn, 1);
    ADD_FAILURE() << "submit() to a broken pool was accepted";
  } catch (const concurrent::BrokenProcessPool& e) {
    EXPECT_NE(std::string(e.what()).find("the process pool is not usable anymore"), std::string::npos) << e.what();
  }
  // The live worker was terminated with the pool, as CPython does: shutdown()
  // returns without the held job's gate ever opening. Bounded, so that a
  // regression fails here rather than hanging the binary.
  auto shut = std::async(std::launch::async, [&] { pool.shutdown(); });
  const bool returned = shut.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  if (!returned) p.release(2);
  shut.get();
  EXPECT_TRUE(returned) << "shutdown() of the broken pool waited for the job on its live worker";
  for (int pid : pids) EXPECT_TRUE(::kill(pid, 0) != 0 && errno == ESRCH) << "worker " << pid << " left";
}

}  // namespace
