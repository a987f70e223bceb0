// iteration_test.cpp: range-for over a generator, which stops when the body
// returns and lets its exceptions through.
#include <stdexcept>
#include <string>
#include <vector>

#include <greenlet/generator.hpp>

#include "support/greenlet_test.hpp"

namespace {

using Iteration = greenlet_test::GreenletTest;

greenlet::generator<int, void, int> count(int n) {
  return greenlet::generator<int, void, int>([n](auto& co) {
    for (int i = 0; i < n; ++i) co.yield(i);
    return n * 10;
  });
}

TEST_F(Iteration, RangeForStopsAtReturn) {
  std::vector<int> seen;
  auto g = count(4);
  for (int x : g) seen.push_back(x);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_TRUE(g.finished());
  EXPECT_EQ(g.return_value(), 40);
}

TEST_F(Iteration, RangeForOverTemporary) {
  int sum = 0;
  for (int x : count(5)) sum += x;
  EXPECT_EQ(sum, 10);
}

TEST_F(Iteration, EmptyGeneratorIteratesNothing) {
  int n = 0;
  for (int x : count(0)) n += x + 1;
  EXPECT_EQ(n, 0);
}

TEST_F(Iteration, ContinuesWhereNextLeftOff) {
  auto g = count(4);
  EXPECT_EQ(g.next(), 0);
  std::vector<int> seen;
  for (int x : g) seen.push_back(x);
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3}));
}

TEST_F(Iteration, BreakLeavesItSuspended) {
  auto g = count(10);
  for (int x : g) {
    if (x == 2) break;
  }
  EXPECT_TRUE(g.suspended());
  EXPECT_EQ(g.next(), 3);
}

TEST_F(Iteration, ExceptionsPassThrough) {
  greenlet::generator<std::string> g([](auto& co) {
    co.yield("a");
    throw std::logic_error("bad");
  });
  std::vector<std::string> seen;
  EXPECT_THROW(
      {
        for (const std::string& s : g) seen.push_back(s);
      },
      std::logic_error);
  EXPECT_EQ(seen, (std::vector<std::string>{"a"}));
  EXPECT_TRUE(g.finished());
}

TEST_F(Iteration, IteratorIsAnInputIterator) {
  static_assert(std::input_iterator<greenlet::generator<int>::iterator>);
  static_assert(std::sentinel_for<std::default_sentinel_t, greenlet::generator<int>::iterator>);
  auto g = count(3);
  auto it = g.begin();
  EXPECT_EQ(*it, 0);
  ++it;
  it++;
  EXPECT_EQ(*it, 2);
  ++it;
  EXPECT_TRUE(it == g.end());
}

TEST_F(Iteration, YieldFromNestedCalls) {
  using gen_t = greenlet::generator<int>;
  struct walker {
    gen_t::context& co;
    void tree(int depth, int label) {  // yields the leaves of a binary tree
      if (depth == 0) {
        co.yield(label);
        return;
      }
      tree(depth - 1, label * 2);
      tree(depth - 1, label * 2 + 1);
    }
  };
  gen_t g([](gen_t::context& co) { walker{co}.tree(3, 1); });
  std::vector<int> leaves;
  for (int x : g) leaves.push_back(x);
  EXPECT_EQ(leaves, (std::vector<int>{8, 9, 10, 11, 12, 13, 14, 15}));
}

}  // namespace
