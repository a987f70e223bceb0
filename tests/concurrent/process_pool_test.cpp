// ProcessPoolExecutor: registered functions in forked workers, serialized
// arguments and results, remote exceptions, and a crashing worker surfacing
// as BrokenProcessPool (test_process_pool.py's test_killed_child).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"

namespace concurrent = greenlet::concurrent;

namespace {

int square(int x) { return x * x; }
std::string shout(std::string s, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += s + "!";
  return out;
}
int my_pid() { return static_cast<int>(::getpid()); }
int throw_bad_input(int) { throw std::domain_error("bad input"); }
int crash(int) { ::_exit(7); }
int suicide(int) {
  ::kill(::getpid(), SIGKILL);
  return 0;
}
std::vector<double> halves(std::vector<double> v) {
  for (double& x : v) x /= 2;
  return v;
}
int runs_an_event_loop(int x) {
  return greenlet::asyncio::run([x] {
    greenlet::asyncio::sleep(0.001);
    return x * 2;
  });
}
int blocks_on_a_thread_pool(int x) {
  concurrent::ThreadPoolExecutor pool(1);
  return pool.submit([x] { return x + 1; }).result();
}
int prints(int x) {
  std::printf("worker printed %d\n", x);  // not flushed: stdout is a file, fully buffered
  return x;
}
// More than a task's 128 KiB stack.
int uses_a_big_stack(int x) {
  volatile char buffer[512 * 1024];
  for (std::size_t i = 0; i < sizeof buffer; i += 4096) buffer[i] = static_cast<char>(x);
  buffer[sizeof buffer - 1] = static_cast<char>(x);
  return buffer[0] + buffer[sizeof buffer - 1];
}

// Registered at static-initialization time: before any pool forks.
const auto square_fn = concurrent::register_process_function("square", &square);
const auto shout_fn = concurrent::register_process_function("shout", &shout);
const auto pid_fn = concurrent::register_process_function("pid", &my_pid);
const auto fail_fn = concurrent::register_process_function("fail", &throw_bad_input);
const auto crash_fn = concurrent::register_process_function("crash", &crash);
const auto kill_fn = concurrent::register_process_function("suicide", &suicide);
const auto halves_fn = concurrent::register_process_function("halves", &halves);
const auto loop_fn = concurrent::register_process_function("runs_an_event_loop", &runs_an_event_loop);
const auto thread_pool_fn = concurrent::register_process_function("blocks_on_a_thread_pool", &blocks_on_a_thread_pool);
const auto big_stack_fn = concurrent::register_process_function("uses_a_big_stack", &uses_a_big_stack);
const auto prints_fn = concurrent::register_process_function("prints", &prints);

// Process pools fork, so the test process's allocation counts are not a
// meaningful balance here (the registry is a static); plain TEST.
TEST(ProcessPool, RunsInOtherProcesses) {
  concurrent::ProcessPoolExecutor pool(2);
  EXPECT_EQ(pool.submit(square_fn, 12).result(), 144);
  int pid = pool.submit(pid_fn).result();
  EXPECT_NE(pid, static_cast<int>(::getpid()));
  auto pids = pool.pids();
  EXPECT_NE(std::find(pids.begin(), pids.end(), pid), pids.end());
}

TEST(ProcessPool, StringsAndVectorsCross) {
  concurrent::ProcessPoolExecutor pool(1);
  EXPECT_EQ(pool.submit(shout_fn, std::string("hey"), 2).result(), "hey!hey!");
  EXPECT_EQ(pool.submit(halves_fn, std::vector<double>{2, 5}).result(), (std::vector<double>{1, 2.5}));
}

TEST(ProcessPool, ManyJobs) {
  concurrent::ProcessPoolExecutor pool(2);
  std::vector<concurrent::Future<int>> fs;
  for (int i = 0; i < 200; ++i) fs.push_back(pool.submit(square_fn, i));
  for (int i = 0; i < 200; ++i) EXPECT_EQ(fs[i].result(), i * i);
}

TEST(ProcessPool, RemoteExceptionKeepsTypeAndMessage) {
  concurrent::ProcessPoolExecutor pool(1);
  try {
    pool.submit(fail_fn, 1).result();
    FAIL();
  } catch (const concurrent::RemoteError& e) {
    EXPECT_EQ(std::string(e.what()), "domain_error: bad input");
  }
  EXPECT_EQ(pool.submit(square_fn, 3).result(), 9);  // the worker survived
}

TEST(ProcessPool, UnregisteredNameFails) {
  concurrent::ProcessPoolExecutor pool(1);
  concurrent::process_function<int(int)> missing("missing");
  EXPECT_THROW(pool.submit(missing, 1).result(), concurrent::RuntimeError);
}

TEST(ProcessPool, CrashingWorkerBreaksPool) {
  concurrent::ProcessPoolExecutor pool(1);
  auto crashing = pool.submit(crash_fn, 0);
  // Queued behind the crash, or refused if the pool already broke.
  EXPECT_THROW(pool.submit(square_fn, 2).result(30), concurrent::BrokenProcessPool);
  EXPECT_THROW(crashing.result(30), concurrent::BrokenProcessPool);
  EXPECT_THROW(pool.submit(square_fn, 2), concurrent::BrokenProcessPool);
}

TEST(ProcessPool, KilledWorkerBreaksPool) {
  concurrent::ProcessPoolExecutor pool(2);
  EXPECT_THROW(pool.submit(kill_fn, 0).result(30), concurrent::BrokenProcessPool);
}

// Pool b's workers must not hold pool a's sockets, or a's workers would
// never see EOF and a's shutdown would wait forever.
TEST(ProcessPool, TwoPoolsShutDownInEitherOrder) {
  auto a = std::make_unique<concurrent::ProcessPoolExecutor>(1);
  concurrent::ProcessPoolExecutor b(1);
  EXPECT_EQ(a->submit(square_fn, 2).result(), 4);
  EXPECT_EQ(b.submit(square_fn, 3).result(), 9);
  a.reset();
  EXPECT_EQ(b.submit(square_fn, 4).result(), 16);
}

TEST(ProcessPool, SubmitAfterShutdown) {
  concurrent::ProcessPoolExecutor pool(1);
  auto f = pool.submit(square_fn, 5);
  pool.shutdown();
  EXPECT_EQ(f.result(), 25);
  EXPECT_THROW(pool.submit(square_fn, 2), concurrent::RuntimeError);
}

}  // namespace

