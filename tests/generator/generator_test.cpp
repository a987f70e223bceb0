// generator_test.cpp: greenlet's src/greenlet/tests/test_generator.py
// (GeneratorTests), where a genlet's body calls a free Yield(i). Here the
// genlet is generator<int> and Yield(i) its static generator<int>::yield(i).
#include <vector>

#include <greenlet/generator.hpp>

#include "support/greenlet_test.hpp"

namespace {

using GeneratorTests = greenlet_test::GreenletTest;
using genlet = greenlet::generator<int>;

// Yield(value) is the Python module's Yield: yield from the innermost genlet.
void Yield(int value) { genlet::yield(value); }

TEST_F(GeneratorTests, test_generator) {
  std::vector<int> seen;

  auto g = [&](int n) {
    return genlet([&seen, n] {
      for (int i = 0; i < n; ++i) {
        seen.push_back(i);
        Yield(i);
      }
    });
  };
  for (int k = 0; k < 3; ++k) {
    for (int j : g(5)) seen.push_back(j);
  }
  std::vector<int> expected;
  for (int k = 0; k < 3; ++k) expected.insert(expected.end(), {0, 0, 1, 1, 2, 2, 3, 3, 4, 4});
  EXPECT_EQ(seen, expected);
}

}  // namespace
