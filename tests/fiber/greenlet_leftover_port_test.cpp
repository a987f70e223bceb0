// greenlet_leftover_port_test.cpp: test_greenlet.py methods (TestGreenlet)
// that tests/README.md once listed as left out but that have a C++ meaning:
// the Python feature they go through (keyword arguments, a tuple subclass,
// the garbage collector, a run attribute that cannot be looked up) is gone,
// the switching behaviour they check is not.
//
// Still left out, Python-only (tests/README.md lists them with reasons):
// test_run_equals_None, test_instance_dict, test_running_greenlet_has_no_run,
// test_deepcopy, test_recursive_startup, test_abstract_subclasses,
// test_main_greenlet_type_can_be_subclassed, test_greenlet_run, the frame and
// critical-section cases, and test_parent_return_failure (its C++ meaning is
// test_falling_off_end_switches_to_unstarted_parent_raises_error, already
// ported).
#include <atomic>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "fiber/test_greenlet_support.hpp"

namespace {

using TestGreenlet = greenlet_test::GreenletTest;
using greenlet_port::SomeError;
using greenlet_port::switch_up;

// test_switch_kwargs_to_parent: values switched up to the parent, one and
// then several (C++ has positional arguments only: several become a tuple),
// then the run's result.
TEST_F(TestGreenlet, test_switch_kwargs_to_parent) {
  greenlet::greenlet g([](int x) {
    switch_up(x);
    switch_up(2, x);
    return std::make_tuple(x, x * x);
  });
  EXPECT_EQ(g.switch_(3).get<int>(), 3);
  EXPECT_EQ((g.switch_().get<int, int>()), std::make_tuple(2, 3));
  EXPECT_EQ((g.switch_().get<int, int>()), std::make_tuple(3, 9));
  EXPECT_TRUE(g.dead());
}

// Copying it switches to the current greenlet (to itself), as the test's
// tuple subclass does from __len__, which switch() calls while it looks at
// its arguments.
struct SwitchesWhenCopied {
  int n = 0;
  SwitchesWhenCopied() = default;
  SwitchesWhenCopied(const SwitchesWhenCopied& other) : n(other.n + 1) { greenlet::getcurrent().switch_(); }
  SwitchesWhenCopied& operator=(const SwitchesWhenCopied&) = delete;
};

// test_tuple_subclass: a switch made while the arguments of another switch
// are being packed (re-entering switch_ from inside switch_) does not
// disturb that switch: the parent gets all the arguments.
TEST_F(TestGreenlet, test_tuple_subclass) {
  SwitchesWhenCopied arg;
  greenlet::greenlet g([&] { switch_up(arg, 42); });
  greenlet::value v = g.switch_();
  const auto& [copied, answer] = v.get<SwitchesWhenCopied, int>();
  EXPECT_GE(copied.n, 1);  // moves copy too (no move constructor)
  EXPECT_EQ(answer, 42);
  EXPECT_FALSE(g.dead());
  EXPECT_TRUE(g.switch_().empty());
  EXPECT_TRUE(g.dead());
}

// test_implicit_parent_with_threads: a greenlet made without a parent gets
// the greenlet running on its thread, even while another thread calls
// getcurrent() and makes greenlets of its own at the same time (Python made
// the garbage collector run another thread's code in the middle of
// greenlet()).
TEST_F(TestGreenlet, test_implicit_parent_with_threads) {
  std::atomic<bool> stop{false};
  std::atomic<int> other_thread_wrong_parent{0};
  std::thread other([&] {
    while (!stop.load()) {
      greenlet::greenlet current = greenlet::getcurrent();
      greenlet::greenlet g([] {});
      if (g.parent() != current) ++other_thread_wrong_parent;
    }
  });
  std::vector<greenlet::greenlet> made;
  greenlet::greenlet maker([&] {
    greenlet::greenlet current = greenlet::getcurrent();
    for (int i = 0; i < 2000; ++i) made.emplace_back([] {});
    for (const greenlet::greenlet& g : made) EXPECT_EQ(g.parent(), current);
  });
  maker.switch_();
  stop = true;
  other.join();
  EXPECT_EQ(other_thread_wrong_parent.load(), 0);
  for (const greenlet::greenlet& g : made) EXPECT_EQ(g.parent(), maker);
  made.clear();
}

// test_switch_to_dead_greenlet_with_unstarted_perverse_parent: the child
// finishes and its result goes to a parent that has not started and fails
// as it starts (Python: looking up its run raises SomeError; here its run
// throws SomeError at once), so the child's switch raises SomeError.
// Difference (no C++ counterpart to a run that cannot be looked up): in
// Python that parent never starts, and a second switch to the dead child
// tries to start it again and raises SomeError again; here the parent did
// start and is dead, so the second switch goes on to the nearest live
// ancestor, main, and returns at once, as for any dead parent.
TEST_F(TestGreenlet, test_switch_to_dead_greenlet_with_unstarted_perverse_parent) {
  greenlet::greenlet parent_never_started([] { throw SomeError(); });
  std::vector<int> seen;
  greenlet::greenlet child([&] { seen.push_back(42); }, parent_never_started);
  EXPECT_THROW(child.switch_(), SomeError);
  EXPECT_EQ(seen, std::vector<int>{42});
  EXPECT_TRUE(parent_never_started.dead());

  EXPECT_TRUE(child.switch_().empty());
  EXPECT_EQ(seen, std::vector<int>{42});
}

}  // namespace
