// greenlet_trash_port_test.cpp: a port of greenlet's
// src/greenlet/tests/test_greenlet_trash.py (TestTrashCanReEnter): objects
// whose destruction switches greenlets, while a long chain of them is being
// destroyed on two greenlets at once. CPython's "trash can" (deferred
// deallocation of deeply nested containers) has no C++ counterpart; what
// carries over is a deep destructor chain (unique_ptr links) that switches
// from inside a destructor, another greenlet destroying its own chain
// meanwhile, and that greenlet killed later while suspended in one of its
// destructors. Both stack modes run each case.
//
// Skipped: the get_tstate_trash_delete_nesting() checks (CPython interpreter
// state) and the final gc.collect().
#include <memory>
#include <string>
#include <vector>

#include "fiber/test_greenlet_support.hpp"

namespace {

class TestTrashCanReEnter : public greenlet_test::GreenletTest,
                            public ::testing::WithParamInterface<greenlet::stack_mode> {};

constexpr int trash_unwind_level = 500;  // where main's destructor spawns the background greenlet
constexpr int objects_per_container = 1000;

// The Python test's class variables.
struct DeallocState {
  greenlet::greenlet main;
  greenlet::stack_options stack;
  greenlet::greenlet spawned;  // SPAWNED: where the background greenlet was started from
  greenlet::greenlet bg_glet;  // BG_GLET
  bool bg_ran = false;
  bool bg_got_exit = false;
  int created = 0;
  int destroyed = 0;
  int destroyed_bg = 0;
  std::vector<std::string> log;  // "m<i>"/"b<i>" as each destructor ends
};

std::unique_ptr<struct Dealloc> make_some(DeallocState& st);

// Dealloc is the test's Dealloc: its destructor may switch greenlets.
struct Dealloc {
  Dealloc(DeallocState& state, int sequence_number, std::unique_ptr<Dealloc> rest)
      : st(state), i(sequence_number), next(std::move(rest)) {
    ++st.created;
  }
  Dealloc(const Dealloc&) = delete;
  Dealloc& operator=(const Dealloc&) = delete;
  ~Dealloc() {
    const bool on_main = greenlet::getcurrent() == st.main;
    if (i == trash_unwind_level && st.spawned.empty()) {
      st.spawned = greenlet::getcurrent();
      greenlet::greenlet other(
          [this] {
            // background_greenlet(): its chain is destroyed on its own stack.
            std::unique_ptr<Dealloc> t = make_some(st);
            t.reset();
          },
          st.stack);
      st.bg_glet = other;
      greenlet::value x = other.switch_();
      EXPECT_EQ(x.get<int>(), 42);
      // Left suspended in its destructor; st.bg_glet keeps it alive past
      // this destructor.
    } else if (i == 40 && !on_main) {
      st.bg_ran = true;
      try {
        st.main.switch_(42);
      } catch (const greenlet::GreenletExit&) {
        // Its last handle went away while it waited here.
        st.bg_got_exit = true;
      }
    }
    ++st.destroyed;
    if (!on_main) ++st.destroyed_bg;
    st.log.push_back((on_main ? "m" : "b") + std::to_string(i));
  }
  DeallocState& st;
  int i;
  std::unique_ptr<Dealloc> next;  // destroyed after the body above: the chain recurses
};

std::unique_ptr<Dealloc> make_some(DeallocState& st) {
  std::unique_ptr<Dealloc> t;
  for (int i = objects_per_container; i > 0; --i) t = std::make_unique<Dealloc>(st, i, std::move(t));
  return t;
}

std::vector<std::string> range_log(const char* who, int first, int last) {
  std::vector<std::string> out;
  for (int i = first; i <= last; ++i) out.push_back(who + std::to_string(i));
  return out;
}

// test_it: check_it once per mode (the C++ chain is deterministic, so
// Python's 30 attempts are not needed).
TEST_P(TestTrashCanReEnter, test_it) {
  DeallocState st;
  st.main = greenlet::getcurrent();
  // The chains recurse 1,000 destructors deep on the background greenlet.
  st.stack = {.size = 4 << 20, .mode = GetParam()};

  std::unique_ptr<Dealloc> some = make_some(st);
  EXPECT_EQ(st.created, objects_per_container);
  EXPECT_EQ(st.destroyed, 0);
  some.reset();

  // Discard the background greenlet, raising GreenletExit where it waits.
  st.bg_glet = greenlet::greenlet();

  EXPECT_GT(st.destroyed_bg, 0);
  EXPECT_EQ(st.spawned, st.main);
  EXPECT_TRUE(st.bg_ran);
  EXPECT_TRUE(st.bg_got_exit);
  EXPECT_EQ(st.created, st.destroyed);
  EXPECT_EQ(st.created, objects_per_container * 2);
  // Every destructor ended once, on the greenlet that started it, in chain
  // order: main up to 499, the background one to 39, main to the end, then
  // (killed) the background one from 40 on.
  std::vector<std::string> expected = range_log("m", 1, trash_unwind_level - 1);
  for (const auto& part : {range_log("b", 1, 39), range_log("m", trash_unwind_level, objects_per_container),
                           range_log("b", 40, objects_per_container)}) {
    expected.insert(expected.end(), part.begin(), part.end());
  }
  EXPECT_EQ(st.log, expected);
  st.spawned = greenlet::greenlet();
  st.main = greenlet::greenlet();
}

// Greenlets destroyed from another greenlet's unwinding: each of 50
// suspended greenlets holds the only handle to the next; dropping the first
// kills it, and its unwinding drops the next one's last handle, killing it
// from inside the first one's kill, and so on down the chain.
TEST_P(TestTrashCanReEnter, test_kill_from_another_greenlets_unwinding) {
  struct Logger {
    std::vector<int>& log;
    int i;
    ~Logger() { log.push_back(i); }
  };
  std::vector<int> log;
  const greenlet::stack_options stack{.mode = GetParam()};
  greenlet::greenlet head;
  for (int i = 49; i >= 0; --i) {
    head = greenlet::greenlet(
        [next = std::move(head), &log, i] {
          Logger logger{log, i};
          greenlet_port::switch_up();
          ADD_FAILURE() << "greenlet " << i << " resumed";
        },
        stack);
  }
  // Start them all, innermost first, so each waits in its body.
  std::vector<greenlet::greenlet> all = greenlet::debug::live_greenlets();
  ASSERT_EQ(all.size(), 50u);
  for (greenlet::greenlet& g : all) g.switch_();
  for (greenlet::greenlet& g : all) EXPECT_TRUE(g);
  all.clear();
  head = greenlet::greenlet();
  std::vector<int> expected;
  for (int i = 0; i < 50; ++i) expected.push_back(i);
  EXPECT_EQ(log, expected);
  EXPECT_EQ(greenlet::debug::live_count(), 0u);
}

INSTANTIATE_TEST_SUITE_P(StackModes, TestTrashCanReEnter,
                         ::testing::Values(greenlet::stack_mode::separate, greenlet::stack_mode::shared),
                         [](const ::testing::TestParamInfo<greenlet::stack_mode>& info) {
                           return info.param == greenlet::stack_mode::shared ? std::string("shared")
                                                                             : std::string("separate");
                         });

}  // namespace