namespace {

// A pool made inside an event-loop task: its workers were forked from the
// task's greenlet, so each ran on a copy of the task's 128 KiB stack and
// kept its thread's state, believing itself inside the running task. An
// event loop in the worker raised "cannot be called from a running event
// loop", a blocking result() raised blocking_in_loop, and a function with a
// 512 KiB local killed the worker. Python's workers start clean (asyncio
// ignores a loop inherited across fork); these now do too.
TEST(ProcessPool, WorkersOfAPoolMadeInATaskStartClean) {
  std::unique_ptr<concurrent::ProcessPoolExecutor> pool;
  greenlet::asyncio::run([&] {
    pool = std::make_unique<concurrent::ProcessPoolExecutor>(1);
    EXPECT_EQ(greenlet::asyncio::await(greenlet::asyncio::wrap_future(pool->submit(big_stack_fn, 1))), 2);
  });
  EXPECT_EQ(pool->submit(loop_fn, 21).result(30), 42);
#if !defined(__SANITIZE_THREAD__)
  // ThreadSanitizer stops a child forked from a multi-threaded process when it
  // starts a thread (die_after_fork): the thread pool case runs in the other builds.
  EXPECT_EQ(pool->submit(thread_pool_fn, 1).result(30), 2);
#endif
  EXPECT_EQ(pool->submit(big_stack_fn, 2).result(30), 4);
}

// print_around_a_pool(path) runs in a forked child with its stdout sent to
// path, fully buffered as a file is: it prints, makes a pool whose worker
// prints, and prints again. Returns 0, or what failed.
int print_around_a_pool(const std::string& path) {
  std::fflush(stdout);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 20;
  ::dup2(fd, STDOUT_FILENO);
  ::close(fd);
  std::setvbuf(stdout, nullptr, _IOFBF, BUFSIZ);
  std::printf("parent before the pool\n");
  {
    concurrent::ProcessPoolExecutor pool(1);
    if (pool.submit(prints_fn, 1).result(30) != 1) return 21;
  }
  std::printf("parent after the pool\n");
  std::fflush(stdout);
  return 0;
}

std::size_t count(const std::string& text, const std::string& line) {
  std::size_t n = 0;
  for (std::size_t at = text.find(line); at != std::string::npos; at = text.find(line, at + 1)) ++n;
  return n;
}

// Python flushes the standard streams before it forks a worker and as the
// worker exits. Neither was done: with stdout a file, what the parent had
// printed before making the pool was written again by a worker that flushed
// its copy of the buffer, and what a worker printed without flushing was lost
// at its _exit().
TEST(ProcessPool, StdioIsFlushedAroundTheWorkers) {
  const std::string path = testing::TempDir() + "process_pool_stdio_" + std::to_string(::getpid()) + ".txt";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(60);  // a hang must not hang the test
    ::_exit(print_around_a_pool(path));
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child was killed by signal " << WTERMSIG(status);
  ASSERT_EQ(WEXITSTATUS(status), 0) << "20: open failed, 21: wrong result";
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(path.c_str());
  EXPECT_EQ(count(text, "parent before the pool\n"), 1u) << text;
  EXPECT_EQ(count(text, "worker printed 1\n"), 1u) << text;
  EXPECT_EQ(count(text, "parent after the pool\n"), 1u) << text;
}

// A process-pool future awaited from a task through wrap_future().
TEST(ProcessPool, AwaitedFromATask) {
  concurrent::ProcessPoolExecutor pool(1);
  int r = greenlet::asyncio::run(
      [&] { return greenlet::asyncio::await(greenlet::asyncio::wrap_future(pool.submit(square_fn, 9))); });
  EXPECT_EQ(r, 81);
}

}  // namespace
