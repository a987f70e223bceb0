// stack_test.cpp: greenlet stacks. Many greenlets alive at once, deep
// recursion on a stack sized with stack_options, and a readable report when
// a greenlet overflows its stack.
#include <cstddef>
#include <string>
#include <vector>

#include <greenlet/generator.hpp>

#include "support/greenlet_test.hpp"

namespace {

using Stack = greenlet_test::GreenletTest;

TEST_F(Stack, TenThousandGreenletsAliveAtOnce) {
  constexpr int count = 10000;
  const std::size_t live_before = greenlet::debug::live_count();
  std::vector<greenlet::greenlet> greenlets;
  greenlets.reserve(count);
  for (int i = 0; i < count; ++i) {
    greenlets.emplace_back([](int n) {
      greenlet::value v = greenlet::getcurrent().parent().switch_(n * 2);
      return v.get<int>() + n;
    });
  }
  for (int i = 0; i < count; ++i) {
    greenlet::value v = greenlets[i].switch_(i);
    ASSERT_EQ(v.get<int>(), i * 2) << "greenlet " << i;
  }
  EXPECT_EQ(greenlet::debug::live_count(), live_before + count);
  for (const greenlet::greenlet& g : greenlets) {
    ASSERT_TRUE(g.started() && !g.dead());
  }
  // Resume them in reverse order: each finishes with what it kept on its stack.
  for (int i = count - 1; i >= 0; --i) {
    greenlet::value v = greenlets[i].switch_(1000000);
    ASSERT_EQ(v.get<int>(), 1000000 + i) << "greenlet " << i;
    ASSERT_TRUE(greenlets[i].dead());
  }
  greenlets.clear();
  EXPECT_EQ(greenlet::debug::live_count(), live_before);
}

// recurse(depth) uses about 1 KiB of stack per frame and returns the sum of
// the depths it went through, so no frame can be optimized away.
long recurse(int depth) {
  volatile char frame[1024];
  frame[0] = static_cast<char>(depth);
  frame[sizeof frame - 1] = static_cast<char>(depth);
  if (depth == 0) return 0;
  const long below = recurse(depth - 1);
  return below + depth + (frame[0] - static_cast<char>(depth)) + (frame[sizeof frame - 1] - static_cast<char>(depth));
}

TEST_F(Stack, DeepRecursionOnABigStack) {
  constexpr int depth = 1000;
  constexpr std::size_t two_mib = 2 * 1024 * 1024;
  greenlet::greenlet g([] { return recurse(depth); }, greenlet::stack_options{.size = two_mib});
  EXPECT_EQ(g.switch_().get<long>(), static_cast<long>(depth) * (depth + 1) / 2);
  EXPECT_TRUE(g.dead());
}

TEST_F(Stack, StackSizeIsReported) {
  constexpr std::size_t two_mib = 2 * 1024 * 1024;
  greenlet::greenlet g([] { return greenlet::getcurrent().stack_size(); }, greenlet::stack_options{.size = two_mib});
  EXPECT_GE(g.switch_().get<std::size_t>(), two_mib);
}

// overflow(depth) recurses until the stack runs out (depth is never reached).
long overflow(long depth) {
  volatile char frame[4096];
  frame[0] = static_cast<char>(depth);
  if (depth == 0) return frame[0];
  return overflow(depth - 1) + frame[0];
}

// A death test runs its statement in a child process, so the leak-checking
// fixture has nothing to check here (and gtest's own first-use allocations
// would trip it).
TEST(StackDeathTest, OverflowEndsWithReadableReport) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reports stack overflows itself";
#else
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        greenlet::greenlet g([] { return overflow(1L << 40); }, greenlet::stack_options{.size = 64 * 1024});
        g.set_name("overflower");
        g.switch_();
      },
      "stack overflow in greenlet #[0-9]+ \"overflower\".*stack_options");
#endif
}

// A generator's body that overflows is named as one, with the advice that
// applies to it: the generator's own stack_options (its body greenlet is
// made by the generator, not by the user).
[[maybe_unused]] void overflow_in_generator_body() {
  greenlet::generator<long> g([] { greenlet::generator<long>::yield(overflow(1L << 40)); },
                              greenlet::stack_options{.size = 64 * 1024});
  g.next();
}

TEST(StackDeathTest, OverflowInAGeneratorBodyNamesItAndItsStackOptions) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reports stack overflows itself";
#else
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  // With stack copying (GREENLET_STACK_MODE=shared) the body runs on the
  // thread's shared stack, whose size the report gives instead.
  EXPECT_DEATH(
      overflow_in_generator_body(),
      "stack overflow in a generator's body \\(greenlet #[0-9]+\\): its (\\(shared\\) )?stack is [0-9]+ bytes.*\n"
      "  Give it a bigger one: generator\\(body, greenlet::stack_options\\{.size = [0-9]+\\}\\)");
#endif
}

}  // namespace
