// tracing_test.cpp: greenlet::settrace(), ported from greenlet's
// src/greenlet/tests/test_tracing.py (TestGreenletTracing).
//
// TestPythonTracing is about sys.setprofile() and Python frames; C++ has no
// counterpart, so it is not ported.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "fiber/test_greenlet_support.hpp"
#include "support/greenlet_test.hpp"

namespace {

using TestGreenletTracing = greenlet_test::GreenletTest;

using greenlet_port::SomeError;

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

// A trace function that drops the last handle to the origin of the switch
// it traces: as in Python, that greenlet is killed right after the trace
// call (its GreenletExit and its last switch are traced too), not left
// suspended until its thread exits. Python 3 with greenlet 3 prints:
//   switch main->g, switch g->main (drops g), throw main->g, g unwound,
//   switch g->main
TEST_F(TestGreenletTracing, TraceDroppingTheLastHandleToTheOriginKillsIt) {
  greenlet::greenlet main = greenlet::getcurrent();
  std::vector<std::string> log;
  greenlet::greenlet kept;
  const std::uint64_t main_id = main.id();
  std::uint64_t g_id = 0;
  auto name = [&](const greenlet::greenlet& g) { return g.id() == main_id ? std::string("main") : std::string("g"); };
  greenlet::trace_function previous = greenlet::settrace(
      [&](std::string_view event, const greenlet::greenlet& origin, const greenlet::greenlet& target) {
        log.push_back(std::string(event) + " " + name(origin) + "->" + name(target));
        if (!kept.empty() && origin == kept) {
          log.push_back("trace drops g");
          kept = greenlet::greenlet();
        }
      });
  kept = greenlet::greenlet([&] {
    struct Unwound {
      std::vector<std::string>& log;
      ~Unwound() { log.push_back("g unwound"); }
    } unwound{log};
    main.switch_();
    log.push_back("g resumed");  // never
  });
  g_id = kept.id();
  kept.switch_();
  log.push_back("back in main");
  greenlet::settrace(std::move(previous));
  EXPECT_NE(g_id, 0u);
  EXPECT_EQ(log, (std::vector<std::string>{"switch main->g", "switch g->main", "trace drops g", "throw main->g",
                                           "g unwound", "switch g->main", "back in main"}));
}

// A profiler's trace function keeps "the greenlet now running" (the target),
// and a scheduler's workers drop their own handle before they finish: each
// finished worker's last handle goes when the next switch replaces it,
// inside the trace call. They used to be leaked, all of them.
TEST_F(TestGreenletTracing, TraceKeepingTheRunningGreenletFreesFinishedOnes) {
  greenlet::greenlet running;
  greenlet::trace_function previous = greenlet::settrace(
      [&running](std::string_view, const greenlet::greenlet&, const greenlet::greenlet& target) { running = target; });
  std::vector<greenlet::greenlet> scheduled;
  int finished = 0;
  for (int i = 0; i < 100; ++i) {
    scheduled.emplace_back([&] {
      scheduled.clear();  // done with the scheduler: only the profiler's handle is left
      ++finished;
    });
    greenlet::greenlet* worker = &scheduled.back();
    worker->switch_();
    EXPECT_EQ(greenlet::debug::live_count(), 0u) << "after worker " << i;
  }
  greenlet::settrace(std::move(previous));
  running = greenlet::greenlet();
  EXPECT_EQ(finished, 100);
  EXPECT_EQ(greenlet::debug::live_count(), 0u);
}

// EventLog records each trace event as "event origin->target (cur=...)",
// naming greenlets by their name ("main" for the main greenlet), as the
// Python twins of these tests print them.
class EventLog {
 public:
  EventLog() {
    previous_ = greenlet::settrace(
        [this](std::string_view event, const greenlet::greenlet& origin, const greenlet::greenlet& target) {
          events.push_back(std::string(event) + " " + name(origin) + "->" + name(target) +
                           " (cur=" + name(greenlet::getcurrent()) + ")");
        });
  }
  ~EventLog() { greenlet::settrace(std::move(previous_)); }
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  std::vector<std::string> events;

