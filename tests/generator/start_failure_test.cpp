// start_failure_test.cpp: a generator whose body cannot start, because its
// stack cannot be mapped (vm.max_map_count or memory used up; here a stack
// larger than the address space). The first resume raises the fiber layer's
// stack_exhausted error and the generator stays unstarted: it may be retried,
// closed and destroyed. It used to be left `running` for ever: every later
// next() and close() said "generator already executing", and its destructor
// reported it leaked.
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <greenlet/generator.hpp>

#include "support/greenlet_test.hpp"
#include "support/unraisable_reports.hpp"

namespace {

using StartFailure = greenlet_test::GreenletTest;
using gen_t = greenlet::generator<int>;
using send_gen_t = greenlet::generator<int, int>;

// A stack of 1 PiB: more than a 47-bit address space, so mmap always fails.
constexpr greenlet::stack_options unmappable{.size = std::size_t(1) << 50};

using reports = greenlet_test::unraisable_reports;

template <class F>
void expect_stack_exhausted(F&& resume) {
  try {
    resume();
    ADD_FAILURE() << "the body started on an unmappable stack";
  } catch (const greenlet::error& e) {
    EXPECT_EQ(e.code(), greenlet::errc::stack_exhausted) << e.what();
    EXPECT_NE(std::string(e.what()).find("cannot map"), std::string::npos) << e.what();
  }
}

void expect_unstarted(const auto& g) {
  EXPECT_FALSE(g.started());
  EXPECT_FALSE(g.running());
  EXPECT_FALSE(g.suspended());
  EXPECT_FALSE(g.finished());
}

TEST_F(StartFailure, NextLeavesTheGeneratorUnstartedAndRetriesOnTheNextCall) {
  reports hook;
  int ran = 0;
  {
    gen_t g(
        [&](gen_t::context& co) {
          ++ran;
          co.yield(1);
        },
        unmappable);
    expect_stack_exhausted([&] { g.next(); });
    expect_unstarted(g);
    expect_stack_exhausted([&] { g.next(); });  // tried again, not "already executing"
    expect_unstarted(g);
    expect_stack_exhausted([&] {
      for (int x : g) ADD_FAILURE() << "yielded " << x;
    });
    expect_unstarted(g);
  }
  EXPECT_EQ(ran, 0);
  EXPECT_TRUE(hook.seen.empty()) << hook.seen.front();  // nothing reported leaked
}

TEST_F(StartFailure, CloseFinishesAGeneratorThatFailedToStart) {
  reports hook;
  gen_t g([](gen_t::context& co) { co.yield(1); }, unmappable);
  expect_stack_exhausted([&] { g.next(); });
  g.close();
  EXPECT_TRUE(g.finished());
  EXPECT_THROW(g.next(), greenlet::StopIteration);
  EXPECT_TRUE(hook.seen.empty()) << hook.seen.front();
}

TEST_F(StartFailure, DestroyingAGeneratorThatFailedToStartReportsNothing) {
  reports hook;
  {
    gen_t g([](gen_t::context& co) { co.yield(1); }, unmappable);
    expect_stack_exhausted([&] { g.next(); });
  }
  EXPECT_TRUE(hook.seen.empty()) << hook.seen.front();
}

// send(nullopt) starts the body as next() does; send(v) and throw_() on an
// unstarted generator never switch to it, so they behave as before.
TEST_F(StartFailure, SendAndThrowOnAGeneratorThatFailedToStart) {
  reports hook;
  send_gen_t g([](send_gen_t::context& co) { co.yield(1); }, unmappable);
  expect_stack_exhausted([&] { g.send(std::nullopt); });
  expect_unstarted(g);
  EXPECT_THROW(g.send(5), greenlet::generator_error);  // just_started, as Python
  expect_unstarted(g);
  EXPECT_THROW(g.throw_(std::runtime_error("in")), std::runtime_error);
  EXPECT_TRUE(g.finished());
  EXPECT_TRUE(hook.seen.empty()) << hook.seen.front();
}

}  // namespace
