// tracing_test.cpp: greenlet::settrace(), ported from greenlet's
// src/greenlet/tests/test_tracing.py (TestGreenletTracing).
//
// TestPythonTracing is about sys.setprofile() and Python frames; C++ has no
// counterpart, so it is not ported.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "support/greenlet_test.hpp"

namespace {

using TestGreenletTracing = greenlet_test::GreenletTest;

struct SomeError : std::runtime_error {
  SomeError() : std::runtime_error("SomeError") {}
};

// An action is (event, origin id, target id): ids name greenlets in failure
// messages, where handles would print as bytes.
using action = std::tuple<std::string, std::uint64_t, std::uint64_t>;

// GreenletTracer is the Python test's context manager: it installs itself on
// construction, records every call and restores the previous trace function
// when it goes out of scope.
class GreenletTracer {
 public:
  explicit GreenletTracer(bool error_on_trace = false) : error_on_trace_(error_on_trace) {
    oldtrace_ = greenlet::settrace(function());
  }
  ~GreenletTracer() { greenlet::settrace(std::move(oldtrace_)); }
  GreenletTracer(const GreenletTracer&) = delete;
  GreenletTracer& operator=(const GreenletTracer&) = delete;

  greenlet::trace_function function() {
    return [this](std::string_view event, const greenlet::greenlet& origin, const greenlet::greenlet& target) {
      actions.emplace_back(std::string(event), origin.id(), target.id());
      if (error_on_trace_) throw SomeError();
    };
  }

  std::vector<action> actions;

 private:
  bool error_on_trace_;
  greenlet::trace_function oldtrace_;
};

TEST_F(TestGreenletTracing, test_a_greenlet_tracing) {
  greenlet::greenlet main = greenlet::getcurrent();
  auto dummy = [] {};
  auto dummyexc = [] { throw SomeError(); };

  std::vector<action> actions;
  std::uint64_t g1_id = 0;
  std::uint64_t g2_id = 0;
  {
    GreenletTracer tracer;
    greenlet::greenlet g1(dummy);
    g1_id = g1.id();
    g1.switch_();
    greenlet::greenlet g2(dummyexc);
    g2_id = g2.id();
    EXPECT_THROW(g2.switch_(), SomeError);
    actions = tracer.actions;
  }

  EXPECT_EQ(actions, (std::vector<action>{
                         {"switch", main.id(), g1_id},
                         {"switch", g1_id, main.id()},
                         {"switch", main.id(), g2_id},
                         {"throw", g2_id, main.id()},
                     }));
  EXPECT_FALSE(greenlet::gettrace());
}

TEST_F(TestGreenletTracing, test_b_exception_disables_tracing) {
  greenlet::greenlet main = greenlet::getcurrent();
  greenlet::greenlet g([main]() mutable { main.switch_(); });
  g.switch_();
  std::vector<action> actions;
  {
    GreenletTracer tracer(/*error_on_trace=*/true);
    EXPECT_THROW(g.switch_(), SomeError);
    EXPECT_FALSE(greenlet::gettrace());
    actions = tracer.actions;
  }

  EXPECT_EQ(actions, (std::vector<action>{
                         {"switch", main.id(), g.id()},
                     }));
  // The error was raised in g, in its main.switch_(), and ended it.
  EXPECT_TRUE(g.dead());
}

// https://github.com/python-greenlet/greenlet/issues/332: setting the same
// trace function twice. Here: it is reported as the previous one, still
// called once per switch, and the outer restore turns tracing off.
TEST_F(TestGreenletTracing, test_set_same_tracer_twice) {
  greenlet::greenlet main = greenlet::getcurrent();
  std::vector<action> actions;
  std::uint64_t g_id = 0;
  {
    GreenletTracer tracer;
    greenlet::trace_function previous = greenlet::settrace(tracer.function());
    ASSERT_TRUE(previous);
    EXPECT_EQ(previous.target_type(), tracer.function().target_type());
    greenlet::greenlet g([] {});
    g_id = g.id();
    g.switch_();
    actions = tracer.actions;
  }
  EXPECT_EQ(actions, (std::vector<action>{
                         {"switch", main.id(), g_id},
                         {"switch", g_id, main.id()},
                     }));
  EXPECT_FALSE(greenlet::gettrace());
}

}  // namespace