 private:
  static std::string name(const greenlet::greenlet& g) { return g.is_main() ? "main" : g.name(); }
  greenlet::trace_function previous_;
};

greenlet::greenlet named(greenlet::greenlet g, const char* name) {
  g.set_name(name);
  return g;
}

// throw_() into an unstarted greenlet: Python starts it, and it dies at once
// without running, so both switches are traced, each on its target's side.
// They were not traced at all.
TEST_F(TestGreenletTracing, ThrowIntoUnstartedGreenletIsTraced) {
  std::vector<std::string> events;
  bool ran = false;
  {
    EventLog log;
    greenlet::greenlet g = named(greenlet::greenlet([&ran] { ran = true; }), "g");
    EXPECT_THROW(g.throw_(SomeError()), SomeError);
    EXPECT_TRUE(g.dead());
    greenlet::greenlet h = named(greenlet::greenlet([&ran] { ran = true; }), "h");
    greenlet::value v = h.throw_();  // GreenletExit comes back as a value
    EXPECT_TRUE(v.holds<greenlet::GreenletExit>());
    EXPECT_TRUE(h.dead());
    EXPECT_TRUE(h.started());
    events = log.events;
  }
  EXPECT_FALSE(ran);
  EXPECT_EQ(events, (std::vector<std::string>{"throw main->g (cur=g)", "throw g->main (cur=main)",
                                              "throw main->h (cur=h)", "switch h->main (cur=main)"}));
}

// An exception on its way to an unstarted parent starts that parent, which
// passes it on to its own parent (Python: throw c->p, throw p->main). The
// parent was skipped.
TEST_F(TestGreenletTracing, ExceptionThroughUnstartedParentIsTraced) {
  std::vector<std::string> events;
  bool parent_ran = false;
  {
    EventLog log;
    greenlet::greenlet p = named(greenlet::greenlet([&parent_ran] { parent_ran = true; }), "p");
    greenlet::greenlet c = named(greenlet::greenlet([] { throw SomeError(); }, p), "c");
    EXPECT_THROW(c.switch_(), SomeError);
    EXPECT_TRUE(p.dead());
    EXPECT_TRUE(c.dead());
    events = log.events;
  }
  EXPECT_FALSE(parent_ran);
  EXPECT_EQ(events,
            (std::vector<std::string>{"switch main->c (cur=c)", "throw c->p (cur=p)", "throw p->main (cur=main)"}));
}

// A switch or throw to itself switches nothing but is traced, as in Python.
TEST_F(TestGreenletTracing, SwitchAndThrowToSelfAreTraced) {
  std::vector<std::string> events;
  std::vector<std::string> seen;
  {
    EventLog log;
    greenlet::greenlet g = named(greenlet::greenlet([&seen] {
                                   seen.push_back(std::to_string(greenlet::getcurrent().switch_(3).get<int>()));
                                   try {
                                     greenlet::getcurrent().throw_(SomeError());
                                   } catch (const SomeError&) {
                                     seen.push_back("SomeError");
                                   }
                                 }),
                                 "g");
    g.switch_();
    events = log.events;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"3", "SomeError"}));
  EXPECT_EQ(events, (std::vector<std::string>{"switch main->g (cur=g)", "switch g->g (cur=g)", "throw g->g (cur=g)",
                                              "switch g->main (cur=main)"}));
}

// A switch (or throw) to a dead greenlet lands on its nearest live ancestor;
// when that is the caller itself, Python still traces "main -> main".
TEST_F(TestGreenletTracing, SwitchToDeadGreenletLandingOnTheCallerIsTraced) {
  std::vector<std::string> events;
  {
    greenlet::greenlet g = named(greenlet::greenlet([] { return 1; }), "g");
    g.switch_();
    EventLog log;
    EXPECT_EQ(g.switch_(9).get<int>(), 9);
    EXPECT_THROW(g.throw_(SomeError()), SomeError);
    events = log.events;
  }
  EXPECT_EQ(events, (std::vector<std::string>{"switch main->main (cur=main)", "throw main->main (cur=main)"}));
}

// ThreadLocalProbe notes its destruction, as any thread_local a trace
// function uses would go.
struct ThreadLocalProbe {
  bool* destroyed;
  ~ThreadLocalProbe() { *destroyed = true; }
};

// Thread exit drops the trace function before it kills the thread's
// unfinished greenlets, as Python's thread state does: the thread_locals made
// after the thread's greenlet state are destroyed by then, and the trace
// function used to be called by those kills all the same (a double free
// where it used such a thread_local). A settrace() from a victim is ignored.
TEST_F(TestGreenletTracing, ThreadExitKillsAreNotTraced) {
  std::vector<std::string> events;
  bool probe_destroyed = false;
  bool traced_after_probe_destroyed = false;
  bool killed = false;
  bool trace_off_after_settrace_in_kill = false;
  greenlet::greenlet kept;  // keeps g suspended past its thread's end
  std::thread worker([&] {
    greenlet::greenlet g([&] {
      try {
        greenlet::getcurrent().parent().switch_();
      } catch (const greenlet::GreenletExit&) {
        killed = true;
        greenlet::settrace([&](auto&&...) { events.push_back("set during the kill"); });
        trace_off_after_settrace_in_kill = !greenlet::gettrace();
        throw;
      }
    });
    greenlet::settrace([&](std::string_view event, const greenlet::greenlet&, const greenlet::greenlet&) {
      thread_local ThreadLocalProbe probe{&probe_destroyed};  // made after the thread's greenlet state
      if (probe_destroyed) traced_after_probe_destroyed = true;
      events.emplace_back(event);
    });
    g.switch_();
    kept = g;
  });
  worker.join();
  EXPECT_TRUE(killed);
  EXPECT_TRUE(kept.dead());
  EXPECT_TRUE(probe_destroyed);
  EXPECT_FALSE(traced_after_probe_destroyed);
  EXPECT_TRUE(trace_off_after_settrace_in_kill);
  EXPECT_EQ(events, (std::vector<std::string>{"switch", "switch"}));
}

}  // namespace
