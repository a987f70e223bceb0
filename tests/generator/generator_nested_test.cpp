// generator_nested_test.cpp: greenlet's
// src/greenlet/tests/test_generator_nested.py (NestedGeneratorTests).
//
// g1 is a native Python generator there (context.yield here), g2 and g3 are
// genlets using the free Yield (the static generator<int>::yield). Python's
// Yield(value, 2), which yields on behalf of the genlet one level up, is the
// outer generator's context passed down: outer.yield(value) called from the
// inner generator's body.
#include <algorithm>
#include <utility>
#include <vector>

#include <greenlet/generator.hpp>

#include "genlet.hpp"
#include "support/greenlet_test.hpp"

namespace {

using NestedGeneratorTests = greenlet_test::GreenletTest;
using generator_test::genlet;
using list = std::vector<int>;
using perm_genlet = greenlet::generator<list>;

using generator_test::Yield;

genlet g1(int n, list& seen) {
  return genlet([n, &seen](genlet::context& co) {
    for (int i = 0; i < n; ++i) {
      seen.push_back(i + 1);
      co.yield(i);
    }
  });
}

genlet g2(int n, list& seen) {
  return genlet([n, &seen] {
    for (int i = 0; i < n; ++i) {
      seen.push_back(i + 1);
      Yield(i);
    }
  });
}

void nested(int i) { Yield(i); }

genlet g3(int n, list& seen) {
  return genlet([n, &seen] {
    for (int i = 0; i < n; ++i) {
      seen.push_back(i + 1);
      nested(i);
    }
  });
}

genlet ax(int n) {
  return genlet([n] {
    if (n == 0) return;
    for (int ii : ax(n - 1)) Yield(ii);
    Yield(n);
  });
}

perm_genlet perms(list l) {
  return perm_genlet([l = std::move(l)] {
    if (l.size() > 1) {
      for (int e : l) {
        list rest;
        for (int x : l) {
          if (x != e) rest.push_back(x);
        }
        std::size_t x = 0;  // Python collects the Yield results; count them
        for (list p : perms(rest)) {
          p.insert(p.begin(), e);
          perm_genlet::yield(std::move(p));
          ++x;
        }
        EXPECT_NE(x, 0U);
      }
    } else {
      perm_genlet::yield(l);
    }
  });
}

// gr1's Yield(ii * ii, 2) goes to the genlet iterating it: outer.
genlet gr1(int n, genlet::context& outer) {
  return genlet([n, &outer] {
    for (int ii = 1; ii < n; ++ii) {
      Yield(ii);
      outer.yield(ii * ii);
    }
  });
}

genlet gr2(int n, list& seen) {
  return genlet([n, &seen](genlet::context& co) {
    for (int ii : gr1(n, co)) seen.push_back(ii);
  });
}

TEST_F(NestedGeneratorTests, test_layered_genlets) {
  list seen;
  for (int ii : gr2(5, seen)) seen.push_back(ii);
  EXPECT_EQ(seen, (list{1, 1, 2, 4, 3, 9, 4, 16}));
}

// Python marks this one @fails_leakcheck: the zip leaves perms(range(4))
// suspended. Here destroying it closes it, nested sub-generators included,
// and the fixture checks that nothing is left.
TEST_F(NestedGeneratorTests, test_permutations) {
  std::vector<list> permutations;
  for (const list& p : perms({0, 1, 2, 3})) permutations.push_back(p);
  EXPECT_EQ(permutations.size(), 4U * 3 * 2 * 1);
  EXPECT_NE(std::find(permutations.begin(), permutations.end(), list{0, 1, 2, 3}), permutations.end());
  EXPECT_NE(std::find(permutations.begin(), permutations.end(), list{3, 2, 1, 0}), permutations.end());

  std::vector<std::pair<list, list>> res;
  {
    perm_genlet a = perms({0, 1, 2, 3});
    perm_genlet b = perms({0, 1, 2});
    auto ia = a.begin();
    auto ib = b.begin();
    for (; ia != a.end() && ib != b.end(); ++ia, ++ib) res.emplace_back(*ia, *ib);  // zip()
    EXPECT_TRUE(a.suspended());
    EXPECT_TRUE(b.finished());
  }
  std::vector<std::pair<list, list>> expected = {{{0, 1, 2, 3}, {0, 1, 2}}, {{0, 1, 3, 2}, {0, 2, 1}},
                                                 {{0, 2, 1, 3}, {1, 0, 2}}, {{0, 2, 3, 1}, {1, 2, 0}},
                                                 {{0, 3, 1, 2}, {2, 0, 1}}, {{0, 3, 2, 1}, {2, 1, 0}}};
  EXPECT_EQ(res, expected);
}

TEST_F(NestedGeneratorTests, test_genlet_simple) {
  for (auto g : {&g1, &g2, &g3}) {
    list seen;
    for (int k = 0; k < 3; ++k) {
      for (int j : g(5, seen)) seen.push_back(j);
    }
    list expected;
    for (int k = 0; k < 3; ++k) expected.insert(expected.end(), {1, 0, 2, 1, 3, 2, 4, 3, 5, 4});
    EXPECT_EQ(seen, expected);
  }
}

TEST_F(NestedGeneratorTests, test_genlet_bad) {
  try {
    Yield(10);
    ADD_FAILURE() << "Yield outside a genlet did not throw";
  } catch (const greenlet::generator_error& e) {
    EXPECT_EQ(e.code(), greenlet::generator_errc::yield_outside_generator);
  }
}

TEST_F(NestedGeneratorTests, test_nested_genlets) {
  list seen;
  for (int ii : ax(5)) seen.push_back(ii);
  EXPECT_EQ(seen, (list{1, 2, 3, 4, 5}));
}

}  // namespace
