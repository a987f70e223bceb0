// greenlet_parent_test.cpp: a greenlet's parent and set_parent(), ported from
// greenlet's src/greenlet/tests/test_greenlet.py (TestGreenlet,
// TestGreenletSetParentErrors). Python's ValueError/AttributeError for
// misused parents is greenlet::error here, with an errc code.
#include <string>
#include <thread>
#include <vector>

#include "fiber/test_greenlet_support.hpp"

namespace {

using TestGreenlet = greenlet_test::GreenletTest;
using TestGreenletSetParentErrors = greenlet_test::GreenletTest;
using greenlet_port::Event;
using greenlet_port::switch_up;

// expect_set_parent_error(g, p, code, message) checks that g.set_parent(p)
// throws greenlet::error with that code and message and leaves g's parent.
void expect_set_parent_error(greenlet::greenlet& g, const greenlet::greenlet& p, greenlet::errc code,
                             const std::string& message) {
  const greenlet::greenlet parent_before = g.parent();
  try {
    g.set_parent(p);
    ADD_FAILURE() << "set_parent() did not throw";
  } catch (const greenlet::error& e) {
    EXPECT_EQ(e.code(), code);
    EXPECT_EQ(greenlet_port::python_message(e), message);
  }
  EXPECT_TRUE(g.parent() == parent_before);
}

// Python's parent=None means "the current greenlet"; so does an empty handle.
TEST_F(TestGreenlet, test_parent_equals_None) {
  greenlet::greenlet g([] {}, greenlet::greenlet());
  EXPECT_FALSE(g.empty());
  EXPECT_TRUE(g.parent() == greenlet::getcurrent());
}

TEST_F(TestGreenletSetParentErrors, test_threaded_reparent) {
  greenlet::greenlet data;
  Event created_event;
  Event done_event;
  std::thread thread([&] {
    data = greenlet::greenlet([] {});
    created_event.set();
    done_event.wait();
  });
  created_event.wait();
  greenlet::greenlet g([] { switch_up(); });
  g.switch_();
  expect_set_parent_error(g, data, greenlet::errc::wrong_thread, "parent cannot be on a different thread");
  done_event.set();
  thread.join();
  data = greenlet::greenlet();
}

// Python lets an unstarted greenlet take a parent from a dead thread and
// fails on the first switch ("cannot switch to a different thread (which
// happens to have exited)"); it has to reach that through an overridden
// __getattribute__. The C++ library refuses the parent in set_parent()
// itself, so that is where greenlet::error comes from; g is left usable.
TEST_F(TestGreenletSetParentErrors, test_unexpected_reparenting) {
  std::vector<greenlet::greenlet> another;
  std::thread t([&another] {
    greenlet::greenlet g([] {});
    another.push_back(g);
    g.switch_();
  });
  t.join();

  std::vector<std::string> events;
  greenlet::greenlet g([&events] { events.push_back("ran"); });
  expect_set_parent_error(g, another[0], greenlet::errc::wrong_thread, "parent cannot be on a different thread");
  g.switch_();
  EXPECT_EQ(events, (std::vector<std::string>{"ran"}));
  another.clear();
}

// As test_unexpected_reparenting, with the other thread still alive. Python
// raises "Cannot switch to a different thread ... Expected ... Current" on
// the switch; here set_parent() refuses first.
TEST_F(TestGreenletSetParentErrors, test_unexpected_reparenting_thread_running) {
  std::vector<greenlet::greenlet> another;
  Event switched_to_greenlet;
  Event keep_main_alive;
  std::thread t([&] {
    greenlet::greenlet g([] {});
    another.push_back(g);
    g.switch_();
    switched_to_greenlet.set();
    keep_main_alive.wait();
  });
  switched_to_greenlet.wait();
  {
    std::vector<std::string> events;
    greenlet::greenlet g([&events] { events.push_back("ran"); });
    expect_set_parent_error(g, another[0], greenlet::errc::wrong_thread, "parent cannot be on a different thread");
    g.switch_();
    EXPECT_EQ(events, (std::vector<std::string>{"ran"}));
  }
  // The switch itself, from this thread into the other thread's greenlet,
  // gives Python's message.
  try {
    another[0].switch_();
    ADD_FAILURE() << "switch_() into another thread's greenlet did not throw";
  } catch (const greenlet::error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("Cannot switch to a different thread"), std::string::npos) << what;
    EXPECT_NE(what.find("Expected"), std::string::npos) << what;
    EXPECT_NE(what.find("Current"), std::string::npos) << what;
  }
  keep_main_alive.set();
  t.join();
  another.clear();
}

TEST_F(TestGreenletSetParentErrors, test_main_greenlet_parent_is_none) {
  EXPECT_TRUE(greenlet::getcurrent().parent().empty());
}

// Of Python's wrong types (None, 1, self, "42") only None has a C++
// counterpart, the empty handle; the others do not compile.
TEST_F(TestGreenletSetParentErrors, test_set_parent_wrong_types) {
  auto check = [](greenlet::greenlet& glet) {
    const greenlet::greenlet parent_before = glet.parent();
    try {
      glet.set_parent(greenlet::greenlet());
      ADD_FAILURE() << "set_parent(empty handle) did not throw";
    } catch (const greenlet::error& e) {
      EXPECT_EQ(e.code(), greenlet::errc::empty_handle);
    }
    EXPECT_TRUE(glet.parent() == parent_before);
  };
  // First, not running.
  greenlet::greenlet g([] { switch_up(); });
  EXPECT_FALSE(static_cast<bool>(g));
  check(g);
  // Then when running.
  g.switch_();
  EXPECT_TRUE(static_cast<bool>(g));
  check(g);
  // Let it finish.
  g.switch_();
  EXPECT_TRUE(g.dead());
}

TEST_F(TestGreenletSetParentErrors, test_trivial_cycle) {
  greenlet::greenlet glet([] {});
  expect_set_parent_error(glet, glet, greenlet::errc::cyclic_parent, "cyclic parent chain");
}

TEST_F(TestGreenletSetParentErrors, test_trivial_cycle_main) {
  greenlet::greenlet main = greenlet::getcurrent();
  try {
    main.set_parent(greenlet::getcurrent());
    FAIL() << "set_parent() on the main greenlet did not throw";
  } catch (const greenlet::error& e) {
    EXPECT_EQ(e.code(), greenlet::errc::main_parent);
    EXPECT_EQ(greenlet_port::python_message(e), "cannot set the parent of a main greenlet");
  }
  EXPECT_TRUE(main.parent().empty());
}

TEST_F(TestGreenletSetParentErrors, test_deeper_cycle) {
  greenlet::greenlet g1([] {});
  greenlet::greenlet g2([] {});
  greenlet::greenlet g3([] {});
  g1.set_parent(g2);
  g2.set_parent(g3);
  EXPECT_TRUE(g1.parent() == g2);
  EXPECT_TRUE(g2.parent() == g3);
  expect_set_parent_error(g3, g1, greenlet::errc::cyclic_parent, "cyclic parent chain");
}

}  // namespace
