// greenlet_dealloc_test.cpp: what happens when the last handle to a suspended
// greenlet goes away (it is killed with GreenletExit), ported from greenlet's
// src/greenlet/tests/test_greenlet.py (TestGreenlet). Killing is synchronous
// in C++, so Python's gc.collect() calls have no counterpart.
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fiber/test_greenlet_support.hpp"

namespace {

using TestGreenlet = greenlet_test::GreenletTest;
using greenlet_port::fmain;
using greenlet_port::kind_of;
using greenlet_port::SomeError;
using greenlet_port::switch_up;

// unraisable_capture installs an unraisable hook that records what it gets,
// and restores the previous hook when it goes away.
class unraisable_capture {
 public:
  unraisable_capture()
      : previous_(greenlet::set_unraisable_hook(
            [this](std::exception_ptr error, std::string_view) { events_.push_back(std::move(error)); })) {}
  ~unraisable_capture() { greenlet::set_unraisable_hook(std::move(previous_)); }
  unraisable_capture(const unraisable_capture&) = delete;
  unraisable_capture& operator=(const unraisable_capture&) = delete;
  const std::vector<std::exception_ptr>& events() const { return events_; }

 private:
  std::vector<std::exception_ptr> events_;
  greenlet::unraisable_hook previous_;
};

TEST_F(TestGreenlet, test_dealloc) {
  std::vector<std::string> seen;
  greenlet::greenlet g1(fmain);
  greenlet::greenlet g2(fmain);
  g1.switch_(&seen);
  g2.switch_(&seen);
  EXPECT_TRUE(seen.empty());
  g1 = greenlet::greenlet();
  EXPECT_EQ(seen, (std::vector<std::string>{"GreenletExit"}));
  g2 = greenlet::greenlet();
  EXPECT_EQ(seen, (std::vector<std::string>{"GreenletExit", "GreenletExit"}));
}

TEST_F(TestGreenlet, test_dealloc_catches_GreenletExit_throws_other) {
  greenlet::greenlet g([] {
    try {
      switch_up();
    } catch (const greenlet::GreenletExit&) {
      throw SomeError();
    }
  });
  g.switch_();

  std::vector<std::string> kinds;
  {
    unraisable_capture capture;
    g = greenlet::greenlet();
    for (const std::exception_ptr& e : capture.events()) kinds.push_back(kind_of(e));
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"SomeError"}));
}

TEST_F(TestGreenlet, test_parent_restored_on_kill) {
  greenlet::greenlet hub([] {});
  greenlet::greenlet main = greenlet::getcurrent();
  std::vector<greenlet::greenlet> result;
  greenlet::greenlet g(
      [&] {
        try {
          // Wait to be killed by going back to the test.
          main.switch_();
        } catch (const greenlet::GreenletExit&) {
          // Resurrect and switch to parent.
          result.push_back(greenlet::getcurrent().parent());
          result.push_back(greenlet::getcurrent());
          hub.switch_();
        }
      },
      hub);
  g.switch_();
  {
    unraisable_capture capture;
    // Drop the only handle, thereby raising GreenletExit.
    g = greenlet::greenlet();
    EXPECT_TRUE(capture.events().empty());
  }
  ASSERT_EQ(result.size(), 2u);
  EXPECT_TRUE(result[0] == main);
  EXPECT_TRUE(result[1].parent() == hub);
  EXPECT_TRUE(hub.dead());
  EXPECT_FALSE(result[1].dead());  // suspended in hub.switch_(), which returned to its killer
  // Releasing it kills it again; this time GreenletExit escapes.
  result.clear();
  hub = greenlet::greenlet();
  main = greenlet::greenlet();
}

TEST_F(TestGreenlet, test_dealloc_switch_args_not_lost) {
  std::vector<greenlet::greenlet> seen;
  std::vector<greenlet::greenlet> worker;
  greenlet::greenlet initiator;
  worker.emplace_back([&] {
    // Wait for the value.
    greenlet::value value = switch_up();
    // Drop all references to ourself.
    worker.clear();
    initiator.set_parent(greenlet::getcurrent().parent());
    // Switch to main with the value; as only handles on our own stack are
    // left, main kills us right after taking the value.
    try {
      switch_up(std::move(value));
    } catch (...) {
      seen.push_back(greenlet::getcurrent());
      throw;
    }
    seen.push_back(greenlet::getcurrent());
  });
  worker[0].switch_();  // prime worker
  initiator = greenlet::greenlet([] { return 42; }, worker[0]);
  greenlet::value value = initiator.switch_();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].dead());
  EXPECT_EQ(value.get<int>(), 42);
}

// The subclass refcount of issue 245 has no C++ counterpart; what remains is
// greenlets that are killed and keep a handle to themselves while dying.
TEST_F(TestGreenlet, test_issue_245_reference_counting_subclass_no_threads) {
  std::vector<greenlet::greenlet> glets;
  auto greenlet_main = [&glets] {
    try {
      switch_up();
    } catch (const greenlet::GreenletExit&) {
      glets.push_back(greenlet::getcurrent());
    }
  };
  for (int i = 0; i < 10; ++i) {
    greenlet::greenlet(greenlet_main).switch_();
  }
  ASSERT_EQ(glets.size(), 10u);
  for (const greenlet::greenlet& g : glets) EXPECT_TRUE(g.dead());
  glets.clear();
}

}  // namespace
