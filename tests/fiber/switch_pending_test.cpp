// switch_pending_test.cpp: what a switch leaves for the greenlet it resumes
// (a value, an exception, a trace call, an origin to kill) reaches it, and
// nothing more: the inline switch tests one word for all of it
// (switch_state::pending, include/greenlet/detail/switch_inline.hpp), which
// whoever leaves work sets and only a landing clears. Each test is a path
// where a missing or stale bit would lose work or deliver it twice.
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "support/greenlet_test.hpp"

namespace {

using SwitchPending = greenlet_test::GreenletTest;

// A value carried one way is not seen again by later switches carrying nothing.
TEST_F(SwitchPending, EmptySwitchesAfterAValueReceiveNothing) {
  greenlet::greenlet main = greenlet::getcurrent();
  std::vector<std::string> got;
  greenlet::greenlet child([&] {
    greenlet::value v = main.switch_(std::string("to main"));
    got.push_back(v.empty() ? "child: empty" : "child: " + v.get<std::string>());
    v = main.switch_();
    got.push_back(v.empty() ? "child: empty" : "child: " + v.get<std::string>());
    main.switch_();
  });
  greenlet::value v = child.switch_();
  got.push_back("main: " + v.get<std::string>());
  v = child.switch_();
  got.push_back(v.empty() ? "main: empty" : "main: " + v.get<std::string>());
  v = child.switch_(std::string("to child"));
  got.push_back(v.empty() ? "main: empty" : "main: " + v.get<std::string>());
  child.switch_();
  EXPECT_TRUE(child.dead());
  EXPECT_EQ(got, (std::vector<std::string>{"main: to main", "child: empty", "main: empty", "child: to child",
                                           "main: empty"}));
}

// A greenlet started with arguments consumes them at its start: the switch
// it makes back carries nothing.
TEST_F(SwitchPending, ArgumentsOfAStartAreNotReceivedAgain) {
  greenlet::greenlet main = greenlet::getcurrent();
  int started_with = 0;
  greenlet::greenlet child([&](int n) {
    started_with = n;
    main.switch_();
  });
  greenlet::value back = child.switch_(7);
  EXPECT_EQ(started_with, 7);
  EXPECT_TRUE(back.empty());
  child.switch_();
  EXPECT_TRUE(child.dead());
}

// The running greenlet loses its last handle, switches to itself (no jump,
// nothing landed), then away to main, suspended in an inline switch (a
// started greenlet's): it is still killed once suspended, and what it sent
// arrives. (Main suspended in the slow path, as when starting a greenlet,
// reaps without looking at the bits.)
TEST_F(SwitchPending, OrphanThatSwitchesToItselfFirstIsStillKilledWhenItSwitchesAway) {
  greenlet::greenlet main = greenlet::getcurrent();
  std::vector<std::string> log;
  struct Guard {
    std::vector<std::string>& log;
    ~Guard() { log.push_back("unwound"); }
  };
  std::vector<greenlet::greenlet> holder;
  holder.emplace_back([&] {
    Guard guard{log};
    main.switch_();  // started: main's next switch to it is an inline one
    holder.clear();  // the last handle from outside its own stack
    greenlet::value self_back = greenlet::getcurrent().switch_(1);
    log.push_back("to itself: " + std::to_string(self_back.get<int>()));
    main.switch_(2);
    log.push_back("resumed");  // never: killed once suspended
  });
  holder[0].switch_();
  greenlet::value v = holder[0].switch_();
  log.push_back("main got " + std::to_string(v.get<int>()));
  EXPECT_EQ(log, (std::vector<std::string>{"to itself: 1", "unwound", "main got 2"}));
}

// Tracing on, then off from inside the trace function's own thread: every
// switch while it is on is traced once, none after, and values and
// exceptions cross both kinds of switches.
TEST_F(SwitchPending, TracingTurnedOffLeavesSwitchesCarryingValuesAndExceptions) {
  greenlet::greenlet main = greenlet::getcurrent();
  std::vector<std::string> events;
  greenlet::greenlet child([&] {
    for (;;) {
      greenlet::value v = main.switch_(std::string("pong"));
      if (v.empty()) return;
    }
  });
  child.switch_();  // started; suspended in its loop
  greenlet::settrace([&](std::string_view event, const greenlet::greenlet&, const greenlet::greenlet&) {
    events.emplace_back(event);
  });
  EXPECT_EQ(child.switch_(std::string("ping")).get<std::string>(), "pong");
  EXPECT_EQ(events.size(), 2u);  // there and back
  greenlet::settrace(nullptr);
  EXPECT_EQ(child.switch_(std::string("ping")).get<std::string>(), "pong");
  EXPECT_EQ(events.size(), 2u);
  greenlet::greenlet thrower([&] { throw std::runtime_error("from thrower"); });
  EXPECT_THROW(thrower.switch_(), std::runtime_error);
  child.switch_();
  EXPECT_TRUE(child.dead());
}

// An exception thrown into a greenlet suspended in an inline switch reaches
// it; the switch after it carries nothing stale.
TEST_F(SwitchPending, ThrowIntoAnInlineSwitchThenAnEmptySwitch) {
  greenlet::greenlet main = greenlet::getcurrent();
  std::vector<std::string> got;
  greenlet::greenlet child([&] {
    try {
      main.switch_();
    } catch (const std::runtime_error& e) {
      got.push_back(std::string("caught ") + e.what());
    }
    greenlet::value v = main.switch_();
    got.push_back(v.empty() ? "empty" : "stale");
  });
  child.switch_();
  EXPECT_TRUE(child.throw_(std::make_exception_ptr(std::runtime_error("boom"))).empty());
  child.switch_();
  EXPECT_TRUE(child.dead());
  EXPECT_EQ(got, (std::vector<std::string>{"caught boom", "empty"}));
}

}  // namespace
