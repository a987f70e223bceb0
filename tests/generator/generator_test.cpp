// generator_test.cpp: greenlet's src/greenlet/tests/test_generator.py
// (GeneratorTests), where a genlet's body calls a free Yield(i). Here the
// genlet is generator<int> and Yield(i) its static generator<int>::yield(i).
#include <string>
#include <vector>

#include <greenlet/generator.hpp>

#include "genlet.hpp"
#include "support/greenlet_test.hpp"

namespace {

using GeneratorTests = greenlet_test::GreenletTest;
using generator_test::genlet;

using generator_test::Yield;

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

namespace {

// The step fast path (generator_state::resume) skips re-parenting when the
// same greenlet resumes again; when the resumer changes, each yield must
// still land in the greenlet that resumed it, as Python's generators return
// to whoever called next().
TEST_F(GeneratorTests, EachYieldReturnsToTheGreenletThatResumed) {
  std::vector<std::string> log;
  genlet g([](genlet::context& co) {
    for (int i = 0;; ++i) co.yield(i);
  });
  greenlet::greenlet main = greenlet::greenlet::getcurrent();
  greenlet::greenlet other([&] {
    for (int round = 0; round < 3; ++round) {
      log.push_back("other:" + std::to_string(g.next()));
      log.push_back("other:" + std::to_string(g.next()));
      main.switch_();
    }
  });
  for (int round = 0; round < 3; ++round) {
    log.push_back("main:" + std::to_string(g.next()));
    other.switch_();
  }
  EXPECT_EQ(log, (std::vector<std::string>{"main:0", "other:1", "other:2", "main:3", "other:4", "other:5", "main:6",
                                           "other:7", "other:8"}));
  other.switch_();  // let it finish
  EXPECT_TRUE(other.dead());
}

}  // namespace
