// greenlet_reentrant_switch_test.cpp: a trace function that switches
// greenlets while a switch is under way. Ported from greenlet's
// src/greenlet/tests/test_greenlet.py (TestBrokenGreenlets), which runs the
// scripts fail_switch_two_greenlets.py and fail_switch_three_greenlets2.py
// beside it; their bodies are inlined here, their printed output becomes an
// event log.
#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fiber/test_greenlet_support.hpp"

namespace {

using TestBrokenGreenlets = greenlet_test::GreenletTest;
using greenlet_port::switch_up;

// show(v) prints a switch result as the Python script does: the string, or
// "()" for an empty value.
std::string show(const greenlet::value& v) {
  if (v.empty()) return "()";
  if (v.holds<std::string>()) return v.get<std::string>();
  return std::string("<") + v.type().name() + ">";
}

// tracer_scope installs a trace function and restores the previous one.
class tracer_scope {
 public:
  explicit tracer_scope(greenlet::trace_function f) : previous_(greenlet::settrace(std::move(f))) {}
  ~tracer_scope() { greenlet::settrace(std::move(previous_)); }
  tracer_scope(const tracer_scope&) = delete;
  tracer_scope& operator=(const tracer_scope&) = delete;

 private:
  greenlet::trace_function previous_;
};

bool contains(const std::vector<std::string>& output, const std::string& line) {
  return std::find(output.begin(), output.end(), line) != output.end();
}

TEST_F(TestBrokenGreenlets, test_reentrant_switch_two_greenlets) {
  std::vector<std::string> output;
  greenlet::greenlet g1;
  greenlet::greenlet g2;
  bool switch_to_g2 = false;
  {
    tracer_scope tracing([&](std::string_view event, const greenlet::greenlet&, const greenlet::greenlet&) {
      output.push_back("TRACE " + std::string(event));
      if (switch_to_g2) {
        switch_to_g2 = false;
        g2.switch_();
      }
      output.push_back("LEAVE TRACE " + std::string(event));
    });
    g1 = greenlet::greenlet([&] {
      output.push_back("In g1_run");
      switch_to_g2 = true;
      switch_up();
      output.push_back("Return to g1_run");
      output.push_back("Falling off end of g1_run");
    });
    g2 = greenlet::greenlet([&] {
      g1.switch_();
      output.push_back("Falling off end of g2");
    });
    g1.switch_();
    output.push_back("Falling off end of main");
    g2.switch_();
  }
  for (const char* line : {"In g1_run", "TRACE switch", "LEAVE TRACE switch", "Falling off end of main",
                           "Falling off end of g1_run", "Falling off end of g2"}) {
    EXPECT_TRUE(contains(output, line)) << line;
  }
  EXPECT_TRUE(g1.dead());
  EXPECT_TRUE(g2.dead());
}

// The trace function runs on the side of the greenlet being switched to,
// before that greenlet sees the switch's arguments; when it switches away
// and back, those arguments must not be replaced by what it was switched
// back with.
// (This once failed: call_trace() did not keep the pending switch's
// arguments while the trace function switched away and back.)
TEST_F(TestBrokenGreenlets, test_reentrant_switch_three_greenlets2) {
  using pair = std::pair<std::string, std::string>;
  std::vector<pair> results;
  greenlet::greenlet g1;
  greenlet::greenlet g2;
  bool switch_to_g2 = true;
  {
    tracer_scope tracing([&](std::string_view event, const greenlet::greenlet&, const greenlet::greenlet&) {
      results.emplace_back("trace", std::string(event));
      if (switch_to_g2) {
        switch_to_g2 = false;
        g2.switch_("g2 from tracefunc");
      }
    });
    // run takes greenlet::value so that a lost argument shows up in results.
    g1 = greenlet::greenlet([&](greenlet::value arg) -> std::string {
      results.emplace_back("g1 arg", show(arg));
      greenlet::value from_parent = switch_up("from g1_run");
      results.emplace_back("g1 from parent", show(from_parent));
      return "g1 done";
    });
    g2 = greenlet::greenlet([&](greenlet::value arg) -> std::string {
      results.emplace_back("g2 arg", show(arg));
      greenlet::value parent = switch_up("from g2_run");
      switch_to_g2 = false;
      results.emplace_back("g2 from parent", show(parent));
      return "g2 done";
    });

    greenlet::value x = g1.switch_("g1 from main");
    results.emplace_back("main g1", show(x));
    x = g1.switch_("g2 from main");
    results.emplace_back("main g2", show(x));
    x = g1.switch_("g1 from main 2");
    results.emplace_back("main g1.2", show(x));
    x = g2.switch_();
    results.emplace_back("main g2.2", show(x));
  }
  EXPECT_EQ(results, (std::vector<pair>{{"trace", "switch"},
                                        {"trace", "switch"},
                                        {"g2 arg", "g2 from tracefunc"},
                                        {"trace", "switch"},
                                        {"main g1", "from g2_run"},
                                        {"trace", "switch"},
                                        {"g1 arg", "g1 from main"},
                                        {"trace", "switch"},
                                        {"main g2", "from g1_run"},
                                        {"trace", "switch"},
                                        {"g1 from parent", "g1 from main 2"},
                                        {"trace", "switch"},
                                        {"main g1.2", "g1 done"},
                                        {"trace", "switch"},
                                        {"g2 from parent", "()"},
                                        {"trace", "switch"},
                                        {"main g2.2", "g2 done"}}));
}

// The same bug reduced to one greenlet and one helper, for starting (run's
// arguments) and resuming (switch_()'s result). Not in test_greenlet.py.
using ReentrantSwitch = greenlet_test::GreenletTest;

TEST_F(ReentrantSwitch, TraceSwitchingAwayKeepsStartArguments) {
  greenlet::greenlet g([](greenlet::value v) { return v.holds<int>() && v.get<int>() == 42; });
  greenlet::greenlet other([] {}, g);
  bool once = true;
  {
    tracer_scope tracing([&](std::string_view, const greenlet::greenlet&, const greenlet::greenlet& target) {
      if (once && target == g) {
        once = false;
        other.switch_();  // other dies at once and switches back to g
      }
    });
    EXPECT_TRUE(g.switch_(42).get<bool>());
  }
  EXPECT_FALSE(once);
}

TEST_F(ReentrantSwitch, TraceSwitchingAwayKeepsSwitchArguments) {
  greenlet::greenlet g([] {
    greenlet::value v = switch_up();
    return v.holds<int>() && v.get<int>() == 42;
  });
  g.switch_();
  greenlet::greenlet other([] {}, g);
  bool once = true;
  {
    tracer_scope tracing([&](std::string_view, const greenlet::greenlet&, const greenlet::greenlet& target) {
      if (once && target == g) {
        once = false;
        other.switch_();
      }
    });
    EXPECT_TRUE(g.switch_(42).get<bool>());
  }
  EXPECT_FALSE(once);
}

}  // namespace
