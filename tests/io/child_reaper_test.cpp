// child_reaper_test.cpp: a child whose Process is destroyed before it was
// reaped is reaped once it exits (src/io/child_reaper.cpp), as asyncio's
// child watchers do. The common port of CPython's
//   try: await asyncio.wait_for(p.communicate(), t)
//   except TimeoutError: p.kill()
// (no p.wait(), the Process then dropped) left one zombie per timeout for
// the life of the process; CPython leaves none.
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"
#include "support/process_stats.hpp"

namespace {

namespace asyncio = greenlet::asyncio;
namespace sp = greenlet::asyncio::subprocess;
using ChildReaper = greenlet_test::GreenletTest;

bool all_reaped(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) {
    if (greenlet_test::process_state(pid) != 0) return false;
  }
  return true;
}

// eventually(done, pause) polls done() for up to 20 seconds: a bound for a
// broken build, not a timing assertion.
bool eventually(const std::function<bool()>& done, const std::function<void()>& pause) {
  for (int i = 0; i < 2000; ++i) {
    if (done()) return true;
    pause();
  }
  return done();
}

void thread_pause() { std::this_thread::sleep_for(std::chrono::milliseconds(10)); }
void task_pause() { asyncio::sleep(0.01); }

// The port above, while the loop still runs: the loop goes on meanwhile.
TEST_F(ChildReaper, KilledAndDroppedChildrenAreReapedWhileTheLoopRuns) {
  std::vector<pid_t> pids;
  asyncio::run([&] {
    for (int i = 0; i < 5; ++i) {
      auto p = asyncio::create_subprocess_exec("sleep", {"30"}, {.stdout_ = sp::PIPE});
      pids.push_back(p.pid());
      try {
        asyncio::wait_for([&] { return p.communicate(); }, 0.01);
      } catch (const asyncio::TimeoutError&) {
        p.kill();
      }
    }  // each Process destroyed right after kill(), before the child is gone
    EXPECT_TRUE(eventually([&] { return all_reaped(pids); }, task_pause));
  });
  EXPECT_TRUE(all_reaped(pids));
}

// A Process that outlives its loop, then killed and dropped with no loop.
TEST_F(ChildReaper, KilledAndDroppedChildrenAreReapedAfterTheLoopClosed) {
  std::vector<asyncio::Process> kept;
  std::vector<pid_t> pids;
  asyncio::run([&] {
    for (int i = 0; i < 3; ++i) {
      kept.push_back(asyncio::create_subprocess_exec("sleep", {"30"}));
      pids.push_back(kept.back().pid());
    }
  });
  for (auto& p : kept) p.kill();
  kept.clear();
  EXPECT_TRUE(eventually([&] { return all_reaped(pids); }, thread_pause));
}

// Spawned, killed and dropped without any loop at all.
TEST_F(ChildReaper, KilledAndDroppedChildrenAreReapedWithoutALoop) {
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    auto p = asyncio::create_subprocess_exec("sleep", {"30"}, {.stdin_ = sp::PIPE, .stdout_ = sp::PIPE});
    pids.push_back(p.pid());
    p.kill();
  }
  EXPECT_TRUE(eventually([&] { return all_reaped(pids); }, thread_pause));
}

// A child still running when its Process goes (the wait_for(p.wait())
// that timed out) is reaped when it exits later; meanwhile a child whose
// Process lives is left to its owner, whose wait() sees the real status.
TEST_F(ChildReaper, ChildRunningWhenDroppedIsReapedOnceItExits) {
  asyncio::run([] {
    asyncio::StreamWriter input;
    pid_t pid = -1;
    {
      auto p = asyncio::create_subprocess_exec("cat", {}, {.stdin_ = sp::PIPE});
      pid = p.pid();
      input = p.stdin_();  // a copy keeps the pipe, so cat runs on
      EXPECT_THROW(asyncio::wait_for([&] { p.wait(); }, 0.01), asyncio::TimeoutError);
    }
    // The reaper serves it now, and must take nothing else.
    auto owned = asyncio::create_subprocess_shell("exit 7");
    EXPECT_EQ(owned.wait(), 7);
    const char state = greenlet_test::process_state(pid);
    EXPECT_TRUE(state != 0 && state != 'Z') << "cat ended before its input did: " << state;
    input.close();  // cat sees EOF and exits
    EXPECT_TRUE(eventually([&] { return greenlet_test::process_state(pid) == 0; }, task_pause));
  });
}

// The reaper closes each pidfd it reaps through, and its own eventfd once
// it has nothing left to reap.
TEST_F(ChildReaper, NoDescriptorIsLeft) {
  const int before = greenlet_test::open_fd_count();
  std::vector<pid_t> pids;
  asyncio::run([&] {
    for (int i = 0; i < 10; ++i) {
      auto p = asyncio::create_subprocess_exec("sleep", {"30"}, {.stdout_ = sp::PIPE, .stderr_ = sp::PIPE});
      pids.push_back(p.pid());
      p.kill();
    }
  });
  EXPECT_TRUE(eventually([&] { return all_reaped(pids); }, thread_pause));
  EXPECT_TRUE(eventually([&] { return greenlet_test::open_fd_count() == before; }, thread_pause));
  EXPECT_EQ(greenlet_test::open_fd_count(), before);
}

}  // namespace
