// kill_test.cpp: a suspended greenlet that can no longer be reached is killed
// with GreenletExit, so that every destructor on its stack runs: when its
// last handle goes away, and at its thread's exit. What it throws instead of
// dying goes to the unraisable hook.
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/greenlet_test.hpp"

namespace {

using Kill = greenlet_test::GreenletTest;

// Guard records its name in a log when destroyed.
struct Guard {
  std::vector<std::string>& log;
  std::string name;
  ~Guard() { log.push_back("~" + name); }
};

void nested(std::vector<std::string>& log, int depth) {
  Guard guard{log, "frame" + std::to_string(depth)};
  if (depth == 3) {
    log.push_back("suspend");
    greenlet::getcurrent().parent().switch_();
    log.push_back("resumed");  // never: it is killed instead
    return;
  }
  nested(log, depth + 1);
}

TEST_F(Kill, DestructorsRunWhenLastHandleIsDropped) {
  std::vector<std::string> log;
  greenlet::greenlet g([&log] {
    Guard outer{log, "run"};
    try {
      nested(log, 1);
    } catch (const greenlet::GreenletExit&) {
      log.push_back("GreenletExit");
      throw;
    }
  });
  g.switch_();
  EXPECT_EQ(log, (std::vector<std::string>{"suspend"}));
  greenlet::greenlet copy = g;
  g = greenlet::greenlet();
  EXPECT_EQ(log.size(), 1u) << "killed while a handle was left";
  copy = greenlet::greenlet();
  EXPECT_EQ(log, (std::vector<std::string>{"suspend", "~frame3", "~frame2", "~frame1", "GreenletExit", "~run"}));
}

// A greenlet being killed may choose a new parent in its GreenletExit
// handler (Python: `getcurrent().parent = main` in `except GreenletExit`):
// its end goes there, and the killer, its temporary parent, keeps exactly
// its own references (kill() used to release it a second time: freed while
// a handle remained).
TEST_F(Kill, VictimThatReparentsItselfDuringItsKill) {
  std::vector<std::string> log;
  greenlet::greenlet main_g = greenlet::getcurrent();
  greenlet::greenlet killer([&] {
    {
      greenlet::greenlet victim([&] {
        try {
          greenlet::getcurrent().parent().switch_();
        } catch (const greenlet::GreenletExit&) {
          greenlet::getcurrent().set_parent(main_g);
          log.push_back("victim re-parented");
        }
        return std::string("victim's end");
      });
      victim.switch_();
    }  // last handle to the suspended victim: the killer kills it
    log.push_back("killer resumed");
    return std::string("killer's end");
  });
  // The victim's end goes to its new parent, main, in the middle of the kill.
  EXPECT_EQ(killer.switch_().get<std::string>(), "victim's end");
  EXPECT_EQ(log, (std::vector<std::string>{"victim re-parented"}));
  EXPECT_EQ(killer.switch_().get<std::string>(), "killer's end");
  EXPECT_TRUE(killer.dead());
  killer = greenlet::greenlet();  // the last reference to the killer, released once
  EXPECT_EQ(log, (std::vector<std::string>{"victim re-parented", "killer resumed"}));
}

// A handle the greenlet keeps to itself (captured, or a local on its own
// stack) does not keep it alive.
TEST_F(Kill, HandlesOnItsOwnStackDoNotKeepItAlive) {
  std::vector<std::string> log;
  greenlet::greenlet g([&log] {
    greenlet::greenlet self = greenlet::getcurrent();
    Guard guard{log, "local"};
    self.parent().switch_();
    log.push_back("resumed");
  });
  g.switch_();
  EXPECT_TRUE(log.empty());
  g = greenlet::greenlet();
  EXPECT_EQ(log, (std::vector<std::string>{"~local"}));
}

// Thread exit kills greenlets still suspended, on their own thread, before
// join() returns; even one whose handle lives on, held by another thread.
TEST_F(Kill, DestructorsRunAtThreadExit) {
  std::vector<std::string> log;
  std::thread::id destroyed_on;
  std::thread::id worker_id;
  greenlet::greenlet kept;
  std::thread t([&] {
    worker_id = std::this_thread::get_id();
    greenlet::greenlet g([&] {
      struct OnExit {
        std::vector<std::string>& log;
        std::thread::id& where;
        ~OnExit() {
          where = std::this_thread::get_id();
          log.push_back("~OnExit");
        }
      } on_exit{log, destroyed_on};
      greenlet::getcurrent().parent().switch_();
      log.push_back("resumed");
    });
    g.switch_();
    log.push_back("thread done");
    kept = g;
  });
  t.join();
  EXPECT_EQ(log, (std::vector<std::string>{"thread done", "~OnExit"}));
  EXPECT_EQ(destroyed_on, worker_id);
  ASSERT_FALSE(kept.empty());
  EXPECT_TRUE(kept.dead());
  kept = greenlet::greenlet();
}

// A greenlet that catches GreenletExit and throws something else: it dies,
// and the exception goes to the unraisable hook, not to the killer.
TEST_F(Kill, OtherExceptionFromKilledGreenletGoesToUnraisableHook) {
  std::vector<std::string> reports;
  greenlet::unraisable_hook previous =
      greenlet::set_unraisable_hook([&reports](std::exception_ptr e, std::string_view context) {
        std::string what = "no exception";
        try {
          if (e) std::rethrow_exception(e);
        } catch (const std::runtime_error& error) {
          what = std::string("runtime_error: ") + error.what();
        } catch (...) {
          what = "something else";
        }
        reports.push_back(what + " | " + std::string(context));
      });
  bool finished = false;
  {
    greenlet::greenlet g([&] {
      try {
        greenlet::getcurrent().parent().switch_();
      } catch (const greenlet::GreenletExit&) {
        throw std::runtime_error("not dying quietly");
      }
      finished = true;
    });
    g.switch_();
    greenlet::greenlet observer = g;
    EXPECT_NO_THROW(g = greenlet::greenlet());
    EXPECT_TRUE(reports.empty());
    EXPECT_NO_THROW(observer = greenlet::greenlet());
  }
  greenlet::set_unraisable_hook(std::move(previous));
  EXPECT_FALSE(finished);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("runtime_error: not dying quietly"), std::string::npos) << reports[0];
  EXPECT_NE(reports[0].find("GreenletExit"), std::string::npos) << reports[0];
}

}  // namespace
