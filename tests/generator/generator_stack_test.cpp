// generator_stack_test.cpp: generator::get_stack(), Python's traceback.extract_stack(g.gi_frame):
// where a paused body is, read without resuming it (both stack modes: the suite runs in each).
#include <string>

#include <greenlet/generator.hpp>

#include "support/greenlet_test.hpp"

namespace generator_stack_test {

using GeneratorStack = greenlet_test::GreenletTest;
using int_gen = greenlet::generator<int>;

int yield_line = 0;

[[gnu::noinline]] void generator_stack_test_yields(int_gen::context& co, int n) {
  for (int i = 0; i < n; ++i) {
    yield_line = __LINE__ + 1;
    co.yield(i);
  }
}

TEST_F(GeneratorStack, APausedBodyShowsTheYield) {
  int_gen g([](int_gen::context& co) {
    generator_stack_test_yields(co, 2);
    return;
  });
  EXPECT_TRUE(g.get_stack().empty());  // not started
  EXPECT_EQ(g.next(), 0);
  const greenlet::stack_summary frames = g.get_stack();
  ASSERT_FALSE(frames.empty());
  EXPECT_NE(frames.back().function.find("generator_stack_test_yields"), std::string::npos)
      << greenlet::format_stack(frames);
  EXPECT_EQ(frames.back().file, __FILE__);
  EXPECT_EQ(frames.back().line, static_cast<unsigned>(yield_line));
  EXPECT_EQ(g.get_stack(1).size(), 1u);
  // Read, it goes on as if it had not been.
  EXPECT_EQ(g.next(), 1);
  EXPECT_FALSE(g.get_stack().empty());
  EXPECT_THROW(g.next(), greenlet::StopIteration);
  EXPECT_TRUE(g.get_stack().empty());  // finished
}

}  // namespace generator_stack_test
