// kill_in_destructor_test.cpp: a greenlet suspended in a destructor (one
// that switches, as docs/porting.md allows: a destructor may wait) when it
// is killed. GreenletExit must not be thrown where it would have to leave a
// destructor while another exception unwinds the stack (C++ destructors are
// noexcept: std::terminate); such a greenlet is reported and leaked instead,
// once, and its thread's exit does not try again.
//
// Each case runs in a child process (a death test): the greenlet it leaks
// must not trip the fixture's leak checks, and before the fix the child
// ended in std::terminate. The child does its work on a thread of its own, so
// that the thread's exit (which kills what is left) runs before the child
// reports, then leaves with _exit (no LeakSanitizer report of the leak).
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/greenlet_test.hpp"

namespace {

// run_and_report(scenario) runs scenario on a new thread with an unraisable
// hook that records what it gets, then prints the log and every report to
// stderr, one a line, and leaves the process with status 0.
template <class Scenario>
[[noreturn]] void run_and_report(Scenario scenario) {
  std::vector<std::string> log;
  std::vector<std::string> reports;
  greenlet::set_unraisable_hook(
      [&reports](std::exception_ptr, std::string_view context) { reports.emplace_back(context); });
  std::thread t([&] { scenario(log); });
  t.join();
  for (const std::string& line : log) std::fprintf(stderr, "log: %s\n", line.c_str());
  std::fprintf(stderr, "reports: %zu\n", reports.size());
  for (const std::string& line : reports) std::fprintf(stderr, "report: %s\n", line.c_str());
  std::fflush(stderr);
  ::_exit(0);
}

// Killed while suspended in its body, the victim's unwinding runs a
// destructor that switches to another greenlet, which goes back to the
// killer: the victim is left suspended in that destructor, where a second
// GreenletExit (its thread's exit used to throw one) would call terminate.
void switch_from_destructor_during_kill(std::vector<std::string>& log) {
  greenlet::greenlet main_g = greenlet::getcurrent();
  greenlet::greenlet other([&] {
    for (;;) main_g.switch_();
  });
  other.switch_();
  {
    struct Cleanup {
      greenlet::greenlet& other;
      std::vector<std::string>& log;
      ~Cleanup() {
        log.push_back("cleanup switches away");
        other.switch_();
        log.push_back("cleanup resumed");  // never
      }
    };
    greenlet::greenlet victim([&] {
      Cleanup cleanup{other, log};
      main_g.switch_();
    });
    victim.switch_();
  }  // the last handle: the kill unwinds into ~Cleanup, which switches away
  log.push_back("dropped");
}

TEST(KillInDestructorDeathTest, SwitchingAwayFromADestructorDuringTheKillIsReportedOnceAndNotKilledAgain) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(run_and_report(switch_from_destructor_during_kill), ::testing::ExitedWithCode(0),
              "log: cleanup switches away\n"
              "log: dropped\n"
              "reports: 1\n"
              "report: greenlet #[0-9]+ is suspended in a destructor \\(or code it calls\\) run while an exception "
              "unwinds its stack.*must catch GreenletExit; it can no longer be reached and its stack is leaked\n");
}

// The victim is suspended in a destructor that an ordinary exception's
// unwinding runs (not a kill): the kill is not delivered at all.
void dropped_while_destructor_waits_during_unwind(std::vector<std::string>& log) {
  greenlet::greenlet main_g = greenlet::getcurrent();
  {
    struct WaitsOnExit {
      greenlet::greenlet& main_g;
      std::vector<std::string>& log;
      ~WaitsOnExit() {
        log.push_back("waiting in destructor, uncaught=" + std::to_string(std::uncaught_exceptions()));
        main_g.switch_();
        log.push_back("destructor resumed");  // never
      }
    };
    greenlet::greenlet victim([&] {
      WaitsOnExit guard{main_g, log};
      throw std::runtime_error("body failed");
    });
    victim.switch_();
    log.push_back("dropping");
  }
  log.push_back("dropped");
}

TEST(KillInDestructorDeathTest, GreenletSuspendedWhileItsStackUnwindsIsNotKilled) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(run_and_report(dropped_while_destructor_waits_during_unwind), ::testing::ExitedWithCode(0),
              "log: waiting in destructor, uncaught=1\n"
              "log: dropping\n"
              "log: dropped\n"
              "reports: 1\n"
              "report: greenlet #[0-9]+ is suspended in a destructor .*its stack is leaked\n");
}

// A victim that catches GreenletExit and switches away, with nothing left
// to reach it, is reported once when dropped and then left alone, as Python
// leaks it ("GreenletExit did not kill ..."): its thread's exit used to kill
// it again, which from a destructor is std::terminate.
void refuses_its_kill(std::vector<std::string>& log) {
  greenlet::greenlet main_g = greenlet::getcurrent();
  greenlet::greenlet other([&] {
    for (;;) main_g.switch_();
  });
  other.switch_();
  {
    greenlet::greenlet victim([&] {
      for (;;) {
        try {
          main_g.switch_();
        } catch (const greenlet::GreenletExit&) {
          log.push_back("victim caught GreenletExit");
          try {
            other.switch_();
          } catch (const greenlet::GreenletExit&) {
            log.push_back("victim killed again");
            throw;
          }
        }
      }
    });
    victim.switch_();
  }
  log.push_back("dropped");
}

TEST(KillInDestructorDeathTest, VictimThatSwitchedAwayFromItsKillIsNotKilledAgainAtThreadExit) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(run_and_report(refuses_its_kill), ::testing::ExitedWithCode(0),
              "log: victim caught GreenletExit\n"
              "log: dropped\n"
              "reports: 1\n"
              "report: greenlet #[0-9]+ caught GreenletExit and switched away instead of finishing; it can no longer "
              "be reached and its stack is leaked\n");
}

// The rule docs/porting.md gives: a destructor that may switch catches
// GreenletExit. Dropped while it waits there (no other exception
// unwinding), the greenlet then ends normally and nothing is leaked.
using KillInDestructor = greenlet_test::GreenletTest;

TEST_F(KillInDestructor, DestructorThatCatchesGreenletExitLetsTheGreenletDie) {
  std::vector<std::string> log;
  greenlet::greenlet main_g = greenlet::getcurrent();
  {
    struct Guard {
      greenlet::greenlet& main_g;
      std::vector<std::string>& log;
      ~Guard() {
        try {
          main_g.switch_();
          log.push_back("guard resumed");
        } catch (const greenlet::GreenletExit&) {
          log.push_back("guard gave up its wait");
        }
      }
    };
    greenlet::greenlet worker([&] {
      Guard guard{main_g, log};
      log.push_back("body done");
    });
    worker.switch_();
    EXPECT_FALSE(worker.dead());
  }
  EXPECT_EQ(log, (std::vector<std::string>{"body done", "guard gave up its wait"}));
}

}  // namespace
