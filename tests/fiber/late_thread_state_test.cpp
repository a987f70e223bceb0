// late_thread_state_test.cpp: greenlets used on a thread after its greenlet
// state was destroyed at its exit, by a thread_local made before the
// thread's first use of greenlets (destroyed after the state) or by a
// static destructor at process exit. The thread gets a new state, which is
// destroyed in turn (its suspended greenlets killed); it used to be made into
// the destroyed thread_local that owned the first one: never destroyed, or
// destroyed twice (a crash in optimized builds).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "support/greenlet_test.hpp"

namespace {

using LateThreadState = greenlet_test::GreenletTest;

std::vector<std::string>* late_log = nullptr;
// The suspended greenlet leave_one_suspended() leaves: referenced, so that
// only its thread's exit can kill it.
greenlet::greenlet kept_suspended;

// leave_one_suspended() runs one greenlet to its end and leaves another
// suspended, whose guard logs when its stack unwinds.
void leave_one_suspended(std::vector<std::string>& log) {
  greenlet::greenlet main_g = greenlet::getcurrent();
  log.push_back(main_g.is_main() ? "getcurrent() is main" : "getcurrent() is not main");
  log.push_back("finished greenlet returned " +
                std::to_string(greenlet::greenlet([] { return 5; }).switch_().get<int>()));
  kept_suspended = greenlet::greenlet([&log, main_g]() mutable {
    struct Guard {
      std::vector<std::string>& log;
      ~Guard() { log.push_back("suspended greenlet unwound"); }
    } guard{log};
    main_g.switch_();
  });
  kept_suspended.switch_();
}

struct UsesGreenletsWhenDestroyed {
  bool touched = false;
  ~UsesGreenletsWhenDestroyed() {
    if (late_log != nullptr) leave_one_suspended(*late_log);
  }
};

thread_local UsesGreenletsWhenDestroyed per_thread;

TEST_F(LateThreadState, ThreadLocalMadeBeforeTheStateUsesGreenletsInItsDestructor) {
  std::vector<std::string> log;
  late_log = &log;
  std::thread([] {
    per_thread.touched = true;  // made first, so destroyed after the greenlet state
    greenlet::greenlet([] {}).switch_();
  }).join();
  late_log = nullptr;
  EXPECT_TRUE(kept_suspended.dead());
  kept_suspended = greenlet::greenlet();
  EXPECT_EQ(log, (std::vector<std::string>{"getcurrent() is main", "finished greenlet returned 5",
                                           "suspended greenlet unwound"}));
}

void exit_with_a_static_destructor_using_greenlets() {
  greenlet::greenlet([] {}).switch_();  // this thread's state exists, so exit() destroys it
  // An atexit handler runs where a static destructor does: after exit() has
  // destroyed the thread's thread_locals.
  std::atexit([] {
    late_log = new std::vector<std::string>;
    // Registered first, so it runs after whatever destroys the state made below.
    std::atexit([] {
      for (const std::string& line : *late_log) std::fprintf(stderr, "at exit: %s\n", line.c_str());
      std::fflush(stderr);
    });
    leave_one_suspended(*late_log);
  });
  std::exit(0);
}

TEST(LateThreadStateDeathTest, StaticDestructorAtExitUsesGreenlets) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(exit_with_a_static_destructor_using_greenlets(), ::testing::ExitedWithCode(0),
              "at exit: getcurrent\\(\\) is main\n"
              "at exit: finished greenlet returned 5\n"
              "at exit: suspended greenlet unwound\n");
}

}  // namespace
