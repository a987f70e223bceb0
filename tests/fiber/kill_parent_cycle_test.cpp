// kill_parent_cycle_test.cpp: while a greenlet is killed its parent is the
// killer, so set_parent()'s cycle check cannot see that the victim's own
// parent comes back when the kill returns. A victim that makes itself its
// old parent's ancestor then (a.set_parent(g) in its GreenletExit handler)
// made a cycle: a.parent == g and g.parent == a, and the next switch through
// them, or the next result handed up through them, looped for ever. Now the
// victim keeps the killer as its parent; and a switch that would go round a
// cycle of dead greenlets anyway throws instead of hanging.
//
// Each case runs in a child process with an alarm: before the fix they hung.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <greenlet/greenlet.hpp>

#include <gtest/gtest.h>

#include "support/forked_child.hpp"

namespace {

// Not GreenletTest: the death test machinery allocates in the parent.
using KillParentCycleDeathTest = ::testing::Test;

using greenlet_test::forked::fail;

void expect(bool ok, const char* what) {
  if (!ok) fail(what);
}

// The victim g (parent a, dead) makes a its child while being killed.
void victim_adopts_its_dead_parent() {
  ::alarm(10);
  greenlet::greenlet main_g = greenlet::getcurrent();
  greenlet::greenlet a([] { return 1; });
  a.switch_();  // a is dead, its parent main
  bool adopted = false;
  {
    greenlet::greenlet g(
        [&] {
          try {
            greenlet::getcurrent().parent().switch_();
          } catch (const greenlet::GreenletExit&) {
            a.set_parent(greenlet::getcurrent());  // accepted: g's parent is the killer for now
            adopted = true;
          }
        },
        a);
    g.switch_();
  }  // the last handle: main kills g
  expect(adopted, "the victim did not re-parent a");
  greenlet::greenlet g = a.parent();
  expect(!g.is_main() && g.dead(), "a's parent is not the dead victim");
  expect(g.parent() == main_g, "the victim did not keep the killer (main) as its parent");
  // Through dead a and dead g to main, the running greenlet: nothing to switch.
  expect(a.switch_(7).get<int>() == 7, "a switch to dead a did not land in main");
  std::_Exit(0);
}

TEST_F(KillParentCycleDeathTest, VictimMakingItsDeadParentItsChildKeepsTheKiller) {
  EXPECT_EXIT(victim_adopts_its_dead_parent(), ::testing::ExitedWithCode(0), "");
}

// The same with a live parent b, which finishes afterwards: its result goes
// up through dead g to main.
void victim_adopts_its_live_parent() {
  ::alarm(10);
  greenlet::greenlet main_g = greenlet::getcurrent();
  std::vector<std::string> log;
  greenlet::greenlet b([&] {
    greenlet::getcurrent().parent().switch_();
    log.push_back("b finishing");
    return 1;
  });
  b.switch_();  // b suspended, its parent main
  {
    greenlet::greenlet g(
        [&] {
          try {
            main_g.switch_();
          } catch (const greenlet::GreenletExit&) {
            b.set_parent(greenlet::getcurrent());
          }
        },
        b);
    g.switch_();
  }  // main kills g
  expect(b.parent().parent() == main_g, "the victim did not keep the killer (main) as its parent");
  expect(b.switch_().get<int>() == 1, "b's result did not come up to main");
  expect(log == std::vector<std::string>{"b finishing"}, "b did not finish");
  std::_Exit(0);
}

TEST_F(KillParentCycleDeathTest, VictimMakingItsLiveParentItsChildKeepsTheKiller) {
  EXPECT_EXIT(victim_adopts_its_live_parent(), ::testing::ExitedWithCode(0), "");
}

// A cycle of dead greenlets, made by hand (nothing public makes one now):
// a switch into it throws errc::cyclic_parent, and a greenlet finishing into
// it hands that error to the main greenlet, instead of either looping.
void switch_into_a_dead_cycle() {
  ::alarm(10);
  greenlet::greenlet main_g = greenlet::getcurrent();
  greenlet::greenlet a([] {});
  greenlet::greenlet b([] {});
  a.switch_();
  b.switch_();
  greenlet::greenlet c([&] { main_g.switch_(); }, a);
  c.switch_();  // suspended; its result would go to a
  a.set_parent(b);
  greenlet::detail::greenlet_impl* b_parent = b.impl()->parent;
  b.impl()->parent = a.impl();  // b -> a -> b; references fixed before returning
  try {
    a.switch_();
    fail("a switch round the cycle returned");
  } catch (const greenlet::error& e) {
    expect(e.code() == greenlet::errc::cyclic_parent, "wrong error code for the switch");
  }
  try {
    c.switch_();  // c finishes; a and b cannot take its end
    fail("c's end came back as a value");
  } catch (const greenlet::error& e) {
    expect(e.code() == greenlet::errc::cyclic_parent, "wrong error code for c's end");
  }
  expect(c.dead(), "c did not finish");
  b.impl()->parent = b_parent;
  std::_Exit(0);
}

TEST_F(KillParentCycleDeathTest, SwitchRoundACycleOfDeadGreenletsThrows) {
  EXPECT_EXIT(switch_into_a_dead_cycle(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
