// stop_iteration_test.cpp: the end of a generator. Its return value rides on
// StopIteration (Python's StopIteration.value) and stays in return_value();
// resuming a finished generator raises StopIteration again, without a value.
#include <memory>
#include <stdexcept>
#include <string>

#include <greenlet/generator.hpp>

#include "support/greenlet_test.hpp"

namespace {

using StopIterationTest = greenlet_test::GreenletTest;
using greenlet::generator_errc;

TEST_F(StopIterationTest, ReturnValueRidesOnStopIteration) {
  greenlet::generator<int, void, std::string> g([](auto& co) {
    co.yield(1);
    return std::string("done");
  });
  EXPECT_EQ(g.next(), 1);
  EXPECT_FALSE(g.returned());
  EXPECT_THROW(g.return_value(), greenlet::generator_error);
  try {
    g.next();
    ADD_FAILURE() << "next() past the end did not throw";
  } catch (const greenlet::StopIteration& e) {
    EXPECT_EQ(e.code(), generator_errc::stop_iteration);
    EXPECT_EQ(e.value().get<std::string>(), "done");
  }
  EXPECT_TRUE(g.finished());
  EXPECT_TRUE(g.returned());
  EXPECT_EQ(g.return_value(), "done");
}

TEST_F(StopIterationTest, VoidReturnCarriesNoValue) {
  greenlet::generator<int> g([] {});
  try {
    g.next();
    ADD_FAILURE() << "next() did not throw";
  } catch (const greenlet::StopIteration& e) {
    EXPECT_EQ(e.code(), generator_errc::stop_iteration);
    EXPECT_TRUE(e.value().empty());
  }
  EXPECT_TRUE(g.returned());
}

TEST_F(StopIterationTest, ResumingFinishedGeneratorThrowsAlreadyFinished) {
  greenlet::generator<int, int, int> g([] { return 5; });
  EXPECT_THROW(g.next(), greenlet::StopIteration);
  for (int i = 0; i < 2; ++i) {
    try {
      g.send(1);  // Python: StopIteration again, with value None
      ADD_FAILURE() << "send() to a finished generator did not throw";
    } catch (const greenlet::StopIteration& e) {
      EXPECT_EQ(e.code(), generator_errc::already_finished);
      EXPECT_TRUE(e.value().empty());
      EXPECT_NE(std::string(e.what()).find("generator already finished"), std::string::npos);
    }
  }
  EXPECT_EQ(g.return_value(), 5);
  g.close();  // no-op on a finished generator
  // throw_() into a finished generator raises the exception itself.
  EXPECT_THROW(g.throw_(std::out_of_range("x")), std::out_of_range);
}

TEST_F(StopIterationTest, MoveOnlyReturnValue) {
  greenlet::generator<int, void, std::unique_ptr<int>> g([] { return std::make_unique<int>(9); });
  EXPECT_THROW(g.next(), greenlet::StopIteration);
  ASSERT_TRUE(g.return_value());
  EXPECT_EQ(*g.return_value(), 9);
}

// PEP 479: a StopIteration escaping the body is a RuntimeError, so that it
// cannot pass for the generator's own end.
TEST_F(StopIterationTest, StopIterationEscapingBodyBecomesError) {
  greenlet::generator<int> inner([] {});
  greenlet::generator<int> outer([&inner](auto& co) { co.yield(inner.next()); });
  try {
    outer.next();
    ADD_FAILURE() << "did not throw";
  } catch (const greenlet::StopIteration&) {
    ADD_FAILURE() << "StopIteration escaped the body";
  } catch (const greenlet::generator_error& e) {
    EXPECT_EQ(e.code(), generator_errc::raised_stop_iteration);
    EXPECT_NE(std::string(e.what()).find("generator raised StopIteration"), std::string::npos);
  }
  EXPECT_TRUE(outer.finished());
  EXPECT_FALSE(outer.returned());
}

TEST_F(StopIterationTest, ExceptionFromBodyReachesResumerAndFinishesIt) {
  greenlet::generator<int> g([](auto& co) {
    co.yield(1);
    throw std::runtime_error("boom");
  });
  EXPECT_EQ(g.next(), 1);
  EXPECT_THROW(g.next(), std::runtime_error);
  EXPECT_TRUE(g.finished());
  EXPECT_FALSE(g.returned());
  EXPECT_THROW(g.next(), greenlet::StopIteration);
}

}  // namespace
