// signal_mask_test.cpp: the threads the pools start block asynchronous
// signals (so that a process-directed signal reaches the thread whose
// signalfd waits for it, never a worker that would take its default action)
// but not the synchronous ones, and their creator's mask is left as it was.
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/concurrent.hpp>

#include "support/greenlet_test.hpp"

namespace concurrent = greenlet::concurrent;

namespace {

bool blocked_here(int sig) {
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, nullptr, &cur);
  return sigismember(&cur, sig) == 1;
}

// thread_ids() lists this process's threads (/proc/self/task).
std::set<std::string> thread_ids() {
  std::set<std::string> ids;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ids.insert(e->d_name);
    }
    ::closedir(d);
  }
  return ids;
}

// blocked_in(tid) is thread tid's blocked set, from its SigBlk line.
unsigned long long blocked_in(const std::string& tid) {
  std::ifstream status("/proc/self/task/" + tid + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("SigBlk:", 0) == 0) return std::strtoull(line.c_str() + 7, nullptr, 16);
  }
  return 0;
}

bool in(unsigned long long mask, int sig) { return (mask >> (sig - 1)) & 1; }

class SignalMask : public greenlet_test::GreenletTest {};

TEST_F(SignalMask, ThreadPoolWorkersBlockAsynchronousSignals) {
  ASSERT_FALSE(blocked_here(SIGUSR1));
  concurrent::ThreadPoolExecutor pool(1);
  auto mask = pool.submit([] {
                    sigset_t cur;
                    pthread_sigmask(SIG_BLOCK, nullptr, &cur);
                    return cur;
                  })
                  .result();
  for (int sig : {SIGUSR1, SIGUSR2, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGALRM, SIGPIPE}) {
    EXPECT_EQ(sigismember(&mask, sig), 1) << "signal " << sig;
  }
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGPROF}) {
    EXPECT_EQ(sigismember(&mask, sig), 0) << "signal " << sig;
  }
  EXPECT_FALSE(blocked_here(SIGUSR1));  // the submitter's mask is restored
  EXPECT_FALSE(blocked_here(SIGTERM));
  pool.shutdown();
}

// A process pool's helper threads (one per worker, talking to it, and the
// watcher that notices a worker dying) are seen through /proc: they run no
// user code.
TEST(SignalMaskProcessPool, HelperThreadsBlockAsynchronousSignals) {
  // ThreadSanitizer starts a thread of its own (all signals blocked) with the
  // process's first: have it started before the count, or the test run
  // alone, or first in a shuffled run, counts it as a fourth helper.
  std::thread([] {}).join();
  const std::set<std::string> before = thread_ids();
  concurrent::ProcessPoolExecutor pool(2);
  // The constructor forks the workers from a thread of its own and joins it,
  // but a joined thread can still be listed a moment (the kernel wakes the
  // joiner before it drops the thread from /proc): look again (bounded)
  // until only the pool's threads are new, else that one counts as a fourth
  // helper with its creator's mask.
  std::vector<std::string> fresh;
  for (int i = 0; i < 500; ++i) {
    fresh.clear();
    for (const std::string& tid : thread_ids()) {
      if (before.count(tid) == 0) fresh.push_back(tid);
    }
    if (fresh.size() <= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  int helpers = 0;
  for (const std::string& tid : fresh) {
    ++helpers;
    // Under AddressSanitizer a thread starts with every signal blocked
    // until the sanitizer's start routine sets the mask it was created with:
    // wait (bounded) for that, else SIGSEGV reads as blocked.
    unsigned long long mask = blocked_in(tid);
    for (int i = 0; i < 500 && in(mask, SIGSEGV); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      mask = blocked_in(tid);
    }
    EXPECT_TRUE(in(mask, SIGUSR1)) << "thread " << tid;
    EXPECT_TRUE(in(mask, SIGTERM)) << "thread " << tid;
    EXPECT_TRUE(in(mask, SIGCHLD)) << "thread " << tid;
    EXPECT_FALSE(in(mask, SIGSEGV)) << "thread " << tid;
  }
  EXPECT_EQ(helpers, 3);  // 2 workers' threads and the watcher
  EXPECT_FALSE(blocked_here(SIGUSR1));
  pool.shutdown();
}

}  // namespace
