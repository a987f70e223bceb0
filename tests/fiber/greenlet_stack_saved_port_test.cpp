// greenlet_stack_saved_port_test.cpp: a port of greenlet's
// src/greenlet/tests/test_stack_saved.py (class Test), about the bytes of
// stack a suspended greenlet keeps on the heap (Python's `_stack_saved`).
// Here that is stack_mode::shared (stack copying); a greenlet_impl's
// saved_size is the counterpart of `_stack_saved`.
//
// Skipped from test_stack_saved.py: nothing (it has one method).
//
// Deliberate differences (docs/fiber.md, "Stack copying"), asserted below:
//  - The main greenlet runs on the thread's own stack and shared greenlets on
//    a separate shared stack, so main's bytes are never copied: its
//    saved_size stays 0 where Python's main._stack_saved grows.
//  - A suspended shared greenlet's bytes stay on the shared stack until
//    another shared greenlet needs it (Python copies them out as soon as the
//    C stack below them is reused, which switching back to main does).
//  - In stack_mode::separate nothing is ever copied: saved_size is always 0.
#include <array>
#include <cstddef>
#include <numeric>

#include "support/greenlet_test.hpp"

namespace {

using Test = greenlet_test::GreenletTest;

constexpr greenlet::stack_options shared{.mode = greenlet::stack_mode::shared};
constexpr greenlet::stack_options separate{.mode = greenlet::stack_mode::separate};

std::size_t stack_saved(const greenlet::greenlet& g) { return g.impl()->saved_size; }

// deep_enough(n) keeps an array on the stack while switching to the parent,
// so that a greenlet running it has a few hundred bytes worth copying.
int deep_enough(int n) {
  std::array<int, 128> local;
  local.fill(n);
  greenlet::getcurrent().parent().switch_();
  return std::accumulate(local.begin(), local.end(), 0);
}

// test_stack_saved, stack copying: the greenlet's bytes are copied to the
// heap when another shared greenlet takes the shared stack, and given back
// when it finishes.
TEST_F(Test, test_stack_saved) {
  greenlet::greenlet main = greenlet::getcurrent();
  EXPECT_EQ(stack_saved(main), 0u);

  std::size_t main_saved_inside = 123;
  greenlet::greenlet g(
      [&] {
        main_saved_inside = stack_saved(main);
        return deep_enough(1);
      },
      shared);
  g.switch_();
  EXPECT_EQ(main_saved_inside, 0u);  // main never leaves its own stack
  // Still on the shared stack: nothing needed it yet.
  EXPECT_EQ(stack_saved(g), 0u);

  // Another shared greenlet takes the shared stack: g's bytes go to the heap.
  std::size_t g_saved_seen_by_other = 0;
  greenlet::greenlet other([&] { g_saved_seen_by_other = stack_saved(g); }, shared);
  other.switch_();
  EXPECT_TRUE(other.dead());
  EXPECT_GT(g_saved_seen_by_other, 128 * sizeof(int));
  EXPECT_GT(stack_saved(g), 128 * sizeof(int));

  // Resumed (its bytes copied back) and finished: nothing kept.
  EXPECT_EQ(g.switch_().get<int>(), 128);
  EXPECT_TRUE(g.dead());
  EXPECT_EQ(stack_saved(g), 0u);
  EXPECT_EQ(stack_saved(main), 0u);
}

// test_stack_saved, separate stacks: a suspended greenlet keeps its stack,
// so nothing is ever copied, whatever else runs.
TEST_F(Test, test_stack_saved_separate_mode_copies_nothing) {
  greenlet::greenlet main = greenlet::getcurrent();
  greenlet::greenlet g([] { return deep_enough(2); }, separate);
  g.switch_();
  greenlet::greenlet other([&] { EXPECT_EQ(stack_saved(g), 0u); }, separate);
  other.switch_();
  EXPECT_EQ(stack_saved(g), 0u);
  EXPECT_EQ(stack_saved(main), 0u);
  EXPECT_EQ(g.switch_().get<int>(), 256);
  EXPECT_EQ(stack_saved(g), 0u);
}

// test_stack_saved, two suspended shared greenlets resumed alternately: each
// switch between them copies the leaving one out and the other back; the
// values on their stacks survive.
TEST_F(Test, test_stack_saved_alternating_shared_greenlets) {
  greenlet::greenlet a([] { return deep_enough(3); }, shared);
  greenlet::greenlet b([] { return deep_enough(4); }, shared);
  a.switch_();
  b.switch_();  // a copied out
  EXPECT_GT(stack_saved(a), 0u);
  EXPECT_EQ(a.switch_().get<int>(), 3 * 128);  // b copied out, a back and done
  EXPECT_GT(stack_saved(b), 0u);
  EXPECT_EQ(stack_saved(a), 0u);
  EXPECT_EQ(b.switch_().get<int>(), 4 * 128);
  EXPECT_EQ(stack_saved(b), 0u);
}

}  // namespace
