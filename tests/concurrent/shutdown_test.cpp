// shutdown(wait=true) as Python's Executor.shutdown(): callable several times
// and from several threads, each call returning once the accepted work is done
// and the pool's resources are freed; and what it does when called from one of
// the pool's own threads (a job or a done callback, or the destructor when the
// last handle goes there). Each case runs in a child process with an alarm, so
// that a regression (std::terminate, a hang) fails the test rather than the
// whole binary or CI.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/concurrent.hpp>

#include "gate.hpp"
#include "support/forked_child.hpp"
#include "support/greenlet_test.hpp"
#include "support/process_stats.hpp"

namespace concurrent = greenlet::concurrent;

namespace {

using concurrent_test::gate;

using greenlet_test::forked::expect_child_succeeds;
using greenlet_test::forked::fail;

int shutdown_square(int x) { return x * x; }
// wait_for_byte(fd) blocks a worker process until the test writes a byte to
// the pipe it inherited (see pipe_gate), and returns that byte.
int wait_for_byte(int fd) {
  char c = 0;
  while (::read(fd, &c, 1) < 0 && errno == EINTR) {
  }
  return c;
}

// Registered at static-initialization time: before any pool forks.
const auto shutdown_square_fn = concurrent::register_process_function("shutdown_test.square", &shutdown_square);
const auto wait_for_byte_fn = concurrent::register_process_function("shutdown_test.wait_for_byte", &wait_for_byte);

// pipe_gate is gate.hpp across the process boundary: made before the pool,
// so its workers inherit it; a job running wait_for_byte_fn(read_end) holds
// its worker until release() writes one byte per such job.
struct pipe_gate {
  int read_end = -1, write_end = -1;
  pipe_gate() {
    int fds[2];
    if (::pipe(fds) != 0) fail("pipe() failed");
    read_end = fds[0];
    write_end = fds[1];
  }
  ~pipe_gate() {
    ::close(read_end);
    ::close(write_end);
  }
  pipe_gate(const pipe_gate&) = delete;
  pipe_gate& operator=(const pipe_gate&) = delete;
  void release(int jobs) {
    for (int i = 0; i < jobs; ++i) {
      if (::write(write_end, "x", 1) != 1) fail("write() to the gate failed");
    }
  }
};

// Both callers block until the job at the gate is done. Before the fix the
// second found the thread list already taken by the first and returned at once.
void thread_pool_second_shutdown_waits() {
  concurrent::ThreadPoolExecutor pool(1);
  gate g;
  std::atomic<bool> finished{false};
  auto job = pool.submit([&] {
    g.wait();
    finished = true;
  });
  while (!job.running()) std::this_thread::yield();
  std::atomic<int> calling{0}, returned{0}, returned_early{0};
  auto shut_down = [&] {
    ++calling;
    pool.shutdown(true);
    if (!finished.load()) ++returned_early;
    ++returned;
  };
  std::thread first(shut_down), second(shut_down);
  while (calling.load() < 2) std::this_thread::yield();
  // Give a caller that does not wait the time to return (it needs only the
  // pool's lock); one that waits stays until the gate opens.
  for (int i = 0; i < 200 && returned.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  g.release();
  first.join();
  second.join();
  if (returned_early.load() != 0) fail("a shutdown(wait=true) returned before the work was done");
}

// What the process pool now does from its own threads, ThreadPoolExecutor
// did already: shutdown(wait=true) from a job throws RuntimeError, and the
// work queued behind still runs; the executor destroyed in a job (the last
// handle was there) lets the workers finish the queue.
void thread_pool_shutdown_from_its_worker() {
  auto pool = std::make_shared<concurrent::ThreadPoolExecutor>(1);
  gate g;
  std::atomic<int> refused{0}, ran{0};
  auto first = pool->submit([&g, &refused, keep = pool] {
    g.wait();
    try {
      keep->shutdown(true);
    } catch (const concurrent::RuntimeError& e) {
      if (e.condition() == concurrent::concurrent_errc::shutdown) ++refused;
    }
  });
  std::vector<concurrent::Future<void>> queued;
  for (int i = 0; i < 10; ++i) queued.push_back(pool->submit([&ran] { ++ran; }));
  pool.reset();  // the first job's copy is the last: it goes on the worker
  g.release();
  try {
    first.result(30);
    for (auto& f : queued) f.result(30);
  } catch (const std::exception& e) {
    fail(std::string("a job failed: ") + e.what());
  }
  if (refused.load() != 1) fail("shutdown(wait=true) from the pool's worker did not throw RuntimeError");
  if (ran.load() != 10) fail("queued jobs were lost");
}

// Two threads shut a busy process pool down at once. Before the fix the one
// that found the thread list taken closed the worker sockets under the other's
// threads: every job not yet sent failed with BrokenProcessPool.
void process_pool_two_shutdowns() {
  pipe_gate pipe;
  concurrent::ProcessPoolExecutor pool(2);
  std::vector<concurrent::Future<int>> held, queued;
  for (int i = 0; i < 2; ++i) held.push_back(pool.submit(wait_for_byte_fn, pipe.read_end));
  for (int i = 0; i < 6; ++i) queued.push_back(pool.submit(shutdown_square_fn, i));
  while (!(held[0].running() && held[1].running())) std::this_thread::yield();
  std::atomic<int> calling{0}, returned_early{0};
  auto shut_down = [&] {
    ++calling;
    pool.shutdown(true);
    for (auto& f : queued) {
      if (!f.done()) ++returned_early;
    }
  };
  std::thread first(shut_down), second(shut_down);
  while (calling.load() < 2) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // both inside shutdown()
  pipe.release(2);
  first.join();
  second.join();
  try {
    for (auto& f : held) {
      if (f.result(0) != 'x') fail("a held job returned the wrong value");
    }
    for (int i = 0; i < 6; ++i) {
      if (queued[i].result(0) != i * i) fail("a queued job returned the wrong value");
    }
  } catch (const std::exception& e) {
    fail(std::string("a job failed: ") + e.what());
  }
  if (returned_early.load() != 0) fail("a shutdown(wait=true) returned before the work was done");
}

// shutdown(wait=true) from a done callback, which runs on the pool's thread
// that finished the job: it cannot wait for itself, so it throws RuntimeError,
// as ThreadPoolExecutor's does from a worker; the shutdown still takes effect
// and the work queued behind still runs. Before the fix the thread joined
// itself: std::terminate.
void process_pool_shutdown_from_done_callback() {
  pipe_gate pipe;
  concurrent::ProcessPoolExecutor pool(1);
  auto held = pool.submit(wait_for_byte_fn, pipe.read_end);
  std::atomic<int> refused{0};
  held.add_done_callback([&](const concurrent::Future<int>&) {
    try {
      pool.shutdown(true);
    } catch (const concurrent::RuntimeError& e) {
      if (e.condition() == concurrent::concurrent_errc::shutdown) ++refused;
    }
  });
  std::vector<concurrent::Future<int>> queued;
  for (int i = 0; i < 4; ++i) queued.push_back(pool.submit(shutdown_square_fn, i));
  pipe.release(1);
  try {
    if (held.result(30) != 'x') fail("the held job returned the wrong value");
    for (int i = 0; i < 4; ++i) {
      if (queued[i].result(30) != i * i) fail("a queued job returned the wrong value");
    }
  } catch (const std::exception& e) {
    fail(std::string("a job failed: ") + e.what());
  }
  if (refused.load() != 1) fail("shutdown(wait=true) from the pool's own thread did not throw RuntimeError");
  try {
    pool.submit(shutdown_square_fn, 1);
    fail("submit() after the callback's shutdown() was accepted");
  } catch (const concurrent::RuntimeError&) {
  }
  pool.shutdown(true);  // from here it waits and frees, as usual
}

// The last handle to the executor goes in a done callback, on a pool thread:
// its destructor's shutdown(wait=true) cannot join that thread. The work
// queued behind still runs, and once it has, the worker processes are reaped
// and the sockets closed by the pool's last thread. Before the fix:
// std::terminate. (Were the pool not shared with its threads, the last one
// would go on in the freed pool: AddressSanitizer builds catch that.)
void process_pool_destroyed_on_its_thread() {
  pipe_gate pipe;
  // ThreadSanitizer starts a helper thread with the process's first thread:
  // have it started before the count.
  std::thread([] {}).join();
  const int fds_before = greenlet_test::open_fd_count();
  const int threads_before = greenlet_test::thread_count();
  auto pool = std::make_shared<concurrent::ProcessPoolExecutor>(2);
  const std::vector<int> pids = pool->pids();
  auto held = pool->submit(wait_for_byte_fn, pipe.read_end);
  held.add_done_callback([keep = pool](const concurrent::Future<int>&) {});
  std::vector<concurrent::Future<int>> queued;
  for (int i = 0; i < 20; ++i) queued.push_back(pool->submit(shutdown_square_fn, i));
  pool.reset();  // the callback's copy is the last
  pipe.release(1);
  try {
    if (held.result(30) != 'x') fail("the held job returned the wrong value");
    for (int i = 0; i < 20; ++i) {
      if (queued[i].result(30) != i * i) fail("a queued job returned the wrong value");
    }
  } catch (const std::exception& e) {
    fail(std::string("a job failed: ") + e.what());
  }
  // Freed by the pool's last thread, after the results: wait for it, bounded,
  // and for that thread to end.
  auto freed = [&] {
    for (int pid : pids) {
      if (::kill(pid, 0) == 0 || errno != ESRCH) return false;  // alive, or a zombie not reaped
    }
    // At most as many threads: the thread joined above may still have been
    // listed in threads_before (a joined thread leaves /proc a moment later).
    return greenlet_test::open_fd_count() == fds_before && greenlet_test::thread_count() <= threads_before;
  };
  for (int i = 0; i < 3000 && !freed(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!freed()) fail("the worker processes, their sockets or the pool's threads outlived the pool");
}

TEST(ShutdownDeathTest, ThreadPoolSecondConcurrentShutdownWaitsForTheWork) {
  expect_child_succeeds(&thread_pool_second_shutdown_waits);
}

TEST(ShutdownDeathTest, ThreadPoolShutdownFromItsWorkerThrowsAndLosesNoJob) {
  expect_child_succeeds(&thread_pool_shutdown_from_its_worker);
}

TEST(ShutdownDeathTest, ProcessPoolConcurrentShutdownsLoseNoJob) { expect_child_succeeds(&process_pool_two_shutdowns); }

TEST(ShutdownDeathTest, ProcessPoolShutdownFromDoneCallbackThrowsAndLosesNoJob) {
  expect_child_succeeds(&process_pool_shutdown_from_done_callback);
}

TEST(ShutdownDeathTest, ProcessPoolDestroyedOnItsOwnThreadFinishesAndFrees) {
  expect_child_succeeds(&process_pool_destroyed_on_its_thread);
}

}  // namespace
