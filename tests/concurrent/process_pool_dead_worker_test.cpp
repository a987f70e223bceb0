// process_pool_dead_worker_test.cpp: a worker process that dies while it has
// no work breaks the pool at once, as CPython's executor manager does when a
// worker's sentinel fires: the pool reaps it, and submit() then raises
// BrokenProcessPool saying what happened. Before, nobody noticed (the worker
// stayed a zombie) until a submit() handed it a job.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"

namespace concurrent = greenlet::concurrent;

namespace {

int cube(int x) { return x * x * x; }
const auto cube_fn = concurrent::register_process_function("dead_worker_test_cube", &cube);

// gone(pid) is true once pid is reaped: a zombie still answers kill(pid, 0).
bool gone(int pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

bool reaped_within(int pid, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!gone(pid)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST(ProcessPoolDeadWorker, IdleWorkerKilledBreaksThePoolAtOnce) {
  concurrent::ProcessPoolExecutor pool(2);
  EXPECT_EQ(pool.submit(cube_fn, 3).result(30), 27);
  const int victim = pool.pids().front();
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  ASSERT_TRUE(reaped_within(victim, std::chrono::seconds(10))) << "the killed worker was not reaped";
  // Broken before the worker was reaped: the very next submit() is refused.
  try {
    pool.submit(cube_fn, 2);
    ADD_FAILURE() << "submit() to a pool whose worker was killed did not throw";
  } catch (const concurrent::BrokenProcessPool& e) {
    EXPECT_EQ(std::string(e.what()),
              "A child process terminated abruptly, the process pool is not usable anymore: worker process " +
                  std::to_string(victim) +
                  " was killed by signal 9 (SIGKILL). Shut it down and make a new ProcessPoolExecutor.");
  }
  pool.shutdown();  // reaps the other worker; the dead one is not waited for twice
}

// A worker that exits by itself while idle (here: told to by a signal whose
// default action ends it) is reported with its way out too, and shutdown
// still returns.
TEST(ProcessPoolDeadWorker, IdleWorkerTerminatedIsReported) {
  concurrent::ProcessPoolExecutor pool(1);
  EXPECT_EQ(pool.submit(cube_fn, 2).result(30), 8);
  const int victim = pool.pids().front();
  ASSERT_EQ(::kill(victim, SIGTERM), 0);
  ASSERT_TRUE(reaped_within(victim, std::chrono::seconds(10)));
  EXPECT_THROW(
      {
        try {
          pool.submit(cube_fn, 2);
        } catch (const concurrent::BrokenProcessPool& e) {
          EXPECT_NE(std::string(e.what()).find("was killed by signal 15 (SIGTERM)"), std::string::npos) << e.what();
          throw;
        }
      },
      concurrent::BrokenProcessPool);
}

}  // namespace
