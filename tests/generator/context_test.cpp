// context_test.cpp: context variables in generator bodies. A Python
// generator frame has no context of its own: its body reads and sets the
// context of whoever resumes it (next, send, throw, close, the close at
// destruction), and the resumer sees what the body set. The C++ body runs
// on a greenlet; its context resolves to its parent's, the resumer's. Before,
// the body saw an empty context of its own and its sets stayed there.
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/generator.hpp>

#include "support/greenlet_test.hpp"

namespace {

using GeneratorContext = greenlet_test::GreenletTest;
using string_gen = greenlet::generator<std::string>;
using strings = std::vector<std::string>;

greenlet::context_var<std::string> var("var", std::string("default"));

// main_context_kept puts the main greenlet's context back as it was: it
// outlives the test, and the fixture counts what it holds as a leak.
struct main_context_kept {
  greenlet::context saved = greenlet::copy_context();
  ~main_context_kept() { greenlet::getcurrent().set_gr_context(saved); }
};

// The Python twin:
//   var.set("caller"); g = gen(); next(g)   # body sees "caller", sets "ingen"
//   var.get() == "ingen"; var.set("caller2"); next(g)  # body sees "caller2"
TEST_F(GeneratorContext, BodyReadsAndSetsTheResumersContext) {
  main_context_kept keep;
  strings seen;
  var.set("caller");
  string_gen g([&](string_gen::context& co) {
    seen.push_back(var.get());
    var.set("ingen");
    co.yield("one");
    seen.push_back(var.get());
    var.set("ingen2");
  });
  EXPECT_EQ(g.next(), "one");
  EXPECT_EQ(var.get(), "ingen");
  var.set("caller2");
  EXPECT_THROW(g.next(), greenlet::StopIteration);
  EXPECT_EQ(var.get(), "ingen2");
  EXPECT_EQ(seen, (strings{"caller", "caller2"}));
}

TEST_F(GeneratorContext, SendThrowAndCloseRunInTheResumersContext) {
  main_context_kept keep;
  using send_gen_t = greenlet::generator<std::string, int>;
  strings seen;
  send_gen_t g([&](send_gen_t::context& co) {
    std::optional<int> got = co.yield("first");
    seen.push_back(var.get() + " got " + std::to_string(*got));
    try {
      co.yield("second");
    } catch (const std::runtime_error& e) {
      seen.push_back(var.get() + " caught " + e.what());
      var.set("after throw");
    }
    try {
      co.yield("third");
    } catch (const greenlet::GeneratorExit&) {
      seen.push_back(var.get() + " closing");
      var.set("after close");
      throw;
    }
  });
  var.set("next");
  EXPECT_EQ(g.next(), "first");
  var.set("send");
  EXPECT_EQ(g.send(5), "second");
  var.set("throw");
  EXPECT_EQ(g.throw_(std::runtime_error("boom")), "third");
  EXPECT_EQ(var.get(), "after throw");
  var.set("close");
  g.close();
  EXPECT_EQ(var.get(), "after close");
  EXPECT_EQ(seen, (strings{"send got 5", "throw caught boom", "close closing"}));
}

// The body's exception, and its return, leave its sets in the resumer's
// context, as a Python frame's do.
TEST_F(GeneratorContext, SetsBeforeTheBodyEndsStayWithTheResumer) {
  main_context_kept keep;
  string_gen throws([] {
    var.set("before throwing");
    throw std::runtime_error("out");
  });
  EXPECT_THROW(throws.next(), std::runtime_error);
  EXPECT_EQ(var.get(), "before throwing");
  string_gen returns([] { var.set("before returning"); });
  EXPECT_THROW(returns.next(), greenlet::StopIteration);
  EXPECT_EQ(var.get(), "before returning");
}

// Python's dealloc closes the generator in the current context.
TEST_F(GeneratorContext, DestructionClosesInTheDestroyersContext) {
  main_context_kept keep;
  std::string seen_at_close;
  {
    string_gen g([&](string_gen::context& co) {
      try {
        co.yield("x");
      } catch (const greenlet::GeneratorExit&) {
        seen_at_close = var.get();
        var.set("set while closing");
        throw;
      }
    });
    g.next();
    var.set("destroyer");
  }
  EXPECT_EQ(seen_at_close, "destroyer");
  EXPECT_EQ(var.get(), "set while closing");
}

// A body that ignores GeneratorExit is killed (GreenletExit) after the
// close: it unwinds in a copy of the destroyer's context.
TEST_F(GeneratorContext, KillAfterAnIgnoredCloseSeesTheDestroyersContext) {
  main_context_kept keep;
  std::vector<std::string> reports;
  auto previous = greenlet::set_unraisable_hook(
      [&](std::exception_ptr, std::string_view context) { reports.emplace_back(context); });
  std::string seen_at_kill;
  {
    string_gen g([&](string_gen::context& co) {
      try {
        co.yield("x");
      } catch (const greenlet::GeneratorExit&) {
      }
      try {
        co.yield("ignored the close");
      } catch (const greenlet::GreenletExit&) {
        seen_at_kill = var.get();
        var.set("set while killed");  // not seen by the destroyer: the kill is no resume
        throw;
      }
    });
    g.next();
    var.set("destroyer");
  }
  greenlet::set_unraisable_hook(std::move(previous));
  EXPECT_EQ(seen_at_kill, "destroyer");
  EXPECT_EQ(var.get(), "destroyer");
  EXPECT_EQ(reports.size(), 1u);  // "closing a generator being destroyed": it ignored GeneratorExit
}

// A generator iterated in another's body runs in the outer body's context,
// which is the outer resumer's.
TEST_F(GeneratorContext, NestedGeneratorsShareTheOutermostResumersContext) {
  main_context_kept keep;
  strings seen;
  string_gen outer([&](string_gen::context& co) {
    string_gen inner([&](string_gen::context& ico) {
      seen.push_back("inner sees " + var.get());
      var.set("inner");
      ico.yield("i1");
      seen.push_back("inner sees " + var.get());
    });
    seen.push_back("outer sees " + var.get());
    for (const std::string& x : inner) {
      seen.push_back("outer after " + x + " sees " + var.get());
      co.yield(x);
      var.set("outer");
    }
    seen.push_back("outer sees " + var.get());
  });
  var.set("caller");
  EXPECT_EQ(outer.next(), "i1");
  EXPECT_EQ(var.get(), "inner");
  var.set("caller2");
  EXPECT_THROW(outer.next(), greenlet::StopIteration);
  EXPECT_EQ(seen, (strings{"outer sees caller", "inner sees caller", "outer after i1 sees inner", "inner sees outer",
                           "outer sees outer"}));
}

TEST_F(GeneratorContext, YieldFromDelegatesInTheSameContext) {
  main_context_kept keep;
  strings seen;
  string_gen outer([&](string_gen::context& co) {
    co.yield_from(string_gen([&](string_gen::context& sub) {
      seen.push_back("sub sees " + var.get());
      var.set("sub");
      sub.yield("s1");
      seen.push_back("sub sees " + var.get());
      var.set("sub again");
    }));
    seen.push_back("outer sees " + var.get());
  });
  var.set("caller");
  EXPECT_EQ(outer.next(), "s1");
  EXPECT_EQ(var.get(), "sub");
  var.set("caller2");
  EXPECT_THROW(outer.next(), greenlet::StopIteration);
  EXPECT_EQ(seen, (strings{"sub sees caller", "sub sees caller2", "outer sees sub again"}));
}

// An inner body yielding with the outer generator's context (the outer
// suspends mid-way through the inner's resume) hands the resumer its own
// context back, and sees the resumer's new one when resumed.
TEST_F(GeneratorContext, YieldOnTheOuterGeneratorsBehalfReturnsTheContext) {
  main_context_kept keep;
  strings seen;
  string_gen outer([&](string_gen::context& co) {
    string_gen inner([&] {
      var.set("inner");
      co.yield("for outer");
      seen.push_back("inner sees " + var.get());
      var.set("inner again");
      string_gen::yield("own");
    });
    for (const std::string& x : inner) seen.push_back("outer got " + x + ", sees " + var.get());
  });
  var.set("caller");
  EXPECT_EQ(outer.next(), "for outer");
  EXPECT_EQ(var.get(), "inner");
  var.set("caller2");
  EXPECT_THROW(outer.next(), greenlet::StopIteration);
  EXPECT_EQ(var.get(), "inner again");
  EXPECT_EQ(seen, (strings{"inner sees caller2", "outer got own, sees inner again"}));
}

// Resumed from two greenlets in turn, the body sees each one's context and
// sets it there; the other's is untouched.
TEST_F(GeneratorContext, EachResumingGreenletLendsItsOwnContext) {
  strings seen;
  string_gen g([&](string_gen::context& co) {
    for (int i = 0;; ++i) {
      seen.push_back(var.get());
      var.set("set by step " + std::to_string(i));
      co.yield("");
    }
  });
  auto resume_as = [&](const std::string& name) {
    return greenlet::greenlet([&g, name] {
      var.set(name);
      g.next();
      std::string after_first = var.get();
      greenlet::getcurrent().parent().switch_();
      g.next();
      return after_first + " / " + var.get();
    });
  };
  greenlet::greenlet a = resume_as("a");
  greenlet::greenlet b = resume_as("b");
  a.switch_();
  b.switch_();
  EXPECT_EQ(a.switch_().get<std::string>(), "set by step 0 / set by step 2");
  EXPECT_EQ(b.switch_().get<std::string>(), "set by step 1 / set by step 3");
  EXPECT_EQ(seen, (strings{"a", "b", "set by step 0", "set by step 1"}));
  EXPECT_EQ(var.get(), "default");
}

// A greenlet started inside a body has its own context, as any new greenlet.
TEST_F(GeneratorContext, AGreenletStartedInTheBodyKeepsItsOwnContext) {
  main_context_kept keep;
  std::string in_greenlet;
  string_gen g([&](string_gen::context& co) {
    greenlet::greenlet([&] {
      in_greenlet = var.get();
      var.set("child");
    }).switch_();
    co.yield(var.get());
  });
  var.set("caller");
  EXPECT_EQ(g.next(), "caller");
  EXPECT_EQ(in_greenlet, "default");
}

// Resumed from a task, the body runs in the task's context (Python: a
// generator stepped in a coroutine sees and sets the task's context).
TEST_F(GeneratorContext, ResumedFromATaskTheBodyUsesTheTasksContext) {
  namespace asyncio = greenlet::asyncio;
  strings seen;
  asyncio::run([&] {
    var.set("taskgen");
    string_gen g([&](string_gen::context& co) {
      seen.push_back("body sees " + var.get());
      var.set("ingen");
      co.yield("");
    });
    g.next();
    seen.push_back("task sees " + var.get());
    auto child = asyncio::create_task([] { return var.get(); });
    seen.push_back("child task sees " + asyncio::await(child));
  });
  EXPECT_EQ(seen, (strings{"body sees taskgen", "task sees ingen", "child task sees ingen"}));
  EXPECT_EQ(var.get(), "default");
}

// A start that fails (no stack) gives the context back.
TEST_F(GeneratorContext, AFailedStartGivesTheContextBack) {
  main_context_kept keep;
  string_gen g([](string_gen::context& co) { co.yield(""); }, greenlet::stack_options{.size = std::size_t(1) << 50});
  var.set("caller");
  EXPECT_THROW(g.next(), greenlet::error);
  EXPECT_EQ(var.get(), "caller");
}

}  // namespace
