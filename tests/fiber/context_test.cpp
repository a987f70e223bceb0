// context_test.cpp: per-greenlet context variables, after greenlet's
// src/greenlet/tests/test_contextvars.py.
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/greenlet_test.hpp"

namespace {

using ContextVarsTest = greenlet_test::GreenletTest;

// test_minimal_set / test_context_not_propagated: a new greenlet starts
// with an empty context, and its sets stay its own.
TEST_F(ContextVarsTest, test_context_not_propagated) {
  greenlet::context_var<int> id_var("id", -1);
  auto token = id_var.set(1);
  std::vector<int> seen;
  greenlet::greenlet g([&] {
    seen.push_back(id_var.get());  // default: the new greenlet's context is empty
    id_var.set(2);
    seen.push_back(id_var.get());
    greenlet::getcurrent().parent().switch_();
    seen.push_back(id_var.get());
  });
  g.switch_();
  seen.push_back(id_var.get());  // main still sees 1
  g.switch_();
  EXPECT_EQ(seen, (std::vector<int>{-1, 2, 1, 2}));
  id_var.reset(token);  // the main greenlet's context outlives the test
}

// test_context_shared: greenlets given the same context see the same values.
TEST_F(ContextVarsTest, test_set_gr_context) {
  greenlet::context_var<std::string> name("name");
  auto token = name.set("main");
  greenlet::greenlet g([&] { return name.get(); });
  g.set_gr_context(greenlet::getcurrent().gr_context());
  EXPECT_EQ(g.switch_().get<std::string>(), "main");
  name.reset(token);
  greenlet::getcurrent().set_gr_context(greenlet::context());  // leave main as it was
}

// contextvars: get() without value or default raises LookupError; tokens
// restore the previous value once (a second reset() is greenlet::error, see
// ResetRefusesAUsedTokenLikePythonsRuntimeError).
TEST_F(ContextVarsTest, TokensAndLookupError) {
  greenlet::greenlet g([] {
    greenlet::context_var<int> v("v");
    EXPECT_THROW(v.get(), greenlet::LookupError);
    EXPECT_EQ(v.get(7), 7);
    auto t1 = v.set(1);
    auto t2 = v.set(2);
    EXPECT_EQ(v.get(), 2);
    v.reset(t2);
    EXPECT_EQ(v.get(), 1);
    EXPECT_THROW(v.reset(t2), greenlet::error);
    v.reset(t1);
    EXPECT_THROW(v.get(), greenlet::LookupError);
  });
  g.switch_();
  EXPECT_TRUE(g.dead());
}

// ContextVar.get(default): the argument comes before the variable's own
// default; a value set in the context comes before both.
TEST_F(ContextVarsTest, GetFallbackComesBeforeTheDefault) {
  greenlet::greenlet g([] {
    greenlet::context_var<std::string> with_default("with_default", std::string("dflt"));
    greenlet::context_var<std::string> without_default("without_default");
    EXPECT_EQ(with_default.get("fb"), "fb");
    EXPECT_EQ(without_default.get("fb"), "fb");
    EXPECT_EQ(with_default.get(), "dflt");
    with_default.set("set");
    EXPECT_EQ(with_default.get("fb"), "set");
  });
  g.switch_();
  EXPECT_TRUE(g.dead());
}

// expect_error(fn, code) runs fn and expects it to throw greenlet::error with code; returns the
// message.
std::string expect_error(const std::function<void()>& fn, greenlet::errc code) {
  try {
    fn();
  } catch (const greenlet::error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no greenlet::error thrown";
  return {};
}

// contextvars' test_context_getset_1: a token works once; reset() with it
// again is Python's RuntimeError "<Token ...> has already been used once"
// (here errc::token_used, not the LookupError of get()), and changes nothing.
TEST_F(ContextVarsTest, ResetRefusesAUsedTokenLikePythonsRuntimeError) {
  greenlet::greenlet g([] {
    greenlet::context_var<std::string> c("c");
    auto t0 = c.set("42");
    auto t = c.set("spam");
    EXPECT_EQ(t.var(), &c);
    c.reset(t);
    EXPECT_EQ(c.get(), "42");
    c.set("spam2");
    std::string message = expect_error([&] { c.reset(t); }, greenlet::errc::token_used);
    EXPECT_NE(message.find("context_var 'c'"), std::string::npos) << message;
    EXPECT_NE(message.find("has already been used once"), std::string::npos) << message;
    EXPECT_EQ(c.get(), "spam2");
    greenlet::context ctx1 = greenlet::copy_context();
    c.reset(t0);
    expect_error([&] { c.reset(t0); }, greenlet::errc::token_used);
    EXPECT_EQ(c.get("none"), "none");
    EXPECT_EQ(ctx1.run([&] { return c.get(); }), "spam2");  // the copy keeps its value
  });
  g.switch_();
  EXPECT_TRUE(g.dead());
}

// contextvars' test_context_getset_2: a token of another variable is
// Python's ValueError "<Token ...> was created by a different ContextVar"
// (here errc::token_other_var), checked after "already used" as Python does;
// neither variable changes, and the token still works with its own variable.
TEST_F(ContextVarsTest, ResetRefusesATokenOfAnotherVariableLikePythonsValueError) {
  greenlet::greenlet g([] {
    greenlet::context_var<int> v1("v1");
    greenlet::context_var<int> v2("v2", 0);
    auto t1 = v1.set(42);
    std::string message = expect_error([&] { v2.reset(t1); }, greenlet::errc::token_other_var);
    EXPECT_NE(message.find("context_var 'v2'"), std::string::npos) << message;
    EXPECT_NE(message.find("created by a different context_var"), std::string::npos) << message;
    EXPECT_EQ(v1.get(), 42);
    EXPECT_EQ(v2.get(), 0);
    v1.reset(t1);
    EXPECT_EQ(v1.get(-1), -1);
    // Used and of another variable: "already used" is what Python reports.
    expect_error([&] { v2.reset(t1); }, greenlet::errc::token_used);
  });
  g.switch_();
  EXPECT_TRUE(g.dead());
}

// contextvars' test_context_var_reset_2/3: a token made in another context
// is refused (Python's ValueError "... was created in a different
// Context"), and leaves the current value alone. Another context is another
// context object being run, a copy of one, or another greenlet's context.
TEST_F(ContextVarsTest, ResetRefusesATokenOfAnotherContext) {
  // On the test's stack, not g's: `other` below uses them while g is
  // suspended, and with stack copying g's stack is not at its addresses then.
  greenlet::context_var<std::string> v("v", std::string("dflt"));
  std::optional<greenlet::context_var<std::string>::token> theirs;
  greenlet::greenlet g([&] {
    v.set("outer");
    greenlet::context ctx = greenlet::copy_context();
    auto made_in_ctx = ctx.run([&] { return v.set("in ctx"); });
    std::string message = expect_error([&] { v.reset(made_in_ctx); }, greenlet::errc::token_other_context);
    EXPECT_NE(message.find("context_var 'v'"), std::string::npos) << message;
    EXPECT_NE(message.find("different context"), std::string::npos) << message;
    EXPECT_EQ(v.get(), "outer");
    greenlet::context copy = ctx;  // same values, another context
    copy.run([&] { expect_error([&] { v.reset(made_in_ctx); }, greenlet::errc::token_other_context); });
    EXPECT_EQ(copy.run([&] { return v.get(); }), "in ctx");
    // In the context that made it, later, the token works (once).
    ctx.run([&] {
      v.reset(made_in_ctx);
      EXPECT_EQ(v.get(), "outer");
    });
    EXPECT_EQ(ctx.run([&] { return v.get(); }), "outer");

    // A token of the greenlet's own context is refused inside a run() and
    // accepted after it.
    auto own = v.set("own");
    greenlet::copy_context().run([&] { expect_error([&] { v.reset(own); }, greenlet::errc::token_other_context); });
    v.reset(own);
    EXPECT_EQ(v.get(), "outer");

    // Another greenlet's token.
    greenlet::greenlet other([&] {
      theirs = v.set("other");
      greenlet::getcurrent().parent().switch_();
    });
    other.switch_();
    expect_error([&] { v.reset(*theirs); }, greenlet::errc::token_other_context);
    EXPECT_EQ(v.get(), "outer");
    other.switch_();
    EXPECT_TRUE(other.dead());
  });
  g.switch_();
  EXPECT_TRUE(g.dead());
}

// contextvars' test_context_run_4 ("is already entered"): run() of a
// context inside its own run() throws (Python's RuntimeError "cannot enter
// context"), in the same greenlet or another one it switched to; the outer
// run() goes on, and a copy may run inside.
TEST_F(ContextVarsTest, RunOfAContextAlreadyEnteredIsRefused) {
  // On main's stack: `other` below uses it while g is suspended, when g's
  // locals are not at their addresses with stack copying.
  greenlet::context ctx;
  greenlet::greenlet g([&ctx] {
    greenlet::context_var<std::string> v("v", std::string("dflt"));
    ctx = greenlet::copy_context();
    ctx.run([&] {
      v.set("outer run");
      std::string message =
          expect_error([&] { ctx.run([&] { v.set("inner run"); }); }, greenlet::errc::context_entered);
      EXPECT_NE(message.find("already entered"), std::string::npos) << message;
      EXPECT_EQ(v.get(), "outer run");
      greenlet::greenlet other([&] { expect_error([&] { ctx.run([] {}); }, greenlet::errc::context_entered); });
      other.switch_();
      EXPECT_TRUE(other.dead());
      greenlet::context inner = ctx;  // a copy is another context
      inner.run([&] { v.set("copy"); });
      EXPECT_EQ(inner.run([&] { return v.get(); }), "copy");
      EXPECT_EQ(v.get(), "outer run");
    });
    EXPECT_EQ(ctx.run([&] { return v.get(); }), "outer run");  // entered again once it returned
    EXPECT_EQ(v.get(), "dflt");
  });
  g.switch_();
  EXPECT_TRUE(g.dead());
}

// context::run: sets inside stay in that context object.
TEST_F(ContextVarsTest, ContextRunKeepsItsOwnChanges) {
  greenlet::greenlet g([] {
    greenlet::context_var<int> v("v", 0);
    v.set(1);
    greenlet::context snapshot = greenlet::copy_context();
    snapshot.run([&] {
      EXPECT_EQ(v.get(), 1);
      v.set(5);
    });
    EXPECT_EQ(v.get(), 1);
    EXPECT_EQ(snapshot.run([&] { return v.get(); }), 5);
  });
  g.switch_();
}

// set_gr_context() on the running greenlet inside ctx.run(fn) was undone
// silently when run() returned (ctx took the other context's values, the
// greenlet got its old context back). Python's run() raises RuntimeError
// "cannot exit context: thread state references a different context object";
// here errc::context_replaced, and the greenlet keeps the context it was given.
TEST_F(ContextVarsTest, SetGrContextInsideRunIsKeptAndRunThrows) {
  greenlet::greenlet g([] {
    greenlet::context_var<int> var("v");
    var.set(1);
    greenlet::context other;
    other.run([&] { var.set(5); });
    greenlet::context ctx = greenlet::copy_context();
    std::string message = expect_error(
        [&] {
          ctx.run([&] {
            greenlet::getcurrent().set_gr_context(other);
            EXPECT_EQ(var.get(-1), 5);
            var.set(6);
          });
        },
        greenlet::errc::context_replaced);
    EXPECT_NE(message.find("cannot exit context"), std::string::npos) << message;
    EXPECT_EQ(var.get(-1), 6);                             // the context given, with what fn set in it
    EXPECT_EQ(ctx.run([&] { return var.get(-1); }), 1);    // ctx: left, with its values from before
    EXPECT_EQ(other.run([&] { return var.get(-1); }), 5);  // set_gr_context() ran in a copy of other

    // The same for a run() that returns a value.
    expect_error(
        [&] {
          (void)ctx.run([&] {
            greenlet::getcurrent().set_gr_context(other);
            return 3;
          });
        },
        greenlet::errc::context_replaced);
    EXPECT_EQ(var.get(-1), 5);

    // When fn throws, its exception goes on; the greenlet keeps its new context all the same.
    auto replace_then_throw = [] {
      greenlet::getcurrent().set_gr_context(greenlet::context());
      throw std::runtime_error("fn failed");
    };
    EXPECT_THROW(ctx.run(replace_then_throw), std::runtime_error);
    EXPECT_EQ(var.get(-1), -1);
    EXPECT_FALSE(ctx.entered());

    // A run() that leaves the context alone returns what fn returns, references included.
    int x = 0;
    int& same = ctx.run([&]() -> int& { return x; });
    EXPECT_EQ(&same, &x);
    auto set_seven = [&] {
      var.set(7);
      return var.get();
    };
    EXPECT_EQ(ctx.run(set_seven), 7);
    EXPECT_EQ(ctx.run([&] { return var.get(-1); }), 7);
  });
  g.switch_();
  EXPECT_TRUE(g.dead());
}

}  // namespace
